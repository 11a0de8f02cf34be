import { t, tOr, getLang } from '../i18n.js';
import { h, api, card, kv, badge, fmtDur, fmtMB, fmtTime, fmtClock, notConfigured, doorCards, type LiveHandler } from '../lib.js';
import type { Capabilities, CommandAnswer, Dashboard, DoorStates, LiveEvent, LiveStatus } from '../../api-types.js';

/** The fields of an event's data the line shows (each bus event has its own shape; all are optional here). */
interface EventData {
  doorId?: string;
  door?: string;
  device?: string;
  id?: string;
  personName?: string;
  personId?: string;
  lock?: unknown;
  contact?: unknown;
  alarm?: unknown;
  active?: boolean;
  granted?: boolean;
  reason?: string;
  online?: boolean;
  connected?: unknown;
  action?: unknown;
  user?: unknown;
}

/** A module's health as gateway.info reports it (its detail is the module's own). */
interface ModuleHealth {
  ok: boolean;
  message?: string;
  detail?: { buses?: Array<{ online?: number; devices?: number }>; online?: unknown; offline?: number; doors?: unknown };
}
interface GatewayInfo {
  version?: string;
  uptimeS?: number;
  modules?: Record<string, ModuleHealth>;
}

/** One event, in words: its kind, the door/device, states and reasons translated; ids and user names as they are. */
export function eventLine(e: LiveEvent): HTMLLIElement {
  const d = (e.data || {}) as EventData;
  const parts: Array<string | Node> = [];
  const id = d.doorId || d.door || d.device || d.id;
  if (id) parts.push(h('span', { translate: 'no' }, String(id)));
  if (d.personName || d.personId) parts.push(h('span', { translate: 'no' }, String(d.personName || d.personId)));
  if (typeof d.lock === 'string') parts.push(t(`door.${d.lock}`));
  if (typeof d.contact === 'string') parts.push(t(`door.${d.contact}`));
  if (typeof d.alarm === 'string') parts.push(`${t(`door.alarm.${d.alarm.replace(/^door\./, '')}`)}${d.active === false ? ` ${t('ev.cleared')}` : ''}`);
  if (d.granted !== undefined) parts.push(d.granted ? `✔ ${t('ev.granted')}` : `✘ ${t(`reason.${d.reason}`)}`);
  if (d.online !== undefined) parts.push(d.online ? t('dash.online') : t('dash.offline'));
  if (typeof d.connected === 'boolean') parts.push(d.connected ? t('dash.connected') : t('dash.disconnected'));
  if (typeof d.action === 'string' && e.type === 'audit') parts.push(t(`audit.${d.action}`));
  if (typeof d.user === 'string') parts.push(h('span', { translate: 'no' }, `@${d.user}`));
  const line = h('li', {}, h('time', {}, fmtClock(e.at)), ' ', h('strong', {}, t(`ev.${e.type}`)));
  for (const p of parts) line.append(' · ', p);
  return line;
}

function moduleCount(health: Record<string, ModuleHealth>, name: string): string | null {
  const m = health[name];
  if (!m) return null;
  const d = m.detail || {};
  if (Array.isArray(d.buses)) {
    const online = d.buses.reduce((n, b) => n + (b.online || 0), 0);
    const total = d.buses.reduce((n, b) => n + (b.devices || 0), 0);
    return `${online} ${t('dash.online')} / ${total - online} ${t('dash.offline')}`;
  }
  if (typeof d.online === 'number') return `${d.online} ${t('dash.online')} / ${d.offline ?? 0} ${t('dash.offline')}`;
  if (typeof d.doors === 'number') return String(d.doors);
  return m.ok ? t('ok') : m.message || t('fail');
}

