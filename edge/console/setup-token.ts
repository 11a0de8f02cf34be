// The console's first-run setup token, kept in a file of the data directory so that
// every way a technician can reach the box shows the same one without SSH: the
// installer prints it as a label with a QR code, `estate-edge setup-token` and
// `estate-edge doctor` show it on a local screen or serial console, and the service
// logs it. One-time: it is replaced by { done } once the first admin exists. Expiring:
// TTL_MS after it was made it is refused and a new one is made (by the service, which
// checks every CHECK_MS, or by the command).
//
// The QR code (uqr: small, no dependencies, renders to terminal text and SVG) encodes the
// console's setup address with the token in the fragment (#/setup?token=…): the phone
// opens the setup page with the token filled in; a fragment is never sent to a server or
// written to its logs.
import { randomBytes } from 'node:crypto';
import { chownSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { networkInterfaces } from 'node:os';
import { renderUnicodeCompact, renderSVG } from 'uqr';

export const SETUP_TOKEN_TTL_MS = 72 * 3600_000;
export const SETUP_TOKEN_CHECK_MS = 30_000;

export type SetupTokenState = { state: 'pending'; token: string; createdAt: number; expiresAt: number } | { state: 'done'; at: number };

export function setupTokenPath(dataDir: string): string {
  return join(dataDir, 'console', 'setup-token.json');
}

export function readSetupToken(path: string): SetupTokenState | undefined {
  if (!existsSync(path)) return undefined;
  try {
    const j = JSON.parse(readFileSync(path, 'utf8')) as Partial<{ state: string; token: string; createdAt: number; expiresAt: number; at: number }>;
    if (j.state === 'done' && typeof j.at === 'number') return { state: 'done', at: j.at };
    if (j.state === 'pending' && typeof j.token === 'string' && /^[A-Za-z0-9_-]{16,64}$/.test(j.token) && typeof j.expiresAt === 'number' && typeof j.createdAt === 'number') return { state: 'pending', token: j.token, createdAt: j.createdAt, expiresAt: j.expiresAt };
  } catch {
    /* unreadable: made again */
  }
  return undefined;
}

/**
 * Written atomically, 0600; owned like the data directory when run as root (the
 * installer, the command), so the service — another user — can still read and replace it.
 */
function write(path: string, s: SetupTokenState): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(s)}\n`, { mode: 0o600 });
  if (process.getuid?.() === 0) {
    const owner = statSync(dirname(dir));
    chownSync(dir, owner.uid, owner.gid);
    chownSync(tmp, owner.uid, owner.gid);
  }
  renameSync(tmp, path);
}

/** The valid token (made, or made again when missing, unreadable or expired), or { done } after the first admin. */
export function ensureSetupToken(path: string, now: number): SetupTokenState {
  const cur = readSetupToken(path);
  if (cur?.state === 'done') return cur;
  if (cur && cur.expiresAt > now) return cur;
  const next: SetupTokenState = { state: 'pending', token: randomBytes(15).toString('base64url'), createdAt: now, expiresAt: now + SETUP_TOKEN_TTL_MS };
  write(path, next);
  return next;
}

/** The first admin exists: the token is gone for good. */
export function finishSetupToken(path: string, now: number): void {
  write(path, { state: 'done', at: now });
}

/** The address a phone opens to set the console up, the token in the fragment. */
export function setupUrl(base: string, token: string): string {
  return `${base.replace(/\/$/, '')}/#/setup?token=${encodeURIComponent(token)}`;
}

/** The console's addresses from its config: each IPv4 address of the box when it listens on all of them. */
export function consoleUrls(c: { host: string; port: number; tls: { enabled: boolean } }): string[] {
  const scheme = c.tls.enabled ? 'https' : 'http';
  if (c.host !== '0.0.0.0' && c.host !== '::') return [`${scheme}://${c.host.includes(':') ? `[${c.host}]` : c.host}:${c.port}/`];
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) out.push(`${scheme}://${a.address}:${c.port}/`);
  return out;
}

/** A QR code of the text for a terminal (two rows per line) — what the installer prints. */
export function qrText(text: string): string {
  return renderUnicodeCompact(text, { border: 2 });
}

export function qrSvg(text: string): string {
  return renderSVG(text, { border: 2 });
}

/** The label the installer and `estate-edge setup-token` print. */
export function setupLabel(s: SetupTokenState, urls: readonly string[], opts: { qr?: boolean } = {}): string {
  if (s.state === 'done') return `控制台已完成首次设置 The console is set up (first admin created ${new Date(s.at).toISOString()}): log in at ${urls[0] ?? 'the console'}.\n`;
  const link = setupUrl(urls[0] ?? 'http://<box address>:8080', s.token);
  const lines = ['控制台首次设置 Console first-run setup', `  设置令牌 setup token:  ${s.token}`, `  有效期至 valid until:  ${new Date(s.expiresAt).toISOString()} (one-time / 一次性)`, ...urls.map((u, i) => `  ${i === 0 ? '地址 address:     ' : '                  '}     ${u}`), `  扫码打开 scan to open: ${link}`];
  return `${lines.join('\n')}\n${opts.qr === false ? '' : `${qrText(link)}\n`}`;
}
