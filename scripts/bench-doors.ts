// npm run bench:doors — door access figures beside their targets (issue 4):
//
//   decision   AccessApi.decide() latency, p50/p99/max, with 10,000 people in SQLite
//              (weekly windows, groups, validity), a mix of grants and denials, the
//              unlock driven on GPIO and the access record handed to the outbox.
//              Target: p99 ≤ 10 ms.
//   fire       fire-alarm input edge → every fire-release door's lock output released,
//              while the gateway ingests telemetry at full rate (batches committed to
//              the outbox as fast as the disk allows, published to a local Mosquitto).
//              Default fire input settings (release on the first edge, bounces after it
//              filtered). Target: ≤ 50 ms.
//              Beside it: the event-loop delay under the same load, the floor any input
//              event sees in this process.
//
// Both use the simulated GPIO backend (no hardware here); it delivers input edges on a
// later event-loop turn like a real interrupt, so a busy loop shows in the figures.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, loadavg, cpus } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { finish } from '../edge/config/load.js';
import { Gateway } from '../edge/gateway.js';
import { openDatabase } from '../edge/store/sqlite.js';
import { PeopleStore } from '../edge/doors/people.js';
import { createDoorsModule } from '../edge/doors/module.js';
import { SimulatedGpio } from '../drivers/gpio/simulated.js';
import { VirtualTime } from '../drivers/gpio/virtual-time.js';
import { Broker } from '../test/helpers/broker.js';

const PEOPLE = 10_000;
const DECISIONS = 20_000;
const FIRE_TRIALS = 30;
const TELEMETRY_BATCH = 500;

const doorsSection = (extra: Record<string, unknown> = {}) => ({
  fire: { input: { pin: 26 } },
  groups: [
    { id: 'residents-a', doors: ['gate', 'bldg-a'] },
    { id: 'residents-b', doors: ['gate', 'bldg-b'] },
    { id: 'staff', doors: ['gate', 'bldg-a', 'bldg-b', 'garage'] },
  ],
  doors: [
    { id: 'gate', lock: { pin: 17 }, contact: { pin: 27 }, exitButton: { pin: 22 } },
    { id: 'bldg-a', lock: { pin: 23 }, contact: { pin: 24 }, buzzer: { pin: 6 } },
    { id: 'bldg-b', lock: { pin: 16, failMode: 'failSafe' }, contact: { pin: 20 } },
    { id: 'garage', lock: { pin: 12 }, fireRelease: false },
  ],
  ...extra,
});

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}
const ms = (v: number) => (v < 1 ? v.toFixed(3) : v.toFixed(1));
const tick = () => new Promise<void>((r) => setImmediate(r));

function config(dataDir: string, url: string | undefined, doors: Record<string, unknown>) {
  return finish(
    {
      site: { id: 'bench' },
      gateway: { id: 'gw', dataDir },
      log: { level: 'silent' },
      http: { enabled: false },
      outbox: { quotaMB: 4096 },
      uplink: url ? { url, lingerMs: 5, backfillRecordsPerSecond: 0 } : { enabled: false },
      doors,
    },
    'bench',
  );
}

