// Honest command results and line-loss accounting: meter.read during a bus.scan is
// refused at once (bus_busy) instead of timing out and running later; an unknown point,
// an unknown bus and time sync on a Modbus bus get their documented codes; a lost USB
// adapter takes the meters offline after max(5 s, timeout × offlineAfter), counts every
// poll it costs as skipped and as a port error, shows in /metrics; a line the gateway
// closes itself is not reported as lost.
import t from 'tap';
import { join } from 'node:path';
import { startGateway, tempDir } from '../helpers/gateway.js';
import { waitFor } from '../helpers/subscriber.js';
import { metersModule } from '../../edge/meters/module.js';
import type { MetersApi } from '../../edge/meters/api.js';
import type { Gateway } from '../../edge/gateway.js';
import { SerialLine } from '../../drivers/serial/line.js';
import { ptyPair, pymodbus, floatRegs } from './helpers.js';

let seq = 0;
const run = (g: Gateway, name: string, args: Record<string, unknown>) => g.commands.execute(name, args, { id: `c-${++seq}-${Date.now()}`, source: 'console', receivedAt: Date.now() });

t.test('command results: bus_busy during a scan, unknown point, unknown bus, time sync on Modbus', async (t) => {
  const g = await startGateway(
    {
      uplink: { enabled: false },
      meters: {
        timeSyncIntervalH: 0,
        buses: [
          {
            id: 'sim-a',
            protocol: 'modbus',
            transport: 'simulated',
            baudRate: 19200,
            timeoutMs: 200,
            devices: [{ id: 'ddsu', profile: 'chint-ddsu666', address: 1, pollIntervalMs: 300, points: ['import_energy', 'active_power'] }],
          },
          { id: 'sim-d', protocol: 'dlt645', transport: 'simulated', baudRate: 9600, parity: 'even', timeoutMs: 200, devices: [{ id: 'flat', profile: 'dlt645-2007-single', address: '101', pollIntervalMs: 500, points: ['import_energy'] }] },
        ],
      },
    },
    { modules: [metersModule] },
  );
  t.teardown(() => g.stop());
  const api = g.services.get('meters') as MetersApi;
  await waitFor(() => api.status('ddsu')!.state === 'online', 10_000, 'meter online');

  const ok = await run(g, 'meter.read', { device: 'ddsu', point: 'active_power' });
  t.equal(ok.result.ok, true, 'a read of a polled point works');

  const nope = await run(g, 'meter.read', { device: 'ddsu', point: 'nope' });
  t.match(nope.result, { ok: false, error: { code: 'unknown_point', message: /profile chint-ddsu666 has no point "nope"/ } });
  const notPolled = await run(g, 'meter.read', { device: 'ddsu', point: 'voltage' });
  t.match(notPolled.result, { ok: false, error: { code: 'unknown_point', message: /not among the device's configured points/ } });

  const modbusSync = await run(g, 'meter.timesync', { bus: 'sim-a' });
  t.match(modbusSync.result, { ok: false, error: { code: 'not_supported', message: /speaks modbus/ } });
  const noBus = await run(g, 'meter.timesync', { bus: 'nope' });
  t.match(noBus.result, { ok: false, error: { code: 'unknown_bus' } });
  const dltSync = await run(g, 'meter.timesync', { bus: 'sim-d' });
  t.equal(dltSync.result.ok, true, 'time sync on the DL/T 645 bus');
  const noScanBus = await run(g, 'bus.scan', { bus: 'nope' });
  t.match(noScanBus.result, { ok: false, error: { code: 'unknown_bus' } });

  // A scan of 80 unit ids at 50 ms each holds the line for seconds.
  const scanning = run(g, 'bus.scan', { bus: 'sim-a', from: 1, to: 80, timeoutMs: 50 });
  await new Promise((r) => setTimeout(r, 500));
  const before = api.status('ddsu')!.counters;
  const t0 = Date.now();
  const busy = await run(g, 'meter.read', { device: 'ddsu' });
  const answeredIn = Date.now() - t0;
  t.match(busy.result, { ok: false, error: { code: 'bus_busy', message: /busy with bus.scan/ } }, 'meter.read during the scan: bus_busy');
  t.ok(answeredIn < 1000, `answered at once (${answeredIn} ms)`);
  const scan = await scanning;
  t.equal(scan.result.ok, true);
  t.same(
    (scan.result as unknown as { result: { found: Array<{ address: number }> } }).result.found.map((f) => f.address),
    [1],
    'the scan found the meter',
  );
  // The refused read never runs afterwards: every request since is a scheduled poll's
  // (2 blocks per poll, 1 when the first times out), none is an on-demand read's (it
  // would add 2 without a poll). A poll in progress at either snapshot shifts it by 1.
  await new Promise((r) => setTimeout(r, 700));
  const after = api.status('ddsu')!.counters;
  const extra = after.requests - before.requests - 2 * (after.polls - before.polls) + (after.timeouts - before.timeouts);
  t.ok(extra <= 1, `no request for the meter but its polls (${after.requests - before.requests} requests, ${after.polls - before.polls} polls, ${after.timeouts - before.timeouts} timeouts)`);
  const read = await run(g, 'meter.read', { device: 'ddsu' });
  t.equal(read.result.ok, true, 'after the scan meter.read works again');
});

t.test('USB adapter lost: offline after max(5 s, timeout × offlineAfter), skipped polls and port errors counted, error series in /metrics', async (t) => {
  const dir = tempDir('ee-lost-');
  const dev = join(dir, 'ttyUSB7');
  const pair = await ptyPair({ a: dev });
  const server = await pymodbus('rtu', pair.b, { units: { '1': { ir: floatRegs({ 0x00: 230.5 }) } } });
  let stopped = false;
  const unplug = async () => {
    if (stopped) return;
    stopped = true;
    await server.stop();
    await pair.stop();
  };
  t.teardown(unplug);
  const g = await startGateway({ uplink: { enabled: false }, meters: { buses: [{ id: 'usb', protocol: 'modbus', transport: 'serial', port: dev, timeoutMs: 150, offlineAfter: 2, devices: [{ id: 'm', profile: 'eastron-sdm120', address: 1, pollIntervalMs: 200, points: ['voltage'] }] }] } }, { modules: [metersModule] });
  t.teardown(() => g.stop());
  const api = g.services.get('meters') as MetersApi;
  const offlineAt: number[] = [];
  g.bus.on('meter.device', (e) => {
    if (!e.online) offlineAt.push(Date.now());
  });
  await waitFor(() => api.status('m')!.state === 'online', 15_000, 'meter online');
  await unplug();
  await waitFor(() => !api.buses()[0]!.lineUp, 5000, 'line loss noticed');
  const lostAt = Date.now();
  // On a miss, say what the scheduler saw (seen once in CI, not reproduced: 12 runs alone and under load).
  await waitFor(() => offlineAt.length > 0, 10_000, 'offline event').catch((e: Error) => {
    throw new Error(`${e.message}; bus ${JSON.stringify(api.buses()[0])}; meter ${JSON.stringify(api.status('m'))}`);
  });
  const after = offlineAt[0]! - lostAt;
  // Documented: max(5 s, 150 ms × 2) = 5 s from the loss (before: 7.5 s, the back-off steps).
  t.ok(after >= 4500 && after < 6500, `offline ${after} ms after the line was lost (expected ~5000)`);
  const c = api.status('m')!.counters;
  t.ok(c.skippedPolls >= 15, `polls skipped while the port is missing: ${c.skippedPolls}`);
  t.ok(c.portErrors >= 15, `port errors: ${c.portErrors}`);
  t.equal(api.status('m')!.lastError?.kind, 'port');
  t.ok(api.buses()[0]!.lineFailures > 0, 'failed opens counted');
  const metrics = await g.metrics.registry.metrics();
  const series = metrics.split('\n').find((l) => l.startsWith('estate_meter_errors_total{') && l.includes('kind="port"') && l.includes('device="m"'));
  t.ok(series && Number(series.split(' ').at(-1)) >= 15, `error series: ${series}`);
  t.match(metrics, /estate_meter_line_up\{bus="usb"\} 0/, 'line_up gauge 0');
  t.match(metrics, /estate_meter_skipped_polls_total\{bus="usb",device="m"\} \d+/);
});

t.test('a line the gateway closes itself is not reported as lost', async (t) => {
  const own = await ptyPair();
  t.teardown(() => own.stop());
  const line = new SerialLine(own.a, { baudRate: 9600, parity: 'none', stopBits: 1 });
  await line.open();
  t.equal(line.paced, false, 'a pty is not a paced line');
  const closes: unknown[] = [];
  line.on('close', (e) => closes.push(e));
  // The serial port under the line: its own 'close' event is what SerialLine turns into a
  // lost-line report. Our listener, added after the line's, runs after it: once it has
  // run, the line has decided whether to report, so waiting for it replaces a fixed sleep.
  const port = (line as unknown as { port?: NodeJS.EventEmitter }).port;
  t.ok(port, 'the open line holds its port');
  let portClosed = false;
  port!.once('close', () => (portClosed = true));
  await line.close();
  await waitFor(() => portClosed && !line.isOpen, 5000, 'the serial port to report its close');
  t.equal(closes.length, 0, 'no close event for our own close');

  // A vanished line is reported: see the USB test above (line loss noticed, meters offline).
});
