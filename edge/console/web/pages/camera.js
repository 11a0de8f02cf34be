import { t } from '../i18n.js';
import { h, api, card, notConfigured, errText } from '../lib.js';

// Camera: a snapshot from the door camera with the detected faces' boxes and scores
// (offered by the face module's service when it has a camera).
export async function render(box) {
  const caps = await api('/api/capabilities');
  if (!caps.camera.configured) {
    box.append(notConfigured(caps.camera.reason));
    return;
  }
  const stage = h('div', { class: 'snapshot' });
  const msg = h('p', { class: 'muted' });
  const take = async () => {
    msg.textContent = t('loading');
    try {
      const s = await api('/api/camera/snapshot');
      const img = h('img', { src: `data:${s.mime || 'image/jpeg'};base64,${s.image}`, alt: 'snapshot' });
      // Positions through the CSSOM: the page's CSP forbids inline style attributes.
      const boxes = (s.faces || []).map((f) => {
        const el = h('div', { class: 'facebox' }, h('span', {}, `${f.personId ? `${f.personId} ` : ''}${t('camera.score')} ${(f.score ?? 0).toFixed(2)}`));
        Object.assign(el.style, { left: `${(f.box.x / s.width) * 100}%`, top: `${(f.box.y / s.height) * 100}%`, width: `${(f.box.w / s.width) * 100}%`, height: `${(f.box.h / s.height) * 100}%` });
        return el;
      });
      stage.replaceChildren(img, ...boxes);
      msg.textContent = new Date(s.at || Date.now()).toLocaleString();
    } catch (e) {
      msg.textContent = errText(e);
    }
  };
  box.append(card(t('camera.title'), h('button', { onclick: take }, t('camera.snapshot')), msg, stage));
  await take();
}
