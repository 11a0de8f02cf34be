// SIGTERM campaign under load, against the production bundle run as the unit runs it
// (scripts/bundle.ts; ExecStart's Node flags, Environment=, `run --config`), on a real
// broker: simulated meters produce telemetry, the platform sends a door.unlock every
// ~300 ms whether the gateway is up or not, and the gateway is stopped with SIGTERM and
// started again, CYCLES times. Then one last run drains what is left.
//
// Pass:
// - nothing lost: every seq recorded in the outbox before each SIGTERM (read from the
//   database after the process exited) arrives upstream, at least once, and within each
//   connection and flow (live / backfill) every stream's seqs only go up;
// - every command the broker handed to the gateway got exactly one result, none of them
//   unknown_command. A command the broker acknowledged with "no matching subscribers"
//   (MQTT 5 reason code 16) reached nobody: the gateway was offline or had already
//   unsubscribed, and the contract (docs/mqtt-api.md, clean session) says such commands
//   are not queued, so the platform knows it must send it again;
// - each stop exits 0 within the unit's TimeoutStopSec, with no stack trace or error logged;
// - PRAGMA integrity_check is ok on the gateway's databases at the end.
import t from 'tap';
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import mqtt from 'mqtt';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { Broker } from '../helpers/broker.js';
import { Platform, waitFor } from '../helpers/subscriber.js';
import { tempDir } from '../helpers/gateway.js';
import { REPO, UNIT_ENV, UNIT_NODE_FLAGS } from '../../scripts/lib/unit.js';

/** SIGTERMs under load. Each cycle runs RUN_MS (±40 %) after "gateway started". */
const CYCLES = Number(process.env.EE_SIGTERM_LOAD_CYCLES ?? 20);
const RUN_MS = Number(process.env.EE_SIGTERM_LOAD_RUN_MS ?? 1800);
const COMMAND_EVERY_MS = 300;
const STREAMS = ['telemetry', 'event', 'result', 'access', 'alarm', 'audit'] as const;
const UNIT = readFileSync(join(REPO, 'systemd', 'estate-edge.service'), 'utf8');
const TIMEOUT_STOP_S = Number(/^TimeoutStopSec=(\d+)s?$/m.exec(UNIT)?.[1]);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Meters that keep the outbox busy: every poll differs (no deadband), so every poll is a record. */
function meterBuses() {
  return [1, 2, 3, 4, 5, 6].map((b) => ({
    id: `bus${b}`,
    protocol: 'modbus',
    transport: 'simulated',
    baudRate: 115200,
    timeoutMs: 200,
    devices: [1, 2, 3, 4].map((d) => ({ id: `m${b}${d}`, profile: 'eastron-sdm120', address: d, pollIntervalMs: 100 })),
  }));
}

/** Highest seq per stream committed to the outbox (the gateway is not running). */
function recordedSeqs(dbPath: string): Record<string, number> {
  const db = new Database(dbPath, { fileMustExist: true });
  try {
    const out: Record<string, number> = {};
    for (const s of STREAMS) {
      const saved = (db.prepare('SELECT next_seq AS n FROM streams WHERE name = ?').get(s) as { n: number } | undefined)?.n ?? 1;
      const held = (db.prepare(`SELECT MAX(seq) AS m FROM rec_${s}`).get() as { m: number | null }).m ?? 0;
      out[s] = Math.max(saved - 1, held);
    }
    return out;
  } finally {
    db.close();
  }
}

function integrity(dbPath: string): string {
  const db = new Database(dbPath, { fileMustExist: true });
  try {
    return (db.pragma('integrity_check') as Array<{ integrity_check: string }>).map((r) => r.integrity_check).join('; ');
  } finally {
    db.close();
  }
}

