// Signed upgrades end to end, with real processes: a real Mosquitto, an HTTPS server with
// a self-signed CA, releases signed by scripts/sign-release, and the gateway restarted the
// way systemd restarts it (harness.ts). One box goes through refusals, a release for
// another CPU, a good upgrade, a release that crashes at start, and a chunked transfer
// over MQTT that is interrupted and resumed.
import t from 'tap';
import { readFileSync, readlinkSync } from 'node:fs';
import { basename, join } from 'node:path';
import { Broker } from '../helpers/broker.js';
import { Platform } from '../helpers/subscriber.js';
import { httpsServer, keygen, makeBox, makeRelease, otherArch, signTarball, Supervisor, tmp } from './harness.js';
import { BASE, lastStatus, online, signedFor, upgradeArgs, waitOutcome } from './common.js';

t.test('signed upgrades: refusals, wrong arch, commit, crash rolled back, chunks over MQTT resumed', async (t) => {
  const broker = await Broker.start();
  t.teardown(() => broker.stop());
  const keys = keygen(tmp('ee-keys-'));
  const other = keygen(tmp('ee-keys-'));
  const dist = tmp('ee-dist-');
  const rel = (version: string, o: { arch?: string; crash?: boolean; padBytes?: number } = {}) => signTarball(makeRelease(dist, { version, ...o }), keys.key);
  const v010 = rel('0.1.0');
  const v009 = rel('0.0.9');
  const v020 = rel('0.2.0', { padBytes: 1_500_000 });
  const v021crash = rel('0.2.1', { crash: true });
  const v030 = rel('0.3.0', { padBytes: 200_000 });
  const arm = rel('0.4.0', { arch: otherArch() });
  const https = await httpsServer(dist);
  t.teardown(() => https.close());

  const box = makeBox({ tarball: join(dist, v010.file), pub: keys.pub, brokerUrl: broker.url, ca: https.caFile });
  const platform = await Platform.connect(broker.url);
  t.teardown(() => platform.close());
  const sup = new Supervisor(box, { maxStarts: 12 });
  t.teardown(() => sup.stop());
  t.teardown(() => {
    if (t.passing()) return;
    t.comment(sup.log.slice(-60).join('\n'));
  });
  await online(platform, '0.1.0');
  const url = (m: { file: string }) => `${https.url}/${m.file}`;

  // --- refused before anything is transferred, each with its code -----------------
  const refused = async (args: Record<string, unknown>, code: string, what: string) => {
    const r = await platform.command(BASE, 'gateway.upgrade', args);
    t.equal(r.ok, false, `${what}: refused`);
    t.equal(r.error?.code, code, `${what}: ${code} (${r.error?.message})`);
  };
  await refused(upgradeArgs(v020, { url: url(v020), signature: signTarball(makeRelease(tmp(), { version: '0.2.0' }), other.key).signature }), 'bad_signature', 'signed by another key');
  await refused(upgradeArgs(v020, { url: url(v020), size: v020.size + 1 }), 'bad_signature', 'size changed after signing');
  await refused(upgradeArgs(v020, { url: url(v020), version: '0.2.1' }), 'bad_signature', 'version changed after signing');
  await refused(upgradeArgs(arm, { url: url(arm), arch: arm.arch }), 'wrong_arch', 'manifest for another CPU');
  await refused(upgradeArgs(v009, { url: url(v009) }), 'downgrade', 'older version');
  await refused(upgradeArgs(v010, { url: url(v010) }), 'same_version', 'running version');
  await refused(upgradeArgs(signedFor(keys.key, { version: '0.5.0', sha256: v020.sha256, size: 2 ** 46 })), 'bad_args', 'neither url nor chunked');
  await refused(upgradeArgs(signedFor(keys.key, { version: '0.5.0', sha256: v020.sha256, size: 2 ** 46 }), { url: url(v020) }), 'no_disk', '64 TiB release');
  await refused(upgradeArgs(v020, { url: `http://127.0.0.1:1/${v020.file}` }), 'bad_url', 'plain http');
  const bad = await platform.command(BASE, 'gateway.upgrade', { ...upgradeArgs(v020, { url: url(v020) }), sha256: 'nothex' });
  t.equal(bad.error?.code, 'bad_args', 'a malformed sha256 is bad_args');
  t.equal(sup.current(), '0.1.0-abc1234', 'nothing switched');

  // --- a release for another CPU that hides it (no arch in the command): unpacked, refused
  const armJob = await platform.command(BASE, 'gateway.upgrade', upgradeArgs(arm, { url: url(arm) }));
  t.same(armJob.result, { jobId: armJob.commandId, status: 'accepted', phase: 'downloading' }, 'accepted: arch only known from its RELEASE.json');
  const armOut = await waitOutcome(platform, armJob.commandId);
  t.equal(armOut.type, 'upgrade.failed', 'upgrade.failed');
  t.equal(armOut.stream, 'alarm', 'as an alarm');
  t.equal(armOut.data.code, 'wrong_arch', `code wrong_arch (${armOut.data.reason})`);
  t.equal(sup.current(), '0.1.0-abc1234', 'still on 0.1.0');

  // --- a good upgrade over HTTPS commits ------------------------------------------------
  const t0 = Date.now();
  const good = await platform.command(BASE, 'gateway.upgrade', upgradeArgs(v020, { url: url(v020), arch: process.arch }));
  t.equal(good.result.status, 'accepted', 'accepted');
  const goodOut = await waitOutcome(platform, good.commandId);
  t.equal(goodOut.type, 'upgrade.committed', `committed (${goodOut.data.reason ?? ''})`);
  t.match(goodOut.data, { version: '0.2.0', from: '0.1.0' }, 'version and from');
  // A figure, not an assertion (speed is for benchmarks): command → committed, over HTTPS.
  t.comment(`HTTPS upgrade of a ${(v020.size / 1048576).toFixed(1)} MB release: committed ${Date.now() - t0} ms after the command (download, verify, unpack, switch, restart, READY, uplink, self-test)`);
  await online(platform, '0.2.0');
  t.equal(sup.current(), '0.2.0-abc1234', 'current is the new release');
  t.equal(basename(readlinkSync(join(box.app, 'previous'))), '0.1.0-abc1234', 'previous kept');
  const phases = new Set(
    platform
      .records('event')
      .filter((r) => r.type === 'upgrade.progress' && r.data.jobId === good.commandId)
      .map((r) => r.data.phase),
  );
  t.same([...phases].sort(), ['committed', 'downloading', 'restarting', 'switching', 'unpacking', 'verifying'], 'progress through every phase');
  t.ok(
    platform.records('event').some((r) => r.type === 'upgrade.progress' && r.data.phase === 'downloading' && r.data.pct >= 50 && r.data.pct < 100),
    'download progress in between',
  );

  // --- a release that crashes at start is rolled back and reported ----------------------
  const crash = await platform.command(BASE, 'gateway.upgrade', upgradeArgs(v021crash, { url: url(v021crash) }));
  t.equal(crash.result.status, 'accepted', 'crashing release accepted');
  const crashOut = await waitOutcome(platform, crash.commandId);
  t.equal(crashOut.type, 'upgrade.rolled_back', 'rolled back');
  t.equal(crashOut.stream, 'alarm', 'as an alarm');
  t.match(crashOut.data, { version: '0.2.1', from: '0.2.0' }, 'which upgrade');
  t.match(crashOut.data.reason, /did not commit/, `reason: ${crashOut.data.reason}`);
  await online(platform, '0.2.0');
  t.equal(sup.current(), '0.2.0-abc1234', 'the previous release runs again');
  t.ok(
    sup.starts.some((s) => s.release === '0.2.1-abc1234' && s.code === 70),
    'the crashing release was really started (and exited 70)',
  );

  // --- chunked over MQTT, interrupted by a kill, resumed --------------------------------
  const bytes = readFileSync(join(dist, v030.file));
  const size = 64 * 1024;
  const total = Math.ceil(bytes.length / size);
  t.ok(total >= 3, `${total} chunks`);
  const chunk = (jobId: string, i: number) => platform.command(BASE, 'gateway.upgrade.chunk', { jobId, index: i, total, data: bytes.subarray(i * size, (i + 1) * size).toString('base64') });
  const ch = await platform.command(BASE, 'gateway.upgrade', upgradeArgs(v030, { chunked: true }));
  t.same(ch.result, { jobId: ch.commandId, status: 'waiting_chunks', missing: [], phase: 'receiving' }, 'waiting for chunks');
  const jobId = ch.commandId as string;
  // A redelivery (same command id) while the job waits: never run twice, the original answer.
  await platform.client.publishAsync(`${BASE}/cmd`, JSON.stringify({ v: 1, id: ch.commandId, name: 'gateway.upgrade', args: upgradeArgs(v030, { chunked: true }), ts: Date.now() }), { qos: 1 });
  const results = () => platform.records('result').filter((r) => r.data.commandId === ch.commandId);
  await platform.waitFor(() => results().length >= 2, 10_000, 'the duplicate answered');
  const dup = results()[1]!.data;
  t.equal(dup.duplicate, true, 'a redelivered command is a duplicate, answered with the original result');
  t.same(dup.result, ch.result, 'same result');
  for (let i = 0; i < total - 2; i++) {
    const r = await chunk(jobId, i);
    t.equal(r.ok, true, `chunk ${i} stored`);
  }
  const busy = await platform.command(BASE, 'gateway.upgrade', upgradeArgs(v021crash, { url: url(v021crash) }));
  t.equal(busy.error?.code, 'upgrade_running', 'another upgrade while one runs: upgrade_running');
  const badChunk = await platform.command(BASE, 'gateway.upgrade.chunk', { jobId, index: 0, total: total + 1, data: 'AA==' });
  t.equal(badChunk.error?.code, 'bad_chunk', 'a chunk with another total: bad_chunk');
  const unknown = await platform.command(BASE, 'gateway.upgrade.chunk', { jobId: 'nope', index: 0, total, data: 'AA==' });
  t.equal(unknown.error?.code, 'unknown_job', 'a chunk of no job: unknown_job');

  // Power cut while receiving: the chunks stored so far survive it.
  const startsBefore = sup.starts.length;
  (sup as unknown as { child: { kill(s: string): void } }).child.kill('SIGKILL');
  await platform.waitFor(() => sup.starts.length > startsBefore && sup.running(), 30_000, 'restart after the kill');
  await platform.waitFor(() => lastStatus(platform)?.state === 'online' && platform.raw.filter((m) => m.topic === `${BASE}/status`).length > 0, 60_000, 'back online');
  const again = await platform.command(BASE, 'gateway.upgrade', upgradeArgs(v030, { chunked: true }));
  t.same(again.result, { jobId, status: 'waiting_chunks', missing: [total - 2, total - 1], phase: 'receiving' }, 'after the restart the job says which chunks it still needs');
  const last = await chunk(jobId, total - 1);
  t.same(last.result.missing, [total - 2], 'out of order is fine');
  const done = await chunk(jobId, total - 2);
  t.equal(done.result.status, 'accepted', 'all chunks: accepted');
  const chOut = await waitOutcome(platform, jobId);
  t.comment(`chunked release: ${bytes.length} bytes in ${total} chunks of ${size} bytes`);
  t.equal(chOut.type, 'upgrade.committed', `chunked upgrade committed (${chOut.data.reason ?? ''})`);
  await online(platform, '0.3.0');
  t.equal(sup.current(), '0.3.0-abc1234', 'running 0.3.0');
});
