import { t, pointName, getLang } from '../i18n.js';
import { h, api, command, card, table, badge, notConfigured, can, errText, fmtTime, fmtClock } from '../lib.js';
import type { BusScanResult, MeterBusRow, MeterRow, MetersView, PointValueRow, RawPollAnswer } from '../../api-types.js';
import type { LiveHandler } from '../lib.js';

// Meters, laid out for a phone: per bus and per meter the latest values as a table
// (point with its Chinese name, value, unit, time, quality), updated live from
// "meter.reading"; "read now" puts its result right under its button; a bus scan over an
// address range with progress and cancel; and a poll tester that shows the frames of one
// request both ways as hex and nothing else.
const cmd = command;

// Readings keep the meter's resolution but not float noise (230.86618042 → 230.866).
const num = (v: number) => (Number.isInteger(v) ? String(v) : String(Math.round(v * 1000) / 1000));

// Modbus unit ids are probed this many at a time: progress is shown and cancel takes
// effect between chunks (a chunk of 8 with the scan's 100 ms timeout is under a second).
const SCAN_CHUNK = 8;

export function valuesTable(values: readonly PointValueRow[], testid?: string) {
  const rows = values.map((v) =>
    h(
      'tr',
      { class: v.quality === 'good' ? '' : 'muted', 'data-point': v.name },
      h('td', {}, getLang() === 'zh' ? [h('span', { class: 'pname' }, pointName(v.name, v.kind)), h('br'), h('code', { class: 'pkey' }, v.name)] : h('span', { class: 'pname' }, v.name)),
      h('td', { class: 'num' }, h('strong', {}, v.value === null || v.value === undefined ? '—' : num(v.value))),
      h('td', {}, v.unit || ''),
      h('td', {}, v.ts ? fmtClock(v.ts) : '—'),
      h('td', {}, v.quality === 'good' ? badge(true, t('q.good')) : badge(false, '', t(`q.${v.quality}`))),
    ),
  );
  const el = table([t('meters.point'), t('meters.value'), t('meters.unit'), t('meters.time'), t('meters.quality')], rows);
  el.classList.add('values');
  if (testid) el.dataset.testid = testid;
  return el;
}

function countersText(c: MeterRow['counters']) {
  return t('meters.countersLine', { ok: c.responses, req: c.requests, timeout: c.timeouts, crc: c.crcErrors, bad: c.badReplies, ms: Math.round(c.latencyMs.avg) });
}

