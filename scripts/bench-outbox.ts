// npm run bench:outbox — store-and-forward figures, each beside its ceiling measured in
// the same run on the same machine (this machine is noisy: compare within a run).
//
//   ingest      outbox.appendBatch (ids, sequences, JSON bodies, quota accounting)
//               vs plain better-sqlite3 inserts of same-size rows, 1,000 per transaction,
//               same pragmas (WAL, synchronous=FULL)
//   publish     draining a 1,000,000-record backlog to a local Mosquitto (read, batch,
//               QoS 1, delete on PUBACK) vs plain mqtt.js QoS 1 publishing the same
//               number of same-size messages
//   latency     end to end (append → broker → subscriber) p50/p99 at 1,000 records/s
//   rss         of the gateway holding 1,000,000 buffered records, run as the unit runs
//               it (production bundle, the unit's V8 flags and environment), broker away
//
// Each measured part runs in its own child process so one phase's heap does not
// inflate the next one's figures.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type DatabaseT from 'better-sqlite3';
import { requireCjs } from '../edge/cjs.js';
import { Broker } from '../test/helpers/broker.js';
import { finish } from '../edge/config/load.js';
import { Gateway } from '../edge/gateway.js';
import { UNIT_ENV, UNIT_MAIN, UNIT_NODE_FLAGS, peakRssMB, startUnitGateway } from './lib/unit.js';

// require(), as the gateway does (edge/cjs.ts), so the phases' own RSS figures are not
// inflated by the ESM loader's handling of CommonJS packages.
const Database = requireCjs('better-sqlite3') as typeof DatabaseT;
const mqtt = requireCjs('mqtt') as typeof import('mqtt');
const { pino } = requireCjs('pino') as typeof import('pino');

const SELF = fileURLToPath(import.meta.url);
const N_INGEST = 300_000;
const N_BACKLOG = Number(process.env.BENCH_BACKLOG ?? 1_000_000);
const BATCH = 1000;
const RECORDS_PER_MESSAGE = 500;
const reading = (i: number) => ({ device: `meter-${i % 32}`, points: { energy: 12345.67 + i, power: 1.234, voltage: 229.8 } });

function gatewayConfig(dataDir: string, url: string, extra: Record<string, unknown> = {}) {
  return finish(
    {
      site: { id: 'bench' },
      gateway: { id: 'gw', dataDir },
      log: { level: 'silent' },
      http: { enabled: false },
      outbox: { quotaMB: 4096 },
      uplink: { url, backfillRecordsPerSecond: 0, batchMaxRecords: RECORDS_PER_MESSAGE, maxInflight: 64, lingerMs: 5, ...extra },
    },
    'bench',
  );
}

function emit(obj: unknown) {
  process.stdout.write(`RESULT ${JSON.stringify(obj)}\n`);
}

// ---- phases (run in children) ------------------------------------------------------

