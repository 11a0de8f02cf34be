// The technician's tasks in real Chromium (Debian's, through playwright-core) on a phone
// (390 × 844), against a real gateway on simulated meters and doors with a real Mosquitto:
// every page without a Latin-only string in Chinese (ids, names and units aside), meters
// read now with the result as a table under the button, a bus scan over an address range
// with progress and cancel, the poll tester's frames as bare hex, the dashboard's door
// card, the access log with names and who unlocked, a person added with door groups
// picked from the gateway's, a schedule and the enabled flag, the own password change for
// a viewer, a confirmed role change. Screenshots in test-artifacts/console/tech-*.png.
import t from 'tap';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startConsoleGateway, estateConfig, withAccounts, CHROMIUM_ARGS, PASSWORDS, Client, type ConsoleGateway } from './helpers.js';
import { tempDir } from '../helpers/gateway.js';
import { Broker } from '../helpers/broker.js';
import { Platform } from '../helpers/subscriber.js';
// Code passed to waitForFunction runs in the browser (the project is compiled without the DOM library).
declare const document: any; // eslint-disable-line @typescript-eslint/no-explicit-any
declare const window: { innerWidth: number };
import { metersModule } from '../../edge/meters/module.js';
import { createDoorsModule } from '../../edge/doors/module.js';

const ARTIFACTS = 'test-artifacts/console';
const PHONE = { width: 390, height: 844 };
const PAGES = ['dashboard', 'meters', 'doors', 'people', 'config', 'system', 'users', 'account'];

let broker: Broker;
let g: ConsoleGateway;
let browser: Browser;
let accounts: Awaited<ReturnType<typeof withAccounts>>;
t.before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  broker = await Broker.start();
  const dir = tempDir('ee-console-tech-');
  g = await startConsoleGateway({ dir, config: estateConfig(dir, broker.url), modules: [metersModule, createDoorsModule] });
  accounts = await withAccounts(g);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
});
t.teardown(async () => {
  await browser?.close();
  await g?.stop();
  await broker?.stop();
});

/**
 * Visible text in the page that is Latin only: each text node shown on screen with a word
 * of two or more Latin letters and no Chinese character, outside data elements (code, pre,
 * [translate=no]: ids, names, hex, logs), after removing units and the technical
 * abbreviations a Chinese technician reads as they are. Returns the offending strings.
 */
const LATIN_ONLY = `(() => {
  const ALLOWED = /\\b(k?Wh|k?W|k?var|kVA|VA|V|A|Hz|m3|m³|MB|GB|KB|KiB|MiB|B|ms|s|fps|CPU|RSS|PSS|YAML|JSON|MQTT|MQTTS|TLS|Modbus|RTU|TCP|DL\\/T|CJ\\/T|GPIO|SHA-?256|sha256|CRC|ID|IP|IPv4|IPv6|HTTP|HTTPS|RTSP|Node|English|ONNX|SQLite|NTP|UTC|RS-485|PID|QR|SSH|USB|LED|API|URL|MJPEG|JPEG|PNG|OK)\\b/g;
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    const el = n.parentElement;
    if (!el || el.closest('code, pre, samp, kbd, script, style, textarea, [translate=no], [hidden], #toast:not(.show)')) continue;
    if (el.tagName === 'OPTION' && !el.selected) continue;
    if (!el.getClientRects().length || getComputedStyle(el).visibility === 'hidden') continue;
    const text = n.textContent.trim();
    if (!text || /[\\u3400-\\u9fff]/.test(text)) continue;
    const rest = text.replace(ALLOWED, ' ').split(/\\s+/).filter((w) => /[A-Za-z]{2,}/.test(w) && !/[0-9_@.:\\/-]/.test(w));
    if (rest.length) out.push(text);
  }
  for (const el of document.querySelectorAll('input[placeholder], button[title], [aria-label]')) {
    for (const v of [el.getAttribute('placeholder'), el.getAttribute('title'), el.getAttribute('aria-label')]) {
      if (v && !/[\\u3400-\\u9fff]/.test(v) && v.replace(ALLOWED, ' ').split(/\\s+/).some((w) => /[A-Za-z]{2,}/.test(w) && !/[0-9_@.:\\/-]/.test(w)) && !el.closest('[translate=no]')) out.push(v);
    }
  }
  return out;
})()`;

