// Another site's page, in real Chromium, with the technician logged in to the console in
// the same browser, tries every state-changing route of the console (read from the
// running server), as written and percent-encoded: no-cors fetches, CORS fetches (PUT/
// PATCH/DELETE need a preflight), form posts (text/plain, so the body can look like
// JSON) into a hidden frame, and sendBeacon. Two attacker origins on loopback: another
// port of the console's own host (same site: the SameSite=Strict cookie IS sent) and
// another host name (cross-site: it is not). Every request the browser sends is seen
// through the browser's own network events: each is refused (401/403/404), none
// succeeds or fails with 5xx; afterwards no account was made, no restart was asked
// for, the technician is still logged in, the gateway runs, and no uncaught exception
// fired. A control shows the console's own page can do the same with its CSRF token.
import t from 'tap';
import { createServer, type Server } from 'node:http';
import { chromium, type Browser } from 'playwright-core';
import { startConsoleGateway, withAccounts, baseConfig, CHROMIUM_ARGS, type ConsoleGateway, type Client } from './helpers.js';
import { tempDir } from '../helpers/gateway.js';

declare const document: any;
declare const navigator: any;
declare const window: any;

const uncaught: unknown[] = [];
const onUncaught = (err: unknown) => void uncaught.push(err);
process.on('uncaughtException', onUncaught);
process.on('unhandledRejection', onUncaught);

let g: ConsoleGateway;
let c: { admin: Client; tech: Client; viewer: Client };
let browser: Browser;
let attacker: Server;
let attackerPort = 0;
let targets: Array<{ method: string; path: string }> = [];

// The attacker's page: every trick, for every target, then a marker when all were sent.
const ATTACK_PAGE = (box: string, list: Array<{ method: string; path: string }>) => `<!doctype html><meta charset="utf-8"><title>cute cats</title>
<body><script>
const box = ${JSON.stringify(box)};
const targets = ${JSON.stringify(list)};
const body = JSON.stringify({ user: 'intruder', role: 'admin', password: 'Takeover-2026!', current: 'x', unlock: true, changes: [], yaml: 'site: {id: x}' });
async function run() {
  for (const t of targets) {
    const url = box + t.path;
    if (t.method === 'POST') {
      await fetch(url, { method: 'POST', mode: 'no-cors', credentials: 'include', body, headers: { 'content-type': 'text/plain' } }).catch(() => {});
      navigator.sendBeacon(url, new Blob([body], { type: 'text/plain' }));
      const frame = document.createElement('iframe');
      frame.name = 'f' + Math.random().toString(16).slice(2);
      frame.style.display = 'none';
      document.body.appendChild(frame);
      const form = document.createElement('form');
      form.method = 'POST';
      form.action = url;
      form.enctype = 'text/plain';
      form.target = frame.name;
      const input = document.createElement('input');
      input.name = body.slice(0, -1) + ',"x":"';
      input.value = '"}';
      form.appendChild(input);
      document.body.appendChild(form);
      form.submit();
    }
    await fetch(url, { method: t.method, mode: 'cors', credentials: 'include', body, headers: { 'content-type': 'application/json' } }).catch(() => {});
  }
  await new Promise((r) => setTimeout(r, 1500));
  document.title = 'done';
}
run();
</script>`;

t.before(async () => {
  const dir = tempDir('ee-console-xsite-');
  g = await startConsoleGateway({ dir, config: baseConfig(dir) });
  c = await withAccounts(g);
  const changing = g.routes().filter((r) => !['GET', 'HEAD', 'OPTIONS'].includes(r.method));
  targets = changing.flatMap((r) => {
    const path = r.url.replace(/:[A-Za-z]+/g, 'tech');
    return [
      { method: r.method, path },
      { method: r.method, path: path.replace('/api/', '/%61pi/') },
    ];
  });
  attacker = createServer((req, res) => {
    const box = req.headers['x-box'] ?? '';
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(ATTACK_PAGE(String(box) || g.base, targets));
  });
  await new Promise<void>((r) => attacker.listen(0, '127.0.0.1', r));
  attackerPort = (attacker.address() as { port: number }).port;
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
});
t.teardown(async () => {
  await browser?.close();
  await new Promise((r) => attacker?.close(r));
  await g?.stop();
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onUncaught);
});

