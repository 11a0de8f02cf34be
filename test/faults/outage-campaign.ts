// Broker outage with a backlog, as a campaign (test/faults/outage.test.ts runs it bounded,
// `npm run bench:faults` at full length). The production bundle as the unit runs it, meters
// at several hundred records/s, a door.unlock from the platform every ~300 ms and one from
// a technician on the local console every ~300 ms (the only way a door opens while the
// uplink is gone, so the access backlog is real). Then the uplink goes away for outageS
// and comes back; the figures say what the platform saw.
//
// The outage is a cut Link (test/helpers/link.ts) between the gateway and a broker that
// stays up, not a killed Mosquitto: a box loses its WAN far more often than the platform
// loses its broker, and only a broker that stays up can show what the contract promises
// for that case (it publishes the gateway's will, the retained status reads offline
// during the outage). It also keeps the platform's subscriber connected: after a broker
// restart it would race the gateway to resubscribe and could miss the first messages
// after the return, which are the ones this campaign is about.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { Broker } from '../helpers/broker.js';
import { Link } from '../helpers/link.js';
import { Platform, waitFor } from '../helpers/subscriber.js';
import { tempDir } from '../helpers/gateway.js';
import { Client } from '../console/helpers.js';
import { STREAMS, type Stream, Commander, buildBundle, campaignDoors, integrity, logFindings, meterBuses, percentile, recordedSeqs, resultsFor, sleep, spawnUnit, stopUnit } from './harness.js';

export interface OutageOptions {
  outageS: number;
  /** Running before the outage, seconds. */
  warmS?: number;
  /** Running after the backlog drained (commands go on), seconds. */
  afterS?: number;
  progress?: (line: string) => void;
}

export interface OutageOutcome {
  outageS: number;
  productionPerS: number;
  /** Seqs recorded (committed to outbox.db) when the link came back: a lower bound of the backlog's end. */
  recordedAtRestore: Record<Stream, number>;
  /** Unique backfill seqs delivered after the return, per stream. */
  backlog: Record<Stream, number>;
  reconnectS: number;
  /** First online birth after the return → last backfill message. */
  drainS: number;
  /** Backlog records per second over drainS. */
  drainPerS: number;
  drained: boolean;
  /** Last access backfill message and first telemetry backfill message after the return (index in arrival order). */
  order: { lastAccessBackfill: number; firstTelemetryBackfill: number; accessBackfillMessages: number; telemetryBackfillMessages: number };
  live: { records: number; perS: number; lagP50Ms: number; lagMaxMs: number };
  delivered: number;
  unique: number;
  duplicates: number;
  /** Per stream: seqs 1…(last made) neither upstream nor still held in the outbox after the exit. */
  lost: Record<Stream, number[]>;
  heldAtExit: Record<Stream, number>;
  lastSeq: Record<Stream, number>;
  evicted: unknown[];
  orderViolations: string[];
  commands: {
    sent: number;
    delivered: number;
    unanswered: string[];
    /** Each unanswered command with when it was sent, relative to the cut and to the return (ms). */
    unansweredWhen: Array<{ id: string; fromCutMs: number; fromRestoreMs: number }>;
    /** Handed over before the return but not answered by then: sent again with the same id after the drain. */
    resent: Array<{ id: string; fromCutMs: number; answered: boolean; results: Array<{ ok: boolean; duplicate?: boolean }> }>;
    answeredTwice: string[];
    strays: string[];
    codes: Record<string, number>;
    afterReturn: { delivered: number; unanswered: number; latencyP50Ms: number; latencyMaxMs: number };
    duringOutageDelivered: number;
    errors: string[];
  };
  console: { unlocks: number; byStatus: Record<string, number>; duringOutageOk: number };
  status: {
    will?: Record<string, unknown>;
    willAfterMs?: number;
    retainedDuring?: Record<string, unknown>;
    retainedAfter?: Record<string, unknown>;
    onlineAfterReturn: boolean;
  };
  health: { during?: Record<string, any>; after?: Record<string, any> };
  /** gateway.status records made during the outage: how many, how many said uplinkConnected false. */
  statusRecords: { duringOutage: number; saidDisconnected: number };
  exit: { code: number | null; signal: string | null; ms: number };
  log: ReturnType<typeof logFindings> & { lines: number };
  integrity: Record<string, string>;
}

