// First access without SSH: the setup token in a file of the data directory, shown the
// same by the service log, `estate-edge setup-token` (with a QR code) and the doctor;
// one-time (done once the first admin exists) and expiring (refused, then replaced). The
// QR code's address opens the setup page in real Chromium with the token filled in.
import t from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { startConsoleGateway, baseConfig, writeConfig, CHROMIUM_ARGS, PASSWORDS, Client, OffsetClock } from './helpers.js';
import { tempDir } from '../helpers/gateway.js';
import { setupTokenPath, readSetupToken, ensureSetupToken, setupUrl, qrText, qrSvg, SETUP_TOKEN_TTL_MS } from '../../edge/console/setup-token.js';
import { runDoctor } from '../../edge/doctor.js';
import { loadConfig } from '../../edge/config/load.js';
import { REPO } from '../../scripts/lib/unit.js';

const ARTIFACTS = 'test-artifacts/console';

function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => execFile(process.execPath, ['--import', 'tsx', join(REPO, 'edge', 'main.ts'), ...args], { cwd: REPO }, (e, out, err) => resolve({ code: e ? Number((e as { code?: number }).code ?? 1) : 0, out, err })));
}

t.test('the token file: made once, kept, replaced when expired, 0600; QR codes of the setup address', async (t) => {
  const dir = tempDir('ee-setup-token-');
  const path = setupTokenPath(dir);
  const a = ensureSetupToken(path, 1000);
  t.equal(a.state, 'pending');
  t.equal(statSync(path).mode & 0o777, 0o600, 'only the service can read it');
  t.same(ensureSetupToken(path, 2000), a, 'the same token until it expires');
  const b = ensureSetupToken(path, 1000 + SETUP_TOKEN_TTL_MS);
  t.not(b.state === 'pending' && b.token, a.state === 'pending' && a.token, 'a new one once expired');
  writeFileSync(path, 'garbage');
  t.equal(ensureSetupToken(path, 3000).state, 'pending', 'an unreadable file is replaced');
  const url = setupUrl('http://192.0.2.7:8080/', 'abc_DEF-123');
  t.equal(url, 'http://192.0.2.7:8080/#/setup?token=abc_DEF-123', 'the token in the fragment');
  const q = qrText(url);
  t.ok(q.split('\n').length > 10 && /[█▀▄]/.test(q), 'a QR code as terminal text');
  t.match(qrSvg(url), /^<svg[^>]*viewBox/, 'and as SVG');
});

t.test('service, command and doctor show one token; it expires; it is one-time; the QR address fills the form', async (t) => {
  const dir = tempDir('ee-setup-flow-');
  const clock = new OffsetClock();
  const config = baseConfig(dir);
  writeConfig(join(dir, 'config.yaml'), config);
  // The installer's step before the service's first start: the command makes the token.
  const made = await cli(['setup-token', '--config', join(dir, 'config.yaml'), '--svg', join(dir, 'qr.svg')]);
  t.equal(made.code, 0, made.err);
  const file = readSetupToken(setupTokenPath(join(dir, 'data')));
  t.equal(file?.state, 'pending');
  const token = file?.state === 'pending' ? file.token : '';
  t.match(made.out, new RegExp(`设置令牌 setup token:\\s+${token}`), 'the label shows the token');
  t.match(made.out, /#\/setup\?token=/, 'and the address with it');
  t.match(made.out, /[█▀▄]{10}/, 'and the QR code');
  t.match(readFileSync(join(dir, 'qr.svg'), 'utf8'), /^<svg/, 'SVG label written');
  const json = JSON.parse((await cli(['setup-token', '--config', join(dir, 'config.yaml'), '--json'])).out);
  t.equal(json.token, token, 'run again: the same token');

  const g = await startConsoleGateway({ dir, clock });
  t.teardown(() => g.stop());
  t.equal(g.setupToken(), token, 'the service uses and logs the same token');
  const doc = await runDoctor({ loaded: loadConfig({ path: join(dir, 'config.yaml') }), timeoutMs: 500, systemctl: false });
  const f = doc.find((x) => x.check === 'console');
  t.equal(f?.level, 'WARN');
  t.match(f?.message ?? '', new RegExp(`setup token ${token}`), 'the doctor shows it');
  t.notMatch((await runDoctor({ loaded: loadConfig({ path: join(dir, 'config.yaml') }), timeoutMs: 500, systemctl: false, showSetupToken: false })).find((x) => x.check === 'console')?.message ?? '', new RegExp(token), 'hidden when asked (support bundle)');

  // Expired: refused; the service makes a new one within its check period.
  clock.offsetMs = SETUP_TOKEN_TTL_MS + 1000;
  const late = await new Client(g.base).post('/api/setup', { token, user: 'admin', password: PASSWORDS.admin });
  t.equal(late.status, 403, 'an expired token is refused');
  const end = Date.now() + 15_000;
  let renewed = readSetupToken(setupTokenPath(join(dir, 'data')));
  while (renewed?.state === 'pending' && renewed.token === token && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 250));
    renewed = readSetupToken(setupTokenPath(join(dir, 'data')));
  }
  t.ok(renewed?.state === 'pending' && renewed.token !== token, 'a new token was made');
  const fresh = renewed?.state === 'pending' ? renewed.token : '';
  t.ok(
    g.logLines.some((l) => l.includes(`"setupToken":"${fresh}"`)),
    'and logged',
  );

  // The QR code's address, on a phone: the setup page opens with the token filled in.
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', headless: true, args: CHROMIUM_ARGS });
  t.teardown(() => browser.close());
  for (const lang of ['en', 'zh'] as const) {
    const ctx = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true });
    if (lang === 'en') await ctx.addInitScript(`localStorage.setItem('ee.lang', 'en')`);
    const page = await ctx.newPage();
    await page.goto(setupUrl(g.base, fresh));
    await page.waitForSelector('input[name=token]');
    t.equal(await page.inputValue('input[name=token]'), fresh, `${lang}: token filled in from the QR address`);
    t.match(await page.textContent('.card'), lang === 'zh' ? /二维码/ : /QR label/, `${lang}: the page says where the token is`);
    await page.screenshot({ path: `${ARTIFACTS}/setup-qr-phone-${lang}.png` });
    if (lang === 'zh') {
      await page.fill('input[name=user]', 'admin');
      await page.fill('input[name=password]', PASSWORDS.admin);
      await page.click('button[type=submit]');
      await page.waitForSelector('body[data-rendered=dashboard]');
      t.pass('first admin created from the phone');
    }
    await ctx.close();
  }
  // One-time: done; the token is gone from the file, the doctor says set up.
  const end2 = Date.now() + 10_000;
  while (readSetupToken(setupTokenPath(join(dir, 'data')))?.state !== 'done' && Date.now() < end2) await new Promise((r) => setTimeout(r, 250));
  t.equal(readSetupToken(setupTokenPath(join(dir, 'data')))?.state, 'done', 'marked done');
  t.notMatch(readFileSync(setupTokenPath(join(dir, 'data')), 'utf8'), new RegExp(fresh), 'the token is gone');
  t.equal((await runDoctor({ loaded: loadConfig({ path: join(dir, 'config.yaml') }), timeoutMs: 500, systemctl: false })).find((x) => x.check === 'console')?.level, 'OK');
  t.match((await cli(['setup-token', '--config', join(dir, 'config.yaml')])).out, /set up/, 'the command says it is set up');
  t.equal((await new Client(g.base).post('/api/setup', { token: fresh, user: 'x2', password: PASSWORDS.admin })).status, 409, 'no second setup');
  t.ok(existsSync(join(dir, 'qr.svg')));
});
