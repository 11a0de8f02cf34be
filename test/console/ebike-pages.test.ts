// The e-bike pages of the console in a real browser (Debian's Chromium through
// playwright-core) against a real gateway: the elevator blocker (real object detector in its
// inference worker, looped video files as car cameras through system ffmpeg — the e-bike
// clip npm run media:ebike makes and the shared face video — the GPIO simulator as the
// relay board, the simulated player as the speaker) and the charging supervisor (the meters
// scheduler on a simulated Modbus line with the multi-channel meter's twin; the port relays
// and the smoke input on the GPIO simulator: the simulated line's Modbus twin keeps no
// coils for the relay board, which test/charging/e2e.test.ts covers with the pymodbus peer). Checked: the pages list the configured cars and ports, bus
// events change them with the status reads blocked (so the change can only come from the
// live stream), a viewer sees no release/stop buttons and gets 403 from the API, a
// technician's release and cut work, answer and are audited; the phone layout does not
// scroll sideways.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startConsoleGateway, baseConfig, withAccounts, CHROMIUM_ARGS, type Client, type ConsoleGateway } from './helpers.js';
import { tempDir } from '../helpers/gateway.js';
import { SimulatedGpio } from '../../drivers/gpio/simulated.js';
import { SimulatedPlayer } from '../../edge/elevator/audio.js';
import { createElevatorModule } from '../../edge/elevator/module.js';
import { createChargingModule } from '../../edge/charging/module.js';
import { metersModule } from '../../edge/meters/module.js';
import { sharedMedia, REPO } from '../models/shared.js';
import { getModel, loadManifest } from '../../models/manifest.js';
import { CLIP } from '../../scripts/ebike-media.js';
import { records } from '../charging/rig.js';

declare const document: { querySelector(s: string): { textContent: string | null; getAttribute(n: string): string | null } | null; documentElement: { scrollWidth: number } };
declare const window: { innerWidth: number };

const ARTIFACTS = 'test-artifacts/console';
const model = getModel(loadManifest(join(REPO, 'models', 'manifest.json')), 'nanodet-g-320', 'object-detector');
if (!existsSync(join(REPO, 'models', model.file))) throw new Error(`models/${model.file} missing: run npm run models -- --only nanodet-g-320`);

// The e-bike clip, made by the media script as in test/elevator/ebike.test.ts (never skipped).
const DEBS = process.env.EBIKE_DEBS_DIR ?? join(REPO, 'var', 'debs');
const media = mkdtempSync(join(tmpdir(), 'ee-ebike-pages-'));
t.teardown(() => rmSync(media, { recursive: true, force: true }));
const made = spawnSync(process.execPath, ['--import', 'tsx', join(REPO, 'scripts', 'ebike-media.ts'), '--mirror', media, '--debs', DEBS], { cwd: REPO, encoding: 'utf8', timeout: 90_000 });
if (made.status !== 0) throw new Error(`the e-bike test clip could not be made (npm run media:ebike -- --mirror ${media} --debs ${DEBS}): ${(made.error?.message ?? made.stderr) || made.stdout}`);
const EBIKE = join(media, 'ebike-skimage-motorcycle-enter.mp4');
const PERSON = join(sharedMedia(), 'video', 'obama_portrait_zoom_640x480.mp4');
const MAX_BYTES = 40_000;

const elevatorGpio = new SimulatedGpio();
const chargingGpio = new SimulatedGpio();
const SMOKE_PIN = 5;

