// Modbus against an independent peer: pymodbus (Debian python3-pymodbus) on one end of a
// socat pty pair (RTU), on a loopback TCP port (Modbus TCP), and behind a socat TCP→pty
// bridge (RTU over TCP, like a transparent RS-485 converter). The gateway is a real
// Gateway (SQLite outbox) running only the meters module.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { startGateway, tempDir } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { waitFor } from '../helpers/subscriber.js';
import { metersModule } from '../../edge/meters/module.js';
import type { MetersApi, MeterPointValue } from '../../edge/meters/api.js';
import type { Gateway } from '../../edge/gateway.js';
import { ptyPair, pymodbus, floatRegs } from './helpers.js';
import { hex, withCrc } from '../../drivers/modbus/codec.js';

// SDM120 map: every register the profile reads except total_energy (0x156), so the
// meter "does not support" that point; the gaps between points are unmapped too, so a
// coalesced block read gets "illegal data address" and must fall back to per-point reads.
const sdm120 = floatRegs({ 0x00: 230.5, 0x06: 5.25, 0x0c: 1210, 0x12: 1220, 0x18: 100, 0x1e: 0.99, 0x46: 50, 0x48: 1234.5, 0x4a: 2.5 });

function collect(g: Gateway) {
  const readings: Array<{ device: string; values: MeterPointValue[]; at: number }> = [];
  const states: Array<{ device: string; online: boolean }> = [];
  g.bus.on('meter.reading', (e) => readings.push({ device: e.device, values: e.values, at: Date.now() }));
  g.bus.on('meter.device', (e) => states.push({ device: e.device, online: e.online }));
  return { readings, states };
}

const value = (vs: MeterPointValue[], name: string) => vs.find((v) => v.name === name)?.value;

