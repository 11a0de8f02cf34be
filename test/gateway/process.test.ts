// The service as a process: exit codes, config errors, SIGTERM, /healthz and /metrics.
import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Broker } from '../helpers/broker.js';
import { Platform } from '../helpers/subscriber.js';
import { tempDir } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { stringify } from 'yaml';
import Database from 'better-sqlite3';
import { STREAMS, meterBuses } from '../faults/harness.js';

import { pathToFileURL } from 'node:url';
// Absolute, so a child started in another working directory still finds tsx and the entry.
const TSX = pathToFileURL(join(process.cwd(), 'node_modules/tsx/dist/loader.mjs')).href;
const MAIN = ['--import', TSX, join(process.cwd(), 'edge/main.ts')];

t.test('an invalid config exits with status 2 before starting anything, listing every error', async (t) => {
  const dir = tempDir();
  const file = join(dir, 'config.yaml');
  writeFileSync(file, `site: { id: s }\ngateway: { id: g, dataDir: ${dir}/data }\nuplink: { protocolVersion: 7, urll: x }\n`);
  const r = spawnSync(process.execPath, [...MAIN, '--config', file], { encoding: 'utf8', timeout: 30_000 });
  t.equal(r.status, 2);
  t.match(r.stderr, /uplink\.protocolVersion: must be one of 5, 4/);
  t.match(r.stderr, /uplink\.urll: unknown key/);
  const { existsSync } = await import('node:fs');
  t.notOk(existsSync(join(dir, 'data')), 'nothing was started (no data dir created)');
  const ok = spawnSync(process.execPath, [...MAIN, 'check-config', '--config', file.replace('config.yaml', 'none.yaml')], { encoding: 'utf8', timeout: 30_000 });
  t.equal(ok.status, 2);
  t.match(ok.stderr, /cannot read .*none\.yaml: ENOENT/);
});

t.test('runs from a config file, serves /healthz and /metrics, stops on SIGTERM with nothing lost', async (t) => {
  const broker = await Broker.start();
  t.teardown(() => broker.stop());
  const platform = await Platform.connect(broker.url);
  t.teardown(() => platform.close());
  const dir = tempDir();
  const port = await freePort();
  const file = join(dir, 'config.yaml');
  // One bus of simulated meters keeps records flowing, so SIGTERM lands with some in flight.
  writeFileSync(file, `site: { id: s1 }\ngateway: { id: g1, dataDir: ${dir} }\nhttp: { port: ${port} }\nuplink: { url: "${broker.url}" }\nstatus: { intervalS: 5 }\nmeters: ${stringify({ buses: meterBuses(1) }, { collectionStyle: 'flow' }).trim()}\n`);
  const child = spawn(process.execPath, [...MAIN, '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  await platform.waitFor(() => /gateway started/.test(out), 90_000, 'start');
  const health = await (await fetch(`http://127.0.0.1:${port}/healthz`)).json();
  t.match(health, { status: 'ok', uplink: { connected: Boolean }, outbox: { records: Number } });
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  for (const m of ['estate_outbox_records', 'estate_outbox_oldest_age_seconds', 'estate_uplink_connected', 'estate_uplink_reconnects_total', 'estate_command_errors_total', 'estate_outbox_evicted_total', 'estate_uplink_records_total']) t.match(metrics, new RegExp(`# TYPE ${m} `), `metric ${m}`);
  t.equal((await fetch(`http://127.0.0.1:${port}/nope`)).status, 404);
  await platform.waitFor(() => platform.records('telemetry').some((r) => r.type === 'gateway.status'), 15_000, 'status telemetry');
  const st = platform.records('telemetry').find((r) => r.type === 'gateway.status')!;
  t.match(st.data, { uptimeS: Number, outbox: { records: Number }, system: { rssMB: Number } });
  const t0 = Date.now();
  child.kill('SIGTERM');
  const code = await exited;
  t.equal(code, 0, 'clean exit on SIGTERM');
  t.ok(Date.now() - t0 < 12_000, 'within the shutdown budget');
  t.match(out, /gateway stopped/);
  t.notMatch(out, /"level":"(error|fatal)"/, 'no errors logged');

  // Nothing lost: read the outbox database the stopped gateway left. Every seq it committed
  // (1 … streams.next_seq - 1) is either still held there (unacknowledged, sent on the next
  // start) or was acknowledged by the broker and so reached the platform.
  const db = new Database(join(dir, 'outbox.db'), { readonly: true, fileMustExist: true });
  const committed: Record<string, { last: number; held: Set<number> }> = {};
  try {
    for (const s of STREAMS) {
      const next = (db.prepare('SELECT next_seq AS n FROM streams WHERE name = ?').get(s) as { n: number } | undefined)?.n ?? 1;
      const held = new Set((db.prepare(`SELECT seq FROM rec_${s}`).all() as Array<{ seq: number }>).map((r) => r.seq));
      committed[s] = { last: Math.max(next - 1, ...held), held };
    }
    t.same(db.prepare('SELECT name, evicted FROM streams WHERE evicted > 0').all(), [], 'no record evicted');
  } finally {
    db.close();
  }
  const lost = () =>
    Object.entries(committed).flatMap(([s, { last, held }]) => {
      const up = new Set(platform.records(s).map((r) => r.seq));
      const out: string[] = [];
      for (let q = 1; q <= last; q++) if (!held.has(q) && !up.has(q)) out.push(`${s}#${q}`);
      return out;
    });
  // What the broker acknowledged may still be on its way to the platform's subscriber.
  for (const end = Date.now() + 5000; lost().length > 0 && Date.now() < end; ) await new Promise((r) => setTimeout(r, 20));
  t.same(lost().slice(0, 20), [], 'every committed record is at the platform or still in the outbox');
  t.ok(committed.telemetry!.last > 20, `records were flowing when SIGTERM came (${committed.telemetry!.last} telemetry records committed, ${committed.telemetry!.held.size} still held)`);
});

t.test('the embedded simulated estate starts with no config file and buffers when the broker is absent', async (t) => {
  const dir = tempDir();
  // The embedded config writes to ./var relative to the working directory.
  const child = spawn(process.execPath, MAIN, { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  // Generous: the simulated estate starts every capability (meters, doors, face models, console).
  const end = Date.now() + 120_000;
  while (!/gateway started/.test(out) && Date.now() < end && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
  t.match(out, /built-in simulated estate/);
  t.match(out, /gateway started/);
  child.kill('SIGTERM');
  t.equal(await exited, 0);
});
