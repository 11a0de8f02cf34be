import { t } from '../i18n.js';
import { h, api, card, table, badge, notConfigured, can, toast, errText, fmtTime } from '../lib.js';

// Meters: per bus and per device the latest values with units and quality, the
// communication counters and last error; read now, bus scan, and a poll tester that
// shows the raw frames both ways in hex. Values update live from "meter.reading".
const cmd = (name, body = {}) => api(`/api/commands/${name}`, { method: 'POST', body }).then((r) => r.result);

// Readings keep the meter's resolution but not float noise (230.86618042 → 230.866).
const num = (v) => (Number.isInteger(v) ? String(v) : String(Math.round(v * 1000) / 1000));

function valuesList(values) {
  return values.map((v) => h('div', { class: v.quality === 'good' ? '' : 'muted' }, `${v.name}: `, h('strong', {}, v.value === null ? '—' : num(v.value)), ` ${v.unit}${v.quality === 'good' ? '' : ` (${v.quality})`}`));
}

function countersText(c) {
  return `${c.responses}/${c.requests} ok · ${c.timeouts} timeout · ${c.crcErrors} CRC · ${c.badReplies} bad · ${Math.round(c.latencyMs.avg)} ms`;
}

export async function render(box) {
  const m = await api('/api/meters');
  if (!m.configured) {
    box.append(notConfigured(m.reason));
    return;
  }
  const cells = new Map();
  const stateCells = new Map();
  const tech = can('technician');
  const out = h('pre', { class: 'result', hidden: true, 'data-testid': 'meter-result' });
  const show = (x) => {
    out.hidden = false;
    out.textContent = typeof x === 'string' ? x : JSON.stringify(x, null, 2);
  };
  const run = (f) => async () => {
    show(t('loading'));
    try {
      show(await f());
    } catch (e) {
      show(errText(e));
    }
  };
  for (const bus of m.buses) {
    const rows = m.devices.filter((d) => d.bus === bus.id).map((d) => {
      const vals = h('td', { 'data-testid': `meter-values-${d.id}` }, valuesList(d.values));
      const st = h('td', {}, badge(d.state === 'online', t('dash.online'), d.state === 'unknown' ? '?' : t('dash.offline')));
      cells.set(d.id, vals);
      stateCells.set(d.id, st);
      return h('tr', {}, h('td', {}, h('strong', {}, d.name || d.id), h('br'), h('small', { class: 'muted' }, `${d.profileName} @ ${d.address}`)), st, vals,
        h('td', {}, h('small', {}, countersText(d.counters)), d.lastError ? h('div', { class: 'error' }, h('small', {}, `${fmtTime(d.lastError.at)} ${d.lastError.kind}: ${d.lastError.message}`)) : null),
        tech ? h('td', {}, h('button', { class: 'link', onclick: run(() => cmd('meter.read', { device: d.id })) }, '⟳')) : null);
    });
    box.append(card(`${bus.id} · ${bus.protocol} · ${bus.line}`,
      h('p', {}, badge(bus.lineUp, t('ok'), bus.lineError || t('fail')), ` ${bus.online}/${bus.devices} ${t('dash.online')} · ${bus.transactions} tx`),
      table([t('meters.device'), t('doors.state'), t('meters.values'), t('meters.counters'), tech ? '' : null].filter((x) => x !== null), rows),
      tech ? h('div', { class: 'row' }, h('button', { onclick: run(() => cmd('bus.scan', { bus: bus.id })) }, 'scan')) : null));
  }
  if (tech) {
    const busSel = h('select', { 'data-testid': 'poll-bus' }, m.buses.map((b) => h('option', { value: b.id }, b.id)));
    const devSel = h('select', { 'data-testid': 'poll-device' }, h('option', { value: '' }, 'hex →'), m.devices.map((d) => h('option', { value: d.id }, d.id)));
    const hex = h('input', { placeholder: '01 03 00 00 00 02 C4 0B', 'data-testid': 'poll-hex', spellcheck: 'false' });
    const frames = h('div', { class: 'frames', 'data-testid': 'frames' });
    const poll = async () => {
      frames.textContent = t('loading');
      try {
        const body = devSel.value ? { bus: busSel.value, device: devSel.value } : { bus: busSel.value, requestHex: hex.value };
        const r = await api('/api/meters/rawpoll', { method: 'POST', body });
        frames.replaceChildren(...r.frames.map((f) => h('div', {}, h('code', {}, `${f.dir === 'tx' ? '→' : '←'} ${f.hex}`))),
          r.values ? h('div', {}, valuesList(r.values)) : null, r.error ? h('div', { class: 'error' }, r.error) : null);
      } catch (e) {
        frames.textContent = errText(e);
      }
    };
    box.append(card('Poll tester', h('div', { class: 'row' }, busSel, devSel, hex, h('button', { onclick: poll }, t('cmd.run'))), frames));
    box.append(out);
  }
  return (kind, ev) => {
    if (kind !== 'bus') return;
    const d = ev.data || {};
    if (ev.type === 'meter.reading' && cells.has(d.device)) cells.get(d.device).replaceChildren(...valuesList(d.values));
    if (ev.type === 'meter.device' && stateCells.has(d.device)) stateCells.get(d.device).replaceChildren(badge(d.online, t('dash.online'), t('dash.offline')));
  };
}
