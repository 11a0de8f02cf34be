// What a capability's `estate-edge doctor` checks are made of: the finding format, the
// context a check gets (the typed config, the device directory, the service account's
// access), and the helpers every check shares. The doctor itself (edge/doctor.ts) runs
// the core checks and then each capability's, from the descriptor list.
import { accessSync, constants, readdirSync, statSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { connect as tcpConnect } from 'node:net';
import type { GatewayConfig } from './config/core.js';
import type { Secret } from './config/secret.js';

export type Level = 'OK' | 'WARN' | 'FAIL' | 'SKIP';

export interface Finding {
  /** Stable id of the check (for --json consumers). */
  check: string;
  /** "中文 English" label. */
  label: string;
  level: Level;
  message: string;
  /** Figures behind the message, for --json consumers (bytes). */
  data?: Record<string, unknown>;
}

/** The service account whose access to devices is judged (uid and every group it is in). */
export interface Account {
  uid: number;
  gids: Set<number>;
}

export interface DoctorContext {
  /** The config as the service would run it (validated, defaults filled). */
  config: GatewayConfig;
  secrets: ReadonlyMap<string, Secret>;
  /** Where device nodes are listed (/dev). */
  devDir: string;
  /** Network checks give up after this long (ms). */
  timeoutMs: number;
  /** Secrets a technician may see on the box's own screen (the console's setup token) are shown. */
  showSetupToken: boolean;
  /** Add a finding under this check's id and label. */
  add(level: Level, message: string, data?: Record<string, unknown>): void;
  /** Judge a device node for the service account: missing, not a device, not accessible, or OK. */
  device(where: string, dev: string, available: () => string[]): void;
  /** Device nodes in devDir whose name matches, sorted. */
  listDevices(re: RegExp): string[];
}

/** One line (or more) of the doctor's report, under a stable id and a "中文 English" label. */
export interface DoctorCheck {
  id: string;
  label: string;
  run(ctx: DoctorContext): void | Promise<void>;
}

/** Hide user:password in URLs before they are printed. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^/@]*)@/, '//***@');
}

export function errText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (!e?.code) return String((err as Error)?.message ?? err);
  return e.message?.includes(e.code) ? e.message : `${e.code}${e.message ? `: ${e.message}` : ''}`;
}

function modeAllows(st: Stats, acct: Account, write: boolean): boolean {
  const want = write ? 0o6 : 0o4;
  const bits = st.uid === acct.uid ? (st.mode >> 6) & 7 : acct.gids.has(st.gid) ? (st.mode >> 3) & 7 : st.mode & 7;
  return (bits & want) === want;
}

/** Can the service open PATH (read+write)? Returns a reason when not. */
export function accessFor(path: string, st: Stats, acct: Account | undefined, who: string): string | undefined {
  const root = process.getuid?.() === 0;
  if (root && acct) return modeAllows(st, acct, true) ? undefined : `${who} cannot open it (owner ${st.uid}:${st.gid}, mode ${(st.mode & 0o777).toString(8)})`;
  try {
    accessSync(path, constants.R_OK | constants.W_OK);
    return undefined;
  } catch (err) {
    return `not accessible: ${errText(err)}`;
  }
}

export function listDevices(devDir: string, re: RegExp): string[] {
  try {
    return readdirSync(devDir)
      .filter((n) => re.test(n))
      .map((n) => join(devDir, n))
      .sort();
  } catch {
    return [];
  }
}

/** Stat `dev` and add one finding: missing (with the devices present), not a character device, not accessible to `who`, or OK. */
export function checkDevice(add: DoctorContext['add'], where: string, dev: string, acct: Account | undefined, who: string, available: () => string[]): void {
  let st: Stats;
  try {
    st = statSync(dev);
  } catch (err) {
    const alt = available();
    add('FAIL', `${where} ${dev}: ${errText(err).startsWith('ENOENT') ? 'missing' : errText(err)}${alt.length ? ` (present: ${alt.join(', ')})` : ''}`);
    return;
  }
  if (!st.isCharacterDevice()) {
    add('FAIL', `${where} ${dev}: not a character device`);
    return;
  }
  const denied = accessFor(dev, st, acct, who);
  add(denied ? 'FAIL' : 'OK', `${where} ${dev}${denied ? `: ${denied}` : ' present and accessible'}`);
}

/** Undefined when HOST:PORT accepts a TCP connection within timeoutMs, else why not. */
export async function tcpReachable(host: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolveReach) => {
    const s = tcpConnect({ host, port });
    const done = (err?: string) => {
      clearTimeout(timer);
      s.destroy();
      resolveReach(err);
    };
    const timer = setTimeout(() => done(`no answer within ${timeoutMs} ms`), timeoutMs);
    s.once('connect', () => done());
    s.once('error', (err) => done(errText(err)));
  });
}