t.test('RTU on a pty pair: coalesced reads, fallback on illegal data address, a dead unit beside a live one', async (t) => {
  const pair = await ptyPair();
  t.teardown(() => pair.stop());
  const server = await pymodbus('rtu', pair.b, { units: { '1': { ir: sdm120 } } });
  t.teardown(() => server.stop());
  const g = await startGateway(
    {
      uplink: { enabled: false },
      meters: {
        buses: [
          {
            id: 'rs485-1',
            protocol: 'modbus',
            transport: 'serial',
            port: pair.a,
            baudRate: 9600,
            timeoutMs: 150,
            offlineAfter: 2,
            backoffBaseMs: 2000,
            devices: [
              { id: 'sdm', profile: 'eastron-sdm120', address: 1, pollIntervalMs: 300 },
              { id: 'dead', profile: 'eastron-sdm120', address: 7, pollIntervalMs: 300 },
            ],
          },
        ],
      },
    },
    { modules: [metersModule] },
  );
  t.teardown(() => g.stop());
  const { readings, states } = collect(g);
  const api = g.services.get('meters') as MetersApi;

  await waitFor(() => readings.filter((r) => r.device === 'sdm').length >= 3, 10_000, 'three polls of the live meter');
  const last = readings.filter((r) => r.device === 'sdm').at(-1)!.values;
  t.equal(value(last, 'voltage'), 230.5);
  t.equal(value(last, 'current'), 5.25);
  t.equal(value(last, 'import_energy'), 1234.5);
  t.equal(value(last, 'frequency'), 50);
  t.notOk(
    last.some((v) => v.name === 'total_energy'),
    'unsupported point no longer read',
  );
  const st = api.status('sdm')!;
  t.equal(st.values.find((v) => v.name === 'total_energy')?.quality, 'unsupported', 'unsupported point flagged for the console');
  t.ok((st.counters.exceptions['2'] ?? 0) >= 1, 'illegal data address counted');
  t.equal(st.state, 'online');

  await waitFor(() => states.some((s) => s.device === 'dead' && !s.online), 10_000, 'dead unit offline');
  const dead = api.status('dead')!;
  t.equal(dead.state, 'offline');
  t.ok(dead.counters.timeouts >= 2, 'timeouts counted');
  t.equal(dead.lastError?.kind, 'timeout');
  // With the dead unit backed off, the live one keeps its rate: 10 polls are due in 3 s;
  // at least 6 must happen even on a loaded CI machine (a stalled bus would give ~2).
  const before = readings.filter((r) => r.device === 'sdm').length;
  await new Promise((r) => setTimeout(r, 3000));
  const polls = readings.filter((r) => r.device === 'sdm').length - before;
  t.ok(polls >= 6, `live meter polled ${polls} times in 3 s at a 300 ms interval beside a dead one`);

  // Telemetry lands in the outbox with the response timestamp; device offline is an event.
  const rows = (g.outbox as unknown as { stats(): { streams: Record<string, { count: number }> } }).stats().streams;
  t.ok(rows.telemetry!.count > 0, 'telemetry records stored');
  t.ok(rows.event!.count > 0, 'device events stored');

  // On demand: one point, then the whole device, through the command registry.
  const one = await g.commands.execute('meter.read', { device: 'sdm', point: 'voltage' }, { id: 'c1', source: 'local', receivedAt: Date.now() });
  t.same(
    (one.result as any).result.values.map((v: MeterPointValue) => [v.name, v.value]),
    [['voltage', 230.5]],
  );
  const bad = await g.commands.execute('meter.read', { device: 'dead' }, { id: 'c2', source: 'local', receivedAt: Date.now() });
  t.equal((bad.result as any).error.code, 'meter_timeout');
  const unknown = await g.commands.execute('meter.read', { device: 'nope' }, { id: 'c3', source: 'local', receivedAt: Date.now() });
  t.equal((unknown.result as any).error.code, 'unknown_device');

  // bus.scan over a short range finds unit 1 only.
  const scan = await api.scan('rs485-1', { from: 1, to: 8, timeoutMs: 60 });
  t.same(
    scan.found.map((f) => f.address),
    [1],
  );

  // The raw poll tester shows both frames in hex.
  const raw = await api.rawPoll('rs485-1', { device: 'sdm', point: 'voltage' });
  t.match(raw.frames[0], { dir: 'tx', hex: '01 04 00 00 00 02 71 CB' });
  t.equal(
    raw.frames
      .filter((f) => f.dir === 'rx')
      .map((f) => f.hex)
      .join(' '),
    hex(withCrc(Buffer.from('010404436680 00'.replace(/ /g, ''), 'hex'))),
  );
  t.equal(raw.values?.[0]?.value, 230.5);
  const rawHex = await api.rawPoll('rs485-1', { requestHex: '01 04 00 06 00 02 91 CA', timeoutMs: 150 });
  t.equal(
    rawHex.frames
      .filter((f) => f.dir === 'rx')
      .map((f) => f.hex)
      .join(' '),
    '01 04 04 40 A8 00 00 6F A4',
    'reply to a hand-made request',
  );
});

t.test('Modbus TCP on a loopback port; the converter drops the connection and comes back', async (t) => {
  const port = await freePort();
  let server = await pymodbus('tcp', port, { units: { '1': { ir: sdm120 } } });
  t.teardown(() => server.stop());
  const g = await startGateway(
    { uplink: { enabled: false }, meters: { buses: [{ id: 'tcp-1', protocol: 'modbus', transport: 'tcp', framing: 'tcp', host: '127.0.0.1', tcpPort: port, timeoutMs: 200, devices: [{ id: 'm1', profile: 'eastron-sdm120', address: 1, pollIntervalMs: 200, points: ['voltage', 'current'] }] }] } },
    { modules: [metersModule] },
  );
  t.teardown(() => g.stop());
  const { readings } = collect(g);
  const api = g.services.get('meters') as MetersApi;
  await waitFor(() => readings.length >= 2, 10_000, 'TCP readings');
  t.equal(value(readings.at(-1)!.values, 'voltage'), 230.5);
  t.equal(api.buses()[0]!.lineUp, true);

  await server.stop();
  await waitFor(() => !api.buses()[0]!.lineUp, 10_000, 'line down after the converter went away');
  t.match(g.healthReport().meters!.message!, /line down: tcp-1/);
  server = await pymodbus('tcp', port, { units: { '1': { ir: floatRegs({ 0x00: 231.5, 0x06: 5.25 }) } } });
  await waitFor(() => readings.some((r) => value(r.values, 'voltage') === 231.5), 20_000, 'readings after reconnect');
  t.equal(api.buses()[0]!.lineUp, true, 'line back up');
});

