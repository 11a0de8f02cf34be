// DNS rebinding: a web page whose own name (evil.test) is made to resolve to the box
// reaches the console under that name, and the browser then counts the console as
// evil.test's own origin (Origin == Host, so the CSRF check passes). The console answers
// only to IP literals, localhost, this machine's hostname(s) and console.hostNames.
// Unit cases of the Host parsing, the real gateway over HTTP, and real Chromium with
// its resolver mapping evil.test to 127.0.0.1.
import t from 'tap';
import { hostname } from 'node:os';
import { connect } from 'node:net';
import { chromium } from 'playwright-core';
import { startConsoleGateway, baseConfig, rawRequest, CHROMIUM_ARGS, type ConsoleGateway } from './helpers.js';
import { tempDir } from '../helpers/gateway.js';
import { hostCheck, hostName } from '../../edge/console/hosts.js';

t.test('Host header parsing and the allowed names', async (t) => {
  t.equal(hostName('192.168.1.20:8080'), '192.168.1.20');
  t.equal(hostName('[fe80::1]:8443'), 'fe80::1');
  t.equal(hostName('[::1]'), '::1');
  t.equal(hostName('Box-7.Local.:80'), 'box-7.local');
  t.equal(hostName('[::1]x'), undefined, 'junk after an IPv6 literal');
  t.equal(hostName('a:b:c'), undefined, 'an unbracketed IPv6 literal is not a Host');
  t.equal(hostName(''), undefined);
  const ok = hostCheck(['gate.estate.lan'], 'ee-box-17');
  for (const h of ['127.0.0.1:8080', '192.168.1.20', '[::1]:8080', '[fe80::1]', 'localhost:8080', 'LOCALHOST', 'ee-box-17:8080', 'ee-box-17.local', 'ee-box-17.local.', 'gate.estate.lan:8080', 'app.localhost']) t.ok(ok(h), `${h} is the box`);
  for (const h of [undefined, '', 'evil.test', 'evil.test:8080', '192.168.1.20.evil.test', 'ee-box-17.evil.test', 'localhost.evil.test', 'gate.estate.lan.evil.test', 'estate.lan', '[evil.test]']) t.notOk(ok(h), `${String(h)} is refused`);
});

let g: ConsoleGateway;
t.test('the running console', async (t) => {
  const dir = tempDir('ee-console-hosts-');
  g = await startConsoleGateway({ dir, config: baseConfig(dir, { console: { host: '127.0.0.1', port: 0, hostNames: ['gate.estate.lan'] } }) });
  t.teardown(() => g.stop());
  const port = new URL(g.base).port;

  await t.test('refused under a name it does not own, on every kind of route', async (t) => {
    for (const [method, path] of [
      ['GET', '/'],
      ['GET', '/app.js'],
      ['GET', '/api/session'],
      ['POST', '/api/login'],
      ['POST', '/api/setup'],
      ['GET', '/api/dashboard'],
      ['GET', '/no/such/route'],
    ] as const) {
      const body = method === 'POST' ? JSON.stringify({ user: 'admin', password: 'x', token: 'x' }) : undefined;
      const r = await rawRequest(g.base, method, path, { headers: { host: `evil.test:${port}`, origin: `http://evil.test:${port}`, ...(body ? { 'content-type': 'application/json' } : {}) }, body });
      t.equal(r.status, 421, `${method} ${path} under evil.test`);
      t.equal(JSON.parse(r.body).error.code, 'bad_host');
    }
    // An empty Host, and HTTP/1.0 without one, on a socket of their own (Node's client
    // fills in a Host of its own): refused, never answered.
    for (const [what, head] of [
      ['an empty Host', 'GET /api/session HTTP/1.1\r\nHost: \r\nConnection: close\r\n\r\n'],
      ['no Host (HTTP/1.0)', 'GET /api/session HTTP/1.0\r\n\r\n'],
    ]) {
      const status = await new Promise<number>((resolve, reject) => {
        const s = connect(Number(port), '127.0.0.1', () => s.end(head));
        let buf = '';
        s.setTimeout(5000, () => s.destroy(new Error(`${what}: no answer within 5 s`)));
        s.on('data', (d: Buffer) => (buf += d.toString()));
        s.on('close', () => resolve(Number(/^HTTP\/1\.[01] (\d{3})/.exec(buf)?.[1] ?? 0)));
        s.on('error', reject);
      });
      t.ok(status === 421 || status === 400, `${what}: ${status}`);
    }
  });

  await t.test('answered under its IP, localhost, its hostname and the configured name', async (t) => {
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `${hostname()}:${port}`, `gate.estate.lan:${port}`, `GATE.estate.lan.:${port}`]) {
      const r = await rawRequest(g.base, 'GET', '/api/session', { headers: { host } });
      t.equal(r.status, 200, host);
    }
  });

  await t.test('real Chromium: a rebinding page under evil.test gets nothing', async (t) => {
    const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: [...CHROMIUM_ARGS, '--host-resolver-rules=MAP evil.test 127.0.0.1'] });
    t.teardown(() => browser.close());
    const page = await (await browser.newContext()).newPage();
    const nav = await page.goto(`http://evil.test:${port}/`);
    t.equal(nav?.status(), 421, 'the page itself is refused');
    // Same-origin script from the attacker's page (Origin == Host == evil.test): refused.
    const res = await page.evaluate(async () => {
      const out: number[] = [];
      for (const [m, p] of [
        ['GET', '/api/session'],
        ['POST', '/api/login'],
        ['POST', '/api/setup'],
      ]) {
        const r = await fetch(p, { method: m, headers: { 'content-type': 'application/json' }, body: m === 'POST' ? '{"user":"admin","password":"x","token":"x"}' : undefined });
        out.push(r.status);
      }
      return out;
    });
    t.same(res, [421, 421, 421]);
    t.match(await g.gateway.metrics.text(), /estate_console_auth_failures_total\{reason="bad_host"\} [1-9]/, 'counted');
  });
});