async function phone(user: 'admin' | 'tech' | 'viewer', lang: 'zh' | 'en'): Promise<{ page: Page; errors: string[]; close: () => Promise<void> }> {
  const c = new Client(g.base);
  const r = await c.login(user, PASSWORDS[user]);
  if (r.status !== 200) throw new Error(`login ${user}: ${r.status}`);
  const [name, value] = c.cookie.split('=');
  const ctx = await browser.newContext({ viewport: PHONE, isMobile: true, hasTouch: true, deviceScaleFactor: 1 });
  await ctx.addCookies([{ name: name!, value: value!, url: g.base }]);
  if (lang === 'en') await ctx.addInitScript(`localStorage.setItem('ee.lang', 'en')`);
  const page = await ctx.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && !/40[139]|422|429/.test(m.text()) && errors.push(m.text()));
  page.on('dialog', (d) => void d.accept());
  await page.goto(`${g.base}/`);
  await page.waitForSelector('body[data-rendered=dashboard]');
  return { page, errors, close: () => ctx.close() };
}

async function show(page: Page, id: string): Promise<void> {
  await page.click(`nav a[data-page=${id}]`);
  await page.waitForSelector(`body[data-rendered=${id}] .page[data-page=${id}]`, { timeout: 10_000 });
}

const overflow = (page: Page) => page.evaluate('document.documentElement.scrollWidth - window.innerWidth') as Promise<number>;

t.test('Chinese everywhere: no Latin-only text on any page; every tab reachable on a phone', async (t) => {
  for (const lang of ['zh', 'en'] as const) {
    const { page, errors, close } = await phone('admin', lang);
    // Every page's tab is on screen (wrapped, not scrolled out of view).
    const hiddenTabs = await page.evaluate(`[...document.querySelectorAll('nav a')].filter((a) => { const r = a.getBoundingClientRect(); return r.right > window.innerWidth || r.left < 0 || r.width === 0; }).map((a) => a.dataset.page)`);
    t.same(hiddenTabs, [], `${lang}: every tab visible at 390 px`);
    for (const id of PAGES) {
      await show(page, id);
      if (id === 'config') await page.click('details[data-section=status] summary');
      if (lang === 'zh') t.same(await page.evaluate(LATIN_ONLY), [], `zh ${id}: no Latin-only text`);
      t.ok((await overflow(page)) <= 0, `${lang} ${id}: no horizontal scrolling at 390 px`);
      await page.screenshot({ path: `${ARTIFACTS}/tech-${id}-phone-${lang}.png`, fullPage: true });
    }
    t.same(errors, [], `${lang}: no script errors`);
    await close();
  }
});

t.test('errors from the gateway are said in Chinese', async (t) => {
  const { page, close } = await phone('tech', 'zh');
  await show(page, 'meters');
  await page.selectOption('[data-testid=poll-device]', '');
  await page.fill('[data-testid=poll-hex]', '0');
  await page.click('[data-testid=poll-run]');
  const msg = page.locator('.card:has([data-testid=poll-run]) p.error');
  await msg.waitFor();
  t.match(await msg.textContent(), /[\u4e00-\u9fff]/, 'a refused frame is explained in Chinese');
  t.notMatch(await msg.textContent(), /[A-Za-z]{3,}/, "without the server's English text");
  await close();
});

