// sd_notify end to end: the real gateway (edge/main.ts) as a child process, under a fake
// notify socket (a real AF_UNIX datagram socket, see scripts/lib/notify-listener.py),
// talking through the real systemd-notify helper.
import t from 'tap';
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FakeNotifySocket, monoMs, PYTHON } from '../../scripts/lib/notify-socket.js';
import { SystemdNotifier, watchdogUsec } from '../../edge/systemd/notify.js';
import { tempDir } from '../helpers/gateway.js';

const haveTools = existsSync(PYTHON) && ['/usr/bin/systemd-notify', '/bin/systemd-notify'].some((p) => existsSync(p));

t.test('watchdog interval comes from WATCHDOG_USEC, only when meant for us', async (t) => {
  t.equal(watchdogUsec({ WATCHDOG_USEC: '30000000' }, 42), 30_000_000);
  t.equal(watchdogUsec({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '42' }, 42), 30_000_000);
  t.equal(watchdogUsec({ WATCHDOG_USEC: '30000000', WATCHDOG_PID: '43' }, 42), undefined, 'another process’s watchdog');
  t.equal(watchdogUsec({ WATCHDOG_USEC: 'x' }, 42), undefined);
  t.equal(watchdogUsec({}, 42), undefined);
  const n = new SystemdNotifier({ env: { NOTIFY_SOCKET: '/x', WATCHDOG_USEC: '30000000' }, pid: 42 });
  t.equal(n.pingIntervalMs, 15_000, 'pings at half the interval');
  t.equal(new SystemdNotifier({ env: { WATCHDOG_USEC: '30000000' } }).enabled, false, 'no socket: disabled');
});

t.test('a missing helper is reported once and never blocks the gateway', async (t) => {
  const errors: string[] = [];
  const log = { warn: () => {}, debug: () => {}, error: (_o: unknown, m?: string) => void errors.push(String(m)) };
  const n = new SystemdNotifier({ env: { NOTIFY_SOCKET: '/nonexistent/sock' }, command: '/nonexistent/systemd-notify', log });
  await n.ready('running');
  await n.status('still running');
  await n.stopping('stopping');
  t.equal(errors.length, 1);
  t.match(errors[0], /systemd-notify not found/);
});

t.test('gateway under a notify socket: READY, WATCHDOG pings, none while the loop is blocked, STOPPING', { skip: haveTools ? false : 'needs /usr/bin/python3 and systemd-notify (Debian package systemd)' }, async (t) => {
  const sock = new FakeNotifySocket();
  await sock.start();
  t.teardown(() => sock.close());
  const dir = tempDir('ee-notify-gw-');
  const cfg = join(dir, 'config.yaml');
  writeFileSync(cfg, `site: { id: t-site }\ngateway: { id: t-gw, dataDir: ${join(dir, 'data')} }\nlog: { level: warn }\nhttp: { port: 0 }\nuplink: { enabled: false }\n`);
  const pingMs = 200;
  const blockMs = 1500;
  const child = spawn(process.execPath, ['--import', 'tsx', 'edge/main.ts', 'run', '--config', cfg], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: {
      ...process.env,
      NOTIFY_SOCKET: sock.path,
      WATCHDOG_USEC: String(pingMs * 2 * 1000),
      ESTATE_EDGE_DEBUG_BLOCK_LOOP_MS: String(blockMs),
    },
  });
  let stderr = '';
  child.stderr!.on('data', (d) => (stderr += d));
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  t.teardown(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });

  const ready = await sock.waitFor('READY', 60_000);
  t.equal(ready.msg.READY, '1');
  t.equal(ready.msg.MAINPID, String(child.pid), 'MAINPID names the gateway, not the helper');
  t.match(ready.msg.STATUS, /^running/);
  t.equal(sock.with('WATCHDOG').length, 0, 'no ping before READY');

  // Regular pings at about half the interval.
  const first = sock.with('WATCHDOG').length;
  await sock.waitFor('WATCHDOG', 5000, first + 5);
  const pings = sock.with('WATCHDOG').slice(first, first + 5).map((m) => m.t);
  const gaps = pings.slice(1).map((p, i) => p - pings[i]!);
  t.ok(gaps.every((g) => g > pingMs * 0.5 && g < pingMs * 3), `ping gaps ${gaps.map(Math.round).join(', ')} ms around ${pingMs} ms`);

  // Freeze the event loop: the pings must stop for as long as it is blocked.
  const before = sock.with('WATCHDOG').length;
  const blockedAt = monoMs();
  child.kill('SIGUSR2');
  await sock.waitFor('WATCHDOG', blockMs + 5000, before + 1);
  // Give a ping already in flight at the signal time a grace period.
  const during = sock.with('WATCHDOG').filter((m) => m.t > blockedAt + 150 && m.t < blockedAt + blockMs - 100);
  t.equal(during.length, 0, 'no WATCHDOG while the loop is blocked');
  const resumed = sock.with('WATCHDOG').filter((m) => m.t > blockedAt + 150)[0];
  t.ok(resumed && resumed.t - blockedAt >= blockMs - 100, `pings resume after the block (${Math.round(resumed!.t - blockedAt)} ms)`);

  child.kill('SIGTERM');
  const stopping = await sock.waitFor('STOPPING', 15_000);
  t.equal(stopping.msg.STOPPING, '1');
  t.match(stopping.msg.STATUS, /stopping: SIGTERM/);
  t.equal(await exited, 0, `clean exit (stderr: ${stderr.slice(0, 500)})`);
  const last = sock.messages[sock.messages.length - 1]!;
  t.ok('STOPPING' in last.msg || 'BARRIER' in last.msg, 'nothing after STOPPING but its barrier');
});
