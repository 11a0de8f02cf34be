// The simulated wire is the bench's clock: it must never carry bytes faster than the
// line could. Every delivery comes no earlier than the last bit of its write, and a
// scheduler cycle on the wire never beats the wire-time bound the bench divides by
// (bytes × bits per character / baud + two inter-frame silences per transaction).
import t from 'tap';
import { pino } from 'pino';
import { SimulatedWire, wireBoundMs } from '../../drivers/serial/simwire.js';
import { bitsPerChar, interFrameSilenceMs } from '../../drivers/serial/line.js';
import { SystemClock } from '../../edge/clock.js';
import { EventBus } from '../../edge/bus.js';
import { finish } from '../../edge/config/load.js';
import { builtinProfilesDir, loadProfiles } from '../../edge/meters/profiles.js';
import { MetersService } from '../../edge/meters/service.js';
import type { Outbox } from '../../edge/outbox/outbox.js';

const serial = { baudRate: 19200, parity: 'none', stopBits: 1 } as const;

t.test('no delivery before the last bit', async (t) => {
  const wire = new SimulatedWire(serial);
  const a = wire.attach('a');
  const b = wire.attach('b');
  await a.open();
  await b.open();
  const msPerByte = (bitsPerChar(serial) * 1000) / serial.baudRate;
  let early = 0;
  let worst = Infinity;
  for (let i = 0; i < 60; i++) {
    const n = 1 + (i % 17);
    const start = performance.now();
    const got = new Promise<number>((r) => b.once('data', () => r(performance.now())));
    void a.write(Buffer.alloc(n));
    const at = await got;
    const slack = at - start - n * msPerByte;
    worst = Math.min(worst, slack);
    if (slack < 0) early++;
  }
  t.equal(early, 0, `every delivery after its wire time (least slack ${worst.toFixed(3)} ms)`);
});

t.test('a scheduler cycle on the wire never beats the bench bound', async (t) => {
  const devices = [...[1, 2, 3].map((i) => ({ id: `sdm-${i}`, profile: 'eastron-sdm630', address: i, pollIntervalMs: 100 })), ...[1, 2, 3].map((i) => ({ id: `dlt-${i}`, profile: 'dlt645-2007-single', address: String(100 + i), pollIntervalMs: 100, points: ['import_energy', 'voltage'] }))];
  const config = finish({ site: { id: 's' }, gateway: { id: 'g' }, meters: { timeSyncIntervalH: 0, buses: [{ id: 'line', protocol: 'mixed', transport: 'simulated', ...serial, timeoutMs: 200, devices }] } }, 't').config.meters;
  const log = pino({ level: 'silent' });
  const outbox = { append: async () => {} } as unknown as Outbox; // records are not what is measured here
  const svc = new MetersService({ config, profiles: loadProfiles([builtinProfilesDir()]), clock: new SystemClock(), log, bus: new EventBus(), outbox });
  const runner = svc.runners.get('line')!;
  const sim = svc.simulated.get('line')!;
  // A passive station on the wire sees every frame when its last bit arrives. Each frame
  // starts no earlier than the silence after the one before (gateway and meters keep
  // the 3.5 characters), so from any frame's arrival to a later one's, the time taken
  // is at least the later frames' wire time plus one silence each: the bench's bound.
  const monitor = sim.wire.attach('monitor');
  await monitor.open();
  const frames: Array<{ at: number; bytes: number }> = [];
  monitor.on('data', (d) => frames.push({ at: performance.now(), bytes: d.length }));
  svc.start();
  t.teardown(() => svc.stop());
  await new Promise((r) => setTimeout(r, 3000));
  t.ok(runner.stats.transactions > 20, `${runner.stats.transactions} transactions`);
  const silence = interFrameSilenceMs(serial);
  let worst = Infinity;
  for (const from of [1, Math.floor(frames.length / 3)]) {
    const later = frames.slice(from + 1);
    const bytes = later.reduce((n, f) => n + f.bytes, 0);
    const bound = wireBoundMs(bytes, later.length / 2, serial, silence);
    const took = frames.at(-1)!.at - frames[from]!.at;
    worst = Math.min(worst, took - bound);
    t.ok(took >= bound, `${later.length} frames, ${bytes} bytes: took ${took.toFixed(1)} ms ≥ bound ${bound.toFixed(1)} ms`);
  }
  t.ok(worst < 0.2 * 3000, 'and the bound is close (the wire is saturated)');
});