const BASE = 'estate/s1/g1';

/** Poll `pred` every 200 ms (the checks walk every record received), true when it held in time. */
async function until(pred: () => boolean, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (pred()) return true;
    if (Date.now() > end) return false;
    await sleep(200);
  }
}

async function retainedStatus(url: string): Promise<Record<string, unknown> | undefined> {
  const c = await mqtt.connectAsync(url, { clientId: `retained-${Math.random().toString(16).slice(2)}`, protocolVersion: 5, reconnectPeriod: 0 });
  try {
    const got = new Promise<Record<string, unknown> | undefined>((resolve) => {
      const timer = setTimeout(() => resolve(undefined), 3000);
      c.on('message', (_t, payload, packet) => {
        if (!packet.retain) return;
        clearTimeout(timer);
        resolve(JSON.parse(payload.toString()));
      });
    });
    await c.subscribeAsync(`${BASE}/status`, { qos: 1 });
    return await got;
  } finally {
    await c.endAsync(true);
  }
}

async function health(url: string | undefined): Promise<Record<string, any> | undefined> {
  if (!url) return undefined;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
    return { httpStatus: res.status, ...((await res.json()) as Record<string, unknown>) };
  } catch (err) {
    return { error: String(err) };
  }
}

/** Seqs still held in the outbox (buffered, not lost), per stream. */
function heldSeqs(dbPath: string): Record<Stream, Set<number>> {
  const db = new Database(dbPath, { fileMustExist: true, readonly: true });
  try {
    const out = {} as Record<Stream, Set<number>>;
    for (const s of STREAMS) out[s] = new Set((db.prepare(`SELECT seq FROM rec_${s}`).all() as Array<{ seq: number }>).map((r) => r.seq));
    return out;
  } finally {
    db.close();
  }
}

