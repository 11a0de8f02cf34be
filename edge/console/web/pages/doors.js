import { t } from '../i18n.js';
import { h, api, card, table, badge, notConfigured, can, toast, errText, fmtTime } from '../lib.js';

// Doors: live state of every door, unlock test, fire release/clear, and the access
// event log (filter by door and outcome). Everything goes through the door commands.
const cmd = (name, body = {}) => api(`/api/commands/${name}`, { method: 'POST', body }).then((r) => r.result);

function stateText(d) {
  const parts = [t(`door.${d.lock}`), t(`door.${d.contact}`)];
  if (d.fireReleased) parts.push(t('door.fire'));
  if (d.alarms && d.alarms.length) parts.push(`${t('door.alarm')}: ${d.alarms.join(', ')}`);
  if (d.fault) parts.push(`${t('fail')}: ${d.fault}`);
  return parts.join(' · ');
}

export async function render(box) {
  const caps = await api('/api/capabilities');
  if (!caps.doors.configured) {
    box.append(notConfigured(caps.doors.reason));
    return;
  }
  const doorsBody = h('tbody');
  const fireLine = h('p', { 'data-testid': 'fire' });
  const logBody = h('tbody', { 'data-testid': 'access-log' });
  const doorFilter = h('select', {}, h('option', { value: '' }, '*'));
  const grantedFilter = h('select', {}, h('option', { value: '' }, '*'), h('option', { value: 'true' }, '✔'), h('option', { value: 'false' }, '✘'));
  let status;

  const loadStatus = async () => {
    status = await cmd('door.status');
    doorsBody.replaceChildren(...status.doors.map((d) => h('tr', { 'data-door': d.id },
      h('td', {}, d.name || d.id), h('td', { 'data-testid': `door-state-${d.id}` }, stateText(d)), h('td', {}, d.lastDecision ? `${d.lastDecision.granted ? '✔' : '✘'} ${d.lastDecision.reason}` : ''),
      h('td', {}, can('technician') ? h('button', { 'data-testid': `unlock-${d.id}`, onclick: () => unlock(d) }, t('doors.unlock')) : ''))));
    const f = status.fire;
    fireLine.replaceChildren(badge(!f.released, t('ok'), 'FIRE RELEASE'), ` input: ${f.inputActive === null ? '—' : f.inputActive ? 'active' : 'idle'}${f.since ? ` · ${fmtTime(f.since)}` : ''}`);
    if (doorFilter.options.length === 1) for (const d of status.doors) doorFilter.append(h('option', { value: d.id }, d.name || d.id));
  };
  const loadLog = async () => {
    if (!can('technician')) return;
    const q = { limit: 50 };
    if (doorFilter.value) q.doorId = doorFilter.value;
    if (grantedFilter.value) q.granted = grantedFilter.value === 'true';
    const r = await cmd('access.events', q);
    logBody.replaceChildren(...r.events.map((e) => h('tr', {}, h('td', {}, fmtTime(e.ts)), h('td', {}, e.doorId), h('td', {}, e.credential), h('td', {}, e.personId || ''), h('td', {}, e.granted ? '✔' : '✘'), h('td', {}, e.reason))));
  };
  const unlock = async (d) => {
    if (!confirm(t('doors.confirmUnlock', { door: d.name || d.id }))) return;
    try {
      await cmd('door.unlock', { doorId: d.id, note: 'console unlock test' });
      toast(`${t('cmd.done')}: ${d.id}`);
    } catch (e) {
      toast(errText(e), 'error');
    }
    await Promise.all([loadStatus(), loadLog()]).catch(() => {});
  };
  const fire = async (action) => {
    if (action === 'release' && !confirm(t('doors.confirmFire'))) return;
    try {
      await cmd('door.fireRelease', { action });
      toast(t('cmd.done'));
    } catch (e) {
      toast(errText(e), 'error');
    }
    await loadStatus().catch(() => {});
  };
  await loadStatus();
  box.append(card(t('doors.state'), table([t('doors.filterDoor'), t('doors.state'), '', ''], doorsBody), fireLine,
    can('technician') ? h('div', { class: 'row' }, h('button', { class: 'danger', onclick: () => fire('release') }, t('doors.fire')), h('button', { onclick: () => fire('clear') }, t('doors.fireClear'))) : null));
  if (can('technician')) {
    doorFilter.onchange = grantedFilter.onchange = () => loadLog().catch((e) => toast(errText(e), 'error'));
    await loadLog();
    box.append(card(t('doors.log'), h('div', { class: 'row' }, h('label', {}, t('doors.filterDoor'), doorFilter), h('label', {}, '✔/✘', grantedFilter)), table(['', t('doors.filterDoor'), '', t('people.id'), '', ''], logBody)));
  }
  let pending;
  return (kind, ev) => {
    if (kind !== 'bus' || !/^(door|access|fire)\./.test(ev.type)) return;
    clearTimeout(pending);
    pending = setTimeout(() => Promise.all([loadStatus(), loadLog()]).catch(() => {}), 150);
  };
}
