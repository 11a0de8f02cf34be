// The console in a real browser (Debian's Chromium through playwright-core) against a
// real gateway on simulated meters and doors with a real Mosquitto: first-run setup with
// the token from the log, a live meter value changing, a door unlock and its event,
// a config edit with an invalid then a valid value, lockout, language switch, and a
// screenshot of every page at desktop and phone width (test-artifacts/console/).
import t from 'tap';
import { mkdirSync, readFileSync } from 'node:fs';
import { parse } from 'yaml';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startConsoleGateway, estateConfig, CHROMIUM_ARGS, PASSWORDS, Client, type ConsoleGateway } from './helpers.js';
import { tempDir } from '../helpers/gateway.js';
import { Broker } from '../helpers/broker.js';
import { metersModule } from '../../edge/meters/module.js';
import { createDoorsModule } from '../../edge/doors/module.js';

// Code passed to page.evaluate/waitForFunction runs in the browser; the project is
// compiled without the DOM library, so these globals are declared for this file only.
declare const document: { querySelector(s: string): { textContent: string | null } | null; documentElement: { scrollWidth: number } };
declare const window: { innerWidth: number };

const ARTIFACTS = 'test-artifacts/console';
const PAGES = ['dashboard', 'meters', 'doors', 'people', 'camera', 'config', 'system', 'users', 'account'];

let broker: Broker;
let g: ConsoleGateway;
let browser: Browser;
t.before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  broker = await Broker.start();
  const dir = tempDir('ee-console-ui-');
  g = await startConsoleGateway({ dir, config: estateConfig(dir, broker.url), modules: [metersModule, createDoorsModule] });
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
});
t.teardown(async () => {
  await browser?.close();
  await g?.stop();
  await broker?.stop();
});

async function show(page: Page, id: string): Promise<void> {
  await page.click(`nav a[data-page=${id}]`);
  await page.waitForSelector(`body[data-rendered=${id}] .page[data-page=${id}]`, { timeout: 10_000 });
}

/** A fresh browser context at the given width, collecting script errors, accepting confirm() dialogs. */
async function openPage(width: number, height: number): Promise<{ page: Page; errors: string[]; close: () => Promise<void> }> {
  const ctx = await browser.newContext({ viewport: { width, height } });
  const page = await ctx.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // Refused requests (401/403/409/422/429) are expected in these tests; the browser logs them.
  page.on('console', (m) => m.type() === 'error' && !/401|403|409|422|429/.test(m.text()) && errors.push(m.text()));
  page.on('dialog', (d) => void d.accept());
  await page.goto(`${g.base}/`);
  return { page, errors, close: () => ctx.close() };
}