t.test('meters on a phone: read now as a table, scan a range with progress and cancel, bare hex frames', async (t) => {
  for (const lang of ['zh', 'en'] as const) {
    const { page, errors, close } = await phone('tech', lang);
    await show(page, 'meters');
    await page.click('[data-testid=read-riser-a]');
    const table = page.locator('[data-testid=read-table-riser-a]');
    await table.waitFor({ timeout: 15_000 });
    const heads = await table.locator('th').allTextContents();
    t.same(heads, lang === 'zh' ? ['点位', '数值', '单位', '时间', '质量'] : ['Point', 'Value', 'Unit', 'Time', 'Quality'], `${lang}: result columns`);
    const v = table.locator('tr[data-point=voltage_l1] td');
    t.match(await v.nth(0).textContent(), lang === 'zh' ? /A 相电压\s*voltage_l1/ : /^voltage_l1$/, `${lang}: point name (zh next to the key)`);
    t.match(await v.nth(1).textContent(), /^\d+(\.\d+)?$/, `${lang}: a number`);
    t.equal(await v.nth(2).textContent(), 'V', `${lang}: unit`);
    t.match(await v.nth(3).textContent(), /^\d\d:\d\d:\d\d$/, `${lang}: time`);
    t.match(await v.nth(4).textContent(), lang === 'zh' ? /有效/ : /good/, `${lang}: quality`);
    // The result is next to its button: its top within a screen of the button's.
    const [btn, res] = await Promise.all([page.locator('[data-testid=read-riser-a]').boundingBox(), page.locator('[data-testid=read-result-riser-a]').boundingBox()]);
    t.ok(btn && res && res.y > btn.y && res.y - btn.y < 200, `${lang}: result right under the button (${btn?.y} → ${res?.y})`);
    await page.locator('[data-testid=read-result-riser-a]').scrollIntoViewIfNeeded();
    await page.screenshot({ path: `${ARTIFACTS}/tech-meter-read-phone-${lang}.png` });

    // Scan 1–24 of the Modbus bus: the two simulated meters (1, 2) found, progress shown.
    await page.fill('[data-testid=scan-from-sim-modbus]', '1');
    await page.fill('[data-testid=scan-to-sim-modbus]', '24');
    await page.click('[data-testid=scan-sim-modbus]');
    await page.waitForFunction(() => /(扫描完成|Scan done)/.test(document.querySelector('[data-testid=scan-status-sim-modbus]').textContent), null, { timeout: 30_000 });
    const status = await page.textContent('[data-testid=scan-status-sim-modbus]');
    t.match(status, lang === 'zh' ? /探测 24 个地址，发现 2 台/ : /24 addresses probed, 2 found/, `${lang}: scan summary`);
    t.equal(await page.getAttribute('[data-testid=scan-progress-sim-modbus]', 'value'), '24', `${lang}: progress at the end`);
    t.match(await page.textContent('[data-testid=scanner-sim-modbus] table'), /1.*2/s, `${lang}: found addresses listed`);
    // Cancel a full-range scan: it stops early, saying how far it got.
    await page.fill('[data-testid=scan-to-sim-modbus]', '247');
    await page.click('[data-testid=scan-sim-modbus]');
    await page.waitForFunction(() => Number(document.querySelector('[data-testid=scan-progress-sim-modbus]').value) >= 8, null, { timeout: 30_000 });
    await page.screenshot({ path: `${ARTIFACTS}/tech-meter-scan-phone-${lang}.png` });
    await page.click('[data-testid=scan-cancel-sim-modbus]');
    await page.waitForFunction(() => /(已取消|Cancelled)/.test(document.querySelector('[data-testid=scan-status-sim-modbus]').textContent), null, { timeout: 30_000 });
    const probed = Number(await page.getAttribute('[data-testid=scan-progress-sim-modbus]', 'value'));
    t.ok(probed >= 8 && probed < 247, `${lang}: cancelled after ${probed} of 247`);

    // Poll tester: each frame in its own cell, hex digits and spaces only.
    await page.selectOption('[data-testid=poll-device]', 'riser-a');
    await page.locator('[data-testid=poll-tester]').scrollIntoViewIfNeeded();
    await page.screenshot({ path: `${ARTIFACTS}/tech-meter-poll-before-phone-${lang}.png` });
    await page.click('[data-testid=poll-run]');
    await page.waitForSelector('[data-testid=frames] code.frame');
    const frames = await page.locator('[data-testid=frames] code.frame').allTextContents();
    t.ok(frames.length >= 2, `${lang}: tx and rx frames`);
    for (const f of frames) t.match(f, /^[0-9A-F]{2}( [0-9A-F]{2})*$/, `${lang}: bare hex "${f.slice(0, 20)}…"`);
    t.match(await page.locator('[data-testid=frames] tr[data-dir=tx] td').first().textContent(), lang === 'zh' ? /发送/ : /sent/);
    t.ok((await overflow(page)) <= 0, `${lang}: no horizontal scrolling`);
    await page.locator('[data-testid=frames]').scrollIntoViewIfNeeded();
    await page.screenshot({ path: `${ARTIFACTS}/tech-meter-poll-phone-${lang}.png` });
    t.same(errors, [], `${lang}: no script errors`);
    await close();
  }
});

