// SIGTERM campaign under load, against the production bundle run as the unit runs it
// (scripts/bundle.ts; ExecStart's Node flags, Environment=, `run --config`), on a real
// broker: simulated meters produce telemetry, the platform sends a door.unlock every
// ~300 ms whether the gateway is up or not, and the gateway is stopped with SIGTERM and
// started again, CYCLES times. Then one last run drains what is left.
// Every 4th cycle (1, 5, 9…) the SIGTERM lands at a random moment between spawn and
// "gateway started" (while the bundle loads, the databases open, the modules start), and
// every 4th (3, 7, 11…) the moment the platform sees the retained `online` birth.
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
// - each stop exits 0 within the unit's TimeoutStopSec, with no stack trace or error logged,
//   and nothing is logged after "gateway stopped" (start-up never goes on after it);
// - PRAGMA integrity_check is ok on the gateway's databases at the end.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { Broker } from '../helpers/broker.js';
import { Platform, waitFor } from '../helpers/subscriber.js';
import { tempDir } from '../helpers/gateway.js';
import { STREAMS, TIMEOUT_STOP_S, Commander, buildBundle, campaignDoors, integrity, logFindings, meterBuses, recordedSeqs, resultsFor, sleep, spawnUnit, stopUnit, type UnitRun } from './harness.js';

/** SIGTERMs under load. A running cycle runs RUN_MS (±40 %) after "gateway started". */
const CYCLES = Number(process.env.EE_SIGTERM_LOAD_CYCLES ?? 20);
const RUN_MS = Number(process.env.EE_SIGTERM_LOAD_RUN_MS ?? 1800);
const COMMAND_EVERY_MS = 300;
type Kind = 'running' | 'start-up' | 'birth';
const kindOf = (cycle: number): Kind => (cycle % 4 === 1 ? 'start-up' : cycle % 4 === 3 ? 'birth' : 'running');