export async function render(box: HTMLElement): Promise<LiveHandler> {
  const [d, caps] = await Promise.all([api<Dashboard>('/api/dashboard'), api<Capabilities>('/api/capabilities')]);
  const info: GatewayInfo = d.info || {};
  const health = info.modules || {};
  const uplink = h('span', { 'data-testid': 'uplink' });
  const records = h('span', { 'data-testid': 'outbox-records' });
  const oldest = h('span', { 'data-testid': 'outbox-oldest' });
  const clock = h('span');
  const modules = h('ul', { class: 'plain' });
  const setStatus = (s: LiveStatus) => {
    uplink.replaceChildren(badge(s.uplink?.connected, t('dash.connected'), t('dash.disconnected')), s.uplink && !s.uplink.connected && s.uplink.lastError && getLang() !== 'zh' ? h('small', { class: 'muted' }, ` ${s.uplink.lastError}`) : '');
    records.textContent = String(s.outbox.records);
    oldest.textContent = s.outbox.records ? fmtDur(s.outbox.oldestAgeS) : '—';
    clock.replaceChildren(badge(s.clockSynced, t('dash.synced'), t('dash.unsynced')));
    modules.replaceChildren(...Object.entries(s.modules || {}).map(([k, v]) => h('li', {}, badge(v.ok), ' ', tOr(`mod.${k}`, k), v.message && getLang() !== 'zh' ? h('small', { class: 'muted' }, ` ${v.message}`) : '')));
  };
  setStatus(d);
  const sys: Partial<Dashboard['system']> = d.system || {};
  const doorsBox = h('div');
  if (d.doors) doorsBox.append(doorCards(d.doors));
  // Door events: the states again (a small command, debounced), so the card follows the doors live.
  let doorTimer: ReturnType<typeof setTimeout> | undefined;
  const refreshDoors = () => {
    clearTimeout(doorTimer);
    doorTimer = setTimeout(
      () =>
        api<CommandAnswer<DoorStates>>('/api/commands/door.status', { method: 'POST', body: {} })
          .then((r) => doorsBox.replaceChildren(doorCards(r.result)))
          .catch(() => {}),
      200,
    );
  };
  const events = h('ul', { class: 'events', 'data-testid': 'events' }, (d.events || []).slice().reverse().map(eventLine));
  box.append(
    h(
      'div',
      { class: 'grid' },
      card(
        t('dash.uplink'),
        kv([
          [t('dash.uplink'), uplink],
          [t('dash.outbox'), records],
          [t('dash.oldest'), oldest],
          [t('dash.clock'), clock],
        ]),
      ),
      card(t('dash.meters'), caps.meters?.configured ? h('p', { 'data-testid': 'meters-summary' }, moduleCount(health, 'meters') ?? t('ok')) : notConfigured(caps.meters?.reason)),
      card(t('dash.doors'), caps.doors?.configured ? [h('p', { 'data-testid': 'doors-summary' }, moduleCount(health, 'doors') ?? t('ok')), doorsBox] : notConfigured(caps.doors?.reason)),
      card(
        t('dash.system'),
        kv([
          [t('dash.version'), info.version ?? '—'],
          [t('dash.uptime'), fmtDur(info.uptimeS)],
          [t('dash.cpu'), String(sys.load1 ?? '—')],
          [t('dash.mem'), `${fmtMB(sys.memFreeMB)} / ${fmtMB(sys.memTotalMB)} (RSS ${fmtMB(sys.rssMB)})`],
          [t('dash.disk'), `${fmtMB(sys.diskFreeMB)} / ${fmtMB(sys.diskTotalMB)}`],
          ['', h('small', { class: 'muted' }, fmtTime(d.at))],
        ]),
      ),
      card(t('dash.modules'), modules),
    ),
    card(t('dash.events'), events),
  );
  const live: LiveHandler = (kind, data) => {
    if (kind === 'status') setStatus(data);
    else if (data.type !== 'meter.reading') {
      if (d.doors && /^(door|fire)\./.test(data.type)) refreshDoors();
      events.prepend(eventLine(data));
      while (events.children.length > 50) events.lastChild!.remove();
    }
  };
  return live;
}