t.test('doors: dashboard card per door, access log with names and who unlocked', async (t) => {
  for (const lang of ['zh', 'en'] as const) {
    const { page, errors, close } = await phone('tech', lang);
    const card = page.locator('[data-testid=doorcard-gate]');
    await card.waitFor();
    const text = (await card.textContent()) ?? '';
    t.match(text, lang === 'zh' ? /门锁：已锁.*门磁：门(关|开|状态未知).*报警：无.*消防：正常/s : /Lock: locked.*Contact: (closed|open|contact unknown).*Alarm: None.*Fire: normal/s, `${lang}: lock, contact, alarm, fire on the dashboard`);
    t.equal(await page.locator('[data-testid=door-cards] .doorcard').count(), 3, `${lang}: a card per door`);
    await page.screenshot({ path: `${ARTIFACTS}/tech-dashboard-doors-phone-${lang}.png`, fullPage: true });
    // Unlock from the console: the card follows live, the log says who did it.
    await show(page, 'doors');
    await page.click('[data-testid=unlock-bldg-a]');
    await page.waitForFunction(() => /(已开锁|unlocked)/.test(document.querySelector('[data-testid=door-state-bldg-a]').textContent), null, { timeout: 10_000 });
    const heads = await page.locator('.card:has([data-testid=access-log]) th').allTextContents();
    t.same(heads, lang === 'zh' ? ['时间', '门', '人员', '方式', '结果', '原因', '操作人'] : ['Time', 'Door', 'Person', 'Credential', 'Result', 'Reason', 'By'], `${lang}: log headers`);
    await page.waitForFunction(() => [...document.querySelectorAll('[data-testid=access-log] tr')].some((r) => /A栋/.test(r.cells[1]?.textContent) && r.cells[6]?.textContent === 'tech'), null, { timeout: 10_000 });
    const row = page.locator('[data-testid=access-log] tr').filter({ hasText: 'A栋' }).first();
    const cells = await row.locator('td').allTextContents();
    t.match(cells[1], /A栋 \(building A\)/, `${lang}: the door by its name, not its id`);
    t.equal(cells[3], lang === 'zh' ? '控制台' : 'console', `${lang}: credential`);
    t.equal(cells[6], 'tech', `${lang}: who unlocked it from the console`);
    // Back to the dashboard: its door card shows the unlocked door.
    await show(page, 'dashboard');
    t.match(await page.textContent('[data-testid=doorcard-bldg-a]'), lang === 'zh' ? /已开锁|已锁/ : /unlocked|locked/);
    t.same(errors, [], `${lang}: no script errors`);
    await close();
  }
});