t.test(`SIGTERM ×${CYCLES} under load (meters, a door command every ${COMMAND_EVERY_MS} ms): nothing lost, every command answered once, exit 0 in time`, async (t) => {
  t.ok(TIMEOUT_STOP_S > 0, `the unit's TimeoutStopSec: ${TIMEOUT_STOP_S} s`);
  // The production bundle, inside the checkout so its external packages resolve from node_modules.
  mkdirSync(join(REPO, 'dist'), { recursive: true });
  const build = mkdtempSync(join(REPO, 'dist', 'faults-bundle-'));
  t.teardown(() => rmSync(build, { recursive: true, force: true }));
  const outdir = join(build, 'edge');
  await new Promise<void>((resolve, reject) =>
    execFile(process.execPath, ['--import', 'tsx', join(REPO, 'scripts', 'bundle.ts'), outdir], { cwd: REPO }, (err, _o, stderr) => (err ? reject(new Error(`bundle failed: ${stderr || err.message}`)) : resolve())),
  );

  const broker = await Broker.start();
  t.teardown(() => broker.stop());
  // The platform's collector takes only what the gateway publishes: were it subscribed to
  // …/cmd too, the broker would never answer "no matching subscribers".
  const base = 'estate/s1/g1';
  const platform = await Platform.connect(broker.url, `${base}/up/#`);
  t.teardown(() => platform.close());
  await platform.client.subscribeAsync(`${base}/status`, { qos: 1 });
  const sender = await mqtt.connectAsync(broker.url, { clientId: `platform-cmd-${process.pid}`, protocolVersion: 5, reconnectPeriod: 200 });
  t.teardown(() => sender.endAsync(true));
  // mqtt.js resolves a QoS 1 publish without the PUBACK's reason code: read it off the wire.
  const pubackCode = new Map<number, number>();
  sender.on('packetreceive', (p) => {
    if (p.cmd === 'puback') pubackCode.set(p.messageId!, (p as { reasonCode?: number }).reasonCode ?? 0);
  });

  const dir = tempDir('ee-sigterm-load-');
  const dataDir = join(dir, 'data');
  const file = join(dir, 'config.yaml');
  writeFileSync(
    file,
    stringify({
      site: { id: 's1' },
      gateway: { id: 'g1', dataDir },
      http: { enabled: false },
      console: { enabled: false },
      log: { level: 'info' },
      status: { intervalS: 5 },
      uplink: { url: broker.url, reconnectMinMs: 100, reconnectMaxMs: 1000, lingerMs: 5, backfillRecordsPerSecond: 0 },
      meters: { buses: meterBuses() },
      doors: {
        gpio: { backend: 'simulated' },
        groups: [{ id: 'all', doors: ['gate'] }],
        doors: [{ id: 'gate', lock: { pin: 17 }, unlockMs: 200 }],
        rateLimit: { burst: 1000, perMinute: 6000 },
      },
    }),
  );
  const env: Record<string, string | undefined> = { ...process.env, ...UNIT_ENV };
  delete env.NOTIFY_SOCKET;

  // The platform: a door.unlock every ~300 ms for the whole campaign, up or down.
  const sent: Array<{ id: string; matched: boolean; at: number }> = [];
  let sending = true;
  const commander = (async () => {
    for (let k = 0; sending; k++) {
      const id = `unlock-${k}`;
      const at = Date.now();
      try {
        const out = await sender.publishAsync(`${base}/cmd`, JSON.stringify({ v: 1, id, name: 'door.unlock', args: { doorId: 'gate' }, ts: at }), { qos: 1 });
        // 16: no matching subscribers — nobody got it (the gateway was not subscribed).
        sent.push({ id, matched: pubackCode.get(out!.messageId!) !== 16, at });
        pubackCode.delete(out!.messageId!);
      } catch (err) {
        t.fail(`publishing command ${id}: ${String(err)}`);
      }
      await sleep(COMMAND_EVERY_MS - 25 + Math.floor(Math.random() * 50));
    }
  })();

  interface Run {
    child: ChildProcess;
    log: string[];
    exited: Promise<number | null>;
  }
  const start = (): Promise<Run> =>
    new Promise((resolve, reject) => {
      const child = spawn(process.execPath, [...UNIT_NODE_FLAGS, join(outdir, 'main.js'), 'run', '--config', file], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
      const orphan = () => child.kill('SIGKILL');
      process.once('exit', orphan);
      const log: string[] = [];
      const exited = new Promise<number | null>((r) => child.once('exit', (code) => (process.off('exit', orphan), r(code))));
      const timer = setTimeout(() => reject(new Error(`not started within 60 s:\n${log.join('\n')}`)), 60_000);
      createInterface({ input: child.stderr! }).on('line', (l) => log.push(l));
      createInterface({ input: child.stdout! }).on('line', (l) => {
        log.push(l);
        if (/"msg":"gateway started"/.test(l)) {
          clearTimeout(timer);
          resolve({ child, log, exited });
        }
      });
      void exited.then((code) => reject(new Error(`exited (${code}) before it started:\n${log.join('\n')}`)));
    });
  const stop = async (run: Run) => {
    const t0 = performance.now();
    run.child.kill('SIGTERM');
    const hard = setTimeout(() => run.child.kill('SIGKILL'), (TIMEOUT_STOP_S + 5) * 1000);
    const code = await run.exited;
    clearTimeout(hard);
    return { code, ms: performance.now() - t0 };
  };
  const checkLog = (run: Run, what: string) => {
    const text = run.log.join('\n');
    const errors = run.log.filter((l) => /"level":(50|60)/.test(l));
    t.same(errors, [], `${what}: no error logged`);
    t.notMatch(text, /\n\s+at .+:\d+:\d+/, `${what}: no stack trace`);
    const stoppedAt = run.log.findIndex((l) => /"msg":"gateway stopped"/.test(l));
    t.ok(stoppedAt >= 0, `${what}: "gateway stopped" logged`);
  };

  const recordedAt: Array<Record<string, number>> = [];
  const stopMs: number[] = [];
  let runningMs = 0;
  const t0 = Date.now();
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    const run = await start();
    const ranMs = Math.round(RUN_MS * (0.6 + 0.8 * Math.random()));
    runningMs += ranMs;
    await sleep(ranMs);
    const { code, ms } = await stop(run);
    stopMs.push(ms);
    t.equal(code, 0, `cycle ${cycle}: exit 0 after SIGTERM, in ${Math.round(ms)} ms (TimeoutStopSec ${TIMEOUT_STOP_S} s)`);
    t.ok(ms < TIMEOUT_STOP_S * 1000, `cycle ${cycle}: stopped within TimeoutStopSec`);
    checkLog(run, `cycle ${cycle}`);
    recordedAt.push(recordedSeqs(join(dataDir, 'outbox.db')));
  }
  const campaignS = (Date.now() - t0) / 1000;
  sending = false;
  await commander;

  // One last run without commands: everything recorded so far must reach the platform.
  const delivered = sent.filter((c) => c.matched);
  const resultsFor = () => {
    const by = new Map<string, Set<string>>();
    for (const r of platform.records('result')) {
      const set = by.get(r.data.commandId) ?? new Set<string>();
      set.add(r.id);
      by.set(r.data.commandId, set);
    }
    return by;
  };
  const last = recordedAt.at(-1)!;
  const upSeqs = (stream: string) => new Set(platform.records(stream).map((r) => r.seq));
  const drain = await start();
  await waitFor(
    () => {
      const results = resultsFor();
      if (!delivered.every((c) => results.has(c.id))) return false;
      return STREAMS.every((s) => {
        const got = upSeqs(s);
        for (let q = 1; q <= last[s]!; q++) if (!got.has(q)) return false;
        return true;
      });
    },
    60_000,
    'every recorded record and every result upstream',
  ).catch((err) => {
    const results = resultsFor();
    const short = STREAMS.map((s) => `${s} ${[...Array(last[s]).keys()].filter((i) => !upSeqs(s).has(i + 1)).length}`).join(', ');
    t.fail(`${String(err)}: results missing ${delivered.filter((c) => !results.has(c.id)).length}; records missing by stream: ${short}`);
  });
  const final = await stop(drain);
  t.equal(final.code, 0, `drain run: exit 0 in ${Math.round(final.ms)} ms`);
  checkLog(drain, 'drain run');
  stopMs.push(final.ms);

  // Nothing lost: every seq recorded before each SIGTERM is upstream (gaps only where the
  // gateway reported an eviction; with this load and the default quota there are none).
  const evicted = platform.records('event').filter((r) => r.type === 'outbox.evicted');
  t.same(evicted.map((e) => e.data), [], 'no record evicted');
  const perStream: Record<string, number> = {};
  let records = 0;
  let unique = 0;
  for (const s of STREAMS) {
    const all = platform.records(s);
    records += all.length;
    perStream[s] = new Set(all.map((r) => r.id)).size;
    unique += perStream[s]!;
    const got = upSeqs(s);
    const missing: number[] = [];
    for (let q = 1; q <= last[s]!; q++) if (!got.has(q)) missing.push(q);
    t.same(missing.slice(0, 20), [], `${s}: every seq recorded before the ${CYCLES} SIGTERMs (1…${last[s]}) is upstream${missing.length ? ` (${missing.length} missing)` : ''}`);
    // Sequence numbers are never reused: one record id per seq.
    const idsBySeq = new Map<number, Set<string>>();
    for (const r of all) idsBySeq.set(r.seq, (idsBySeq.get(r.seq) ?? new Set()).add(r.id));
    t.equal([...idsBySeq.values()].filter((ids) => ids.size > 1).length, 0, `${s}: one record per seq`);
  }
  t.ok(last.telemetry! > CYCLES * 50, `${last.telemetry} telemetry records recorded over ${CYCLES} cycles`);
  t.ok(last.access! > 0, `${last.access} access records (granted unlocks) recorded`);

  // Order: within each connection (from one birth to the next) and each flow, a stream's
  // seqs only go up.
  let connection = 0;
  const lastSeq = new Map<string, number>();
  let violations = 0;
  const examples: string[] = [];
  for (const m of platform.raw) {
    if (m.topic.endsWith('/status')) {
      if (JSON.parse(m.payload.toString()).state === 'online') {
        connection++;
        lastSeq.clear();
      }
      continue;
    }
    const body = JSON.parse(m.payload.toString()) as { stream: string; backfill: boolean; records: Array<{ seq: number }> };
    const key = `${body.stream}/${body.backfill}`;
    for (const r of body.records) {
      const prev = lastSeq.get(key) ?? 0;
      if (r.seq <= prev) {
        violations++;
        if (examples.length < 5) examples.push(`connection ${connection} ${key}: ${r.seq} after ${prev}`);
      }
      lastSeq.set(key, r.seq);
    }
  }
  t.equal(violations, 0, `no order violation per stream and flow over ${connection} connections${examples.length ? `: ${examples.join('; ')}` : ''}`);

  // Commands: exactly one result for each one the broker handed over; none for the others.
  const results = resultsFor();
  const resultRecords = platform.records('result');
  const codes: Record<string, number> = {};
  const firstById = new Map<string, { ok: boolean; error?: { code: string } }>();
  for (const r of resultRecords) if (!firstById.has(r.id)) firstById.set(r.id, r.data);
  for (const data of firstById.values()) {
    const code = data.ok ? 'ok' : data.error!.code;
    codes[code] = (codes[code] ?? 0) + 1;
  }
  const unanswered = delivered.filter((c) => !results.has(c.id)).map((c) => c.id);
  const answeredTwice = delivered.filter((c) => (results.get(c.id)?.size ?? 0) > 1).map((c) => c.id);
  const strays = sent.filter((c) => !c.matched && results.has(c.id)).map((c) => c.id);
  t.ok(delivered.length > CYCLES * 3, `${sent.length} door.unlock sent, ${delivered.length} handed to the gateway, ${sent.length - delivered.length} found no subscriber (gateway offline)`);
  t.same(unanswered.slice(0, 10), [], `every command the gateway was given got a result (${unanswered.length} unanswered)`);
  t.same(answeredTwice.slice(0, 10), [], 'no command answered twice');
  t.same(strays, [], 'no result for a command that found no subscriber');
  t.notOk(codes.unknown_command, `no unknown_command, in the shutdown window or elsewhere: results ${JSON.stringify(codes)}`);
  t.same(Object.keys(codes).filter((c) => c !== 'ok' && c !== 'shutting_down'), [], 'every result is ok or shutting_down');

  for (const db of ['outbox.db', 'state.db']) t.equal(integrity(join(dataDir, db)), 'ok', `${db}: PRAGMA integrity_check ok`);

  const maxStop = Math.max(...stopMs);
  t.ok(maxStop < TIMEOUT_STOP_S * 1000, `slowest stop ${Math.round(maxStop)} ms`);
  t.comment(
    `figures: ${CYCLES} SIGTERM cycles in ${campaignS.toFixed(0)} s; records ${unique} unique upstream (${records} delivered, ${records - unique} duplicates) ${JSON.stringify(perStream)}; ` +
      `telemetry seq 1…${last.telemetry} (${Math.round((1000 * last.telemetry!) / runningMs)}/s while running); commands ${sent.length} sent, ${delivered.length} delivered, ${unanswered.length} unanswered, results ${JSON.stringify(codes)}; ` +
      `stop (SIGTERM → exit) max ${Math.round(maxStop)} ms, median ${Math.round([...stopMs].sort((a, b) => a - b)[Math.floor(stopMs.length / 2)]!)} ms`,
  );
});