export async function runOutageCampaign(o: OutageOptions): Promise<OutageOutcome> {
  const say = o.progress ?? (() => {});
  const warmS = o.warmS ?? 4;
  const afterS = o.afterS ?? 3;
  const cleanup: Array<() => unknown> = [];
  try {
    const bundle = await buildBundle();
    cleanup.push(bundle.remove);
    const broker = await Broker.start();
    cleanup.push(() => broker.stop());
    const link = await Link.open(broker.port);
    cleanup.push(() => link.close());
    // The platform's collector takes only what the gateway publishes (and its status):
    // subscribed to …/cmd too, the broker would never answer "no matching subscribers".
    const platform = await Platform.connect(broker.url, `${BASE}/up/#`);
    cleanup.push(() => platform.close());
    await platform.client.subscribeAsync(`${BASE}/status`, { qos: 1 });
    const commander = await Commander.connect(broker.url, BASE);
    cleanup.push(() => commander.close());

    const dir = tempDir('ee-outage-');
    const dataDir = join(dir, 'data');
    const file = join(dir, 'config.yaml');
    writeFileSync(
      file,
      stringify({
        site: { id: 's1' },
        gateway: { id: 'g1', dataDir },
        http: { enabled: true, host: '127.0.0.1', port: 0 },
        console: { enabled: true, host: '127.0.0.1', port: 0 },
        log: { level: 'info' },
        status: { intervalS: 5 },
        // Default quota, batch size, in-flight window and backfill rate: the box as shipped.
        // Reconnect back-off capped at 1 s so the drain, not the back-off, is what is measured.
        uplink: { url: link.url, reconnectMinMs: 100, reconnectMaxMs: 1000 },
        meters: { buses: meterBuses(12) },
        doors: campaignDoors(),
      }),
    );
    const statuses = () => platform.raw.filter((m) => m.topic === `${BASE}/status`).map((m) => ({ at: m.at, retain: m.retain, body: JSON.parse(m.payload.toString()) as Record<string, unknown> }));
    const run = spawnUnit(bundle.main, file);
    cleanup.push(() => run.child.kill('SIGKILL'));
    await run.started;
    await waitFor(() => statuses().some((s) => s.body.state === 'online' && s.at >= run.spawnedAt), 20_000, 'online birth');
    say(`gateway started in ${run.startedAt! - run.spawnedAt} ms`);

    // The technician: set up the console (token from the log, as from journald), then an unlock every ~300 ms.
    const admin = new Client(run.urls.console!);
    const token = run.log.map((l) => /"setupToken":"([^"]+)"/.exec(l)?.[1]).find(Boolean);
    const setup = await admin.post('/api/setup', { token, user: 'admin', password: 'correct horse battery' });
    if (setup.status !== 201) throw new Error(`console setup: ${setup.status} ${JSON.stringify(setup.body)}`);
    const consoleUnlocks: Array<{ at: number; status: number }> = [];
    let consoleOn = true;
    const technician = (async () => {
      while (consoleOn) {
        const at = Date.now();
        const r = await admin.post('/api/commands/door.unlock', { doorId: 'gate' }).catch(() => ({ status: 0 }));
        consoleUnlocks.push({ at, status: r.status });
        await sleep(275 + Math.floor(Math.random() * 50));
      }
    })();
    commander.start(300);

    const warm0 = Date.now();
    await sleep(warmS * 1000);
    const warmRecords = platform.records('telemetry').filter((r) => !r.backfill && r.at >= warm0).length;
    const productionPerS = warmRecords / ((Date.now() - warm0) / 1000);

    // The outage.
    const tCut = Date.now();
    link.cut();
    say(`link cut (production ${productionPerS.toFixed(0)} telemetry records/s)`);
    const will = await waitFor(() => statuses().some((s) => s.at >= tCut && s.body.state === 'offline'), 15_000, 'the will').then(
      () => statuses().find((s) => s.at >= tCut && s.body.state === 'offline'),
      () => undefined,
    );
    await sleep(Math.min(3000, (o.outageS * 1000) / 3));
    const retainedDuring = await retainedStatus(broker.url);
    const healthDuring = await health(run.urls.health);
    await sleep(Math.max(0, tCut + o.outageS * 1000 - Date.now()));
    const recordedAtRestore = recordedSeqs(join(dataDir, 'outbox.db'), { readonly: true });
    const tRestore = Date.now();
    const outageS = (tRestore - tCut) / 1000;
    link.restore();
    say(`link restored after ${outageS.toFixed(1)} s; recorded ${JSON.stringify(recordedAtRestore)}`);

    const onlineAt = await waitFor(() => statuses().some((s) => s.at >= tRestore && s.body.state === 'online'), 30_000, 'online after the return').then(
      () => statuses().find((s) => s.at >= tRestore && s.body.state === 'online')!.at,
      () => NaN,
    );
    const upSeqs = (s: Stream) => new Set(platform.records(s).map((r) => r.seq));
    const allRecorded = () =>
      STREAMS.every((s) => {
        const got = upSeqs(s);
        for (let q = 1; q <= recordedAtRestore[s]; q++) if (!got.has(q)) return false;
        return true;
      });
    const drained = await until(allRecorded, Math.max(60_000, o.outageS * 1000));
    // The backlog ends at the watermark fixed at connect (≥ what was committed at the return): let it finish.
    let lastBackfill = 0;
    for (;;) {
      await sleep(1500);
      const last = Math.max(0, ...platform.messages.filter((m) => m.at >= tRestore && m.body.backfill).map((m) => m.at));
      if (last === lastBackfill) break;
      lastBackfill = last;
    }
    const drainEnd = lastBackfill;
    say(`backlog drained ${((drainEnd - onlineAt) / 1000).toFixed(1)} s after the birth`);
    await sleep(afterS * 1000);
    const healthAfter = await health(run.urls.health);
    const retainedAfter = await retainedStatus(broker.url);
    await commander.stop();
    consoleOn = false;
    await technician;
    await sleep(1500); // the last results
    // A command the broker accepted as the link died can be lost with the connection (clean
    // session: what the broker had not delivered is dropped). The platform sends a command
    // without a result again, with the same id: it must be answered now, and executed at most once.
    const before = resultsFor(platform);
    const inFlight = commander.sent.filter((c) => c.matched && c.at < tRestore && !before.ids.has(c.id));
    for (const c of inFlight) await commander.resend(c.id);
    if (inFlight.length) await until(() => inFlight.every((c) => resultsFor(platform).ids.has(c.id)), 10_000);
    const exit = await stopUnit(run);
    const findings = logFindings(run);

    // What the gateway made, and what it still holds (buffered, not lost).
    const dbPath = join(dataDir, 'outbox.db');
    const lastSeq = recordedSeqs(dbPath);
    const held = heldSeqs(dbPath);
    const lost = {} as Record<Stream, number[]>;
    const backlog = {} as Record<Stream, number>;
    const heldAtExit = {} as Record<Stream, number>;
    for (const s of STREAMS) {
      const got = upSeqs(s);
      lost[s] = [];
      for (let q = 1; q <= lastSeq[s]; q++) if (!got.has(q) && !held[s].has(q)) lost[s].push(q);
      backlog[s] = new Set(
        platform
          .records(s)
          .filter((r) => r.backfill && r.at >= tRestore)
          .map((r) => r.seq),
      ).size;
      heldAtExit[s] = held[s].size;
    }
    const all = platform.records();
    const unique = new Set(all.map((r) => `${r.stream}/${r.id}`)).size;

    // Order after the return: access backlog before the telemetry backlog.
    const after = platform.messages.filter((m) => m.at >= tRestore);
    const idx = (pred: (m: (typeof after)[number]) => boolean) => after.map((m, i) => (pred(m) ? i : -1)).filter((i) => i >= 0);
    const accessBf = idx((m) => m.body.stream === 'access' && m.body.backfill);
    const telBf = idx((m) => m.body.stream === 'telemetry' && m.body.backfill);
    const order = { lastAccessBackfill: accessBf.at(-1) ?? -1, firstTelemetryBackfill: telBf[0] ?? -1, accessBackfillMessages: accessBf.length, telemetryBackfillMessages: telBf.length };

    // Order per stream and flow within each connection (births split connections).
    const orderViolations: string[] = [];
    {
      let connection = 0;
      const lastBy = new Map<string, number>();
      for (const m of platform.raw) {
        if (m.topic.endsWith('/status')) {
          if (JSON.parse(m.payload.toString()).state === 'online') connection++, lastBy.clear();
          continue;
        }
        const body = JSON.parse(m.payload.toString()) as { stream: string; backfill: boolean; records: Array<{ seq: number }> };
        const key = `${body.stream}/${body.backfill}`;
        for (const r of body.records) {
          const prev = lastBy.get(key) ?? 0;
          if (r.seq <= prev && orderViolations.length < 5) orderViolations.push(`connection ${connection} ${key}: ${r.seq} after ${prev}`);
          lastBy.set(key, r.seq);
        }
      }
    }

    // Live data while the backlog drained: how much, how late.
    const liveWindow = platform.records('telemetry').filter((r) => !r.backfill && r.at >= onlineAt && r.at <= drainEnd);
    const lags = liveWindow.map((r) => r.at - r.ts);
    const live = { records: liveWindow.length, perS: liveWindow.length / Math.max(0.001, (drainEnd - onlineAt) / 1000), lagP50Ms: percentile(lags, 50), lagMaxMs: Math.max(...lags) };

    // Commands.
    const res = resultsFor(platform);
    const delivered = commander.sent.filter((c) => c.matched);
    const codes: Record<string, number> = {};
    for (const d of res.first.values()) {
      const code = d.ok ? 'ok' : d.error!.code;
      codes[code] = (codes[code] ?? 0) + 1;
    }
    const afterReturn = delivered.filter((c) => c.at >= onlineAt);
    const latencies = afterReturn.filter((c) => res.firstAt.has(c.id)).map((c) => res.firstAt.get(c.id)! - c.at);

    const byStatus: Record<string, number> = {};
    for (const u of consoleUnlocks) byStatus[u.status] = (byStatus[u.status] ?? 0) + 1;
    const statusRecs = platform.records('telemetry').filter((r) => r.type === 'gateway.status' && r.ts > tCut + 500 && r.ts < tRestore);

    return {
      outageS,
      productionPerS,
      recordedAtRestore,
      backlog,
      reconnectS: (onlineAt - tRestore) / 1000,
      drainS: (drainEnd - onlineAt) / 1000,
      drainPerS: Object.values(backlog).reduce((a, b) => a + b, 0) / Math.max(0.001, (drainEnd - onlineAt) / 1000),
      drained,
      order,
      live,
      delivered: all.length,
      unique,
      duplicates: all.length - unique,
      lost,
      heldAtExit,
      lastSeq,
      evicted: platform
        .records('event')
        .filter((r) => r.type === 'outbox.evicted')
        .map((r) => r.data),
      orderViolations,
      commands: {
        sent: commander.sent.length,
        delivered: delivered.length,
        unanswered: delivered.filter((c) => !res.ids.has(c.id)).map((c) => c.id),
        unansweredWhen: delivered.filter((c) => !res.ids.has(c.id)).map((c) => ({ id: c.id, fromCutMs: c.at - tCut, fromRestoreMs: c.at - tRestore })),
        answeredTwice: delivered.filter((c) => !inFlight.includes(c) && (res.ids.get(c.id)?.size ?? 0) > 1).map((c) => c.id),
        resent: inFlight.map((c) => ({
          id: c.id,
          fromCutMs: c.at - tCut,
          answered: res.ids.has(c.id),
          results: platform
            .records('result')
            .filter((r) => r.data.commandId === c.id)
            .map((r) => ({ ok: r.data.ok, ...(r.data.duplicate ? { duplicate: true } : {}) })),
        })),
        strays: commander.sent.filter((c) => !c.matched && res.ids.has(c.id)).map((c) => c.id),
        codes,
        afterReturn: { delivered: afterReturn.length, unanswered: afterReturn.filter((c) => !res.ids.has(c.id)).length, latencyP50Ms: percentile(latencies, 50), latencyMaxMs: Math.max(...latencies) },
        duringOutageDelivered: delivered.filter((c) => c.at > tCut && c.at < tRestore).length,
        errors: commander.errors,
      },
      console: { unlocks: consoleUnlocks.length, byStatus, duringOutageOk: consoleUnlocks.filter((u) => u.status === 200 && u.at > tCut && u.at < tRestore).length },
      status: {
        ...(will ? { will: will.body, willAfterMs: will.at - tCut } : {}),
        ...(retainedDuring ? { retainedDuring } : {}),
        ...(retainedAfter ? { retainedAfter } : {}),
        onlineAfterReturn: Number.isFinite(onlineAt),
      },
      health: { ...(healthDuring ? { during: healthDuring } : {}), ...(healthAfter ? { after: healthAfter } : {}) },
      statusRecords: { duringOutage: statusRecs.length, saidDisconnected: statusRecs.filter((r) => r.data.uplinkConnected === false).length },
      exit: { code: exit.code, signal: exit.signal, ms: exit.ms },
      log: { ...findings, lines: run.log.length },
      integrity: Object.fromEntries(['outbox.db', 'state.db'].map((db) => [db, integrity(join(dataDir, db))])),
    };
  } finally {
    for (const fn of cleanup.reverse()) {
      try {
        await fn();
      } catch {
        /* best effort */
      }
    }
  }
}