t.test("people: door groups chosen from the gateway's, schedule and enabled editable, actions fit 390 px", async (t) => {
  for (const lang of ['zh', 'en'] as const) {
    const { page, errors, close } = await phone('tech', lang);
    await show(page, 'people');
    await page.click('[data-testid=person-add]');
    const form = page.locator('[data-testid=person-form]');
    const id = `p-${lang}-1`;
    await form.locator('input[name=id]').fill(id);
    await form.locator('input[name=name]').fill('张三');
    const groups = await form.locator('[data-testid=door-groups] input[type=checkbox]').evaluateAll((els) => els.map((e) => (e as unknown as { value: string }).value));
    t.same(groups, ['residents-a', 'residents-b', 'staff'], `${lang}: the gateway's door groups offered`);
    await form.locator('[data-testid=door-groups] input[value=residents-a]').check();
    await form.locator('[data-testid=schedule-add]').click();
    await form.locator('[data-testid=schedule-row] .start').fill('08:00');
    await form.locator('[data-testid=schedule-row] .end').fill('18:30');
    await form.locator('[data-testid=person-enabled]').uncheck();
    t.ok((await overflow(page)) <= 0, `${lang}: the form fits 390 px`);
    await page.screenshot({ path: `${ARTIFACTS}/tech-person-form-phone-${lang}.png`, fullPage: true });
    await form.locator('button[type=submit]').click();
    await page.waitForSelector(`.person-card[data-person="${id}"]`, { timeout: 10_000 });
    const stored = (await accounts.tech.post('/api/commands/person.list', { query: id })).body.result.people[0];
    t.same(stored.doorGroups, ['residents-a'], `${lang}: door group stored`);
    t.same(stored.schedule, [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '08:00', end: '18:30' }], `${lang}: schedule stored`);
    t.equal(stored.enabled, false, `${lang}: disabled`);
    // Edit again: enable, drop the schedule.
    await page.locator(`.person-card[data-person="${id}"] [data-testid=edit-${id}]`).click();
    await form.locator('[data-testid=person-enabled]').check();
    await form.locator('[data-testid=schedule-row] button').click();
    await form.locator('button[type=submit]').click();
    await page.waitForFunction(() => !document.querySelector('[data-testid=person-form]'), null, { timeout: 10_000 });
    const again = (await accounts.tech.post('/api/commands/person.list', { query: id })).body.result.people[0];
    t.equal(again.enabled, true, `${lang}: enabled again`);
    t.notOk(again.schedule?.length, `${lang}: schedule removed`);
    // Each person's actions inside the screen.
    const outside = await page.evaluate(`[...document.querySelectorAll('.person-card .actions > *')].filter((b) => b.getBoundingClientRect().right > window.innerWidth).length`);
    t.equal(outside, 0, `${lang}: actions fit`);
    await page.screenshot({ path: `${ARTIFACTS}/tech-people-phone-${lang}.png`, fullPage: true });
    t.same(errors, [], `${lang}: no script errors`);
    await close();
  }
});

