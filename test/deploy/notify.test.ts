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

t.test('a reload: RELOADING=1 with MONOTONIC_USEC on the monotonic clock, then READY=1 from the next run', { skip: haveTools ? false : 'needs /usr/bin/python3 and systemd-notify (Debian package systemd)' }, async (t) => {
  const sock = new FakeNotifySocket();
  await sock.start();
  t.teardown(() => sock.close());
  await new SystemdNotifier({ env: { NOTIFY_SOCKET: sock.path } }).reloading('reloading: config applied');
  const r = await sock.waitFor('RELOADING', 15_000);
  t.equal(r.msg.RELOADING, '1');
  t.match(r.msg.STATUS, /reloading: config applied/);
  // r.t is Python's time.monotonic() at arrival: CLOCK_MONOTONIC read by another process.
  const sentMs = Number(r.msg.MONOTONIC_USEC) / 1000;
  t.ok(sentMs <= r.t + 1 && r.t - sentMs < 5000, `MONOTONIC_USEC (${sentMs.toFixed(0)} ms) is CLOCK_MONOTONIC, just before arrival (${r.t.toFixed(0)} ms)`);
  // The next run's notifier (a new one, as edge/cli.ts makes per run) ends the reload.
  await new SystemdNotifier({ env: { NOTIFY_SOCKET: sock.path } }).ready('running');
  const ready = await sock.waitFor('READY', 15_000);
  t.equal(ready.msg.READY, '1');
});

t.test('gateway under a notify socket: READY, WATCHDOG pings, none while the loop is blocked, STOPPING', { skip: haveTools ? false : 'needs /usr/bin/python3 and systemd-notify (Debian package systemd)' }, async (t) => {
  const sock = new FakeNotifySocket();
  await sock.start();
  t.teardown(() => sock.close());
  const dir = tempDir('ee-notify-gw-');
  const cfg = join(dir, 'config.yaml');
  writeFileSync(cfg, `site: { id: t-site }\ngateway: { id: t-gw, dataDir: ${join(dir, 'data')} }\nlog: { level: warn }\nhttp: { port: 0 }\nuplink: { enabled: false }\n`);
  // Generous margins: the suite runs on a shared, busy machine.
  const pingMs = 250;
  const blockMs = 3000;
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

  // Regular pings at about half the interval (median, robust to a late tick or two).
  const first = sock.with('WATCHDOG').length;
  await sock.waitFor('WATCHDOG', 15_000, first + 7);
  const pings = sock
    .with('WATCHDOG')
    .slice(first, first + 7)
    .map((m) => m.t);
  const gaps = pings.slice(1).map((p, i) => p - pings[i]!);
  const med = [...gaps].sort((a, b) => a - b)[Math.floor(gaps.length / 2)]!;
  t.ok(med > pingMs * 0.5 && med < pingMs * 3, `median ping gap ${Math.round(med)} ms for ${pingMs} ms (gaps ${gaps.map(Math.round).join(', ')})`);

  // Freeze the event loop for blockMs: no ping may arrive for about that long (one
  // helper already in flight at the freeze may still deliver), then they resume.
  const blockedAt = monoMs();
  const lastBefore = sock.with('WATCHDOG').at(-1)!.t;
  child.kill('SIGUSR2');
  await sock.waitUntil(() => sock.with('WATCHDOG').some((m) => m.t > blockedAt + blockMs), blockMs + 20_000, 'WATCHDOG after the block');
  const around = [
    lastBefore,
    ...sock
      .with('WATCHDOG')
      .filter((m) => m.t > lastBefore)
      .map((m) => m.t),
  ];
  const firstAfter = around.findIndex((x) => x > blockedAt + blockMs);
  const window = around.slice(0, firstAfter + 1);
  const maxGap = Math.max(...window.slice(1).map((p, i) => p - window[i]!));
  t.ok(maxGap >= blockMs - 600, `a gap of ${Math.round(maxGap)} ms in the pings while the loop was blocked for ${blockMs} ms`);
  t.ok(med < blockMs / 4, 'the regular gap is far below the block (the check can fail)');
  await sock.waitFor('WATCHDOG', 10_000, sock.with('WATCHDOG').length + 2);
  t.pass('pings resume after the block');

  child.kill('SIGTERM');
  const stopping = await sock.waitFor('STOPPING', 15_000);
  t.equal(stopping.msg.STOPPING, '1');
  t.match(stopping.msg.STATUS, /stopping: SIGTERM/);
  t.equal(await exited, 0, `clean exit (stderr: ${stderr.slice(0, 500)})`);
  const last = sock.messages[sock.messages.length - 1]!;
  t.ok('STOPPING' in last.msg || 'BARRIER' in last.msg, 'nothing after STOPPING but its barrier');
});