/** The figures line both the test and the bench print. */
export function outageFigures(r: OutageOutcome): string {
  const f0 = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : String(n));
  return (
    `outage ${r.outageS.toFixed(1)} s at ${f0(r.productionPerS)} telemetry records/s; backlog by stream ${JSON.stringify(r.backlog)}; ` +
    `reconnect ${r.reconnectS.toFixed(1)} s after the return, drain ${r.drainS.toFixed(1)} s (${f0(r.drainPerS)} backlog records/s; live meanwhile ${f0(r.live.perS)}/s, lag p50 ${f0(r.live.lagP50Ms)} ms max ${f0(r.live.lagMaxMs)} ms); ` +
    `records ${r.unique} unique, ${r.duplicates} duplicates, lost ${Object.values(r.lost).reduce((n, l) => n + l.length, 0)}, evicted ${r.evicted.length}; ` +
    `commands after the return ${r.commands.afterReturn.delivered} (unanswered ${r.commands.afterReturn.unanswered}), latency p50 ${f0(r.commands.afterReturn.latencyP50Ms)} ms max ${f0(r.commands.afterReturn.latencyMaxMs)} ms; ` +
    `in flight at the cut and sent again ${r.commands.resent.length}; ` +
    `console unlocks ${JSON.stringify(r.console.byStatus)} (${r.console.duringOutageOk} during the outage); will after ${r.status.willAfterMs ?? '—'} ms; exit ${r.exit.code} in ${f0(r.exit.ms)} ms`
  );
}