function scanner(bus: MeterBusRow) {
  const modbus = bus.protocol === 'modbus';
  const from = h('input', { type: 'number', min: 1, max: 247, value: 1, inputmode: 'numeric', 'data-testid': `scan-from-${bus.id}`, class: 'addr' });
  const to = h('input', { type: 'number', min: 1, max: 247, value: 247, inputmode: 'numeric', 'data-testid': `scan-to-${bus.id}`, class: 'addr' });
  const bar = h('progress', { max: 1, value: 0, hidden: true, 'data-testid': `scan-progress-${bus.id}` });
  const line = h('p', { class: 'muted', 'data-testid': `scan-status-${bus.id}` });
  const found = h('tbody');
  const results = table([t('meters.address'), t('meters.detail')], found);
  results.hidden = true;
  let cancelled = false;
  const start = h('button', { 'data-testid': `scan-${bus.id}` }, t('meters.scan'));
  const stop = h('button', { class: 'danger', hidden: true, 'data-testid': `scan-cancel-${bus.id}`, onclick: () => (cancelled = true) }, t('cancel'));
  const addFound = (list: BusScanResult['found']) => {
    for (const f of list) found.append(h('tr', {}, h('td', {}, h('code', {}, String(f.address))), h('td', {}, f.detail)));
    results.hidden = found.children.length === 0;
  };
  start.onclick = async () => {
    const a = Math.max(1, Math.min(247, Number(from.value) || 1));
    const b = Math.max(1, Math.min(247, Number(to.value) || 247));
    if (modbus && b < a) {
      line.textContent = t('meters.badRange');
      line.className = 'error';
      return;
    }
    cancelled = false;
    found.replaceChildren();
    results.hidden = true;
    start.disabled = true;
    stop.hidden = false;
    bar.hidden = false;
    line.className = 'muted';
    const total = modbus ? b - a + 1 : 1;
    let probed = 0;
    const began = Date.now();
    try {
      if (!modbus) {
        bar.removeAttribute('value');
        line.textContent = t('meters.scanning');
        const r = await cmd('bus.scan', { bus: bus.id });
        addFound(r.found);
        probed = r.probed;
      } else {
        bar.max = total;
        for (let lo = a; lo <= b && !cancelled; lo += SCAN_CHUNK) {
          const hi = Math.min(b, lo + SCAN_CHUNK - 1);
          line.textContent = t('meters.scanProgress', { done: probed, total, from: lo, to: hi, found: found.children.length });
          const r = await cmd('bus.scan', { bus: bus.id, from: lo, to: hi });
          addFound(r.found);
          probed += r.probed;
          bar.value = probed;
        }
      }
      const secs = ((Date.now() - began) / 1000).toFixed(1);
      line.textContent = t(cancelled ? 'meters.scanCancelled' : 'meters.scanDone', { done: probed, total: modbus ? total : probed, found: found.children.length, s: secs });
    } catch (e) {
      line.textContent = errText(e);
      line.className = 'error';
    } finally {
      start.disabled = false;
      stop.hidden = true;
      if (modbus) bar.value = probed;
      else bar.hidden = true;
    }
  };
  return h(
    'div',
    { class: 'scan', 'data-testid': `scanner-${bus.id}` },
    h('h4', {}, t('meters.scanTitle')),
    modbus ? h('div', { class: 'row' }, h('label', {}, t('meters.from'), from), h('label', {}, t('meters.to'), to)) : h('p', { class: 'muted' }, t('meters.scanReadAddress')),
    h('div', { class: 'row' }, start, stop, bar),
    line,
    results,
  );
}

function pollTester(m: MetersView) {
  const busSel = h(
    'select',
    { 'data-testid': 'poll-bus' },
    m.buses.map((b) => h('option', { value: b.id }, b.id)),
  );
  const devSel = h(
    'select',
    { 'data-testid': 'poll-device' },
    h('option', { value: '' }, t('meters.rawHex')),
    m.devices.map((d) => h('option', { value: d.id }, d.name ? `${d.name} (${d.id})` : d.id)),
  );
  const hex = h('input', { placeholder: '01 03 00 00 00 02 C4 0B', 'data-testid': 'poll-hex', spellcheck: 'false', autocapitalize: 'off', class: 'mono' });
  const syncBus = () => {
    const d = m.devices.find((x) => x.id === devSel.value);
    if (d) busSel.value = d.bus;
    hex.hidden = devSel.value !== '';
  };
  devSel.onchange = syncBus;
  const frames = h('tbody', { 'data-testid': 'frames' });
  const extra = h('div', { 'data-testid': 'poll-values' });
  const status = h('p', { class: 'muted' });
  const run = h('button', { 'data-testid': 'poll-run' }, t('meters.send'));
  run.onclick = async () => {
    status.textContent = t('loading');
    status.className = 'muted';
    frames.replaceChildren();
    extra.replaceChildren();
    run.disabled = true;
    try {
      const body = devSel.value ? { bus: busSel.value, device: devSel.value } : { bus: busSel.value, requestHex: hex.value };
      const r = await api<RawPollAnswer>('/api/meters/rawpoll', { method: 'POST', body });
      // One frame per row: direction, time, and the bytes as hex — the hex cell holds
      // nothing but the frame, so it can be copied as is.
      frames.replaceChildren(...r.frames.map((f) => h('tr', { 'data-dir': f.dir }, h('td', {}, f.dir === 'tx' ? t('meters.tx') : t('meters.rx')), h('td', {}, fmtClock(f.at)), h('td', {}, h('code', { class: 'frame' }, f.hex)))));
      if (r.values) extra.append(valuesTable(r.values, 'poll-values-table'));
      status.textContent = r.error ? `${t('meters.pollError')}: ${r.error}` : r.frames.length ? '' : t('meters.noFrames');
      status.className = r.error ? 'error' : 'muted';
    } catch (e) {
      status.textContent = errText(e);
      status.className = 'error';
    } finally {
      run.disabled = false;
    }
  };
  const c = card(t('meters.pollTester'), h('div', { class: 'row' }, h('label', {}, t('meters.bus'), busSel), h('label', {}, t('meters.device'), devSel)), h('div', { class: 'row' }, hex, run), status, table([t('meters.dir'), t('meters.time'), t('meters.frame')], frames), extra);
  c.classList.add('poll');
  c.dataset.testid = 'poll-tester';
  return c;
}