async function benchDecisions(dir: string) {
  // 10,000 people stored the way person.upsert stores them, loaded at start.
  const { db } = openDatabase(join(dir, 'state.db'));
  const store = new PeopleStore(db);
  const groups = ['residents-a', 'residents-b', 'staff'];
  db.transaction(() => {
    for (let i = 0; i < PEOPLE; i++) {
      store.upsert({
        id: `p${i}`,
        name: `Person ${i}`,
        kind: i % 10 === 0 ? 'staff' : i % 10 === 1 ? 'visitor' : 'resident',
        doorGroups: [groups[i % 3]!],
        ...(i % 10 === 1 ? { validFrom: Date.UTC(2026, 0, 1), validUntil: Date.UTC(2026, 11, 31) } : {}),
        ...(i % 4 === 0
          ? {
              schedule: [
                { days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '07:00', end: '19:00' },
                { days: ['sat', 'sun'], start: '22:00', end: '02:00' },
              ],
            }
          : {}),
        enabled: i % 97 !== 0,
        updatedAt: Date.now(),
      });
    }
  })();
  db.close();

  const vt = new VirtualTime(Date.UTC(2026, 10, 27, 4)); // Friday noon in Shanghai
  const gpio = new SimulatedGpio({ timers: vt });
  const g = new Gateway({
    loaded: config(dir, undefined, doorsSection({ rateLimit: { burst: 1000, perMinute: 6000 } })),
    log: pino({ level: 'silent' }),
    clock: vt,
    modules: [(ctx) => createDoorsModule(ctx, { backend: gpio, timers: vt })],
  });
  await g.start();
  const access = g.services.get('access')!;
  const doors = ['gate', 'bldg-a', 'bldg-b', 'garage'];
  const lat: number[] = [];
  const reasons = new Map<string, number>();
  let seed = 12345;
  const rnd = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  for (let i = 0; i < DECISIONS; i++) {
    const personId = `p${Math.floor(rnd() * PEOPLE * 1.05)}`; // ~5 % unknown
    const doorId = doors[Math.floor(rnd() * doors.length)]!;
    const t0 = performance.now();
    const d = access.decide({ doorId, credential: 'face', personId, score: 0.9 });
    lat.push(performance.now() - t0);
    reasons.set(d.reason, (reasons.get(d.reason) ?? 0) + 1);
    if (i % 100 === 99) {
      vt.advance(10 * 60_000); // pulses end; the run covers Friday noon to Sunday morning
      await tick(); // the outbox commits the access records (group commit)
    }
  }
  await g.stop();
  lat.sort((a, b) => a - b);
  return { p50: pct(lat, 50), p99: pct(lat, 99), max: lat[lat.length - 1]!, reasons: Object.fromEntries([...reasons].sort((a, b) => b[1] - a[1])) };
}