async function phaseRawIngest(dir: string) {
  const db = new Database(join(dir, 'raw.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE t (seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, body TEXT NOT NULL)');
  const ins = db.prepare('INSERT INTO t(seq, ts, body) VALUES (?, ?, ?)');
  // Same-size rows as the outbox writes (id, seq, ts, type and the JSON data).
  const body = (i: number) => `{"id":"0192f0c4-7e2a-7b3c-9d4e-5f6a7b8c9d0e","seq":${i},"ts":${Date.now()},"type":"meter.reading","data":${JSON.stringify(reading(i))}}`;
  const tx = db.transaction((from: number) => {
    for (let i = from; i < from + BATCH; i++) ins.run(i, Date.now(), body(i));
  });
  const t0 = performance.now();
  for (let i = 1; i <= N_INGEST; i += BATCH) tx(i);
  const s = (performance.now() - t0) / 1000;
  db.close();
  emit({ rawIngestPerS: N_INGEST / s });
}

async function phaseOutboxIngest(dir: string) {
  const gw = new Gateway({ loaded: gatewayConfig(dir, 'mqtt://127.0.0.1:1', { enabled: false }), log: pino({ level: 'silent' }), modules: [] });
  await gw.start();
  const t0 = performance.now();
  for (let i = 0; i < N_INGEST; i += BATCH) {
    const batch = [];
    for (let k = i; k < i + BATCH; k++) batch.push({ stream: 'telemetry' as const, type: 'meter.reading', data: reading(k) });
    gw.outbox.appendBatch(batch);
  }
  const s = (performance.now() - t0) / 1000;
  await gw.stop();
  emit({ outboxIngestPerS: N_INGEST / s });
}

async function phaseFill(dir: string) {
  const gw = new Gateway({ loaded: gatewayConfig(dir, 'mqtt://127.0.0.1:1', { enabled: false }), log: pino({ level: 'silent' }), modules: [] });
  await gw.start();
  for (let i = 0; i < N_BACKLOG; i += BATCH) {
    const batch = [];
    for (let k = i; k < i + BATCH; k++) batch.push({ stream: 'telemetry' as const, type: 'meter.reading', data: reading(k) });
    gw.outbox.appendBatch(batch);
  }
  await gw.stop();
  emit({ filled: N_BACKLOG });
}

// A fresh process opening the full outbox: what a box restarted during an outage holds.
async function phaseDrain(dir: string, url: string) {
  const gw = new Gateway({ loaded: gatewayConfig(dir, url, { enabled: false }), log: pino({ level: 'silent' }), modules: [] });
  await gw.start();
  await new Promise((r) => setTimeout(r, 500));
  const rssBufferedMB = process.memoryUsage.rss() / 1048576;
  const buffered = gw.outbox.stats().count;
  await gw.stop();
  const gw2 = new Gateway({ loaded: gatewayConfig(dir, url), log: pino({ level: 'silent' }), modules: [] });
  const t0 = performance.now();
  await gw2.start();
  let peakRss = rssBufferedMB;
  while (gw2.outbox.stats().count > 0) {
    await new Promise((r) => setTimeout(r, 20));
    peakRss = Math.max(peakRss, process.memoryUsage.rss() / 1048576);
    if (performance.now() - t0 > 120_000) break;
  }
  const drainS = (performance.now() - t0) / 1000;
  const left = gw2.outbox.stats().count;
  await gw2.stop();
  emit({ backlog: buffered, drainS, left, rssBufferedMB, peakRssDrainMB: peakRss });
}

async function phasePlainMqtt(url: string) {
  const client = await mqtt.connectAsync(url, { protocolVersion: 5, clientId: 'bench-plain' });
  const rec = (i: number) => `{"id":"0192f0c4-7e2a-7b3c-9d4e-5f6a7b8c9d0e","seq":${i},"ts":${Date.now()},"type":"meter.reading","data":${JSON.stringify(reading(i))}}`;
  const messages = N_BACKLOG / RECORDS_PER_MESSAGE;
  const t0 = performance.now();
  let acked = 0;
  let inflight = 0;
  let next = 0;
  // Same window as the gateway (64 in flight) and the same message layout.
  await new Promise<void>((resolve) => {
    const pump = () => {
      while (inflight < 64 && next < messages) {
        const base = next++ * RECORDS_PER_MESSAGE;
        const body = [];
        for (let k = 0; k < RECORDS_PER_MESSAGE; k++) body.push(rec(base + k));
        const payload = `{"v":1,"site":"bench","gateway":"gw","stream":"telemetry","backfill":true,"sentAt":${Date.now()},"records":[${body.join(',')}]}`;
        inflight++;
        client.publish('bench/plain', payload, { qos: 1 }, () => {
          inflight--;
          if (++acked === messages) resolve();
          else pump();
        });
      }
    };
    pump();
  });
  const s = (performance.now() - t0) / 1000;
  await client.endAsync();
  emit({ plainRecordsPerS: N_BACKLOG / s, plainMessagesPerS: messages / s });
}

async function phaseLatency(dir: string, url: string) {
  const gw = new Gateway({ loaded: gatewayConfig(dir, url), log: pino({ level: 'silent' }), modules: [] });
  await gw.start();
  while (!gw.uplink.isConnected()) await new Promise((r) => setTimeout(r, 20));
  process.stdout.write('READY\n');
  // 1,000 records/s as 10 records every 10 ms, for 10 s.
  const end = Date.now() + 10_000;
  let i = 0;
  while (Date.now() < end) {
    for (let k = 0; k < 10; k++) void gw.outbox.append({ stream: 'telemetry', type: 'lat', data: { sentAt: Date.now(), i: i++ } });
    await new Promise((r) => setTimeout(r, 10));
  }
  await new Promise((r) => setTimeout(r, 500));
  emit({ latencyRss: process.memoryUsage.rss() / 1048576 });
  await gw.stop();
}

// ---- orchestration -----------------------------------------------------------------

function child(phase: string, args: string[], onLine?: (l: string) => void): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    // From dist/ (npm run bench:outbox builds first) the children run plain JS, so RSS
    // figures are the production ones, not inflated by a TypeScript loader.
    const loader = SELF.endsWith('.ts') ? ['--import', 'tsx'] : [];
    // The same V8 flags and environment as the systemd unit (systemd/estate-edge.service).
    const p = spawn(process.execPath, [...UNIT_NODE_FLAGS, ...loader, SELF, phase, ...args], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...UNIT_ENV } });
    let result: Record<string, number> = {};
    let buf = '';
    p.stdout.on('data', (d) => {
      buf += d;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith('RESULT ')) result = { ...result, ...JSON.parse(line.slice(7)) };
        else onLine?.(line);
      }
    });
    p.on('exit', (code) => (code === 0 ? resolve(result) : reject(new Error(`${phase} exited ${code}`))));
  });
}

