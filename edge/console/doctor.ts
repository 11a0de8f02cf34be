// `estate-edge doctor` for the console's first access: set up, or the setup token to use
// (read only; the service or `estate-edge setup-token` makes it), so a technician at the
// box's screen or serial console gets in without SSH.
import { resolve } from 'node:path';
import { readSetupToken, setupTokenPath, setupUrl, consoleUrls } from './setup-token.js';
import type { DoctorCheck } from '../doctor-kit.js';

export const consoleCheck: DoctorCheck = {
  id: 'console',
  label: '控制台 console',
  run(ctx) {
    const c = ctx.config.console;
    if (!c.enabled) return ctx.add('SKIP', 'console disabled (console.enabled: false)');
    const s = readSetupToken(setupTokenPath(resolve(ctx.config.gateway.dataDir)));
    const urls = consoleUrls(c);
    if (s?.state === 'done') return ctx.add('OK', `set up (first admin created ${new Date(s.at).toISOString()}); ${urls[0] ?? ''}`);
    if (!s) return ctx.add('WARN', 'not set up, no setup token yet (the service makes one at start): run `estate-edge setup-token`');
    if (s.expiresAt <= Date.now()) return ctx.add('WARN', `not set up; the setup token expired ${new Date(s.expiresAt).toISOString()}: run \`estate-edge setup-token\` for a new one`);
    ctx.add('WARN', ctx.showSetupToken ? `not set up yet: setup token ${s.token} (one-time, valid until ${new Date(s.expiresAt).toISOString()}) at ${setupUrl(urls[0] ?? 'http://<box>:8080', s.token)}` : `not set up yet (a setup token is pending, valid until ${new Date(s.expiresAt).toISOString()})`);
  },
};

export const consoleDoctor: readonly DoctorCheck[] = [consoleCheck];
