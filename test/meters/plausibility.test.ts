// Plausibility, the second line of defence: implausible values are published with
// quality `suspect` and counted, never as `good`. The rules on their own, then through
// a real gateway reading a DL/T 645 simulator twin on a pty pair whose energy register
// goes down once and whose voltage jumps out of range.
import t from 'tap';
import { Plausibility, kindBounds, rolloverOf, RESET_AFTER } from '../../edge/meters/plausibility.js';
import type { PointSpec } from '../../edge/meters/plan.js';
import { startGateway } from '../helpers/gateway.js';
import { waitFor } from '../helpers/subscriber.js';
import { metersModule } from '../../edge/meters/module.js';
import type { MetersApi, MeterPointValue } from '../../edge/meters/api.js';
import { SerialLine } from '../../drivers/serial/line.js';
import { Dlt645Sim } from '../../drivers/dlt645/simulator.js';
import { ptyPair } from './helpers.js';

const energy: PointSpec = { name: 'import_energy', kind: 'energy', unit: 'kWh', identifier: '00010000', bytes: 4, decimals: 2 };
const volts: PointSpec = { name: 'voltage', kind: 'voltage', unit: 'V' };

t.test('rules', async (t) => {
  const p = new Plausibility();
  t.equal(p.check(energy, 4321.09), undefined, 'first counter reading is the reference');
  t.equal(p.check(energy, 4321.5), undefined, 'counter going up');
  t.match(p.check(energy, 0.7012), /went down from 4321.5 to 0.7012/, 'counter going down is suspect');
  t.equal(p.check(energy, 4321.6), undefined, 'back above the reference: good');
  t.equal(rolloverOf(energy), 1_000_000, 'DL/T 645 XXXXXX.XX rolls over at 10^6');
  t.equal(p.check(energy, 999_990), undefined);
  t.equal(p.check(energy, 3.5), undefined, 'rollover from the top to the bottom 10 % is good');
  t.match(p.check(energy, -1), /outside 0/, 'negative counter');
  // A reset: RESET_AFTER consistent lower readings re-base the counter.
  const q = new Plausibility();
  const resets: number[] = [];
  q.onReset = (_p, _from, to) => resets.push(to);
  q.check(energy, 500);
  for (let i = 1; i < RESET_AFTER; i++) t.ok(q.check(energy, 10 + i), `reset reading ${i} still suspect`);
  t.equal(q.check(energy, 10 + RESET_AFTER), undefined, 'persistent lower level taken as a reset');
  t.same(resets, [10 + RESET_AFTER]);
  t.equal(q.check(energy, 20), undefined, 'and counts on from there');

  t.equal(p.check(volts, 229.8), undefined);
  t.match(p.check(volts, 4321.09), /outside 0…600/, 'voltage out of range');
  t.same(kindBounds('frequency', 'Hz'), { min: 40, max: 70, also: 0 });
  const hz: PointSpec = { name: 'frequency', kind: 'frequency', unit: 'Hz' };
  t.equal(p.check(hz, 0), undefined, '0 Hz (no voltage) is plausible');
  t.ok(p.check(hz, 0.7), 'but 0.7 Hz is not');
  const pf: PointSpec = { name: 'pf', kind: 'power_factor', unit: '' };
  t.equal(p.check(pf, -0.98), undefined);
  t.ok(p.check(pf, 1.2), 'power factor above 1');
  t.ok(p.check({ ...pf, unit: '%' }, 101), 'power factor above 100 %');
  const custom: PointSpec = { name: 'active_power', kind: 'power', unit: 'kW', plausible: { max: 100 } };
  t.equal(p.check(custom, 4321.09) !== undefined, true, 'profile bound on power');
  t.equal(p.check({ ...custom, plausible: undefined }, 4321.09), undefined, 'no default bound on power');
  t.ok(p.check(volts, NaN), 'NaN');
});

t.test('published as suspect and counted, through a gateway', async (t) => {
  const pair = await ptyPair();
  t.teardown(() => pair.stop());
  const simLine = new SerialLine(pair.b, { baudRate: 2400, parity: 'even', stopBits: 1 });
  await simLine.open();
  t.teardown(() => simLine.close());
  const sim = new Dlt645Sim(simLine);
  let reads = 0;
  // Energy: 4321.09, then once 0.70 (as if another register's value), then 4321.10.
  const kwh = () => (++reads === 3 ? 0.7 : reads < 3 ? 4321.09 : 4321.1);
  let voltage = 229.8;
  sim
    .addMeter('000000000001', '2007')
    .define('00010000', { bytes: 4, decimals: 2, value: kwh })
    .define('02010100', { bytes: 2, decimals: 1, value: () => voltage });
  const g = await startGateway(
    {
      uplink: { enabled: false },
      meters: {
        timeSyncIntervalH: 0,
        buses: [{ id: 'dlt', protocol: 'dlt645', transport: 'serial', port: pair.a, baudRate: 2400, parity: 'even', timeoutMs: 300, devices: [{ id: 'flat', profile: 'dlt645-2007-single', address: '1', pollIntervalMs: 150, points: ['import_energy', 'voltage'] }] }],
      },
    },
    { modules: [metersModule] },
  );
  t.teardown(() => g.stop());
  const api = g.services.get('meters') as MetersApi;
  const seen: MeterPointValue[] = [];
  g.bus.on('meter.reading', (e) => seen.push(...e.values));
  await waitFor(() => reads >= 5, 10_000, 'five energy reads');
  voltage = 999.9;
  await waitFor(() => seen.some((v) => v.name === 'voltage' && v.value === 999.9), 10_000, 'out-of-range voltage published');
  const low = seen.filter((v) => v.name === 'import_energy' && v.value === 0.7);
  t.equal(low.length, 1, 'the drop was published once');
  t.equal(low[0]!.quality, 'suspect', 'as suspect');
  t.ok(
    seen.filter((v) => v.name === 'import_energy' && v.value !== 0.7).every((v) => v.quality === 'good'),
    'other energy readings good',
  );
  t.ok(
    seen.filter((v) => v.value === 999.9).every((v) => v.quality === 'suspect'),
    '999.9 V suspect',
  );
  const st = api.status('flat')!;
  t.ok(st.counters.suspectValues >= 2, `counted (${st.counters.suspectValues})`);
  t.equal(st.values.find((v) => v.name === 'voltage')!.quality, 'suspect', 'latest value carries the quality');
});
