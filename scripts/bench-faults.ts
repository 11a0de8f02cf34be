// npm run bench:faults — the fault campaigns at full length, with their figures:
//
//   fuzz    ≥100,000 fuzzed MQTT commands through the real registry (EE_FUZZ, default
//           100000): results per message, invalid commands executed, metric series.
//   kill9   kill -9 of a gateway process under load (EE_KILL_ROUNDS, default 100),
//           against a real Mosquitto: acknowledged records lost, duplicates, gaps.
//   outage  the uplink cut for EE_OUTAGE_S (default 180 s) under load, the production
//           bundle as the unit runs it (test/faults/outage-campaign.ts, as the suite's
//           test/faults/outage but longer): backlog by stream, drain time and rate, live
//           lag, duplicates, losses, command latency after the return.
//
// EE_FAULTS=outage (or fuzz,kill9) runs only those.
// The bounded versions of these (and the disk-full, SIGTERM and hostile-config
// campaigns) run in the suite: test/commands/fuzz, test/outbox/crash, test/faults/*.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runFuzz } from './lib/fuzz.js';
import { Broker } from '../test/helpers/broker.js';
import { Platform, waitFor } from '../test/helpers/subscriber.js';
import { runOutageCampaign, outageFigures } from '../test/faults/outage-campaign.js';

const FUZZ = Number(process.env.EE_FUZZ ?? 100_000);
const ROUNDS = Number(process.env.EE_KILL_ROUNDS ?? 100);
const OUTAGE_S = Number(process.env.EE_OUTAGE_S ?? 180);
const ONLY = new Set((process.env.EE_FAULTS ?? 'fuzz,kill9,outage').split(','));
let failed = false;

if (ONLY.has('fuzz')) {
  const f = await runFuzz(FUZZ, 42);
  console.log(`fuzz     ${f.messages} messages in ${(f.ms / 1000).toFixed(1)} s: ${f.results} results (unanswered ${f.unanswered}), ${f.valid} valid executed ${f.executed}, invalid executed ${f.wrongExecutions}, metric name series ${f.metricSeries}`);
  console.log(`         codes ${JSON.stringify(f.codes)}`);
  failed ||= f.unanswered !== 0 || f.wrongExecutions !== 0;
}

if (ONLY.has('kill9')) {
  const broker = await Broker.start();
  const platform = await Platform.connect(broker.url);
  const dataDir = mkdtempSync(join(tmpdir(), 'ee-bench-kill-'));
  const config = { site: { id: 'crash' }, gateway: { id: 'gw', dataDir }, log: { level: 'silent' }, http: { enabled: false }, uplink: { url: broker.url, reconnectMinMs: 100, reconnectMaxMs: 1000, lingerMs: 5, backfillRecordsPerSecond: 0, batchMaxRecords: 200 } };
  const acked = new Set<string>();
  const child = (env: Record<string, string>, onLine?: (l: string, kill: () => void) => void) =>
    new Promise<number | null>((resolve) => {
      const c = spawn(process.execPath, ['--import', 'tsx', 'test/fixtures/ingest-child.ts'], { env: { ...process.env, EE_TEST_CONFIG: JSON.stringify(config), ...env }, stdio: ['ignore', 'pipe', 'inherit'] });
      createInterface({ input: c.stdout! }).on('line', (l) => onLine?.(l, () => c.kill('SIGKILL')));
      c.on('exit', (code) => resolve(code));
    });
  const t0 = Date.now();
  for (let round = 0; round < ROUNDS; round++) {
    await child({ EE_TEST_TAG: `r${round}` }, (line, kill) => {
      if (line === 'READY') setTimeout(kill, 150 + Math.floor(Math.random() * 600));
      else if (line.startsWith('ACK ')) acked.add(line.split(' ')[2]!);
    });
  }
  const drained = await child({ EE_TEST_MODE: 'drain' });
  const upstream = () => new Set(platform.records().map((r) => r.id));
  await waitFor(
    () => {
      const s = upstream();
      return [...acked].every((id) => s.has(id));
    },
    30_000,
    'records upstream',
  ).catch(() => console.log('         (not every acknowledged record arrived within 30 s)'));
  const seen = upstream();
  const all = platform.records().filter((r) => r.stream === 'telemetry' || r.stream === 'access');
  const lost = [...acked].filter((id) => !seen.has(id)).length;
  let gaps = 0;
  for (const stream of ['telemetry', 'access']) {
    const seqs = [...new Set(all.filter((r) => r.stream === stream).map((r) => r.seq))].sort((a, b) => a - b);
    gaps += seqs.filter((s, i) => i > 0 && s !== seqs[i - 1]! + 1).length;
  }
  console.log(`kill9    ${ROUNDS} kill -9 cycles in ${((Date.now() - t0) / 1000).toFixed(0)} s: ${acked.size} acknowledged, lost ${lost}, ${all.length - new Set(all.map((r) => r.id)).size} duplicates (de-duplicated by id), sequence gaps ${gaps}, drain run exit ${drained}`);
  await platform.close();
  await broker.stop();
  failed ||= lost !== 0;
}

if (ONLY.has('outage')) {
  const r = await runOutageCampaign({ outageS: OUTAGE_S, progress: (l) => console.log(`         ${l}`) });
  console.log(`outage   figures: ${outageFigures(r)}`);
  const lost = Object.values(r.lost).reduce((n, l) => n + l.length, 0);
  const bad = [
    lost && `${lost} records lost`,
    r.evicted.length && `${r.evicted.length} outbox.evicted`,
    !r.drained && 'backlog not drained within the wait',
    r.commands.unanswered.length && `${r.commands.unanswered.length} commands unanswered`,
    r.commands.answeredTwice.length && `${r.commands.answeredTwice.length} answered twice`,
    r.order.lastAccessBackfill > r.order.firstTelemetryBackfill && 'telemetry backlog before the access backlog',
    r.log.errors.length && `${r.log.errors.length} error lines`,
    r.log.stackTrace && 'stack trace',
    r.exit.code !== 0 && `exit ${r.exit.code ?? r.exit.signal}`,
  ].filter(Boolean);
  console.log(`         ${bad.length ? `FAIL: ${bad.join('; ')}` : 'pass'}; retained status during the outage ${JSON.stringify(r.status.retainedDuring)}; /healthz during ${r.health.during?.status}, after ${r.health.after?.status}`);
  failed ||= bad.length > 0;
}
process.exit(failed ? 1 : 0);
