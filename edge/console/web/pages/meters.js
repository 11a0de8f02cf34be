import { t } from '../i18n.js';
import { h, api, card, table, notConfigured, commandRunner, can } from '../lib.js';

// Meters: the latest values per bus and device from the meters service, live updates
// from "meter.reading" events, and the meters module's own commands (read now, bus
// scan, poll tester) through the generic command runner.
function valueText(v) {
  if (v === null || v === undefined) return '—';
  if (typeof v === 'object' && 'value' in v) return `${v.value}${v.unit ? ` ${v.unit}` : ''}`;
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

export async function render(box) {
  const caps = await api('/api/capabilities');
  if (!caps.meters.configured) {
    box.append(notConfigured(caps.meters.reason));
    return;
  }
  const list = await api('/api/meters').catch(() => null);
  const rows = new Map();
  const body = [];
  for (const m of (list && list.meters) || []) {
    const values = h('td', { 'data-testid': `meter-${m.id}` }, Object.entries(m.values || {}).map(([k, v]) => h('div', {}, `${k}: ${valueText(v)}`)));
    rows.set(m.id, values);
    body.push(h('tr', {}, h('td', {}, m.bus ?? ''), h('td', {}, m.name || m.id), values, h('td', {}, m.online === false ? t('dash.offline') : t('dash.online')), h('td', {}, m.lastError || '')));
  }
  box.append(card(t('meters.title'), body.length ? table([t('meters.device').replace(/.*/, 'Bus'), t('meters.device'), t('meters.values'), t('doors.state'), t('meters.lastError')], body) : h('p', { class: 'muted' }, t('none'))));
  if (can('technician')) {
    const runner = commandRunner(caps.meters.commands);
    if (runner) box.append(runner);
  }
  return (kind, ev) => {
    if (kind !== 'bus' || !ev.type.startsWith('meter.')) return;
    const d = ev.data || {};
    const cell = rows.get(d.meterId || d.deviceId || d.id);
    if (cell && d.values) cell.replaceChildren(...Object.entries(d.values).map(([k, v]) => h('div', {}, `${k}: ${valueText(v)}`)));
  };
}