t.test('second factor: door mode in Chinese, cards / write-only PIN / needsSecondFactor in the people editor, the PIN pad at the door', async (t) => {
  const { page, errors, close } = await phone('tech', 'zh');
  t.match(await page.textContent('[data-testid=doorcard-gate]'), /验证方式：刷脸/, 'the door card says the access mode in Chinese');
  await show(page, 'people');
  await page.click('[data-testid=person-add]');
  const form = page.locator('[data-testid=person-form]');
  const id = 'p-2fa';
  await form.locator('input[name=id]').fill(id);
  await form.locator('[data-testid=door-groups] input[value=residents-a]').check();
  await form.locator('[data-testid=person-cards]').fill('26:010:0200, 34:1:2');
  await form.locator('[data-testid=person-pin]').fill('4826');
  await form.locator('[data-testid=person-needs-second-factor]').check();
  t.ok((await overflow(page)) <= 0, 'the form fits 390 px');
  await page.screenshot({ path: `${ARTIFACTS}/tech-person-second-factor-phone-zh.png`, fullPage: true });
  await form.locator('button[type=submit]').click();
  await page.waitForSelector(`.person-card[data-person="${id}"]`, { timeout: 10_000 });
  let stored = (await accounts.tech.post('/api/commands/person.list', { query: id })).body.result.people[0];
  t.match(stored, { cards: ['26:10:200', '34:1:2'], hasPin: true, needsSecondFactor: true }, 'cards in canonical form, PIN set, flag set');
  t.notOk('pin' in stored || 'pinHash' in stored, 'no PIN or hash comes back');
  // Editing again: the PIN field is empty (write-only) and says one is set; saving keeps it.
  await page.locator(`.person-card[data-person="${id}"] [data-testid=edit-${id}]`).click();
  t.equal(await form.locator('[data-testid=person-pin]').inputValue(), '', 'the PIN is never shown');
  t.equal(await form.locator('[data-testid=person-pin]').getAttribute('placeholder'), '已设置密码；留空则不变');
  await form.locator('button[type=submit]').click();
  await page.waitForFunction(() => !document.querySelector('[data-testid=person-form]'), null, { timeout: 10_000 });
  stored = (await accounts.tech.post('/api/commands/person.list', { query: id })).body.result.people[0];
  t.equal(stored.hasPin, true, 'the PIN is kept');
  // The face at the gate (the call face access makes): the doors page shows a PIN pad.
  await show(page, 'doors');
  const d = g.gateway.services.get('access')!.decide({ doorId: 'gate', credential: 'face', personId: id, score: 0.9 });
  t.match(d, { pending: true, reason: 'pin_required' });
  await page.waitForSelector('[data-testid=pin-gate]', { timeout: 10_000 });
  t.match(await page.textContent('[data-testid=pin-pads]'), /密码输入.*请住户在此输入密码/s);
  await page.screenshot({ path: `${ARTIFACTS}/tech-doors-pin-pad-phone-zh.png`, fullPage: true });
  // The platform listens upstream: the pad's audit record must not carry the PIN.
  const platform = await Platform.connect(broker.url);
  await page.fill('[data-testid=pin-gate]', '4826');
  await page.click('[data-testid=pin-send-gate]');
  await page.waitForFunction(() => [...document.querySelectorAll('[data-testid=access-log] tr')].some((r) => r.cells[3]?.textContent === '人脸 + 密码'), null, { timeout: 10_000 });
  t.notOk(await page.locator('[data-testid=pin-gate]').count(), 'the pad is gone once the PIN was entered');
  const ev = (await accounts.tech.post('/api/commands/access.events', { doorId: 'gate', limit: 1 })).body.result.events[0];
  t.match(ev, { granted: true, personId: id, data: { via: ['face', 'pin'], pinSource: 'console:tech' } });
  await platform.waitFor(() => platform.records('audit').some((r) => r.data.command === 'door.pin'), 10_000, 'audit record of door.pin');
  const audit = platform.records('audit').find((r) => r.data.command === 'door.pin')!;
  t.match(audit.data, { command: 'door.pin', args: { doorId: 'gate', pin: '***' }, ok: true });
  await platform.waitFor(() => platform.records('access').some((r) => r.data.personId === id), 10_000, 'access record upstream');
  t.notOk(JSON.stringify([...platform.records('audit'), ...platform.records('access')]).includes('4826'), 'no PIN upstream');
  await platform.close();
  t.same(errors, [], 'no script errors');
  await close();
});