let g: ConsoleGateway;
let browser: Browser;
let users: Awaited<ReturnType<typeof withAccounts>>;
t.before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  const dir = tempDir('ee-console-ebike-');
  const config = baseConfig(dir, {
    elevator: {
      gpio: { backend: 'simulated' },
      prompt: { player: 'simulated' },
      k: 3,
      n: 5,
      minHoldS: 1,
      overrideS: 3,
      snapshot: { maxBytes: MAX_BYTES },
      cars: [
        { id: 'A', name: '3号楼A梯', camera: { source: { kind: 'file', path: EBIKE }, width: CLIP.width, height: CLIP.height, fps: 5 }, relay: { pin: 20, pulseMs: 50 } },
        { id: 'B', name: '3号楼B梯', camera: { source: { kind: 'file', path: PERSON }, width: 640, height: 480, fps: 5 }, relay: { pin: 21, pulseMs: 50 } },
      ],
    },
    meters: {
      buses: [
        {
          id: 'pile-line',
          protocol: 'modbus',
          transport: 'simulated',
          timeoutMs: 300,
          devices: [{ id: 'meter-a', profile: 'eastron-sdm630-3ch', address: 1, pollIntervalMs: 300 }],
        },
      ],
    },
    charging: {
      meterStaleS: 5,
      piles: [
        {
          id: 'shed-1',
          name: '1号车棚',
          // Far from the simulated load (0.3–3 kW): nothing is cut by the supervisor on its own.
          thresholds: { startW: 5, taperW: 5, fullAfterS: 3600, maxW: 20_000, overPowerS: 5, maxHours: 10 },
          smoke: [{ kind: 'gpio', pin: SMOKE_PIN, activeLow: false }],
          ports: [0, 1, 2].map((i) => ({ id: `p${i + 1}`, meter: { device: 'meter-a', power: `power_${i + 1}`, energy: `energy_${i + 1}` }, relay: { kind: 'gpio', pin: 12 + i, activeLow: false } })),
        },
      ],
    },
  });
  g = await startConsoleGateway({ dir, config, modules: [metersModule, (ctx) => createChargingModule(ctx, { backend: chargingGpio, tickMs: 50 }), (ctx) => createElevatorModule(ctx, { gpio: elevatorGpio, player: new SimulatedPlayer() })] });
  users = await withAccounts(g);
  browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
});
t.teardown(async () => {
  await browser?.close();
  await g?.stop();
});

async function until<T>(what: string, ms: number, f: () => Promise<T | undefined>): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** A phone-sized browser logged in as `user` (cookie of an API login), on the dashboard. */
async function phone(user: 'tech' | 'viewer'): Promise<{ page: Page; errors: string[]; close: () => Promise<void> }> {
  const c = users[user];
  const [name, value] = c.cookie.split('=');
  const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1 });
  await ctx.addCookies([{ name: name!, value: value!, url: g.base }]);
  const page = await ctx.newPage();
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  // Status reads this test blocks on purpose fail in the browser's log; so do refused requests.
  page.on('console', (m) => m.type() === 'error' && !/40[139]|422|429|ERR_FAILED/.test(m.text()) && errors.push(m.text()));
  page.on('dialog', (d) => void d.accept());
  await page.goto(`${g.base}/`);
  await page.waitForSelector('body[data-rendered=dashboard]');
  await page.waitForSelector('#live-dot[data-live="1"]', { timeout: 10_000 });
  return { page, errors, close: () => ctx.close() };
}

async function show(page: Page, id: string): Promise<void> {
  // The tab of an optional page appears once /api/capabilities says it is configured.
  await page.click(`nav a[data-page=${id}]`, { timeout: 10_000 });
  await page.waitForSelector(`body[data-rendered=${id}] .page[data-page=${id}]`, { timeout: 10_000 });
}

const text = (page: Page, testid: string) => page.textContent(`[data-testid="${testid}"]`);
const waitText = (page: Page, testid: string, re: RegExp, timeout = 15_000) => page.waitForFunction(([id, src]) => new RegExp(src!).test(document.querySelector(`[data-testid="${id}"]`)?.textContent ?? ''), [testid, re.source] as const, { timeout });
const overflow = (page: Page) => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);

