import { t, tOr } from '../i18n.js';
import { h, api, command, card, table, notConfigured, can, toast, errText, fmtTime, fmtClock, shownWhile } from '../lib.js';
import type { Capabilities, ElevatorCarRow, ElevatorSnapshot, ElevatorStatusResult } from '../../api-types.js';
import type { LiveHandler } from '../lib.js';

// Elevator e-bike blocker: each car's state (idle, e-bike seen and held, released by a
// technician, camera lost), its door-hold relay, the last detections and, for
// technicians, the car camera's newest frame and the override (elevator.release, with a
// reason: the gateway audits who released which car and why). The state follows the
// elevator.* bus events at once; the detections of frames that hold nothing have no
// event, so the status is also read every POLL_S seconds while the page is shown.
const POLL_S = 2;
const VIEW_S = 1;

function stateKey(c: ElevatorCarRow): string {
  if (c.state === 'clear' && c.overrideUntil !== undefined) return 'override';
  return c.state;
}

export async function render(box: HTMLElement): Promise<LiveHandler | undefined> {
  const caps = await api<Capabilities>('/api/capabilities');
  if (!caps.elevator?.configured) {
    box.append(notConfigured(caps.elevator?.reason));
    return;
  }
  const tech = can('technician');
  const shown = shownWhile(box);
  const problem = h('div', { 'data-testid': 'elevator-problem' });
  const carsBox = h('div', { class: 'doorcards', 'data-testid': 'elevator-cars' });
  const detBox = h('div', { 'data-testid': 'elevator-detections' });
  const viewBox = h('div', { class: 'doorcards', 'data-testid': 'elevator-views' });
  const views = new Map<string, { img: HTMLImageElement; msg: HTMLElement }>();
  let cars: ElevatorCarRow[] = [];

  const release = async (c: ElevatorCarRow, reasonInput: HTMLInputElement) => {
    const reason = reasonInput.value.trim();
    if (!reason) {
      toast(t('elev.reasonHelp'), 'error');
      reasonInput.focus();
      return;
    }
    try {
      const r = await command('elevator.release', { car: c.id, reason });
      reasonInput.value = '';
      toast(t(r.released ? 'elev.released' : 'elev.notHeld', { car: c.name || c.id }));
    } catch (e) {
      toast(errText(e), 'error');
    }
    await load().catch(() => {});
  };

  const carCard = (c: ElevatorCarRow) => {
    const key = stateKey(c);
    const alert = c.state !== 'clear';
    const line = (label: string, value: string, testid?: string) => h('li', {}, h('span', { class: 'muted' }, `${label}${t('sep')}`), h('span', testid ? { 'data-testid': testid } : {}, value));
    const reason = h('input', { type: 'text', maxlength: 200, placeholder: t('elev.reason'), 'aria-label': t('elev.reason'), 'data-testid': `reason-${c.id}` });
    return h(
      'div',
      { class: `doorcard${alert ? ' alert' : ''}`, 'data-testid': `car-${c.id}`, 'data-state': key },
      h('strong', { translate: 'no' }, c.name || c.id),
      h(
        'ul',
        {},
        h('li', {}, h('span', { class: 'muted' }, `${t('elev.state')}${t('sep')}`), h(alert ? 'strong' : 'span', { class: alert ? 'error' : '', 'data-testid': `car-state-${c.id}` }, t(`elev.st.${key}`))),
        c.holdingSince ? line(t('elev.since'), fmtTime(c.holdingSince)) : null,
        c.overrideUntil ? line(t('elev.overrideUntil'), fmtClock(c.overrideUntil)) : null,
        line(t('elev.relay'), c.relay.energised ? t('elev.relayOn') : t('elev.relayOff'), `car-relay-${c.id}`),
        line(t('elev.camera'), `${t(`camstate.${c.camera.state}`)}${c.camera.reason ? ` (${c.camera.reason})` : ''}`),
        line(t('elev.frames'), String(c.counters.frames)),
        line(t('elev.holds'), String(c.counters.holds)),
        line(t('elev.overrides'), String(c.counters.overrides), `car-overrides-${c.id}`),
        c.lastEbikeAt ? line(t('elev.ebikeAt'), fmtTime(c.lastEbikeAt)) : null,
      ),
      tech ? h('form', { class: 'row', onsubmit: (e: Event) => (e.preventDefault(), void release(c, reason)) }, reason, h('button', { type: 'submit', class: c.state === 'holding' ? 'danger' : '', 'data-testid': `release-${c.id}` }, t('elev.release'))) : null,
    );
  };

  type Det = ElevatorCarRow['lastDetections'][number];
  const detRow = (d: Det) => h('tr', { class: d.cls === 'motorcycle' ? 'denied' : '' }, h('td', {}, tOr(`elev.cls.${d.cls}`, d.cls)), h('td', {}, d.score.toFixed(2)), h('td', {}, `${Math.round(d.box.w)}×${Math.round(d.box.h)}`), h('td', {}, fmtClock(d.at)));
  const detTables = new Map<string, HTMLTableSectionElement>();
  const drawDetections = () => {
    detBox.replaceChildren(
      ...cars.map((c) => {
        const body = h('tbody', { 'data-testid': `detections-${c.id}` }, c.lastDetections.length ? c.lastDetections.map(detRow) : h('tr', {}, h('td', { colspan: 4, class: 'muted' }, t('elev.noDetections'))));
        detTables.set(c.id, body);
        return h('div', {}, h('h4', { translate: 'no' }, c.name || c.id), table([t('elev.cls'), t('elev.score'), t('elev.size'), t('elev.when')], body));
      }),
    );
  };

  const draw = (s: ElevatorStatusResult) => {
    cars = s.cars;
    problem.replaceChildren(s.available ? '' : h('div', { class: 'notice bad' }, h('strong', {}, t('elev.unavailable')), s.problem ? h('p', { class: 'muted' }, s.problem) : null));
    carsBox.replaceChildren(...s.cars.map(carCard));
    drawDetections();
  };
  const load = async () => draw(await command('elevator.status'));
  await load();
  box.append(problem, card(t('elev.cars'), carsBox), card(t('elev.detections'), detBox));

  // The camera view: technicians only (the car's camera shows residents), one frame a
  // second, as a data: URL (nothing kept in the browser's cache).
  if (tech) {
    for (const c of cars) {
      const img = h('img', { alt: `${t('elev.view')} ${c.name || c.id}`, 'data-testid': `view-${c.id}` });
      const msg = h('p', { class: 'small muted', 'data-testid': `view-msg-${c.id}` }, t('elev.noFrame'));
      views.set(c.id, { img, msg });
      viewBox.append(h('div', { class: 'doorcard' }, h('strong', { translate: 'no' }, c.name || c.id), h('div', { class: 'snapshot' }, img), msg));
    }
    box.append(card(t('elev.view'), viewBox));
  }
  const viewTick = async () => {
    if (!shown()) return;
    if (document.visibilityState === 'visible')
      await Promise.all(
        [...views].map(async ([id, v]) => {
          try {
            const s = await api<ElevatorSnapshot>(`/api/elevator/cars/${encodeURIComponent(id)}/snapshot`);
            v.img.src = `data:${s.mime};base64,${s.image}`;
            v.img.dataset.frameAt = String(s.at);
            v.msg.textContent = t('elev.frameAt', { at: fmtTime(s.at) });
          } catch (e) {
            v.msg.textContent = errText(e);
          }
        }),
      );
    if (shown()) setTimeout(viewTick, VIEW_S * 1000);
  };
  if (views.size) void viewTick();
  const poll = async () => {
    if (!shown()) return;
    if (document.visibilityState === 'visible') await load().catch(() => {});
    if (shown()) setTimeout(poll, POLL_S * 1000);
  };
  setTimeout(poll, POLL_S * 1000);

  let pending: ReturnType<typeof setTimeout> | undefined;
  return (kind, ev) => {
    if (kind !== 'bus' || !ev.type.startsWith('elevator.')) return;
    const data = ev.data as { carId?: string; score?: number; box?: Det['box']; at?: number; alarm?: string; active?: boolean };
    if (ev.type === 'elevator.ebike' && data.carId && data.box && typeof data.score === 'number') {
      // The detection that started the hold, shown before the status is read again.
      const body = detTables.get(data.carId);
      body?.prepend(detRow({ cls: 'motorcycle', score: data.score, box: data.box, at: data.at ?? ev.at }));
    }
    if (ev.type === 'elevator.state' && data.carId) {
      // The new state at once, from the event (the status read below fills in the rest).
      const st = ev.data as { carId: string; state: ElevatorCarRow['state']; cause: string };
      const key = st.state === 'clear' && st.cause === 'override' ? 'override' : st.state;
      const el = box.querySelector<HTMLElement>(`[data-testid="car-state-${CSS.escape(st.carId)}"]`);
      if (el) el.textContent = t(`elev.st.${key}`);
      const cardEl = box.querySelector<HTMLElement>(`[data-testid="car-${CSS.escape(st.carId)}"]`);
      if (cardEl) {
        cardEl.dataset.state = key;
        cardEl.classList.toggle('alert', st.state !== 'clear');
      }
    }
    if (ev.type === 'elevator.alarm' && data.active && data.carId) toast(t('elev.alarmLost', { car: cars.find((c) => c.id === data.carId)?.name || data.carId }), 'error');
    clearTimeout(pending);
    pending = setTimeout(() => load().catch(() => {}), 100);
  };
}