t.test("a viewer changes their own password; an admin's role change is confirmed", async (t) => {
  const { page, errors, close } = await phone('viewer', 'zh');
  await show(page, 'account');
  await page.fill('[data-testid=password-form] input[name=current]', PASSWORDS.viewer);
  await page.fill('[data-testid=password-form] input[name=password]', 'Brand-new-secret-29');
  await page.fill('[data-testid=password-form] input[name=repeat]', 'Brand-new-secret-28');
  await page.click('[data-testid=password-form] button[type=submit]');
  t.match(await page.textContent('[data-testid=password-status]'), /不一致/, 'mismatch caught');
  await page.fill('[data-testid=password-form] input[name=repeat]', 'Brand-new-secret-29');
  await page.click('[data-testid=password-form] button[type=submit]');
  await page.waitForFunction(() => !/不一致/.test(document.querySelector('[data-testid=password-status]').textContent));
  t.match(await page.textContent('[data-testid=password-status]'), /密码已修改/, 'changed, said on the page');
  await page.screenshot({ path: `${ARTIFACTS}/tech-account-phone-zh.png`, fullPage: true });
  t.equal((await new Client(g.base).login('viewer', 'Brand-new-secret-29')).status, 200, 'the new password works');
  t.same(errors, []);
  await close();

  const admin = await phone('admin', 'zh');
  await show(admin.page, 'users');
  const asked: string[] = [];
  admin.page.removeAllListeners('dialog');
  let answer = false;
  admin.page.on('dialog', (d) => {
    asked.push(d.message());
    void (answer ? d.accept() : d.dismiss());
  });
  await admin.page.selectOption('[data-testid=role-viewer]', 'technician');
  t.match(asked[0] ?? '', /viewer.*查看.*技术员/, 'asked before the role changes');
  t.equal(await admin.page.inputValue('[data-testid=role-viewer]'), 'viewer', 'declined: the select is put back');
  t.equal((await accounts.admin.get('/api/users')).body.users.find((u: { name: string }) => u.name === 'viewer').role, 'viewer', 'declined: unchanged');
  answer = true;
  await admin.page.selectOption('[data-testid=role-viewer]', 'technician');
  await admin.page.waitForFunction(() => document.querySelector('#toast').textContent.includes('技术员'));
  t.equal((await accounts.admin.get('/api/users')).body.users.find((u: { name: string }) => u.name === 'viewer').role, 'technician', 'accepted: changed');
  t.same(admin.errors, []);
  await admin.close();
});

t.test('support bundle: one download from the System page with logs, doctor, masked config, metrics, versions, bus frames', async (t) => {
  const { page, errors, close } = await phone('tech', 'zh');
  await show(page, 'system');
  await page.locator('[data-testid=support-bundle]').scrollIntoViewIfNeeded();
  await page.screenshot({ path: `${ARTIFACTS}/tech-support-phone-zh.png` });
  const [download] = await Promise.all([page.waitForEvent('download', { timeout: 30_000 }), page.click('[data-testid=support-bundle]')]);
  t.match(download.suggestedFilename(), /^estate-edge-support-t-site-t-gw-\d{8}T\d{6}Z\.tar\.gz$/, 'named by site, gateway and time');
  const dir = mkdtempSync(join(tmpdir(), 'ee-bundle-'));
  const file = join(dir, download.suggestedFilename());
  await download.saveAs(file);
  execFileSync('tar', ['-xzf', file, '-C', dir]);
  const [top] = readdirSync(dir).filter((n) => !n.endsWith('.tar.gz'));
  const names = readdirSync(join(dir, top!)).sort();
  t.same(names, ['README.txt', 'bus-frames.json', 'config.yaml', 'doctor.txt', 'events.json', 'health.json', 'logs.txt', 'metrics.txt', 'models.json', 'versions.json'], 'every part collected');
  const read = (n: string) => readFileSync(join(dir, top!, n), 'utf8');
  t.match(read('logs.txt'), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (INFO|WARN|DEBUG|ERROR) /m, 'log lines with dates');
  t.match(read('doctor.txt'), /结论 Result:/, 'the doctor report');
  t.match(read('metrics.txt'), /estate_meter_requests_total/, 'metrics');
  t.equal(JSON.parse(read('versions.json')).node, process.version, 'versions');
  const frames = JSON.parse(read('bus-frames.json'))['sim-modbus'];
  t.ok(frames.frames.length >= 2 && frames.frames.every((f: { hex: string }) => /^[0-9A-F]{2}( [0-9A-F]{2})*$/.test(f.hex)), 'a fresh request of the bus, frames in hex');
  t.match(read('config.yaml'), /site:/, 'the configuration');
  t.notMatch(read('events.json'), /access\.decision|personId/, 'no access decisions or people');
  const audit = (await accounts.admin.get('/api/events?type=audit')).body.events;
  t.ok(
    audit.some((e: { data: { action: string; user: string } }) => e.data.action === 'console.support.bundle' && e.data.user === 'tech'),
    'the download is audited',
  );
  t.same(errors, []);
  await close();
});
