// A command fuzzer: payloads a hostile or broken platform could send, mixed with valid
// ones, from a seeded PRNG so a failure can be replayed. Shared by the suite (a bounded
// run) and `npm run bench:faults` (≥100,000 messages).
import { Type } from '@sinclair/typebox';
import { join } from 'node:path';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { pino } from 'pino';
import { openDatabase } from '../../edge/store/sqlite.js';
import { Outbox } from '../../edge/outbox/outbox.js';
import { CommandRegistry } from '../../edge/commands/registry.js';
import { Metrics } from '../../edge/observability/metrics.js';

export function prng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 4294967296;
  };
}

export function fuzzPayload(r: () => number, i: number, now: number): { payload: Buffer; valid: boolean } {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const id = `f${i}`;
  const junk = () => Buffer.from(Array.from({ length: Math.floor(r() * 64) }, () => Math.floor(r() * 256)));
  switch (Math.floor(r() * 16)) {
    case 0:
      return { payload: junk(), valid: false };
    case 1:
      return { payload: Buffer.from(pick(['', 'null', '[]', '1', '"x"', '{', '{}', '{"id":1}', 'true', '{"__proto__":{"x":1}}'])), valid: false };
    case 2:
      return { payload: Buffer.from(JSON.stringify({ v: 1, id, name: pick(['door.teleport', '', 'x'.repeat(64), 'a\u0000b', '../../etc', 'constructor', '__proto__']) })), valid: false };
    case 3:
      return { payload: Buffer.from(JSON.stringify({ v: 1, id, name: 'f.act', ts: now + Math.floor(r() * 1e12) + 120_000 })), valid: false };
    case 4:
      return { payload: Buffer.from(JSON.stringify({ v: 1, id, name: 'f.act', ts: now - 120_000 - Math.floor(r() * 1e9) })), valid: false };
    case 5:
      return { payload: Buffer.from(`{"v":1,"id":"${id}","name":"f.act","ts":9007199254740993}`), valid: false };
    case 6:
      return { payload: Buffer.concat([Buffer.from(`{"v":1,"id":"${id}","name":"f.act","args":{"x":"`), junk(), Buffer.from([0xff]), Buffer.from('"}}')]), valid: false }; // always one invalid byte
    case 7:
      return { payload: Buffer.from(JSON.stringify({ v: 1, id, name: 'f.act', args: { x: r() } })), valid: false }; // x must be a string
    case 8:
      return { payload: Buffer.from(JSON.stringify({ v: 1, id, name: 'f.act', args: { x: 'a', extra: 1 } })), valid: false };
    case 9:
      return { payload: Buffer.from(JSON.stringify({ v: 2, id, name: 'f.act' })), valid: false };
    case 10:
      return { payload: Buffer.from(JSON.stringify({ v: 1, id: 'x'.repeat(200), name: 'f.act' })), valid: false };
    case 11:
      return { payload: Buffer.from(JSON.stringify({ v: 1, id, name: 'f.act', expiresAt: now - 1 })), valid: false };
    case 12:
      return { payload: Buffer.from(`{"v":1,"id":"${id}","name":"f.act","args":${'['.repeat(2000)}${']'.repeat(2000)}}`), valid: false };
    case 13:
      return { payload: Buffer.from(JSON.stringify({ v: 1, id, name: 'f.act', args: { x: 'y'.repeat(5000) } })), valid: false }; // > maxPayloadBytes
    default:
      return { payload: Buffer.from(JSON.stringify({ v: 1, id, name: 'f.act', args: { x: 'ok' }, ts: now })), valid: true };
  }
}

export interface FuzzFigures {
  messages: number;
  valid: number;
  results: number;
  executed: number;
  unanswered: number;
  wrongExecutions: number;
  codes: Record<string, number>;
  metricSeries: number;
  ms: number;
}

/** Run `n` fuzzed messages through a real registry (real SQLite files); count results and side effects. */
export async function runFuzz(n: number, seed = 1): Promise<FuzzFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'ee-fuzz-'));
  const log = pino({ level: 'silent' });
  const state = openDatabase(join(dir, 'state.db'), { log }).db;
  const obDb = openDatabase(join(dir, 'outbox.db'), { log, synchronous: 'normal' }).db;
  const clock = { now: () => Date.now(), monotonic: () => performance.now(), synced: () => true };
  const outbox = new Outbox({ db: obDb, clock, log, quotaBytes: 1 << 30 });
  const metrics = new Metrics({ defaultMetrics: false });
  const reg = new CommandRegistry({ db: state, clock, log, outbox, metrics, maxAgeS: 60, maxPayloadBytes: 4096, dedupeHours: 48, maxClockSkewS: 60 });
  const executedIds = new Set<string>();
  reg.register({ name: 'f.act', description: 'fuzz target', role: 'technician', args: Type.Object({ x: Type.String({ maxLength: 100 }) }, { additionalProperties: false }), handler: (_a, meta) => (executedIds.add(meta.id), { done: true }) });
  const r = prng(seed);
  const validIds = new Set<string>();
  const codes: Record<string, number> = {};
  let results = 0;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const { payload, valid } = fuzzPayload(r, i, Date.now());
    if (valid) validIds.add(`f${i}`);
    const o = await reg.handleMqtt(payload);
    results++;
    const code = o.result.ok ? 'ok' : o.result.error.code;
    codes[code] = (codes[code] ?? 0) + 1;
    if (i % 1000 === 999) await new Promise((res) => setImmediate(res)); // let the outbox commit
  }
  const ms = performance.now() - t0;
  outbox.flush();
  const stored = (obDb.prepare('SELECT COUNT(*) AS c FROM rec_result').get() as { c: number }).c;
  const wrong = [...executedIds].filter((id) => !validIds.has(id)).length;
  const series = new Set([...(await metrics.text()).matchAll(/estate_commands_total\{name="([^"]*)"/g)].map((m) => m[1])).size;
  outbox.close();
  obDb.close();
  state.close();
  return { messages: n, valid: validIds.size, results: stored, executed: executedIds.size, unanswered: n - Math.min(results, stored), wrongExecutions: wrong, codes, metricSeries: series, ms };
}