async function benchFire(dir: string) {
  let broker: Broker | undefined;
  try {
    broker = await Broker.start();
  } catch (err) {
    process.stdout.write(`  (no Mosquitto: ${(err as Error).message}; telemetry is ingested into the outbox only)\n`);
  }
  const gpio = new SimulatedGpio({ async: true });
  const g = new Gateway({ loaded: config(dir, broker?.url, doorsSection()), log: pino({ level: 'silent' }), modules: [(ctx) => createDoorsModule(ctx, { backend: gpio })] });
  await g.start();
  const fireLines = [17, 23, 16];
  const access = g.services.get('access')!;
  const until = async (pred: () => boolean, what: string) => {
    const end = Date.now() + 10_000;
    while (!pred()) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const released = () => gpio.level(17) && gpio.level(23) && !gpio.level(16);

  const fireTrials = async (n: number, tag: string): Promise<number[]> => {
    const lat: number[] = [];
    for (let trial = 0; trial < n; trial++) {
      let start = 0;
      const done = new Promise<number>((resolve) => {
        gpio.onOutput = (line) => {
          if (fireLines.includes(line) && released()) resolve(performance.now() - start);
        };
      });
      start = performance.now();
      gpio.drive(26, true);
      const timeout = new Promise<number>((_, reject) => setTimeout(() => reject(new Error(`fire trial ${trial}: doors not released within 10 s`)), 10_000));
      lat.push(await Promise.race([done, timeout]));
      gpio.onOutput = undefined;
      // Panel back to normal, then the technician clears the latched release.
      gpio.drive(26, false);
      await until(() => access.status().fire.inputActive === false, 'fire input back to normal');
      const res = await g.commands.execute('door.fireRelease', { action: 'clear' }, { id: `clear-${tag}-${trial}`, source: 'local', receivedAt: Date.now() });
      if (!res.result.ok) throw new Error(`clear failed: ${JSON.stringify(res.result)}`);
      await until(() => !gpio.level(17) && !gpio.level(23) && gpio.level(16), 'doors locked again');
      // Past the input's debounce window (100 ms by default) so the next alarm is a fresh edge.
      await new Promise((r) => setTimeout(r, 250 + Math.random() * 50));
    }
    return lat;
  };

  // Idle first: the fire path itself, with nothing else running.
  const idle = (await fireTrials(10, 'idle')).sort((x, y) => x - y);

  // Telemetry at full rate: a batch committed (fsync) every event-loop turn.
  let running = true;
  let ingested = 0;
  const reading = (i: number) => ({ device: `meter-${i % 64}`, points: { energy: 12345.67 + i, power: 1.234, voltage: 229.8, current: 5.1 } });
  const producer = (async () => {
    while (running) {
      const batch = [];
      for (let i = 0; i < TELEMETRY_BATCH; i++) batch.push({ stream: 'telemetry' as const, type: 'meter.reading', data: reading(ingested + i) });
      g.outbox.appendBatch(batch);
      ingested += TELEMETRY_BATCH;
      await tick();
    }
  })();
  // Event-loop delay under the same load: setImmediate scheduling delay.
  const loopDelay: number[] = [];
  const probe = setInterval(() => {
    const t0 = performance.now();
    setImmediate(() => loopDelay.push(performance.now() - t0));
  }, 10);

  await new Promise((r) => setTimeout(r, 1000)); // warm up under load
  const t0Ingest = performance.now();
  const ingest0 = ingested;
  const lat = await fireTrials(FIRE_TRIALS, 'loaded');
  const rate = ((ingested - ingest0) / (performance.now() - t0Ingest)) * 1000;
  running = false;
  clearInterval(probe);
  await producer;
  const published = g.outbox.stats().streams.telemetry.nextSeq - 1 - g.outbox.stats().streams.telemetry.count;
  await g.stop();
  await broker?.stop();
  lat.sort((a, b) => a - b);
  loopDelay.sort((a, b) => a - b);
  return { idleP50: pct(idle, 50), idleMax: idle[idle.length - 1]!, p50: pct(lat, 50), p99: pct(lat, 99), max: lat[lat.length - 1]!, rate, published, loopP50: pct(loopDelay, 50), loopP99: pct(loopDelay, 99), broker: broker !== undefined };
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'bench-doors-'));
  try {
    process.stdout.write(`bench:doors — node ${process.version}, ${cpus().length} cores, load average ${loadavg()[0]!.toFixed(1)} (figures from this run, this machine)\n\n`);
    const d = await benchDecisions(join(dir, 'a'));
    const okD = d.p99 <= 10;
    process.stdout.write(
      `decision latency, ${PEOPLE.toLocaleString('en')} people, ${DECISIONS.toLocaleString('en')} decisions:\n` +
        `  p50 ${ms(d.p50)} ms   p99 ${ms(d.p99)} ms   max ${ms(d.max)} ms     target: p99 ≤ 10 ms   ${okD ? 'OK' : 'OVER TARGET'}\n` +
        `  outcomes: ${Object.entries(d.reasons)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}\n\n`,
    );
    const f = await benchFire(join(dir, 'b'));
    const okF = f.p99 <= 50;
    process.stdout.write(
      `fire input → all fire-release doors released (defaults: release on the first edge), ${FIRE_TRIALS} trials,\n` +
        `while ingesting telemetry at ${Math.round(f.rate).toLocaleString('en')} records/s${f.broker ? ` (published to Mosquitto: ${f.published.toLocaleString('en')} records)` : ''}:\n` +
        `  p50 ${ms(f.p50)} ms   p99 ${ms(f.p99)} ms   max ${ms(f.max)} ms     target: ≤ 50 ms   ${okF ? 'OK' : 'OVER TARGET'}\n` +
        `  event-loop delay under the same load (floor for any input event): p50 ${ms(f.loopP50)} ms   p99 ${ms(f.loopP99)} ms\n` +
        `  the same fire path with no telemetry load: p50 ${ms(f.idleP50)} ms   max ${ms(f.idleMax)} ms\n`,
    );
    process.exitCode = okD && okF ? 0 : 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
