// Clock hygiene: records written while the clock is unsynchronised carry the flag, a
// persisted boot counter, and the sync/jump records that let the platform repair the
// timestamps (real gateway, real SQLite files, hand-driven clock).
import t from 'tap';
import { ManualClock } from '../../edge/clock.js';
import { bootModule, BootWatch } from '../../edge/boot.js';
import type { Gateway } from '../../edge/gateway.js';
import type { StreamName } from '../../edge/outbox/streams.js';
import { startGateway, tempDir, testConfig } from '../helpers/gateway.js';

interface Body {
  id: string;
  seq: number;
  ts: number;
  type: string;
  clockUnsynced?: boolean;
  data: Record<string, unknown>;
}

function records(g: Gateway, stream: StreamName): Body[] {
  return g.outbox.read(stream, 0, Number.MAX_SAFE_INTEGER, 10_000, 1 << 26).map((r) => JSON.parse(r.body) as Body);
}

const flush = () => new Promise((r) => setImmediate(r));

t.test('records carry clockUnsynced only while the clock is unsynchronised; sync and jumps are recorded with their offset', async (t) => {
  const dir = tempDir('ee-clock-');
  const loaded = testConfig({ gateway: { id: 'g', dataDir: dir }, uplink: { enabled: false } });
  // A box that booted without network: the wall clock is at 1970.
  const clock = new ManualClock(1000, false);
  let watch!: BootWatch;
  const g = await startGateway({}, { loaded, clock, modules: [(ctx) => (watch = new BootWatch(ctx, { checkMs: 3_600_000 }))] });
  t.teardown(() => g.stop());
  await g.outbox.append({ stream: 'telemetry', type: 'meter.reading', data: { kwh: 1 } });
  clock.advance(30_000);
  await g.outbox.append({ stream: 'telemetry', type: 'meter.reading', data: { kwh: 2 } });

  // NTP sets the clock: +56 years in one step, 30 s of monotonic time after the boot.
  const trueNow = Date.UTC(2026, 10, 27, 12, 0, 0);
  clock.set(trueNow);
  clock.setSynced(true);
  watch.check();
  await flush();
  await g.outbox.append({ stream: 'telemetry', type: 'meter.reading', data: { kwh: 3 } });

  const tel = records(g, 'telemetry');
  t.same(
    tel.map((r) => r.clockUnsynced ?? false),
    [true, true, false],
    'flag only before the sync',
  );
  t.same(
    tel.map((r) => r.seq),
    [1, 2, 3],
    'sequence keeps the order whatever the clock did',
  );
  t.ok(tel[2]!.ts > tel[1]!.ts);

  const ev = records(g, 'event');
  const boot = ev.find((r) => r.type === 'gateway.boot')!;
  t.equal(boot.data.boot, 1);
  t.equal(boot.data.clockSynced, false);
  t.equal(boot.clockUnsynced, true);
  const synced = ev.find((r) => r.type === 'clock.synced')!;
  t.ok(synced, 'clock.synced recorded');
  t.equal(synced.data.boot, 1);
  const offset = synced.data.offsetMs as number;
  t.equal(offset, trueNow - (1000 + 30_000), 'offset = how far the wall clock moved beyond monotonic time');
  t.equal((synced.data.lastSeq as Record<string, number>).telemetry, 2, 'names the last record written before the sync');
  // The repair the platform can do: unsynced records of this boot happened at ts + offset.
  t.equal(tel[1]!.ts + offset, trueNow, 'second reading re-timed to the moment of sync (it was taken then)');
  t.equal(tel[0]!.ts + offset, trueNow - 30_000);
  t.same(watch.health().detail, { boot: 1, clockSynced: true, clockJumps: 0 });

  // A later jump (someone sets the date by hand): recorded, no flag (the clock still counts as synced).
  clock.advance(10_000);
  clock.set(clock.now() - 3_600_000);
  watch.check();
  await flush();
  const jumped = records(g, 'event').find((r) => r.type === 'clock.jumped')!;
  t.equal(jumped.data.offsetMs, -3_600_000);
  // Small drift (NTP slewing) is not a jump.
  clock.advance(5000);
  clock.set(clock.now() + 500);
  watch.check();
  await flush();
  t.equal(records(g, 'event').filter((r) => r.type === 'clock.jumped').length, 1);
});

t.test('the boot counter persists across restarts', async (t) => {
  const dir = tempDir('ee-boot-');
  const loaded = () => testConfig({ gateway: { id: 'g', dataDir: dir }, uplink: { enabled: false } });
  const boots: number[] = [];
  for (let i = 0; i < 3; i++) {
    let watch!: BootWatch;
    const g = await startGateway({}, { loaded: loaded(), clock: new ManualClock(Date.UTC(2026, 0, 1), true), modules: [(ctx) => (watch = bootModule(ctx) as BootWatch)] });
    boots.push(watch.boot);
    await flush();
    const ev = records(g, 'event').filter((r) => r.type === 'gateway.boot');
    t.equal(ev[ev.length - 1]!.data.boot, watch.boot);
    t.notOk(ev[ev.length - 1]!.clockUnsynced, 'no flag with a synchronised clock');
    await g.stop();
  }
  t.same(boots, [1, 2, 3]);
});