t.test(`SIGTERM ×${CYCLES} under load (meters, a door command every ${COMMAND_EVERY_MS} ms), during start-up, at the birth and while running: nothing lost, every command answered once, exit 0 in time`, async (t) => {
  t.ok(TIMEOUT_STOP_S > 0, `the unit's TimeoutStopSec: ${TIMEOUT_STOP_S} s`);
  const bundle = await buildBundle();
  t.teardown(bundle.remove);

  const broker = await Broker.start();
  t.teardown(() => broker.stop());
  // The platform's collector takes only what the gateway publishes: were it subscribed to
  // …/cmd too, the broker would never answer "no matching subscribers".
  const base = 'estate/s1/g1';
  const platform = await Platform.connect(broker.url, `${base}/up/#`);
  t.teardown(() => platform.close());
  await platform.client.subscribeAsync(`${base}/status`, { qos: 1 });
  const commander = await Commander.connect(broker.url, base);
  t.teardown(() => commander.close());

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
      doors: campaignDoors(),
    }),
  );

  // The platform: a door.unlock every ~300 ms for the whole campaign, up or down.
  commander.start(COMMAND_EVERY_MS);
  const sent = commander.sent;

  const checkLog = (run: UnitRun, what: string) => {
    const f = logFindings(run);
    t.same(f.errors, [], `${what}: no error logged`);
    t.notOk(f.stackTrace, `${what}: no stack trace`);
    t.ok(f.stopped, `${what}: "gateway stopped" logged`);
    t.same(f.afterStopped, [], `${what}: nothing logged after "gateway stopped" (no start-up going on after it)`);
  };
  const onlineSince = (since: number) => platform.raw.some((m) => m.at >= since && m.topic === `${base}/status` && JSON.parse(m.payload.toString()).state === 'online');

  const recordedAt: Array<Record<string, number>> = [];
  const stopMs: number[] = [];
  const startupMs: number[] = [];
  const landed: Record<Kind, number> = { running: 0, 'start-up': 0, birth: 0 };
  const killedAtMs: number[] = [];
  let runningMs = 0;
  const t0 = Date.now();
  for (let cycle = 0; cycle < CYCLES; cycle++) {
    const kind = cycle === 0 ? 'running' : kindOf(cycle);
    const run = spawnUnit(bundle.main, file);
    if (kind === 'start-up') {
      // A random moment between spawn and "gateway started" (as long as the quickest
      // start-up so far took), but not within Node's own first 150 ms: before any of the
      // gateway's JavaScript runs, SIGTERM has Node's default action (the process ends by
      // the signal, having opened nothing), which no code of ours can change.
      const window = Math.min(...startupMs) * 0.95;
      const at = 150 + Math.random() * Math.max(0, window - 150);
      await Promise.race([sleep(at), run.exited]);
      killedAtMs.push(Math.round(Date.now() - run.spawnedAt));
      if (run.startedAt === undefined) landed['start-up']++;
    } else if (kind === 'birth') {
      await run.started;
      await waitFor(() => onlineSince(run.spawnedAt), 20_000, 'the birth');
      landed.birth++;
    } else {
      await run.started;
      startupMs.push(run.startedAt! - run.spawnedAt);
      const ranMs = Math.round(RUN_MS * (0.6 + 0.8 * Math.random()));
      runningMs += ranMs;
      await sleep(ranMs);
      landed.running++;
    }
    const { code, signal, ms } = await stopUnit(run);
    stopMs.push(ms);
    t.equal(code, 0, `cycle ${cycle} (${kind}): exit 0 after SIGTERM${signal ? ` (ended by ${signal})` : ''}, in ${Math.round(ms)} ms (TimeoutStopSec ${TIMEOUT_STOP_S} s)`);
    t.ok(ms < TIMEOUT_STOP_S * 1000, `cycle ${cycle}: stopped within TimeoutStopSec`);
    checkLog(run, `cycle ${cycle} (${kind})`);
    recordedAt.push(recordedSeqs(join(dataDir, 'outbox.db')));
  }
  const campaignS = (Date.now() - t0) / 1000;
  await commander.stop();
  t.ok(landed['start-up'] >= Math.floor(CYCLES / 4) / 2, `${landed['start-up']} SIGTERMs landed during start-up (at ${killedAtMs.join(', ')} ms after spawn; start-up took ${Math.min(...startupMs)}–${Math.max(...startupMs)} ms), ${landed.birth} at the birth, ${landed.running} while running`);

  // One last run without commands: everything recorded so far must reach the platform.
  const delivered = sent.filter((c) => c.matched);
  const last = recordedAt.at(-1)!;
  const upSeqs = (stream: string) => new Set(platform.records(stream).map((r) => r.seq));
  const drain = spawnUnit(bundle.main, file);
  await drain.started;
  await waitFor(
    () => {
      const results = resultsFor(platform).ids;
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
    const results = resultsFor(platform).ids;
    const short = STREAMS.map((s) => `${s} ${[...Array(last[s]).keys()].filter((i) => !upSeqs(s).has(i + 1)).length}`).join(', ');
    t.fail(`${String(err)}: results missing ${delivered.filter((c) => !results.has(c.id)).length}; records missing by stream: ${short}`);
  });
  const final = await stopUnit(drain);
  t.equal(final.code, 0, `drain run: exit 0 in ${Math.round(final.ms)} ms`);
  checkLog(drain, 'drain run');
  stopMs.push(final.ms);

  // Nothing lost: every seq recorded before each SIGTERM is upstream (gaps only where the
  // gateway reported an eviction; with this load and the default quota there are none).
  const evicted = platform.records('event').filter((r) => r.type === 'outbox.evicted');
  t.same(
    evicted.map((e) => e.data),
    [],
    'no record evicted',
  );
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
  const results = resultsFor(platform).ids;
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
  t.ok(delivered.length > landed.running * 2, `${sent.length} door.unlock sent, ${delivered.length} handed to the gateway, ${sent.length - delivered.length} found no subscriber (gateway offline)`);
  t.same(unanswered.slice(0, 10), [], `every command the gateway was given got a result (${unanswered.length} unanswered)`);
  t.same(answeredTwice.slice(0, 10), [], 'no command answered twice');
  t.same(strays, [], 'no result for a command that found no subscriber');
  t.notOk(codes.unknown_command, `no unknown_command, in the shutdown window or elsewhere: results ${JSON.stringify(codes)}`);
  t.same(
    Object.keys(codes).filter((c) => c !== 'ok' && c !== 'shutting_down'),
    [],
    'every result is ok or shutting_down',
  );

  for (const db of ['outbox.db', 'state.db']) t.equal(integrity(join(dataDir, db)), 'ok', `${db}: PRAGMA integrity_check ok`);

  const maxStop = Math.max(...stopMs);
  t.ok(maxStop < TIMEOUT_STOP_S * 1000, `slowest stop ${Math.round(maxStop)} ms`);
  t.comment(
    `figures: ${CYCLES} SIGTERM cycles in ${campaignS.toFixed(0)} s (${landed['start-up']} during start-up, ${landed.birth} at the birth, ${landed.running} running); records ${unique} unique upstream (${records} delivered, ${records - unique} duplicates) ${JSON.stringify(perStream)}; ` +
      `telemetry seq 1…${last.telemetry} (${Math.round((1000 * last.telemetry!) / runningMs)}/s while running); commands ${sent.length} sent, ${delivered.length} delivered, ${unanswered.length} unanswered, results ${JSON.stringify(codes)}; ` +
      `stop (SIGTERM → exit) max ${Math.round(maxStop)} ms, median ${Math.round([...stopMs].sort((a, b) => a - b)[Math.floor(stopMs.length / 2)]!)} ms`,
  );
});