const HOLD_S = 15;

/**
 * RSS of the real gateway (the unit's entry, flags and environment) opening the full
 * outbox with the broker away: what a box holds after a long outage. Same site, gateway
 * and quota as the fill, so nothing is evicted.
 */
async function unitGatewayHolding(dataDir: string, workDir: string): Promise<{ peak: number; last: number }> {
  const gw = await startUnitGateway(
    {
      site: { id: 'bench' },
      gateway: { id: 'gw', dataDir },
      log: { level: 'warn' },
      http: { enabled: false },
      console: { enabled: false },
      outbox: { quotaMB: 4096 },
      uplink: { url: 'mqtt://127.0.0.1:1', reconnectMinMs: 60_000, reconnectMaxMs: 60_000 },
    },
    workDir,
    'holding',
  );
  try {
    return await peakRssMB(gw.child.pid!, HOLD_S);
  } finally {
    await gw.stop();
  }
}

function pct(sorted: number[], p: number) {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function main() {
  const [phase, a, b] = process.argv.slice(2);
  if (phase === 'raw') return phaseRawIngest(a!);
  if (phase === 'ingest') return phaseOutboxIngest(a!);
  if (phase === 'fill') return phaseFill(a!);
  if (phase === 'drain') return phaseDrain(a!, b!);
  if (phase === 'plain') return phasePlainMqtt(a!);
  if (phase === 'latency') return phaseLatency(a!, b!);

  const broker = await Broker.start();
  const dirs: string[] = [];
  const dir = () => {
    const d = mkdtempSync(join(tmpdir(), 'ee-bench-'));
    dirs.push(d);
    return d;
  };
  try {
    console.log(`bench:outbox on ${process.arch}, node ${process.version}; Mosquitto on ${broker.url}`);
    const raw = await child('raw', [dir()]);
    const ing = await child('ingest', [dir()]);
    const plain = await child('plain', [broker.url]);
    const backlogDir = dir();
    await child('fill', [backlogDir]);
    const held = await unitGatewayHolding(backlogDir, dir());
    const drain = await child('drain', [backlogDir, broker.url]);
    // Latency: the subscriber lives here, the gateway in the child.
    const sub = await mqtt.connectAsync(broker.url, { clientId: 'bench-sub' });
    const lat: number[] = [];
    sub.on('message', (_t, payload) => {
      const now = Date.now();
      for (const r of JSON.parse(payload.toString()).records) if (r.type === 'lat') lat.push(now - r.data.sentAt);
    });
    await sub.subscribeAsync('estate/bench/gw/up/telemetry', { qos: 1 });
    const l = await child('latency', [dir(), broker.url]);
    await new Promise((r) => setTimeout(r, 300));
    await sub.endAsync();
    lat.sort((x, y) => x - y);

    const row = (what: string, ours: string, ceiling: string, target: string, ok: boolean) => console.log(`${what.padEnd(34)} ${ours.padEnd(22)} ${ceiling.padEnd(30)} ${target.padEnd(24)} ${ok ? 'meets target' : 'MISSES target'}`);
    console.log('');
    console.log(`${'figure'.padEnd(34)} ${'estate-edge'.padEnd(22)} ${'ceiling (same run)'.padEnd(30)} ${'target'.padEnd(24)}`);
    const ingestRatio = ing.outboxIngestPerS! / raw.rawIngestPerS!;
    row('ingest (records/s)', `${Math.round(ing.outboxIngestPerS!).toLocaleString('en')}`, `${Math.round(raw.rawIngestPerS!).toLocaleString('en')} raw better-sqlite3`, '≥ 50% of raw', ingestRatio >= 0.5);
    console.log(`${''.padEnd(34)} = ${(ingestRatio * 100).toFixed(0)}% of the raw ceiling`);
    const drainRate = drain.backlog! / drain.drainS!;
    row('publish/drain (records/s)', `${Math.round(drainRate).toLocaleString('en')}`, `${Math.round(plain.plainRecordsPerS!).toLocaleString('en')} plain mqtt.js QoS 1`, '—', true);
    console.log(`${''.padEnd(34)} = ${((drainRate / plain.plainRecordsPerS!) * 100).toFixed(0)}% of plain mqtt.js (${Math.round(plain.plainMessagesPerS!).toLocaleString('en')} msg/s × ${RECORDS_PER_MESSAGE} records)`);
    row(`drain ${drain.backlog!.toLocaleString('en')} backlog (s)`, `${drain.drainS!.toFixed(2)}${drain.left ? ` (${drain.left} left!)` : ''}`, `${(drain.backlog! / plain.plainRecordsPerS!).toFixed(2)} plain mqtt.js`, '≤ 10 s', drain.drainS! <= 10 && !drain.left);
    row('end-to-end latency p50 (ms)', `${pct(lat, 50)}`, `${lat.length} samples at 1,000/s`, '—', true);
    row('end-to-end latency p99 (ms)', `${pct(lat, 99)}`, `max ${lat[lat.length - 1]}`, '≤ 50 ms', pct(lat, 99) <= 50);
    row(`RSS, ${drain.backlog!.toLocaleString('en')} buffered (MB)`, `${held.peak.toFixed(1)}`, `gateway as the unit runs it, peak of ${HOLD_S} s`, '≤ 80 MB', held.peak <= 80);
    console.log(`${''.padEnd(34)} (${UNIT_MAIN.replace(/^.*\/dist\//, 'dist/')} ${UNIT_NODE_FLAGS.join(' ')}; last ${held.last.toFixed(1)} MB; bench child with the same flags: ${drain.rssBufferedMB!.toFixed(1)} MB holding, ${drain.peakRssDrainMB!.toFixed(1)} MB peak while draining)`);
    row('RSS during 1,000/s live (MB)', `${l.latencyRss!.toFixed(1)}`, '', '—', true);
  } finally {
    await broker.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
}

await main();
