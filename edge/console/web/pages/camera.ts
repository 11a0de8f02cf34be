import { t } from '../i18n.js';
import { h, api, card, kv, badge, notConfigured, errText, fmtTime, shownWhile } from '../lib.js';
import type { CameraSnapshot, CameraView } from '../../api-types.js';

// Camera: the door camera's state and a live view — one frame every LIVE_S seconds (a
// JPEG with the detected faces; low rate, so a phone on the estate's Wi-Fi and the box's
// CPU are not loaded), each face boxed with the recognised person's name, or "not
// recognised", and its score. The view stops when the page is left or hidden.
const LIVE_S = 1;

export async function render(box: HTMLElement): Promise<undefined> {
  const cam = await api<CameraView>('/api/camera');
  if (!cam.configured || !cam.status) {
    box.append(notConfigured(cam.reason));
    return;
  }
  const st = cam.status;
  box.append(
    card(
      t('camera.state'),
      kv([
        ['', badge(st.available, t('ok'), st.problem || t('fail'))],
        [t('camera.state'), st.camera ? t(`camstate.${st.camera.state}`) : '—'],
        [t('camera.fps'), st.camera ? String(st.camera.fps) : '—'],
        [t('camera.frames'), st.camera ? String(st.camera.frames) : '—'],
        [t('people.faces'), String(st.templates)],
        [t('camera.models'), st.models ? h('code', {}, `${st.models.detector} / ${st.models.recognizer}`) : '—'],
      ]),
    ),
  );
  const stage = h('div', { class: 'snapshot', 'data-testid': 'camera-stage' });
  const msg = h('p', { class: 'muted', 'data-testid': 'camera-msg' });
  let running = true;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const shown = shownWhile(box);
  const draw = (s: CameraSnapshot) => {
    const img = h('img', { src: `data:${s.mime || 'image/jpeg'};base64,${s.image}`, alt: t('camera.live') });
    // Positions through the CSSOM: the page's CSP forbids inline style attributes.
    const boxes = s.faces.map((f) => {
      const who = f.name || f.personId;
      const el = h('div', { class: `facebox${who ? (f.granted ? ' known' : ' denied') : ''}`, 'data-testid': 'facebox' }, h('span', {}, who ? h('b', { translate: 'no' }, who) : t('camera.unknownFace'), ` · ${t('camera.score')} ${(f.score ?? 0).toFixed(2)}`));
      Object.assign(el.style, { left: `${(f.box.x / s.width) * 100}%`, top: `${(f.box.y / s.height) * 100}%`, width: `${(f.box.w / s.width) * 100}%`, height: `${(f.box.h / s.height) * 100}%` });
      return el;
    });
    stage.replaceChildren(img, ...boxes);
    stage.dataset.frameAt = String(s.at);
    msg.textContent = t('camera.frameAt', { at: fmtTime(s.at) });
  };
  const tick = async () => {
    if (!running || !shown()) return;
    if (document.visibilityState === 'visible') {
      try {
        draw(await api<CameraSnapshot>('/api/camera/snapshot'));
      } catch (e) {
        msg.textContent = errText(e);
      }
    }
    if (running && shown()) timer = setTimeout(tick, LIVE_S * 1000);
  };
  const toggle = h('button', { 'data-testid': 'camera-toggle' }, t('camera.stop'));
  toggle.onclick = () => {
    running = !running;
    toggle.textContent = running ? t('camera.stop') : t('camera.start');
    clearTimeout(timer);
    if (running) tick();
    else msg.textContent = t('camera.paused');
  };
  box.append(card(t('camera.live'), h('div', { class: 'row' }, toggle, h('small', { class: 'muted' }, t('camera.rate', { s: LIVE_S }))), msg, stage));
  await tick();
}