export async function render(box: HTMLElement): Promise<LiveHandler | undefined> {
  const m = await api<MetersView>('/api/meters');
  if (!m.configured) {
    box.append(notConfigured(m.reason));
    return;
  }
  const cells = new Map<string, HTMLElement>();
  const stateCells = new Map<string, HTMLElement>();
  const tech = can('technician');
  for (const bus of m.buses) {
    const meters = m.devices
      .filter((d) => d.bus === bus.id)
      .map((d) => {
        const vals = h('div', { 'data-testid': `meter-values-${d.id}` }, valuesTable(d.values));
        const st = h('span', {}, badge(d.state === 'online', t('dash.online'), d.state === 'unknown' ? t('meters.unknown') : t('dash.offline')));
        cells.set(d.id, vals);
        stateCells.set(d.id, st);
        const result = h('div', { class: 'read-result', 'data-testid': `read-result-${d.id}` });
        const read = h('button', { 'data-testid': `read-${d.id}` }, t('meters.readNow'));
        read.onclick = async () => {
          read.disabled = true;
          result.replaceChildren(h('p', { class: 'muted' }, t('loading')));
          const began = Date.now();
          try {
            const r = await cmd('meter.read', { device: d.id });
            result.replaceChildren(h('p', { class: 'ok' }, t('meters.readDone', { ms: Date.now() - began, at: fmtClock(Date.now()) })), valuesTable(r.values, `read-table-${d.id}`));
          } catch (e) {
            result.replaceChildren(h('p', { class: 'error' }, errText(e)));
          } finally {
            read.disabled = false;
          }
        };
        return h(
          'section',
          { class: 'meter', 'data-meter': d.id },
          h('div', { class: 'row' }, h('strong', { translate: 'no' }, d.name || d.id), st, h('span', { class: 'grow' }), tech ? read : null),
          h('p', { class: 'muted small' }, `${d.id} · ${d.profileName} · ${t('meters.address')} ${d.address}`),
          result,
          vals,
          h('p', { class: 'muted small' }, countersText(d.counters)),
          d.lastError ? h('p', { class: 'error small' }, `${fmtTime(d.lastError.at)} ${t(`meters.err.${d.lastError.kind}`)}: ${d.lastError.message}`) : null,
        );
      });
    box.append(card(h('span', { translate: 'no' }, `${bus.id} · ${bus.protocol} · ${bus.line}`), h('p', {}, badge(bus.lineUp, t('ok'), bus.lineError || t('fail')), ` ${t('meters.busLine', { online: bus.online, devices: bus.devices, tx: bus.transactions })}`), ...meters, tech ? scanner(bus) : null));
  }
  if (tech) box.append(pollTester(m));
  const live: LiveHandler = (kind, ev) => {
    if (kind !== 'bus') return;
    // The meters module's events (meters/api.ts BusEvents): a reading carries the device's values.
    const d = (ev.data || {}) as { device?: string; values?: PointValueRow[]; online?: boolean };
    const cell = d.device === undefined ? undefined : cells.get(d.device);
    const state = d.device === undefined ? undefined : stateCells.get(d.device);
    if (ev.type === 'meter.reading' && cell) cell.replaceChildren(valuesTable(d.values ?? []));
    if (ev.type === 'meter.device' && state) state.replaceChildren(badge(d.online, t('dash.online'), t('dash.offline')));
  };
  return live;
}
