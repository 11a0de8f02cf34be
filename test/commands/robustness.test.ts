// The command registry under hostile input and a disk that refuses writes: every
// command gets exactly one result, junk never becomes a metric series, future
// timestamps are refused, invalid UTF-8 is bad_json, and de-duplication state stays bounded.
import t from 'tap';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { openDatabase } from '../../edge/store/sqlite.js';
import { Outbox } from '../../edge/outbox/outbox.js';
import { CommandRegistry } from '../../edge/commands/registry.js';
import { Metrics } from '../../edge/observability/metrics.js';
import { ManualClock } from '../../edge/clock.js';
import { silentLog, tempDir } from '../helpers/gateway.js';

const NOW = Date.UTC(2026, 5, 1);

function setup(t: { teardown: (fn: () => void) => void }, opts: { dedupeMaxRows?: number } = {}) {
  const dir = tempDir();
  const state = openDatabase(join(dir, 'state.db'), { log: silentLog }).db;
  const obDb = openDatabase(join(dir, 'outbox.db'), { log: silentLog }).db;
  const clock = new ManualClock(NOW);
  const outbox = new Outbox({ db: obDb, clock, log: silentLog, quotaBytes: 1 << 30 });
  const metrics = new Metrics({ defaultMetrics: false });
  let storeErrors = 0;
  const reg = new CommandRegistry({ db: state, clock, log: silentLog, outbox, metrics, maxAgeS: 60, maxPayloadBytes: 65536, dedupeHours: 48, maxClockSkewS: 30, ...(opts.dedupeMaxRows ? { dedupeMaxRows: opts.dedupeMaxRows } : {}), onStoreError: () => storeErrors++ });
  let runs = 0;
  reg.register({ name: 't.echo', description: '', role: 'technician', args: Type.Object({ v: Type.Optional(Type.Unknown()) }), handler: (a) => (runs++, { v: a.v ?? null }) });
  reg.register({ name: 't.big', description: '', role: 'technician', args: Type.Object({}), handler: () => ({ blob: 'z'.repeat(50_000) }) });
  t.teardown(() => {
    outbox.close();
    obDb.close();
    state.close();
  });
  return { reg, state, outbox, metrics, clock, runs: () => runs, storeErrors: () => storeErrors };
}

const msg = (o: Record<string, unknown>) => Buffer.from(JSON.stringify({ v: 1, ...o }));

t.test('future timestamps beyond the skew allowance are refused with clock_skew', async (t) => {
  const { reg, runs } = setup(t);
  t.equal((await reg.handleMqtt(msg({ id: 'a', name: 't.echo', ts: NOW + 10_000 }))).result.ok, true, '10 s ahead: within the allowance');
  for (const ts of [NOW + 31_000, NOW + 86_400_000, NOW + 100 * 365 * 86_400_000]) {
    const o = await reg.handleMqtt(msg({ id: `f${ts}`, name: 't.echo', ts }));
    t.match(o.result, { ok: false, error: { code: 'clock_skew' } }, `ts ${ts - NOW} ms ahead refused`);
  }
  const absurd = await reg.handleMqtt(Buffer.from(`{"v":1,"id":"abs","name":"t.echo","ts":9007199254740993}`));
  t.match(absurd.result, { ok: false, error: { code: 'clock_skew', message: /absurdly far/ } }, '9007199254740993 refused');
  t.equal(runs(), 1, 'only the plausible one ran');
});

