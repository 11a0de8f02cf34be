// A power cut at any step leaves a bootable version: for each step of an upgrade the
// gateway SIGKILLs itself there (ESTATE_EDGE_DEBUG_UPGRADE_KILL_AT, as a power cut stops
// it), the supervisor restarts it as systemd would (boot check first), and the next
// starts must run a good version, online, with the job's outcome reported upstream.
//   download, verify, unpack, switch → the old version resumes the job; it commits.
//   start, commit (the new version, before it committed) → the boot check switches back;
//   the old version reports upgrade.rolled_back.
import t from 'tap';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Broker } from '../helpers/broker.js';
import { Platform } from '../helpers/subscriber.js';
import { httpsServer, keygen, makeBox, makeRelease, signTarball, Supervisor, tmp } from './harness.js';
import { BASE, online, upgradeArgs, waitOutcome } from './common.js';

const STEPS: Array<{ step: string; outcome: 'upgrade.committed' | 'upgrade.rolled_back'; runs: string }> = [
  { step: 'download', outcome: 'upgrade.committed', runs: '0.2.0' },
  { step: 'verify', outcome: 'upgrade.committed', runs: '0.2.0' },
  { step: 'unpack', outcome: 'upgrade.committed', runs: '0.2.0' },
  { step: 'switch', outcome: 'upgrade.committed', runs: '0.2.0' },
  { step: 'start', outcome: 'upgrade.rolled_back', runs: '0.1.0' },
  { step: 'commit', outcome: 'upgrade.rolled_back', runs: '0.1.0' },
];

t.test('killed at each step of an upgrade, the next start runs a good version and reports the job', async (t) => {
  const broker = await Broker.start();
  t.teardown(() => broker.stop());
  const keys = keygen(tmp('ee-keys-'));
  const dist = tmp('ee-dist-');
  const v010 = signTarball(makeRelease(dist, { version: '0.1.0' }), keys.key);
  // Big enough that the download comes in many pieces (the kill lands inside it).
  const v020 = signTarball(makeRelease(dist, { version: '0.2.0', padBytes: 2_000_000 }), keys.key);
  const https = await httpsServer(dist);
  t.teardown(() => https.close());

  for (const { step, outcome, runs } of STEPS) {
    await t.test(`killed at ${step}`, async (t) => {
      const box = makeBox({ tarball: join(dist, v010.file), pub: keys.pub, brokerUrl: broker.url, ca: https.caFile });
      const platform = await Platform.connect(broker.url);
      t.teardown(() => platform.close());
      const sup = new Supervisor(box, { killAt: step, maxStarts: 8 });
      t.teardown(() => sup.stop());
      t.teardown(() => {
        if (!t.passing()) t.comment(sup.log.slice(-50).join('\n'));
      });
      await online(platform, '0.1.0');
      const ranges = https.ranges.length;
      const r = await platform.command(BASE, 'gateway.upgrade', upgradeArgs(v020, { url: `${https.url}/${v020.file}` }));
      t.equal(r.result?.status, 'accepted', 'accepted');
      const out = await waitOutcome(platform, r.commandId);
      t.equal(out.type, outcome, `${outcome} (${out.data.reason ?? ''})`);
      t.match(out.data, { jobId: r.commandId, version: '0.2.0', from: '0.1.0' }, 'the job, its version and from');
      t.ok(
        sup.starts.some((s) => s.signal === 'SIGKILL'),
        `the process was killed at ${step}`,
      );
      await online(platform, runs);
      t.equal(sup.current(), `${runs}-abc1234`, `current is ${runs}`);
      t.ok(sup.running(), 'a gateway is running');
      t.notOk(existsSync(join(box.app, 'upgrade-pending.json')), 'no pending marker left');
      if (step === 'download')
        t.ok(
          https.ranges.slice(ranges).some((h) => /^bytes=\d+-$/.test(h)),
          `the download resumed with Range (${https.ranges.slice(ranges).join(', ')})`,
        );
      if (outcome === 'upgrade.rolled_back') t.equal(out.stream, 'alarm', 'the rollback is an alarm');
      await sup.stop();
    });
  }
});