async function elevatorStatus(c: Client) {
  const r = await c.post('/api/commands/elevator.status', {});
  if (r.status !== 200) throw new Error(`elevator.status: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.result as { available: boolean; problem?: string; cars: Array<{ id: string; state: string; counters: { frames: number } }> };
}

t.test('elevator page: cars, live state, detections, camera view; a viewer cannot release; a technician can, audited', async (t) => {
  // The e-bike clip loops: car A is held, car B (a person) never.
  await until('car A held', 60_000, async () => {
    const s = await elevatorStatus(users.tech);
    if (!s.available) throw new Error(`blocker not running: ${s.problem}`);
    return s.cars.find((c) => c.id === 'A')?.state === 'holding' ? true : undefined;
  });

  // The snapshot route: technicians only, a JPEG within the cap, never cached.
  const snap = await users.tech.get('/api/elevator/cars/A/snapshot');
  t.equal(snap.status, 200, 'snapshot for a technician');
  t.equal(snap.headers.get('cache-control'), 'no-store', 'never stored by the browser');
  const jpeg = Buffer.from(snap.body.image, 'base64');
  t.same([...jpeg.subarray(0, 3)], [0xff, 0xd8, 0xff], 'a JPEG');
  t.ok(jpeg.length <= MAX_BYTES, `within elevator.snapshot.maxBytes (${jpeg.length} ≤ ${MAX_BYTES})`);
  t.match(snap.body, { carId: 'A', mime: 'image/jpeg', width: CLIP.width, height: CLIP.height, at: Number });
  t.equal((await users.tech.get('/api/elevator/cars/Z/snapshot')).body.error?.code, 'unknown_car');
  t.equal((await users.viewer.get('/api/elevator/cars/A/snapshot')).status, 403, 'viewer: no camera view');
  t.equal((await users.anon.get('/api/elevator/cars/A/snapshot')).status, 401, 'anonymous: refused');

  // A viewer: the cars and their state, no release button, no camera view; the API says 403.
  const v = await phone('viewer');
  await show(v.page, 'elevator');
  t.match(await text(v.page, 'car-state-A'), /发现电动车，已保持开门/, 'viewer sees car A held');
  t.match(await text(v.page, 'car-B'), /3号楼B梯/, 'car B listed');
  t.equal(await v.page.locator('[data-testid=release-A]').count(), 0, 'no release button for a viewer');
  t.equal(await v.page.locator('[data-testid=view-A]').count(), 0, 'no camera view for a viewer');
  const refused = await users.viewer.post('/api/commands/elevator.release', { car: 'A', reason: 'viewer try' });
  t.equal(refused.status, 403, 'viewer release refused');
  t.same(v.errors, [], 'no script errors (viewer)');
  await v.close();

  const { page, errors, close } = await phone('tech');
  await show(page, 'elevator');
  t.match(await text(page, 'car-state-A'), /发现电动车，已保持开门/, 'car A: e-bike seen, held');
  t.match(await text(page, 'car-relay-A'), /吸合/, 'car A relay energised');
  t.match(await text(page, 'car-relay-B'), /释放/, 'car B relay released');
  await waitText(page, 'detections-A', /电动车\/摩托车\s*0\.\d\d\s*\d+×\d+/);
  await waitText(page, 'detections-B', /人\s*0\.\d\d/);
  t.pass('last detections: class, score, size (e-bike in A, person in B)');
  await page.waitForFunction(() => /^data:image\/jpeg;base64,/.test(document.querySelector('[data-testid="view-A"]')?.getAttribute('src') ?? ''), null, { timeout: 10_000 });
  await waitText(page, 'view-msg-A', /画面时间/);
  t.pass('camera view of car A drawn');
  t.ok((await overflow(page)) <= 0, 'no horizontal scrolling at 390 px');
  await page.screenshot({ path: `${ARTIFACTS}/elevator-phone.png`, fullPage: true });

  // The override, with the status reads blocked: the new state can only come from the live
  // elevator.state event.
  await page.route('**/api/commands/elevator.status', (r) => r.abort());
  await page.fill('[data-testid=reason-A]', '维修搬运');
  const before = Date.now();
  await page.click('[data-testid=release-A]');
  await waitText(page, 'car-state-A', /已人工放行/, 5000);
  t.pass(`released by override shown live (${Date.now() - before} ms)`);
  await page.waitForFunction(() => /已放行/.test(document.querySelector('#toast')?.textContent ?? ''), null, { timeout: 5000 });
  t.equal(elevatorGpio.level(20), false, 'car A relay released');
  await page.unroute('**/api/commands/elevator.status');
  const audit = await until('elevator.override record', 5000, async () => records(g.gateway, 'event').find((r) => r.type === 'elevator.override'));
  t.match(audit.data, { carId: 'A', wasHolding: true, by: 'tech', source: 'console', reason: '维修搬运' }, 'the override audited: who, from where, why');
  await waitText(page, 'car-overrides-A', /^1$/, 5000);
  // overrideS (3 s) later the e-bike, still in the clip, holds the car again.
  await waitText(page, 'car-state-A', /发现电动车，已保持开门/, 20_000);
  t.pass('held again after the override window');
  t.same(errors, [], 'no script errors (technician)');
  await close();
});

type PortView = { port: string; state: string; powerW: number | null; relay: { on: boolean | null } };
async function ports(c: Client): Promise<PortView[]> {
  const r = await c.post('/api/commands/charging.status', {});
  if (r.status !== 200) throw new Error(`charging.status: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body.result.piles[0].ports;
}

t.test('charging page: ports live, a viewer cannot cut, a technician can; fire banner from the live event', async (t) => {
  let seen: PortView[] = [];
  await until('all ports charging', 30_000, async () => ((seen = await ports(users.tech)).every((p) => p.state === 'charging') ? true : undefined)).catch((e) => {
    throw new Error(`${(e as Error).message}: ${JSON.stringify(seen)}`);
  });

  const v = await phone('viewer');
  await show(v.page, 'charging');
  for (const p of ['p1', 'p2', 'p3']) t.match(await text(v.page, `port-state-shed-1-${p}`), /充电中/, `viewer sees ${p} charging`);
  t.equal(await v.page.locator('[data-testid^=stop-]').count(), 0, 'no cut buttons for a viewer');
  t.equal(await v.page.locator('[data-testid^=enable-]').count(), 0, 'no enable buttons for a viewer');
  t.equal((await users.viewer.post('/api/commands/charging.stop', { pile: 'shed-1', port: 'p1' })).status, 403, 'viewer cut refused');
  t.equal((await ports(users.tech))[0]!.state, 'charging', 'p1 still charging');
  t.same(v.errors, [], 'no script errors (viewer)');
  await v.close();

  const { page, errors, close } = await phone('tech');
  await show(page, 'charging');
  t.match(await text(page, 'pile-shed-1'), /1号车棚/, 'pile by name');
  await waitText(page, 'port-power-shed-1-p2', /^\d+ W$/);
  t.match(await text(page, 'port-relay-shed-1-p2'), /通电/, 'p2 relay on');
  t.ok((await overflow(page)) <= 0, 'no horizontal scrolling at 390 px');
  await page.screenshot({ path: `${ARTIFACTS}/charging-phone.png`, fullPage: true });

  // A technician cuts p1: answered, shown, read back off, audited.
  await page.click('[data-testid=stop-shed-1-p1]');
  await waitText(page, 'port-state-shed-1-p1', /已断电/, 5000);
  await waitText(page, 'port-relay-shed-1-p1', /断电/, 5000);
  t.equal((await ports(users.tech))[0]!.state, 'off', 'p1 off in the gateway');
  const audit = await until('charging.stop audit', 5000, async () => records(g.gateway, 'audit').find((r) => r.type === 'charging.stop'));
  t.match(audit.data, { pile: 'shed-1', port: 'p1', outcome: 'ok', by: 'tech', source: 'console' }, 'the cut audited');

  // Smoke: with the status reads blocked, the banner and the cut ports come from the
  // live charging.alarm and charging.port events.
  await page.route('**/api/commands/charging.status', (r) => r.abort());
  const tripped = Date.now();
  chargingGpio.set(SMOKE_PIN, true);
  await page.waitForFunction(() => /火警.*1号车棚/.test(document.querySelector('[data-testid="fire-banner"]')?.textContent ?? ''), null, { timeout: 5000 });
  for (const p of ['p2', 'p3']) await waitText(page, `port-state-shed-1-${p}`, /已断电/, 5000);
  t.pass(`fire banner and every port cut shown live (${Date.now() - tripped} ms)`);
  await page.screenshot({ path: `${ARTIFACTS}/charging-fire-phone.png`, fullPage: true });
  await page.unroute('**/api/commands/charging.status');
  // Enabling is refused while the input is tripped, and works once it clears.
  await page.click('[data-testid=enable-shed-1-p1]');
  await page.waitForSelector('#toast.show.error', { timeout: 5000 });
  t.match(await page.textContent('#toast'), /\S/, 'the refusal is shown');
  t.equal((await ports(users.tech))[0]!.state, 'off', 'not enabled during the fire');
  chargingGpio.set(SMOKE_PIN, false);
  await page.waitForFunction(() => (document.querySelector('[data-testid="fire-banner"]')?.textContent ?? '') === '', null, { timeout: 5000 });
  t.pass('banner gone when the input clears');
  await page.click('[data-testid=enable-shed-1-p1]');
  await waitText(page, 'port-state-shed-1-p1', /空闲|充电中/, 5000);
  t.equal((await ports(users.tech))[0]!.relay.on, true, 'p1 relay on again');
  t.same(errors, [], 'no script errors (technician)');
  await close();
});
