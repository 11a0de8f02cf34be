// End to end through a real broker: the gateway reads simulated meters (in-process
// wires with wire time) and the platform receives meter.reading telemetry and
// meter.device events upstream, and runs meter.read / meter.status / bus.scan /
// meter.timesync over MQTT.
import t from 'tap';
import { Broker } from '../helpers/broker.js';
import { Platform } from '../helpers/subscriber.js';
import { startGateway } from '../helpers/gateway.js';
import { metersModule } from '../../edge/meters/module.js';

t.test('readings arrive upstream and meter commands work over MQTT', async (t) => {
  const broker = await Broker.start();
  t.teardown(() => broker.stop());
  const platform = await Platform.connect(broker.url);
  t.teardown(() => platform.close());
  const g = await startGateway(
    {
      uplink: { url: broker.url },
      meters: {
        timeSyncIntervalH: 0,
        buses: [
          {
            id: 'sim-a',
            protocol: 'modbus',
            transport: 'simulated',
            baudRate: 19200,
            timeoutMs: 200,
            devices: [
              { id: 'riser', profile: 'eastron-sdm630', address: 1, pollIntervalMs: 300, deadband: { voltage_l1: 50 } },
              { id: 'gone', profile: 'eastron-sdm120', address: 2, pollIntervalMs: 300, points: ['voltage'] },
            ],
          },
          { id: 'sim-d', protocol: 'dlt645', transport: 'simulated', baudRate: 9600, parity: 'even', timeoutMs: 200, devices: [{ id: 'flat', profile: 'dlt645-2007-single', address: '101', pollIntervalMs: 500, points: ['import_energy', 'voltage'] }] },
        ],
      },
    },
    { modules: [metersModule] },
  );
  t.teardown(() => g.stop());
  // Unplug the second simulated meter: it must be reported offline upstream.
  (g.services.get('meters') as unknown as { simulated: Map<string, { setOnline(id: string, on: boolean): void }> }).simulated.get('sim-a')!.setOnline('gone', false);

  await platform.waitFor(() => platform.records('telemetry').filter((r) => r.type === 'meter.reading' && r.data.device === 'riser').length >= 3, 15_000, 'riser telemetry');
  const recs = platform.records('telemetry').filter((r) => r.type === 'meter.reading' && r.data.device === 'riser');
  const first = recs[0]!;
  t.equal(first.data.bus, 'sim-a');
  t.equal(first.data.profile, 'eastron-sdm630');
  t.equal(first.data.full, true, 'first report is a full one');
  const v1 = first.data.points.find((p: any) => p.name === 'voltage_l1');
  t.match(v1, { unit: 'V', kind: 'voltage', quality: 'good' });
  t.ok(v1.value > 220 && v1.value < 240, `plausible voltage ${v1.value}`);
  t.ok(Math.abs(first.ts - v1.ts) < 1000 && first.ts <= Date.now(), 'record carries the response timestamp');
  // Deadband of 50 V on voltage_l1: later (non-full) reports leave it out while other points change.
  const later = recs.slice(1).filter((r) => !r.data.full);
  t.ok(later.length > 0 && later.every((r) => !r.data.points.some((p: any) => p.name === 'voltage_l1')), 'deadbanded point not repeated');
  t.ok(
    later.every((r) => r.data.points.some((p: any) => p.name === 'current_l1')),
    'points without deadband reported every poll',
  );

  await platform.waitFor(() => platform.records('telemetry').some((r) => r.type === 'meter.reading' && r.data.device === 'flat'), 15_000, 'DL/T 645 telemetry');
  await platform.waitFor(() => platform.records('event').some((r) => r.type === 'meter.device' && r.data.device === 'gone' && r.data.online === false), 15_000, 'offline event');

  const base = `estate/t-site/t-gw`;
  const read = await platform.command(base, 'meter.read', { device: 'flat', point: 'import_energy' });
  t.equal(read.ok, true, JSON.stringify(read));
  t.match(read.result.values[0], { name: 'import_energy', unit: 'kWh', quality: 'good' });
  const status = await platform.command(base, 'meter.status', { device: 'riser' });
  t.equal(status.result.state, 'online');
  t.ok(status.result.counters.responses > 0);
  const all = await platform.command(base, 'meter.status', {});
  t.same(
    all.result.buses.map((b: any) => b.id),
    ['sim-a', 'sim-d'],
  );
  const scan = await platform.command(base, 'bus.scan', { bus: 'sim-a', from: 1, to: 4, timeoutMs: 50 });
  t.same(
    scan.result.found.map((f: any) => f.address),
    [1],
    'scan finds the live unit only',
  );
  const sync = await platform.command(base, 'meter.timesync', {});
  t.equal(sync.result.synced[0].bus, 'sim-d');
  const bad = await platform.command(base, 'meter.read', { device: 'nope' });
  t.match(bad, { ok: false, error: { code: 'unknown_device' } });
  const badArgs = await platform.command(base, 'bus.scan', { bus: 'sim-a', from: 0 });
  t.equal(badArgs.ok, false, 'argument schema enforced');
});