/** A browser context with the technician's session cookie, as after logging in on the console. */
async function technicianBrowser() {
  const ctx = await browser.newContext();
  const [name, value] = c.tech.cookie.split('=') as [string, string];
  await ctx.addCookies([{ name, value, url: g.base, httpOnly: true, sameSite: 'Strict' }]);
  return ctx;
}

for (const [label, host] of [
  ['same site, another port (cookie sent)', '127.0.0.1'],
  ['another site (localhost)', 'localhost'],
] as const) {
  t.test(`a page from ${label} tries every state-changing route: all refused`, async (t) => {
    const ctx = await technicianBrowser();
    const page = await ctx.newPage();
    const seen: Array<{ method: string; url: string; status: number; cookie: boolean }> = [];
    const failed: string[] = [];
    ctx.on('response', async (res) => {
      const req = res.request();
      if (!req.url().startsWith(g.base)) return;
      const headers = await req.allHeaders().catch(() => ({}) as Record<string, string>);
      seen.push({ method: req.method(), url: req.url(), status: res.status(), cookie: 'cookie' in headers });
    });
    ctx.on('requestfailed', (req) => void (req.url().startsWith(g.base) && failed.push(`${req.method()} ${req.url()}: ${req.failure()?.errorText}`)));
    await page.goto(`http://${host}:${attackerPort}/`);
    await page.waitForFunction(() => document.title === 'done', undefined, { timeout: 60_000 });
    await ctx.close();

    const state = seen.filter((s) => s.method !== 'GET' && s.method !== 'HEAD');
    const posts = targets.filter((x) => x.method === 'POST').length;
    t.ok(state.length >= posts * 2, `${state.length} state-changing requests reached the console (${targets.length} targets; ${failed.length} blocked in the browser)`);
    const bad = state.filter((s) => ![401, 403, 404].includes(s.status));
    t.same(bad, [], 'every one refused: 401, 403 or 404');
    t.comment(`statuses: ${JSON.stringify(state.reduce<Record<string, number>>((m, s) => ((m[`${s.method} ${s.status}`] = (m[`${s.method} ${s.status}`] ?? 0) + 1), m), {}))}; with the session cookie: ${state.filter((s) => s.cookie).length}`);
    if (host === '127.0.0.1')
      t.ok(
        state.some((s) => s.cookie),
        'same site: the browser did send the session cookie, and it did not help',
      );
    else
      t.notOk(
        state.some((s) => s.cookie),
        'another site: the SameSite=Strict cookie was not sent',
      );
  });
}

t.test("control: the console's own page, with the CSRF token, can do it", async (t) => {
  const ctx = await technicianBrowser();
  const page = await ctx.newPage();
  await page.goto(`${g.base}/`);
  const csrf = c.tech.csrf;
  const status = await page.evaluate(async (token: string) => (await fetch('/api/commands/gateway.ping', { method: 'POST', headers: { 'content-type': 'application/json', 'x-csrf-token': token }, body: '{}' })).status, csrf);
  t.equal(status, 200, 'same origin with the token: allowed');
  await ctx.close();
});

t.test('afterwards: nothing changed, the technician is still logged in, the gateway runs', async (t) => {
  const users = await c.admin.get('/api/users');
  t.same(users.body.users.map((u: { name: string }) => u.name).sort(), ['admin', 'tech', 'viewer'], 'no account made or deleted');
  t.same(users.body.users.find((u: { name: string; role: string }) => u.name === 'tech').role, 'technician', 'no role changed');
  t.equal((await c.tech.get('/api/session')).body.user, 'tech', 'the technician was not logged out (logout is state-changing too)');
  t.same(g.restarts, [], 'no restart requested');
  t.ok(g.gateway.isStarted(), 'the gateway runs');
  t.same(uncaught, [], 'no uncaught exception or unhandled rejection');
  t.notMatch(g.logLines.join('\n'), /console request failed/);
});
