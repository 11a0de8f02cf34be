// DL/T 645 (2007 + 1997 on one line) and CJ/T 188 through the simulator twins on socat
// pty pairs, read by a real gateway; time sync, scan, unsupported identifiers and a
// checksum error injected by the fault proxy.
import t from 'tap';
import { startGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/subscriber.js';
import { metersModule } from '../../edge/meters/module.js';
import type { MetersApi, MeterPointValue } from '../../edge/meters/api.js';
import { SerialLine } from '../../drivers/serial/line.js';
import { Dlt645Sim } from '../../drivers/dlt645/simulator.js';
import { Cjt188Sim } from '../../drivers/cjt188/simulator.js';
import { ptyPair } from './helpers.js';
import { FaultProxy, dltReplyLength } from './faultproxy.js';

const value = (vs: MeterPointValue[], name: string) => vs.find((v) => v.name === name)?.value;
const serial = { baudRate: 2400, parity: 'even', stopBits: 1 } as const;

t.test('DL/T 645-2007 and -1997 meters on one line, through a fault proxy', async (t) => {
  const gwPair = await ptyPair();
  const meterPair = await ptyPair();
  t.teardown(async () => {
    await gwPair.stop();
    await meterPair.stop();
  });
  const proxy = await FaultProxy.open(gwPair.b, meterPair.a, dltReplyLength);
  t.teardown(() => proxy.close());
  const simLine = new SerialLine(meterPair.b, serial);
  await simLine.open();
  t.teardown(() => simLine.close());
  const sim = new Dlt645Sim(simLine);
  // The published value: 123456.78 kWh, sent in two frames (B1H, then 12H → 92H).
  const m07 = sim
    .addMeter('000000000001', '2007')
    .define('00010000', { bytes: 4, decimals: 2, value: () => 123456.78, frameBytes: 2 })
    .define('00020000', { bytes: 4, decimals: 2, value: () => 12.5 })
    .define('02010100', { bytes: 2, decimals: 1, value: () => 229.8 })
    .define('02020100', { bytes: 3, decimals: 3, signed: true, value: () => -1.234 })
    .define('02030000', { bytes: 3, decimals: 4, signed: true, value: () => -0.2836 })
    .define('02060000', { bytes: 2, decimals: 3, signed: true, value: () => 0.998 });
  // 02800002 (frequency) deliberately missing: the meter answers "no data requested".
  sim
    .addMeter('000000000002', '1997')
    .define('9010', { bytes: 4, decimals: 2, value: () => 2345.67 })
    .define('9020', { bytes: 4, decimals: 2, value: () => 0 })
    .define('B611', { bytes: 2, decimals: 0, value: () => 221 })
    .define('B621', { bytes: 2, decimals: 2, value: () => 3.5 })
    .define('B630', { bytes: 3, decimals: 4, value: () => 0.7735 })
    .define('B650', { bytes: 2, decimals: 3, value: () => 0.95 });

  const g = await startGateway(
    {
      uplink: { enabled: false },
      meters: {
        timeSyncIntervalH: 0,
        buses: [
          {
            id: 'dlt',
            protocol: 'dlt645',
            transport: 'serial',
            port: gwPair.a,
            baudRate: 2400,
            parity: 'even',
            timeoutMs: 500,
            devices: [
              { id: 'flat-1', profile: 'dlt645-2007-single', address: '1', pollIntervalMs: 400 },
              { id: 'flat-2', profile: 'dlt645-1997', address: '000000000002', pollIntervalMs: 400 },
              { id: 'flat-9', profile: 'dlt645-2007-single', address: '9', pollIntervalMs: 400, points: ['import_energy'] },
            ],
          },
        ],
      },
    },
    { modules: [metersModule] },
  );
  t.teardown(() => g.stop());
  const api = g.services.get('meters') as MetersApi;
  const readings: Array<{ device: string; values: MeterPointValue[] }> = [];
  g.bus.on('meter.reading', (e) => readings.push(e));
  await waitFor(() => readings.filter((r) => r.device === 'flat-1').length >= 2 && readings.some((r) => r.device === 'flat-2'), 15_000, 'DL/T 645 readings');

  const r1 = readings.filter((r) => r.device === 'flat-1').at(-1)!.values;
  t.equal(value(r1, 'import_energy'), 123456.78, 'value joined from a follow-up frame');
  t.equal(value(r1, 'voltage'), 229.8);
  t.equal(value(r1, 'current'), -1.234, 'signed BCD (top bit)');
  t.equal(value(r1, 'active_power'), -0.2836);
  t.equal(value(r1, 'power_factor'), 0.998);
  await waitFor(() => api.status('flat-1')!.values.find((v) => v.name === 'frequency')?.quality === 'unsupported', 10_000, 'unknown identifier marked');
  t.pass('identifier the meter does not know is marked unsupported');
  const r2 = readings.find((r) => r.device === 'flat-2')!.values;
  t.equal(value(r2, 'import_energy'), 2345.67);
  t.equal(value(r2, 'voltage'), 221);
  t.equal(value(r2, 'active_power'), 0.7735);
  await waitFor(() => api.status('flat-9')!.state === 'offline', 10_000, 'absent meter offline');

  // A checksum error on one reply is counted and the next poll reads correctly.
  const crcBefore = api.status('flat-1')!.counters.crcErrors + api.status('flat-2')!.counters.crcErrors;
  // Last data byte (before CS and 16H): the frame still parses, its checksum does not.
  proxy.inject({ kind: 'corrupt', at: -3 });
  await waitFor(() => api.status('flat-1')!.counters.crcErrors + api.status('flat-2')!.counters.crcErrors > crcBefore, 10_000, 'checksum error counted');
  const n = readings.length;
  await waitFor(() => readings.slice(n).some((r) => r.device === 'flat-1' && value(r.values, 'import_energy') === 123456.78), 10_000, 'good reading after checksum error');
  t.pass('checksum error counted, bus recovered');

  // meter.timesync broadcasts 08H; the simulated meter takes the time silently.
  const res = await g.commands.execute('meter.timesync', {}, { id: 'ts1', source: 'local', receivedAt: Date.now() });
  t.ok(res.result.ok, 'timesync ok');
  await waitFor(() => m07.lastTimeSync !== undefined, 5000, 'meter received the broadcast');
  const now = new Date();
  const yy = String(now.getFullYear() % 100).padStart(2, '0');
  t.equal(m07.lastTimeSync!.slice(0, 2), yy, 'broadcast carries the year');
  t.match((res.result as any).result.synced[0].frameHex, /^FE FE FE FE 68 99 99 99 99 99 99 68 08 06/);

  // bus.scan: read-address collides with two meters on the line, configured addresses answer.
  const scan = await api.scan('dlt', { timeoutMs: 300 });
  const found = scan.found.map((f) => String(f.address));
  t.ok(found.includes('000000000001') && found.includes('000000000002'), `scan found ${found.join(', ')}`);
  t.notOk(found.includes('000000000009'));
});

t.test('CJ/T 188 water meter on a pty pair', async (t) => {
  const pair = await ptyPair();
  t.teardown(() => pair.stop());
  const simLine = new SerialLine(pair.b, serial);
  await simLine.open();
  t.teardown(() => simLine.close());
  const sim = new Cjt188Sim(simLine);
  let volume = 1000.1;
  const m = sim.addMeter(0x10, '12', () => volume);
  m.settlementM3 = 980.25;
  const g = await startGateway(
    { uplink: { enabled: false }, meters: { buses: [{ id: 'water', protocol: 'cjt188', transport: 'serial', port: pair.a, baudRate: 2400, parity: 'even', timeoutMs: 300, devices: [{ id: 'w1', profile: 'cjt188-water', address: '12', pollIntervalMs: 300, deadband: 0.5 }] }] } },
    { modules: [metersModule] },
  );
  t.teardown(() => g.stop());
  const api = g.services.get('meters') as MetersApi;
  await waitFor(() => (api.status('w1')?.values.length ?? 0) >= 2, 10_000, 'water reading');
  const st = api.status('w1')!;
  t.equal(st.values.find((v) => v.name === 'volume')?.value, 1000.1);
  t.equal(st.values.find((v) => v.name === 'volume')?.unit, 'm3');
  t.equal(st.values.find((v) => v.name === 'settlement_volume')?.value, 980.25);
  volume = 1000.37;
  const read = await api.readNow('w1', 'volume');
  t.same(
    read.map((v) => [v.name, v.value]),
    [['volume', 1000.37]],
    'on-demand read of one point',
  );
  const scan = await api.scan('water', { timeoutMs: 200 });
  t.same(
    scan.found.map((f) => f.address),
    ['00000000000012'],
    'read-address finds the meter',
  );
});