t.test('RTU over TCP (transparent converter = socat TCP listener bridged to a pty with pymodbus)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ee-rtutcp-'));
  const pty = join(dir, 'dev');
  const port = await freePort();
  const socat = spawn('socat', [`tcp-listen:${port},bind=127.0.0.1,reuseaddr,fork`, `pty,raw,echo=0,link=${pty}`], { stdio: 'ignore' });
  t.teardown(() => void socat.kill('SIGKILL'));
  // The pty appears once a client connects; pymodbus must open it after that.
  const g = await startGateway(
    { uplink: { enabled: false }, meters: { buses: [{ id: 'conv', protocol: 'modbus', transport: 'tcp', framing: 'rtu', host: '127.0.0.1', tcpPort: port, timeoutMs: 200, devices: [{ id: 'm', profile: 'eastron-sdm120', address: 1, pollIntervalMs: 200, points: ['voltage'] }] }] } },
    { modules: [metersModule] },
  );
  t.teardown(() => g.stop());
  await waitFor(() => existsSync(pty), 10_000, 'socat pty');
  const server = await pymodbus('rtu', pty, { units: { '1': { ir: sdm120 } } });
  t.teardown(() => server.stop());
  const { readings } = collect(g);
  await waitFor(() => readings.some((r) => value(r.values, 'voltage') === 230.5), 15_000, 'RTU-over-TCP reading');
  t.pass('read through the transparent converter');
});

t.test('USB adapter: missing at start, plugged in, unplugged, plugged back', async (t) => {
  const dir = tempDir('ee-nodev-');
  const dev = join(dir, 'ttyUSB9');
  const g = await startGateway({ uplink: { enabled: false }, meters: { buses: [{ id: 'usb', protocol: 'modbus', transport: 'serial', port: dev, timeoutMs: 150, devices: [{ id: 'm', profile: 'eastron-sdm120', address: 1, pollIntervalMs: 200, points: ['voltage'] }] }] } }, { modules: [metersModule] });
  t.teardown(() => g.stop());
  const { readings } = collect(g);
  await waitFor(() => (g.healthReport().meters?.message ?? '').includes('line down'), 5000, 'health message');
  t.match(g.healthReport().meters!.message!, /usb/);
  t.equal(g.healthReport().meters!.ok, false);

  const plug = async () => {
    const pair = await ptyPair({ a: dev });
    const server = await pymodbus('rtu', pair.b, { units: { '1': { ir: sdm120 } } });
    return async () => {
      await server.stop();
      await pair.stop();
    };
  };
  let unplug = await plug();
  await waitFor(() => readings.length > 0, 15_000, 'readings once the adapter appears');
  t.equal(value(readings.at(-1)!.values, 'voltage'), 230.5);
  await unplug();
  const api = g.services.get('meters') as MetersApi;
  await waitFor(() => !api.buses()[0]!.lineUp, 5000, 'line lost on unplug');
  const n = readings.length;
  unplug = await plug();
  t.teardown(unplug);
  await waitFor(() => readings.length > n, 15_000, 'readings after plugging back');
  t.ok(api.buses()[0]!.lineUp, 'line back');
});
