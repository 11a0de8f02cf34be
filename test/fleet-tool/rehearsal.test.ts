// The fleet tool's rehearsal (issue 18 part 4): twenty real gateway processes (simulated
// estates, small configs, each a box root with A/B releases under a systemd-like restart
// loop) on one real Mosquitto, and the tool run as its own process, as an operator runs it:
//   1. a good upgrade (HTTPS) reaches all twenty, canary first, then batches of five;
//   2. a good config patch is confirmed by all twenty;
//   3. a release that crashes at start (sent in chunks over MQTT) is rolled back on the
//      canary, the rollout halts and the other nineteen are never sent it;
//   4. a config that breaks the uplink, pushed to all twenty at once, is rolled back by each
//      box itself, which reports it once it has the broker back.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { Fleet, runTool, SITE } from './fleet-harness.js';

const N = 20;
let fleet: Fleet;

t.before(async () => {
  fleet = await Fleet.start(N, { commitTimeoutS: 60 });
});
t.teardown(async () => {
  await fleet?.stop();
});

const common = () => ['--broker', fleet.broker.url, '--site', SITE, '--json'];
type Row = { site: string; gateway: string; state: string; batch: number; commandId: string; detail?: string };
function report(stdout: string): { halted: boolean; rows: Row[]; seconds: number; haltedAt?: { gateway: string } } {
  const line = stdout.trim().split('\n').at(-1) ?? '';
  return JSON.parse(line);
}

t.test('list: twenty online boxes from their retained status', async (t) => {
  const r = await runTool(['list', ...common()], { timeoutMs: 60_000 });
  t.equal(r.code, 0, r.stderr);
  const rows = JSON.parse(r.stdout) as Array<{ gateway: string; state: string; version: string; configRevision: string }>;
  t.equal(rows.length, N);
  t.ok(
    rows.every((g) => g.state === 'online' && g.version === '0.1.0' && /^[0-9a-f]{12}$/.test(g.configRevision)),
    'all online on 0.1.0 with a config revision',
  );
  const few = await runTool(['list', ...common(), '--gateway', 'gw0?'], { timeoutMs: 60_000 });
  t.equal(JSON.parse(few.stdout).length, 9, 'a gateway glob selects gw01…gw09');
});

t.test('a good upgrade over HTTPS reaches all twenty: canary first, then batches of five', async (t) => {
  const { tarball, manifest } = fleet.release('0.2.0', { padBytes: 300 * 1024 });
  const r = await runTool(['upgrade', ...common(), '--tarball', tarball, '--url', fleet.https.url, '--batch', '5'], { timeoutMs: 400_000 });
  t.equal(r.code, 0, `exit 0\n${r.stderr}`);
  const rep = report(r.stdout);
  t.equal(rep.halted, false);
  t.same(
    rep.rows.map((x) => x.state),
    Array(N).fill('committed'),
    'every box committed',
  );
  t.same(
    rep.rows.map((x) => x.batch),
    [0, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 4, 4, 4, 4],
  );
  await fleet.waitOnline(manifest.version, 60_000, 'after the upgrade');
  // Ordering: no batch-1 box was sent the upgrade before the canary's commit arrived.
  const canary = rep.rows[0]!;
  const committedAt = fleet.platform.records('event').find((e) => e.type === 'upgrade.committed' && e.data.jobId === canary.commandId)?.at;
  t.ok(committedAt, 'the canary committed');
  const firstOther = Math.min(...rep.rows.slice(1).map((x) => fleet.commandsTo(x.gateway).find((c) => c.name === 'gateway.upgrade')?.at ?? Number.POSITIVE_INFINITY));
  t.ok(committedAt! <= firstOther, `the canary committed (${committedAt}) before any other box was sent it (${firstOther})`);
  for (const b of fleet.boxes) t.equal(b.sup.current(), '0.2.0-abc1234', `${b.gateway} runs the new release`);
  t.equal(fleet.https.ranges.length >= N, true, `each box downloaded it (${fleet.https.ranges.length} requests)`);
  t.comment(`upgrade of ${N} boxes: ${rep.seconds.toFixed(1)} s`);
});

