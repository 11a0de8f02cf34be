// The fleet tool against a real Mosquitto and real (in-process) gateways: list, a staged
// exec rollout, and a halting rollout.
import { spawnSync } from 'node:child_process';
import t from 'tap';
import { FleetClient } from '../../scripts/lib/fleet/client.js';
import { rollout } from '../../scripts/lib/fleet/rollout.js';
import { Broker } from '../helpers/broker.js';
import { startGateway } from '../helpers/gateway.js';

t.test('fleet: list, staged exec, halt', async (t) => {
  const broker = await Broker.start();
  t.teardown(() => broker.stop());
  const ids = ['gw1', 'gw2', 'gw3', 'gw4', 'gw5'];
  for (const id of ids) {
    const g = await startGateway({ site: { id: 'site-a' }, gateway: { id }, uplink: { url: broker.url } });
    t.teardown(() => g.stop());
  }
  const f = await FleetClient.connect(broker.url);
  t.teardown(() => f.close());
  let rows = await f.list('site-*', '*');
  for (let i = 0; i < 50 && rows.filter((r) => r.state === 'online').length < 5; i++) rows = await f.list('site-*', '*', 200);
  t.same(
    rows.map((r) => [r.gateway, r.state]),
    ids.map((i) => [i, 'online']),
  );
  t.equal((await f.list('site-a', 'gw[')).length, 0, 'bad glob chars are literal');

  const ok = await rollout(rows, { batch: 2, changeKey: 'ping-1', runStep: (g, id) => f.exec(g, id, 'gateway.ping', {}, 10_000) });
  t.equal(ok.halted, false);
  t.ok(ok.rows.every((r) => r.state === 'done'));

  // gateway.ping refuses unknown args: the canary fails, the other four are untouched.
  const bad = await rollout(rows, { batch: 2, changeKey: 'bad-1', runStep: (g, id) => f.exec(g, id, 'gateway.ping', { nope: 1 }, 10_000) });
  t.equal(bad.halted, true);
  t.match(bad.rows[0]?.detail, /bad_args|invalid/);
  t.equal(bad.rows.filter((r) => r.state === 'untouched').length, 4);

  // The CLI itself: list --json, and a halted exec exits non-zero.
  const cli = (...a: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'scripts/fleet.ts', ...a, '--broker', broker.url], { encoding: 'utf8', timeout: 60_000 });
  const l = cli('list', '--json');
  t.equal(l.status, 0, l.stderr);
  t.equal(JSON.parse(l.stdout).length, 5);
  const h = cli('exec', 'gateway.ping', '--args', '{"nope":1}', '--json', '--timeout-s', '10');
  t.equal(h.status, 1, h.stderr);
  t.equal(JSON.parse(h.stdout).halted, true);
});
