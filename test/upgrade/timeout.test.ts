// A new release that starts (READY) but never reaches the broker within
// upgrade.commitTimeoutS switches itself back: the previous release runs again and, once
// online, reports upgrade.rolled_back with the reason. The new version is cut off from
// the broker by its config (the box's config file gets a dead broker URL the moment
// `current` switches, and its own back once `current` is the old release again), so the
// old version and the platform keep their broker throughout.
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Broker } from '../helpers/broker.js';
import { Platform } from '../helpers/subscriber.js';
import { httpsServer, keygen, makeBox, makeRelease, signTarball, Supervisor, tmp } from './harness.js';
import { BASE, online, upgradeArgs, waitOutcome } from './common.js';

t.test('a new release that does not reach the uplink within the commit timeout is rolled back by itself', async (t) => {
  const broker = await Broker.start();
  t.teardown(() => broker.stop());
  const keys = keygen(tmp('ee-keys-'));
  const dist = tmp('ee-dist-');
  const v010 = signTarball(makeRelease(dist, { version: '0.1.0' }), keys.key);
  const v020 = signTarball(makeRelease(dist, { version: '0.2.0' }), keys.key);
  const https = await httpsServer(dist);
  t.teardown(() => https.close());
  const box = makeBox({ tarball: join(dist, v010.file), pub: keys.pub, brokerUrl: broker.url, ca: https.caFile, commitTimeoutS: 10 });
  const platform = await Platform.connect(broker.url);
  t.teardown(() => platform.close());
  const sup = new Supervisor(box, { maxStarts: 6 });
  t.teardown(() => sup.stop());
  t.teardown(() => {
    if (!t.passing()) t.comment(sup.log.slice(-50).join('\n'));
  });
  await online(platform, '0.1.0');
  const good = readFileSync(box.config, 'utf8');
  const r = await platform.command(BASE, 'gateway.upgrade', upgradeArgs(v020, { url: `${https.url}/${v020.file}` }));
  t.equal(r.result?.status, 'accepted', 'accepted');
  await platform.waitFor(() => sup.current() === '0.2.0-abc1234', 60_000, 'the switch');
  writeFileSync(box.config, good.replace(broker.url, 'mqtt://127.0.0.1:1'));
  await platform.waitFor(() => sup.current() === '0.1.0-abc1234', 60_000, 'the switch back');
  writeFileSync(box.config, good);
  const out = await waitOutcome(platform, r.commandId, 60_000);
  t.equal(out.type, 'upgrade.rolled_back', 'rolled back');
  t.equal(out.stream, 'alarm', 'as an alarm');
  t.match(out.data.reason, /not healthy within 10 s: uplink/, `reason: ${out.data.reason}`);
  t.ok(
    sup.starts.some((s) => s.release === '0.2.0-abc1234' && s.code === 0),
    'the new release ran and stopped itself (exit 0, not a crash)',
  );
  await online(platform, '0.1.0');
  t.ok(sup.running(), 'the previous release runs');
});
