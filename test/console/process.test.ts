// The gateway as its own process (edge/main.ts run, as the unit starts it), attacked the
// way issue 13 found it could be crashed: `POST /%61pi/system/restart` without a session
// (before the fix: a TypeError in a timer → uncaught exception → doors to their safe
// state), the same as a no-cors request from a web page, an account take-over attempt,
// malformed and aborted requests. The process must keep running and log no uncaught
// exception; then the admin's real restart ends it the orderly way (exit status 0, not
// the crash status).
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { baseConfig, writeConfig, rawRequest, Client, PASSWORDS } from './helpers.js';
import { tempDir } from '../helpers/gateway.js';
import { REPO } from '../../scripts/lib/unit.js';

let child: ChildProcess;
const lines: string[] = [];
let base = '';
let exit: Promise<number | null>;

t.before(async () => {
  const dir = tempDir('ee-console-proc-');
  const configPath = join(dir, 'config.yaml');
  writeConfig(configPath, baseConfig(dir));
  const env = { ...process.env };
  delete env.NOTIFY_SOCKET;
  child = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'edge', 'main.ts'), 'run', '--config', configPath], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env });
  exit = new Promise((r) => child.once('exit', (code) => r(code)));
  const kill = () => child.kill('SIGKILL');
  process.once('exit', kill);
  child.once('exit', () => process.off('exit', kill));
  child.stderr!.on('data', (d: Buffer) => lines.push(`stderr: ${d.toString()}`));
  base = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`gateway process: not started within 60 s\n${lines.join('\n')}`)), 60_000);
    child.once('exit', (code) => reject(new Error(`gateway process exited (${code}) before starting\n${lines.join('\n')}`)));
    let url = '';
    createInterface({ input: child.stdout! }).on('line', (line) => {
      lines.push(line);
      const rec = (() => {
        try {
          return JSON.parse(line) as { msg?: string; url?: string };
        } catch {
          return {};
        }
      })();
      if (rec.msg === 'technician console listening') url = rec.url ?? '';
      if (rec.msg === 'gateway started') {
        clearTimeout(timer);
        resolve(url.replace(/\/$/, ''));
      }
    });
  });
});
t.teardown(() => {
  if (child.exitCode === null) child.kill('SIGKILL');
});

const running = () => child.exitCode === null && child.signalCode === null;

t.test('attacks without a session: refused, the process keeps running, nothing uncaught', async (t) => {
  const attempts: Array<[string, string, Record<string, string>, string?]> = [
    ['POST', '/%61pi/system/restart', {}],
    ['POST', '/%61pi/system/restart', { origin: 'http://evil.example', 'content-type': 'text/plain', 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors' }, 'x'],
    ['POST', `${base}/api/system/restart`, {}],
    ['POST', '/%61pi/users', { 'content-type': 'application/json' }, JSON.stringify({ user: 'x', role: 'admin', password: 'Takeover-2026!' })],
    ['PATCH', '/%61pi/users/admin', { 'content-type': 'application/json' }, JSON.stringify({ password: 'Takeover-2026!' })],
    ['POST', '/%61pi/meters/rawpoll', { 'content-type': 'application/json' }, JSON.stringify({ bus: 'x', requestHex: '0103' })],
    ['GET', '/%61pi/camera/snapshot', {}],
    ['GET', '/%61pi/live', {}],
    ['POST', '/api/login', { 'content-type': 'application/json' }, '{not json'],
    ['POST', '/api/setup', { 'content-type': 'application/json' }, JSON.stringify({ token: 'x'.repeat(199), user: 'a', password: 'b' })],
    ['OPTIONS', '/api/users', { origin: 'http://evil.example', 'access-control-request-method': 'DELETE' }],
  ];
  for (const [method, target, headers, body] of attempts) {
    const r = await rawRequest(base, method, target, { headers, ...(body !== undefined ? { body } : {}) });
    t.ok([400, 401, 403, 404].includes(r.status), `${method} ${target} → ${r.status}`);
  }
  // A request whose body never completes, and one cut off in the middle of its headers.
  const u = new URL(base);
  for (const raw of [`POST /%61pi/system/restart HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{"a":`, 'GET /api/sess']) {
    await new Promise<void>((resolve) => {
      const s = connect(Number(u.port), u.hostname, () => {
        s.write(raw);
        setTimeout(() => (s.destroy(), resolve()), 200);
      });
      s.on('error', () => resolve());
    });
  }
  await new Promise((r) => setTimeout(r, 800)); // past the 200 ms restart timer of the old crash
  t.ok(running(), 'the gateway process is still running');
  t.notMatch(lines.join('\n'), /uncaught exception|"level":60|restart requested/, 'no uncaught exception, no fatal log, no restart');
});

t.test("the admin's real restart: answered, then an orderly exit (status 0)", async (t) => {
  const token = /"setupToken":"([^"]+)"/.exec(lines.join('\n'))?.[1];
  t.ok(token, 'setup token in the log');
  const admin = new Client(base);
  t.equal((await admin.post('/api/setup', { token, user: 'admin', password: PASSWORDS.admin })).status, 201);
  const r = await admin.post('/api/system/restart');
  t.equal(r.status, 200);
  const code = await Promise.race([exit, new Promise<'timeout'>((res) => setTimeout(() => res('timeout'), 30_000))]);
  t.equal(code, 0, 'exited for the restart with status 0 (systemd starts it again), not the crash status');
  t.match(lines.join('\n'), /restart requested: requested from the console by admin/);
  t.notMatch(lines.join('\n'), /uncaught exception/);
});