t.test('a good config patch, staged, is confirmed by every box', async (t) => {
  const before = new Map(fleet.boxes.map((b) => [b.gateway, fleet.status(b.gateway)?.configRevision]));
  // Without --json: the live table an operator sees.
  const r = await runTool(['config', '--broker', fleet.broker.url, '--site', SITE, '--patch', '{"status":{"intervalS":45}}', '--confirm-within-s', '30', '--reason', 'rehearsal: slower status'], { timeoutMs: 300_000 });
  t.equal(r.code, 0, `exit 0\n${r.stderr}`);
  t.match(r.stdout, /canary \trh\/gw01\trunning/, 'the table shows the canary running');
  t.match(r.stdout, /batch 4\trh\/gw20\tconfirmed/, 'and the last batch confirmed');
  t.match(r.stdout, /20 confirmed in \d+\.\d s/);
  await fleet.waitOnline('0.2.0', 60_000, 'after the config patch');
  for (const b of fleet.boxes) {
    const s = fleet.status(b.gateway);
    t.not(s?.configRevision, before.get(b.gateway), `${b.gateway} runs a new revision`);
  }
  const confirmed = fleet.platform.records('event').filter((e) => e.type === 'config.confirmed');
  t.equal(new Set(confirmed.map((e) => e.data.commandId)).size, N, 'one config.confirmed per box');

  // The same change again (an operator re-running the tool after it was interrupted): the
  // same command ids, answered as duplicates, nothing applied twice, the outcome from each
  // box's history.
  const starts = fleet.boxes.map((b) => b.sup.starts.length);
  const again = await runTool(['config', ...common(), '--patch', '{"status":{"intervalS":45}}', '--confirm-within-s', '30', '--reason', 'rehearsal: slower status'], { timeoutMs: 120_000 });
  t.equal(again.code, 0, again.stderr);
  const rep = report(again.stdout);
  t.ok(
    rep.rows.every((x) => x.state === 'confirmed' && /confirmed before/.test(x.detail ?? '')),
    'a re-run reports each box confirmed, from its history',
  );
  t.same(
    fleet.boxes.map((b) => b.sup.starts.length),
    starts,
    'and restarts no box',
  );
  t.equal(fleet.platform.records('event').filter((e) => e.type === 'config.confirmed').length, confirmed.length, 'no new confirmation: nothing was applied again');
});

t.test('a release that crashes at start (chunks over MQTT): rolled back on the canary, halted, 19 untouched', async (t) => {
  const { tarball } = fleet.release('0.3.0', { crash: true, padBytes: 8 * 1024 });
  const r = await runTool(['upgrade', ...common(), '--tarball', tarball, '--chunked', '--chunk-kb', '2', '--batch', '5'], { timeoutMs: 300_000 });
  t.equal(r.code, 1, `the halted rollout exits 1\n${r.stderr}`);
  const rep = report(r.stdout);
  t.equal(rep.halted, true);
  t.equal(rep.haltedAt?.gateway, 'gw01');
  t.equal(rep.rows[0]!.state, 'rolled_back', `canary: ${rep.rows[0]!.detail}`);
  t.same(
    rep.rows.slice(1).map((x) => x.state),
    Array(N - 1).fill('untouched'),
  );
  const chunks = fleet.commandsTo('gw01').filter((c) => c.name === 'gateway.upgrade.chunk' && c.args.jobId === rep.rows[0]!.commandId);
  t.ok(chunks.length >= 2, `the canary got the release in ${chunks.length} chunks`);
  const canary = fleet.boxes[0]!;
  t.ok(
    canary.sup.starts.some((s) => s.release === '0.3.0-abc1234' && s.code === 70),
    'the crashing release was really started on the canary',
  );
  t.equal(canary.sup.current(), '0.2.0-abc1234', 'the canary is back on 0.2.0');
  for (const b of fleet.boxes.slice(1)) {
    t.notOk(
      fleet.commandsTo(b.gateway).some((c) => c.name.startsWith('gateway.upgrade') && c.args.version === '0.3.0'),
      `${b.gateway} was never sent 0.3.0`,
    );
  }
  await fleet.waitOnline('0.2.0', 60_000, 'after the rolled-back canary');
});

t.test('a config that breaks the uplink, pushed to all twenty, is rolled back by each box', async (t) => {
  const before = new Map(fleet.boxes.map((b) => [b.gateway, fleet.status(b.gateway)?.configRevision]));
  const texts = new Map(fleet.boxes.map((b) => [b.gateway, readFileSync(b.config, 'utf8')]));
  // Port 9 on loopback (discard): nothing listens, every box loses its broker.
  const r = await runTool(['config', ...common(), '--patch', '{"uplink":{"url":"mqtt://127.0.0.1:9"}}', '--confirm-within-s', '5', '--canary', '0', '--batch', String(N), '--reason', 'rehearsal: a wrong broker'], { timeoutMs: 300_000 });
  t.equal(r.code, 1, `a rollout with failures exits 1\n${r.stderr}`);
  const rep = report(r.stdout);
  t.same(
    rep.rows.map((x) => x.state),
    Array(N).fill('rolled_back'),
    'every box rolled it back itself',
  );
  t.match(rep.rows[0]!.detail, /back to [0-9a-f]{12}/);
  await fleet.waitOnline('0.2.0', 90_000, 'after the rollbacks');
  for (const b of fleet.boxes) {
    t.equal(fleet.status(b.gateway)?.configRevision, before.get(b.gateway), `${b.gateway} runs its previous revision again`);
    t.equal(readFileSync(b.config, 'utf8'), texts.get(b.gateway), `${b.gateway}'s config file is the old one`);
  }
  const alarms = fleet.platform.records('alarm').filter((a) => a.type === 'config.rolled_back');
  t.equal(new Set(alarms.map((a) => a.data.commandId)).size, N, 'one config.rolled_back alarm per box');
});
