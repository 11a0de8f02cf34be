// The console as a box serves it: the production bundle (scripts/bundle.ts) built and run
// with the unit's flags, its built page in a real browser (Debian's Chromium). The other
// console tests run the source tree, which serves the page's source modules; this one
// checks the built page: the first render from one script, every other page loaded when
// opened and sharing the shell's session and language, the CSP unchanged, no script errors.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { startBundledConsole, estateConfig, CHROMIUM_ARGS, PASSWORDS, Client, type BundledConsole } from './helpers.js';
import { tempDir } from '../helpers/gateway.js';
import { Broker } from '../helpers/broker.js';

const PAGES = ['meters', 'doors', 'people', 'camera', 'config', 'system', 'users'];

let broker: Broker;
let g: BundledConsole;
let browser: Browser;
let admin: Client;
t.before(async () => {
  broker = await Broker.start();
  const dir = tempDir('ee-console-bundle-');
  g = await startBundledConsole(dir, estateConfig(dir, broker.url));
  admin = new Client(g.base);
  const r = await admin.post('/api/setup', { token: g.setupToken(), user: 'admin', password: PASSWORDS.admin });
  if (r.status !== 201) throw new Error(`setup failed: ${r.status}`);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
});
t.teardown(async () => {
  await browser?.close();
  await g?.stop();
  await broker?.stop();
});

t.test('the bundled gateway serves the page built with it', async (t) => {
  const listening = g.logLines.map((l) => JSON.parse(l) as { msg?: string; page?: string }).find((r) => r.msg === 'technician console listening');
  t.equal(listening?.page, join(g.outdir, 'console-web'), 'the page beside the bundle');
  const html = await admin.get('/');
  t.match(html.body, /<script type="module" src="\/app\.js"><\/script>/);
  t.notMatch(html.body, /modulepreload/, 'one script: nothing to preload');
  t.match(html.body, /<script type="application\/json" id="ee-boot">/, 'first-render data inlined as before');
  t.equal(html.headers.get('content-security-policy'), (await new Client(g.base).get('/style.css')).headers.get('content-security-policy'));
  t.match(html.headers.get('content-security-policy') ?? '', /script-src 'self';/, 'CSP unchanged: no inline script allowed');
  const app = await admin.get('/app.js');
  t.equal(app.status, 200);
  t.equal(app.body, readFileSync(join(g.outdir, 'console-web', 'app.js'), 'utf8'));
  t.notMatch(app.body, /from ?["']\.\/(lib|i18n|pages\/dashboard)\.js["']/, 'lib, i18n and the dashboard are inside app.js');
  t.ok(app.body.split('\n').length < 5, 'minified');
  t.equal((await admin.get('/lib.js')).status, 404, 'no separate shell modules');
  const meters = await admin.get('/pages/meters.js');
  t.equal(meters.status, 200);
  t.match(meters.body, /from ?"\.\.\/app\.js"/, 'a page takes the shared helpers from the shell');
});

t.test('logged in: the dashboard from one script, every page on demand, one session and one language', async (t) => {
  const [name, value] = admin.cookie.split('=');
  const ctx = await browser.newContext({ viewport: { width: 360, height: 740 } });
  await ctx.addCookies([{ name: name!, value: value!, url: g.base }]);
  const page = await ctx.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  const requested: string[] = [];
  page.on('request', (r) => requested.push(new URL(r.url()).pathname));
  await page.goto(`${g.base}/`);
  await page.waitForSelector('body[data-rendered=dashboard] .page[data-page=dashboard]');
  t.match(await page.textContent('[data-testid=meters-summary]'), /^\d+ 在线 \/ \d+ 离线$/, 'dashboard drawn with data, in Chinese');
  t.same(
    requested.filter((p) => p.endsWith('.js')),
    ['/app.js'],
    'the first render loads one script',
  );
  await page.waitForSelector('#live-dot[data-live="1"]', { timeout: 10_000 });
  for (const id of PAGES) {
    await page.click(`nav a[data-page=${id}]`);
    await page.waitForSelector(`body[data-rendered=${id}] .page[data-page=${id}]`, { timeout: 10_000 });
    t.ok(requested.includes(`/pages/${id}.js`), `${id}: its own script, loaded when opened`);
    if (id === 'meters') t.match(await page.textContent('.page[data-page=meters]'), /设备/, 'meters: in Chinese');
  }
  // The accounts page (admin only) lists the logged-in admin: it sees the shell's session.
  t.match(await page.textContent('.page[data-page=users]'), /admin/, 'a lazy page shares the session');
  await page.click('#lang-btn');
  await page.waitForSelector('body[data-rendered=users]');
  await page.click('nav a[data-page=meters]');
  await page.waitForSelector('body[data-rendered=meters] .page[data-page=meters]', { timeout: 10_000 });
  const meters = (await page.textContent('.page[data-page=meters]')) ?? '';
  t.ok(meters.includes('Device') && !meters.includes('设备'), 'a lazy page follows the language switch (one i18n instance)');
  t.same(errors, [], 'no script errors');
  await ctx.close();
});
