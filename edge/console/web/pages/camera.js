import { t } from '../i18n.js';
import { h, api, card, kv, badge, notConfigured, errText, fmtTime } from '../lib.js';

// Camera: a snapshot from the door camera with the detected faces' boxes and scores
// (offered by the face module's service when it has a camera).
export async function render(box) {
  const cam = await api('/api/camera');
  if (!cam.configured) {
    box.append(notConfigured(cam.reason));
    return;
  }
  const st = cam.status;
  box.append(card(t('camera.title'), kv([
    ['', badge(st.available, t('ok'), st.problem || t('fail'))],
    ['camera', st.camera ? `${st.camera.state}${st.camera.reason ? ` (${st.camera.reason})` : ''} · ${st.camera.fps} fps · ${st.camera.frames} frames` : '—'],
    [t('people.faces'), String(st.templates)],
    ['models', st.models ? `${st.models.detector} / ${st.models.recognizer}` : '—'],
  ])));
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
      msg.textContent = fmtTime(s.at || Date.now());
    } catch (e) {
      msg.textContent = errText(e);
    }
  };
  box.append(card(t('camera.snapshot'), h('button', { onclick: take }, t('camera.snapshot')), msg, stage));
  await take();
}
