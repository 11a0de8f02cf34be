// Face enrolment from an uploaded photo and the camera snapshot, through the console,
// with the real doors module (simulated GPIO), the real face models and the shared
// video played as the gate camera by the real ffmpeg. Screenshots of the Camera and
// People pages with real data.
import t from 'tap';
import { join } from 'node:path';
import sharp from 'sharp';
import { chromium } from 'playwright-core';
import { startConsoleGateway, baseConfig, withAccounts, CHROMIUM_ARGS, PASSWORDS, type ConsoleGateway } from './helpers.js';
import { tempDir } from '../helpers/gateway.js';
import { createDoorsModule } from '../../edge/doors/module.js';
import { createVisionModule } from '../../edge/vision/module.js';
import { FACES, VIDEO, modelsDir, photo } from '../vision/helpers.js';

const ARTIFACTS = 'test-artifacts/console';
let g: ConsoleGateway;

t.before(async () => {
  const dir = tempDir('ee-console-faces-');
  g = await startConsoleGateway({
    dir,
    config: baseConfig(dir, {
      uplink: { enabled: false },
      doors: { gpio: { backend: 'simulated' }, groups: [{ id: 'residents', doors: ['gate'] }], doors: [{ id: 'gate', name: '小区大门', lock: { pin: 17 }, unlockMs: 3000 }] },
      vision: { enabled: true, doorId: 'gate', modelsDir: modelsDir(), camera: { source: { kind: 'file', path: VIDEO() }, fps: 5 } },
    }),
    modules: [createDoorsModule, createVisionModule],
  });
});
t.teardown(() => g.stop());

t.test('enrol a face from an uploaded photo; refusals are explained; snapshot with boxes', async (t) => {
  const { tech, viewer } = await withAccounts(g);
  const caps = (await tech.get('/api/capabilities')).body;
  t.equal(caps.faces.configured, true);
  t.equal(caps.camera.configured, true);
  const add = await tech.post('/api/commands/person.upsert', { id: 'r-0101', name: 'Biden', kind: 'resident', doorGroups: ['residents'], note: 'kept' });
  t.equal(add.status, 200, JSON.stringify(add.body));

  const jpeg = photo(join(FACES(), 'biden', '1.jpg'));
  const up = await tech.req('POST', '/api/people/r-0101/face', jpeg, { 'content-type': 'image/jpeg' });
  t.equal(up.status, 200, JSON.stringify(up.body).slice(0, 300));
  t.equal(up.body.result.faces.accepted, 1, 'photo accepted');
  t.ok(up.body.result.faces.templates >= 1);
  const list = await tech.post('/api/commands/person.list', { query: 'r-0101' });
  t.equal(list.body.result.people[0].note, 'kept', 'the rest of the person is unchanged');
  t.ok(list.body.result.people[0].faceTemplates >= 1);

  // A real PNG with no face in it: refused by the face module with its reason.
  const blank = await sharp({ create: { width: 400, height: 400, channels: 3, background: '#808080' } })
    .png()
    .toBuffer();
  const none = await tech.req('POST', '/api/people/r-0101/face', blank, { 'content-type': 'image/png' });
  t.equal(none.status, 200);
  t.equal(none.body.result.faces.accepted, 0);
  t.equal(none.body.result.faces.rejected[0].code, 'no_face');
  const unknown = await tech.req('POST', '/api/people/nobody/face', jpeg, { 'content-type': 'image/jpeg' });
  t.equal(unknown.status, 404);
  t.equal((await viewer.req('POST', '/api/people/r-0101/face', jpeg, { 'content-type': 'image/jpeg' })).status, 403);

  // Enrol from the door camera: the newest frame (the video's face) becomes a template.
  const cap = await tech.post('/api/people/r-0101/face/capture');
  t.equal(cap.status, 200, JSON.stringify(cap.body).slice(0, 300));
  t.ok(cap.body.result.faces.accepted + cap.body.result.faces.rejected.length === 1, 'the frame was judged (accepted or refused with a reason)');

  let snap;
  const end = Date.now() + 20_000;
  do {
    snap = await tech.get('/api/camera/snapshot');
    if (snap.status === 200 && snap.body.faces.length) break;
    await new Promise((r) => setTimeout(r, 300));
  } while (Date.now() < end);
  t.equal(snap!.status, 200, JSON.stringify(snap!.body).slice(0, 200));
  t.equal(Buffer.from(snap!.body.image, 'base64').subarray(0, 3).toString('hex'), 'ffd8ff', 'a JPEG');
  t.ok(snap!.body.faces.length >= 1, 'a face box in the frame');
  const f = snap!.body.faces[0];
  t.ok(f.box.w > 0 && f.box.x + f.box.w <= snap!.body.width && f.score > 0 && f.score <= 1, 'box inside the frame, score in 0..1');
});

t.test('Camera and People pages with real data (screenshots)', async (t) => {
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
  t.teardown(() => browser.close());
  for (const [w, h, name] of [
    [1280, 860, 'desktop'],
    [360, 740, 'phone'],
  ] as const) {
    const ctx = await browser.newContext({ viewport: { width: w, height: h } });
    const page = await ctx.newPage();
    await page.goto(`${g.base}/`);
    await page.fill('input[name=user]', 'tech');
    await page.fill('input[name=password]', PASSWORDS.tech);
    await page.click('button[type=submit]');
    await page.waitForSelector('body[data-rendered=dashboard]');
    await page.click('nav a[data-page=camera]');
    await page.waitForSelector('.snapshot img', { timeout: 15_000 });
    await page.screenshot({ path: `${ARTIFACTS}/camera-faces-${name}.png`, fullPage: true });
    await page.click('nav a[data-page=people]');
    await page.waitForSelector('body[data-rendered=people]');
    t.match(await page.textContent('.page table'), /r-0101/);
    await page.screenshot({ path: `${ARTIFACTS}/people-faces-${name}.png`, fullPage: true });
    await ctx.close();
  }
});