t.test('invalid UTF-8 inside a JSON string is bad_json', async (t) => {
  const { reg, runs } = setup(t);
  const bad = Buffer.concat([Buffer.from('{"v":1,"id":"u1","name":"t.echo","args":{"v":"'), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"}}')]);
  t.match((await reg.handleMqtt(bad)).result, { ok: false, error: { code: 'bad_json' } });
  const overlong = Buffer.concat([Buffer.from('{"v":1,"id":"u2","name":"t.echo","args":{"v":"'), Buffer.from([0xc0, 0xaf]), Buffer.from('"}}')]);
  t.match((await reg.handleMqtt(overlong)).result, { ok: false, error: { code: 'bad_json' } }, 'overlong encoding refused');
  t.equal((await reg.handleMqtt(Buffer.from('{"v":1,"id":"u3","name":"t.echo","args":{"v":"门禁 ✓"}}'))).result.ok, true, 'valid UTF-8 accepted');
  t.equal(runs(), 1);
});

t.test('metric labels come only from registered command names', async (t) => {
  const { reg, metrics } = setup(t);
  for (let i = 0; i < 50; i++) await reg.handleMqtt(msg({ id: `j${i}`, name: `junk.${i}\u0000${'x'.repeat(i)}` }));
  await reg.handleMqtt(msg({ id: 'bad', name: 42 }));
  await reg.handleMqtt(msg({ id: 'ok', name: 't.echo' }));
  const text = await metrics.text();
  const names = new Set([...text.matchAll(/estate_commands_total\{name="([^"]*)"/g)].map((m) => m[1]));
  t.same([...names].sort(), ['t.echo', 'unknown'], `series: ${[...names].join(', ')}`);
  t.match(text, /estate_commands_total\{name="unknown",outcome="error"\} 50/);
});

t.test('once stopping begins, commands are answered shutting_down and not executed; duplicates still get their result', async (t) => {
  const { reg, runs } = setup(t);
  const first = await reg.handleMqtt(msg({ id: 'before', name: 't.echo', args: { v: 1 } }));
  reg.beginShutdown();
  t.match((await reg.handleMqtt(msg({ id: 'after', name: 't.echo' }))).result, { ok: false, error: { code: 'shutting_down' } });
  t.match((await reg.execute('t.echo', {}, { id: 'c1', source: 'console', receivedAt: NOW })).result, { ok: false, error: { code: 'shutting_down' } });
  const dup = await reg.handleMqtt(msg({ id: 'before', name: 't.echo', args: { v: 2 } }));
  t.same(dup.result, first.result);
  t.equal(dup.duplicate, true);
  t.equal(runs(), 1);
});

t.test('a state database that refuses writes (SQLITE_FULL): the command runs once, is answered, de-duplicated in memory, counted', async (t) => {
  const { reg, state, metrics, runs, storeErrors } = setup(t);
  await reg.handleMqtt(msg({ id: 'warm', name: 't.echo' }));
  state.pragma(`max_page_count = ${(state.pragma('page_count', { simple: true }) as number) + 2}`);
  // Fill the remaining free pages so every insert fails.
  const filler = state.prepare('INSERT INTO commands_seen(id, name, received_at) VALUES (?, ?, ?)');
  try {
    for (let i = 0; ; i++) filler.run(`filler-${i}`, 'x', 0);
  } catch {
    /* full: the table and its index have no room left */
  }
  const outcomes = [];
  for (let i = 0; i < 20; i++) outcomes.push(await reg.handleMqtt(msg({ id: `full-${i}`, name: 't.echo', args: { v: i } })));
  t.ok(
    outcomes.every((o) => o.result.ok),
    'every command answered ok',
  );
  t.equal(runs(), 21);
  t.ok(storeErrors() >= 20, `store failures reported to the disk guard (${storeErrors()})`);
  const again = await reg.handleMqtt(msg({ id: 'full-3', name: 't.echo', args: { v: 99 } }));
  t.equal(again.duplicate, true, 'redelivery recognised from memory');
  t.same(again.result, outcomes[3]!.result);
  t.equal(runs(), 21, 'not executed twice');
  t.match(await metrics.text(), /estate_command_store_errors_total \d+/);
});

t.test('de-duplication state is bounded in rows and in result size', async (t) => {
  const { reg, state } = setup(t, { dedupeMaxRows: 1000 });
  for (let i = 0; i < 3000; i++) await reg.execute('t.echo', { v: i }, { id: `r${i}`, source: 'local', receivedAt: NOW });
  reg.prune();
  const rows = state.prepare('SELECT COUNT(*) AS c FROM commands_seen').get() as { c: number };
  t.ok(rows.c <= 1000, `rows kept: ${rows.c}`);
  await reg.execute('t.big', {}, { id: 'big', source: 'local', receivedAt: NOW });
  const stored = state.prepare("SELECT length(result) AS n FROM commands_seen WHERE id = 'big'").get() as { n: number };
  t.ok(stored.n <= 1024, `a 50 kB result is kept as a ${stored.n}-byte stub`);
});

t.test("a capability's registrar unregisters all of its own commands and none of another's", async (t) => {
  const { reg } = setup(t);
  const a = reg.forCapability('alpha');
  const b = reg.forCapability('beta');
  const def = (name: string) => ({ name, description: '', role: 'viewer' as const, args: Type.Object({}), handler: () => ({}) });
  a.register(def('alpha.one'));
  a.register(def('alpha.two'));
  b.register(def('beta.one'));
  t.equal(reg.capabilityOf('alpha.two'), 'alpha', 'stamped with its capability');
  a.unregister('beta.one');
  t.equal(reg.capabilityOf('beta.one'), 'beta', "alpha cannot take beta's command away");
  a.unregisterAll();
  t.equal(reg.capabilityOf('alpha.one'), undefined, 'alpha.one gone');
  t.equal(reg.capabilityOf('alpha.two'), undefined, 'alpha.two gone');
  t.equal(reg.capabilityOf('beta.one'), 'beta', "beta's command stays");
  t.ok(
    reg.list().some((c) => c.name === 't.echo'),
    'commands registered without the registrar untouched',
  );
  a.register(def('alpha.one'));
  t.equal(reg.capabilityOf('alpha.one'), 'alpha', 'registered again after a restart of the module (no "registered twice")');
});
