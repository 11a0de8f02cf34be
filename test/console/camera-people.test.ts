// People with photos in one step and the camera's live view with the recognised name,
// in real Chromium on a 390 px phone (zh and en), against the real doors module
// (simulated GPIO), the real face models and the shared video played as the gate camera
// by the real ffmpeg. Screenshots: test-artifacts/console/tech-camera-*.png, tech-people-photos-*.png.
import t from 'tap';
import { join } from 'node:path';
import { readdirSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';
import { startConsoleGateway, baseConfig, withAccounts, CHROMIUM_ARGS, PASSWORDS, Client, type ConsoleGateway } from './helpers.js';
import { tempDir } from '../helpers/gateway.js';
import { createDoorsModule } from '../../edge/doors/module.js';
import { createVisionModule } from '../../edge/vision/module.js';
import { FACES, VIDEO, modelsDir } from '../vision/helpers.js';

declare const document: any; // eslint-disable-line @typescript-eslint/no-explicit-any

const ARTIFACTS = 'test-artifacts/console';
let g: ConsoleGateway;
let browser: Browser;
let accounts: Awaited<ReturnType<typeof withAccounts>>;

t.before(async () => {
  const dir = tempDir('ee-console-cam-');
  g = await startConsoleGateway({
    dir,
    config: baseConfig(dir, {
      uplink: { enabled: false },
      doors: { gpio: { backend: 'simulated' }, groups: [{ id: 'residents', name: '住户', doors: ['gate'] }], doors: [{ id: 'gate', name: '小区大门', lock: { pin: 17 }, unlockMs: 3000 }] },
      // A decision per second for the same person: the live view's label follows it.
      vision: { enabled: true, doorId: 'gate', modelsDir: modelsDir(), camera: { source: { kind: 'file', path: VIDEO() }, fps: 5 }, match: { cooldownS: 1 } },
    }),
    modules: [createDoorsModule, createVisionModule],
  });
  accounts = await withAccounts(g);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
});
t.teardown(async () => {
  await browser?.close();
  await g?.stop();
});

t.test('add a person with photos in one step; the live view names them on the box', async (t) => {
  const photos = readdirSync(join(FACES(), 'obama'))
    .filter((f) => /\.jpe?g$/i.test(f))
    .slice(0, 2)
    .map((f) => join(FACES(), 'obama', f));
  t.ok(photos.length >= 1, 'photos of the person in the video');
  for (const lang of ['zh', 'en'] as const) {
    const c = new Client(g.base);
    await c.login('tech', PASSWORDS.tech);
    const [name, value] = c.cookie.split('=');
    const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
    await ctx.addCookies([{ name: name!, value: value!, url: g.base }]);
    if (lang === 'en') await ctx.addInitScript(`localStorage.setItem('ee.lang', 'en')`);
    const page = await ctx.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('dialog', (d) => void d.accept());
    await page.goto(`${g.base}/#/people`);
    await page.waitForSelector('body[data-rendered=people]');
    const id = `obama-${lang}`;
    await page.click('[data-testid=person-add]');
    const form = page.locator('[data-testid=person-form]');
    await form.locator('input[name=id]').fill(id);
    await form.locator('input[name=name]').fill(lang === 'zh' ? '奥巴马' : 'Barack');
    await form.locator('[data-testid=door-groups] input[value=residents]').check();
    await form.locator('[data-testid=person-photos]').setInputFiles(photos);
    await page.screenshot({ path: `${ARTIFACTS}/tech-people-photos-phone-${lang}.png`, fullPage: true });
    await form.locator('button[type=submit]').click();
    await page.waitForSelector(`.person-card[data-person="${id}"]`, { timeout: 60_000 });
    const stored = (await accounts.tech.post('/api/commands/person.list', { query: id })).body.result.people[0];
    t.ok(stored.faceTemplates >= 1, `${lang}: stored and enrolled in one step (${stored.faceTemplates} templates)`);
    t.match(await page.textContent('#toast'), lang === 'zh' ? /已保存，人脸模板/ : /Saved, \d+ face template/, `${lang}: said so`);
    // The other language's person is deleted so this one is the match.
    const other = lang === 'zh' ? 'obama-en' : 'obama-zh';
    await accounts.tech.post('/api/commands/person.delete', { id: other });

    await page.click('nav a[data-page=camera]');
    await page.waitForSelector('[data-testid=camera-stage] img', { timeout: 20_000 });
    const first = await page.getAttribute('[data-testid=camera-stage]', 'data-frame-at');
    await page.waitForFunction((f) => document.querySelector('[data-testid=camera-stage]').dataset.frameAt !== f, first, { timeout: 15_000 });
    t.pass(`${lang}: the view moves on by itself (periodic frames)`);
    const want = lang === 'zh' ? '奥巴马' : 'Barack';
    await page.waitForFunction((n) => [...document.querySelectorAll('[data-testid=facebox] b')].some((b) => b.textContent === n), want, { timeout: 45_000 });
    t.pass(`${lang}: the recognised name on the face box`);
    await page.screenshot({ path: `${ARTIFACTS}/tech-camera-live-phone-${lang}.png`, fullPage: true });
    await page.click('[data-testid=camera-toggle]');
    t.match(await page.textContent('[data-testid=camera-msg]'), lang === 'zh' ? /已暂停/ : /paused/, `${lang}: stopped on request`);
    t.same(errors, [], `${lang}: no script errors`);
    await ctx.close();
  }
});
