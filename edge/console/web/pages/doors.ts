import { t } from '../i18n.js';
import { h, api, command, card, table, badge, notConfigured, can, toast, errText, fmtTime, doorCards } from '../lib.js';
import type { AccessEventRow, Capabilities, DoorStatusRow, PersonRow } from '../../api-types.js';
import type { LiveHandler } from '../lib.js';

// Doors: each door's lock, contact, alarm and fire state as a card, unlock test, fire
// release/clear, and the access log (time, door and person by name, credential, result,
// reason, and who unlocked it from the console), filtered by door and outcome.
// A door waiting for a PIN (face_and_pin, card_and_pin, a person who needs a second
// factor) shows a PIN pad: on a touch screen at the door the resident types the PIN there
// (door.pin, any role: the PIN is the credential). Everything goes through the door commands.
const cmd = command;

/** "console:admin" → "admin"; "mqtt:cmd-123" → "远程 cmd-123". */
function requester(by: unknown) {
  if (typeof by !== 'string' || !by) return '';
  const [src, ...rest] = by.split(':');
  const who = rest.join(':');
  return src === 'console' ? who : `${t(`cred.${src === 'mqtt' ? 'remote' : src}`)} ${who}`;
}

export async function render(box: HTMLElement): Promise<LiveHandler | undefined> {
  const caps = await api<Capabilities>('/api/capabilities');
  if (!caps.doors?.configured) {
    box.append(notConfigured(caps.doors?.reason));
    return;
  }
  const tech = can('technician');
  const cardsBox = h('div');
  const padBox = h('div', { 'data-testid': 'pin-pads' });
  const actions = h('div', { class: 'doorcards' });
  const fireLine = h('p', { 'data-testid': 'fire' });
  const logBody = h('tbody', { 'data-testid': 'access-log' });
  const doorFilter = h('select', { 'data-testid': 'log-door' }, h('option', { value: '' }, t('doors.all')));
  const grantedFilter = h('select', { 'data-testid': 'log-granted' }, h('option', { value: '' }, t('doors.all')), h('option', { value: 'true' }, t('doors.granted')), h('option', { value: 'false' }, t('doors.denied')));
  let names = new Map<string, string>();
  const people = new Map<string, string>();

  const loadStatus = async () => {
    const status = await cmd('door.status');
    names = new Map(status.doors.map((d) => [d.id, d.name || d.id]));
    cardsBox.replaceChildren(doorCards(status));
    padBox.replaceChildren(...status.doors.filter((d) => d.awaitingPin).map(pinPad));
    actions.replaceChildren(
      ...status.doors.map((d) =>
        h(
          'div',
          { class: 'doorcard', 'data-door': d.id },
          h('strong', {}, d.name || d.id),
          h('p', { class: 'small', 'data-testid': `door-state-${d.id}` }, `${t(`door.${d.lock}`)} · ${t(`door.${d.contact}`)}`),
          d.lastDecision ? h('p', { class: 'small muted' }, `${t('doors.last')}${t('sep')}${d.lastDecision.granted ? '✔' : '✘'} ${t(`reason.${d.lastDecision.reason}`)}`) : null,
          tech ? h('button', { 'data-testid': `unlock-${d.id}`, onclick: () => unlock(d) }, t('doors.unlock')) : null,
        ),
      ),
    );
    const f = status.fire;
    fireLine.replaceChildren(`${t('doors.fireState')}${t('sep')}`, badge(!f.released, t('ok'), t('doors.released')), ` · ${t('doors.fireInputState')}${t('sep')}${f.inputActive === null ? '—' : f.inputActive ? t('doors.active') : t('doors.idle')}${f.since ? ` · ${fmtTime(f.since)}` : ''}`);
    if (doorFilter.options.length === 1) for (const d of status.doors) doorFilter.append(h('option', { value: d.id }, d.name || d.id));
  };
  // The PIN is typed, sent and forgotten: never kept in the page, never shown.
  const pinPad = (d: DoorStatusRow) => {
    const input = h('input', { type: 'password', inputmode: 'numeric', autocomplete: 'off', pattern: '[0-9]*', maxlength: 16, 'aria-label': t('doors.pinPad'), 'data-testid': `pin-${d.id}` });
    const send = async (e: Event) => {
      e.preventDefault();
      const pin = input.value;
      input.value = '';
      if (!pin) return;
      try {
        await cmd('door.pin', { doorId: d.id, pin });
        toast(t('doors.pinOk'));
      } catch (ex) {
        toast(errText(ex), 'error');
      }
      await Promise.all([loadStatus(), loadLog()]).catch(() => {});
    };
    return h(
      'form',
      { class: 'doorcard', 'data-door': d.id, onsubmit: send },
      h('strong', {}, `${d.name || d.id} · ${t('doors.pinPad')}`),
      h('p', { class: 'small muted' }, t('doors.pinHelp', { s: Math.max(0, Math.round(((d.awaitingPin?.until ?? 0) - Date.now()) / 1000)) })),
      h('div', { class: 'row' }, input, h('button', { type: 'submit', class: 'primary', 'data-testid': `pin-send-${d.id}` }, t('doors.enterPin'))),
    );
  };
  const personName = (e: AccessEventRow) => (typeof e.data.personName === 'string' && e.data.personName) || (e.personId && people.get(e.personId)) || e.personId || '';
  const loadLog = async () => {
    if (!tech) return;
    const q: { limit: number; doorId?: string; granted?: boolean } = { limit: 50 };
    if (doorFilter.value) q.doorId = doorFilter.value;
    if (grantedFilter.value) q.granted = grantedFilter.value === 'true';
    const r = await cmd('access.events', q);
    // Names of the people in the log the records do not carry (older records).
    const missing = [...new Set(r.events.filter((e) => e.personId && !e.data.personName && !people.has(e.personId)).map((e) => e.personId))];
    if (missing.length) {
      const list = await cmd('person.list', { limit: 1000 }).catch(() => ({ people: [] as PersonRow[] }));
      for (const p of list.people) people.set(p.id, p.name || p.id);
    }
    logBody.replaceChildren(
      ...(r.events.length
        ? r.events.map((e) =>
            h(
              'tr',
              { class: e.granted ? '' : 'denied' },
              h('td', {}, fmtTime(e.ts)),
              h('td', {}, names.get(e.doorId) || e.doorId),
              h('td', { translate: 'no' }, personName(e)),
              h('td', {}, Array.isArray(e.data.via) && e.data.via.length > 1 ? e.data.via.map((v) => t(`via.${String(v)}`)).join(' + ') : t(`cred.${e.credential}`)),
              h('td', {}, e.granted ? badge(true, t('doors.granted')) : badge(false, '', t('doors.denied'))),
              h('td', {}, t(`reason.${e.reason}`)),
              h('td', { translate: 'no' }, requester(e.data.requestedBy)),
            ),
          )
        : [h('tr', {}, h('td', { colspan: 7, class: 'muted' }, t('doors.noEvents')))]),
    );
  };
  const unlock = async (d: DoorStatusRow) => {
    if (!confirm(t('doors.confirmUnlock', { door: d.name || d.id }))) return;
    try {
      await cmd('door.unlock', { doorId: d.id, note: 'console unlock test' });
      toast(`${t('cmd.done')}${t('sep')}${d.name || d.id}`);
    } catch (e) {
      toast(errText(e), 'error');
    }
    await Promise.all([loadStatus(), loadLog()]).catch(() => {});
  };
  const fire = async (action: 'release' | 'clear') => {
    if (!confirm(t(action === 'release' ? 'doors.confirmFire' : 'doors.confirmFireClear'))) return;
    try {
      await cmd('door.fireRelease', { action });
      toast(t('cmd.done'));
    } catch (e) {
      toast(errText(e), 'error');
    }
    await loadStatus().catch(() => {});
  };
  await loadStatus();
  box.append(padBox);
  box.append(card(t('doors.state'), cardsBox, fireLine, tech ? h('div', { class: 'row' }, h('button', { class: 'danger', onclick: () => fire('release') }, t('doors.fire')), h('button', { onclick: () => fire('clear') }, t('doors.fireClear'))) : null));
  if (tech) box.append(card(t('doors.unlock'), actions));
  if (tech) {
    doorFilter.onchange = grantedFilter.onchange = () => loadLog().catch((e) => toast(errText(e), 'error'));
    await loadLog();
    box.append(card(t('doors.log'), h('div', { class: 'row' }, h('label', {}, t('doors.filterDoor'), doorFilter), h('label', {}, t('doors.result'), grantedFilter)), table([t('doors.when'), t('doors.door'), t('doors.person'), t('doors.credential'), t('doors.result'), t('doors.reason'), t('doors.by')], logBody)));
  }
  let pending: ReturnType<typeof setTimeout> | undefined;
  const live: LiveHandler = (kind, ev) => {
    if (kind !== 'bus' || !/^(door|access|fire)\./.test(ev.type)) return;
    clearTimeout(pending);
    pending = setTimeout(() => Promise.all([loadStatus(), loadLog()]).catch(() => {}), 150);
  };
  return live;
}