t.test('first run, live values, door unlock, config edit, screenshots', async (t) => {
  const { page, errors, close } = await openPage(1280, 860);
  await page.waitForSelector('input[name=token]');
  await page.screenshot({ path: `${ARTIFACTS}/setup-desktop.png` });
  await page.fill('input[name=token]', 'wrong-token');
  await page.fill('input[name=user]', 'admin');
  await page.fill('input[name=password]', PASSWORDS.admin);
  await page.click('button[type=submit]');
  await page.waitForSelector('p.error:not(:empty)');
  t.match(await page.textContent('p.error'), /设置令牌错误/, 'wrong token refused, in Chinese');
  await page.fill('input[name=token]', g.setupToken());
  await page.click('button[type=submit]');
  await page.waitForSelector('body[data-rendered=dashboard]');
  t.match(await page.textContent('nav'), /总览.*表计.*门禁/, 'Chinese by default');
  await page.waitForSelector('#live-dot[data-live="1"]', { timeout: 10_000 });

  // A live value: the meter's voltage changes on screen without a reload.
  await show(page, 'meters');
  const cell = page.locator('[data-testid="meter-values-riser-a"]');
  const first = await cell.textContent();
  await page.waitForFunction((before) => document.querySelector('[data-testid="meter-values-riser-a"]')?.textContent !== before, first, { timeout: 15_000 });
  t.pass('meter values changed live');
  // Poll tester: one request, the frames both ways in hex.
  await page.selectOption('[data-testid=poll-device]', 'riser-a');
  await page.click('[data-testid=poll-run]');
  await page.waitForSelector('[data-testid=frames] code');
  t.match(await page.textContent('[data-testid=frames]'), /发送.*01 0[34] .*接收.*01 0[34] /s, 'tx and rx frames in hex');

  // Unlock a door and see the state and the access event.
  await show(page, 'doors');
  await page.click('[data-testid=unlock-gate]');
  await page.waitForFunction(() => /已开锁/.test(document.querySelector('[data-testid=door-state-gate]')?.textContent ?? ''), null, { timeout: 10_000 });
  await page.waitForFunction(() => /小区大门.*控制台.*允许.*admin/s.test(document.querySelector('[data-testid=access-log]')?.textContent ?? ''), null, { timeout: 10_000 });
  t.pass('door unlocked and the access event listed');

  // People: add a person through the form.
  await show(page, 'people');
  await page.click('text=新增');
  await page.fill('[data-testid=person-form] input[name=id]', 'p-100');
  await page.fill('[data-testid=person-form] input[name=name]', '张三');
  await page.check('[data-testid=person-form] [data-testid=door-groups] input[value=residents-a]');
  await page.click('[data-testid=person-form] button[type=submit]');
  await page.waitForFunction(() => /p-100.*张三/s.test(document.querySelector('.page .people-table')?.textContent ?? ''), null, { timeout: 10_000 });
  t.pass('person added');

  // Config: an invalid value is shown at its field; a valid one is applied.
  await show(page, 'config');
  const before = readFileSync(g.configPath, 'utf8');
  await page.click('details[data-section=status] summary');
  await page.fill('input[name="status.intervalS"]', '1');
  await page.dispatchEvent('input[name="status.intervalS"]', 'change');
  await page.click('[data-testid=apply]');
  await page.waitForSelector('[data-field-error="status.intervalS"]:not(:empty)');
  t.match(await page.textContent('[data-field-error="status.intervalS"]'), /必须 ≥ 5/, 'error at the field, in Chinese');
  t.equal(readFileSync(g.configPath, 'utf8'), before, 'nothing written');
  await page.screenshot({ path: `${ARTIFACTS}/config-error-desktop.png`, fullPage: true });
  await page.fill('input[name="status.intervalS"]', '30');
  await page.dispatchEvent('input[name="status.intervalS"]', 'change');
  await page.click('[data-testid=apply]');
  await page.waitForFunction(() => /已写入配置/.test(document.querySelector('[data-testid=config-status]')?.textContent ?? ''), null, { timeout: 10_000 });
  t.match(await page.textContent('[data-testid=diff]'), /status\.intervalS.*60.*30/s, 'diff against the running config');
  t.equal(parse(readFileSync(g.configPath, 'utf8')).status.intervalS, 30, 'applied to the file');
  const end = Date.now() + 3000;
  while (!g.restarts.length && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
  t.match(g.restarts[0] ?? '', /config applied from the console by admin/, 'service restart requested');

  // Screenshots of every page, desktop and phone; English switch on the way.
  for (const id of PAGES) {
    await show(page, id);
    await page.screenshot({ path: `${ARTIFACTS}/${id}-desktop.png`, fullPage: true });
  }
  await page.setViewportSize({ width: 360, height: 740 });
  for (const id of PAGES) {
    await show(page, id);
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    t.ok(overflow <= 0, `${id}: no horizontal scrolling of the page at 360 px (overflow ${overflow})`);
    await page.screenshot({ path: `${ARTIFACTS}/${id}-phone.png`, fullPage: true });
  }
  await page.click('#lang-btn');
  await page.waitForFunction(() => /Dashboard/.test(document.querySelector('nav')?.textContent ?? ''));
  await page.screenshot({ path: `${ARTIFACTS}/users-phone-en.png`, fullPage: true });
  t.same(errors, [], 'no script errors');
  await close();
});

t.test('a logged-in visit: the dashboard drawn with the inlined data, then live; fresh data on the way back', async (t) => {
  const admin = new Client(g.base);
  t.equal((await admin.login('admin', PASSWORDS.admin)).status, 200);
  const [name, value] = admin.cookie.split('=');
  for (const lang of ['zh', 'en'] as const) {
    const ctx = await browser.newContext({ viewport: { width: 360, height: 740 } });
    await ctx.addCookies([{ name: name!, value: value!, url: g.base }]);
    if (lang === 'en') await ctx.addInitScript(`localStorage.setItem('ee.lang', 'en')`);
    const page = await ctx.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
    const api: string[] = [];
    page.on('request', (r) => r.url().includes('/api/') && api.push(new URL(r.url()).pathname));
    await page.goto(`${g.base}/`);
    await page.waitForSelector('body[data-rendered=dashboard] .page[data-page=dashboard]');
    t.same(
      api.filter((p) => p !== '/api/live'),
      [],
      `${lang}: drawn from the inlined data, no API request before it`,
    );
    const text = async (id: string) => (await page.textContent(`[data-testid=${id}]`))?.trim() ?? '';
    t.match(await text('uplink'), lang === 'zh' ? /已连接/ : /connected/, `${lang}: uplink state`);
    t.match(await text('outbox-records'), /^\d+$/, `${lang}: outbox depth`);
    t.match(await text('meters-summary'), lang === 'zh' ? /^\d+ 在线 \/ \d+ 离线$/ : /^\d+ online \/ \d+ offline$/, `${lang}: meters online/offline`);
    t.match(await text('doors-summary'), /^\d+$/, `${lang}: doors`);
    t.match(await page.textContent('nav'), lang === 'zh' ? /总览.*表计.*门禁.*账号/ : /Dashboard.*Meters.*Doors.*Accounts/, `${lang}: navigation for an admin`);
    t.match(await page.textContent('#who'), /admin/, `${lang}: who is logged in`);
    t.notOk(await page.$('#ee-boot'), 'the inlined data is consumed');
    await page.waitForSelector('#live-dot[data-live="1"]', { timeout: 10_000 });
    t.pass(`${lang}: live stream connected after the first render`);
    // Away and back: the dashboard asks the API (the inlined data was for the first render only).
    await show(page, 'meters');
    await show(page, 'dashboard');
    t.ok(api.includes('/api/dashboard') && api.includes('/api/capabilities'), `${lang}: fresh data from the API on the way back`);
    t.same(errors, [], `${lang}: no script errors`);
    await ctx.close();
  }
});

t.test('lockout after repeated wrong passwords', async (t) => {
  const { page, errors, close } = await openPage(360, 740);
  await page.waitForSelector('input[name=user]');
  // Each submission waits for the server's answer to it: waiting for "an error is shown"
  // passed at once from the second try on (the previous error was still there), and a fixed
  // 300 ms after the right password left the old "locked" text to pass whatever happened.
  const submit = async () => {
    const [res] = await Promise.all([page.waitForResponse((r) => r.request().method() === 'POST' && new URL(r.url()).pathname === '/api/login', { timeout: 10_000 }), page.click('button[type=submit]')]);
    await page.waitForSelector('button[type=submit]:not([disabled])');
    return { status: res.status(), body: (await res.json()) as { error?: { code?: string } } };
  };
  const answers: Array<{ status: number; body: { error?: { code?: string } } }> = [];
  for (let i = 0; i < 3; i++) {
    await page.fill('input[name=user]', 'admin');
    await page.fill('input[name=password]', `wrong-${i}`);
    answers.push(await submit());
  }
  t.same(answers.map((a) => a.status).slice(0, 2), [401, 401], 'wrong passwords refused');
  t.match(await page.textContent('p.error'), /锁定/, 'locked, said in Chinese');
  await page.fill('input[name=password]', PASSWORDS.admin);
  const right = await submit();
  t.equal(right.status, 429, 'the right password is refused while locked');
  t.equal(right.body.error?.code, 'locked');
  t.match(await page.textContent('p.error'), /锁定/, 'and the page says it is locked');
  await page.screenshot({ path: `${ARTIFACTS}/lockout-phone.png` });
  t.same(errors, []);
  await close();
});
