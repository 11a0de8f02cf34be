// The shipped systemd unit (systemd/estate-edge.service) as benchmarks need it: they run
// the gateway exactly as a box does — the same entry file, V8 flags and environment — so
// their figures are the box's figures.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { FakeNotifySocket, monoMs } from './notify-socket.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
/** The repository root, from scripts/lib/ (tsx) or dist/scripts/lib/ (compiled). */
export const REPO = [resolve(HERE, '..', '..'), resolve(HERE, '..', '..', '..')].find((d) => existsSync(join(d, 'systemd', 'estate-edge.service')))!;

const UNIT = readFileSync(join(REPO, 'systemd', 'estate-edge.service'), 'utf8');
const EXEC = (/^ExecStart=(.*)$/m.exec(UNIT)?.[1] ?? '').split(/\s+/);
const ENTRY_AT = EXEC.findIndex((w) => w.endsWith('main.js'));

/** Environment= assignments of the unit (malloc tuning, NODE_ENV). */
export const UNIT_ENV: Record<string, string> = Object.fromEntries([...UNIT.matchAll(/^Environment=([A-Za-z_][A-Za-z0-9_]*)=(.*)$/gm)].map((m) => [m[1]!, m[2]!]));

/** Node flags exactly as ExecStart= passes them. */
export const UNIT_NODE_FLAGS: string[] = EXEC.slice(1, ENTRY_AT).filter((w) => w.startsWith('--'));

/** The entry file ExecStart= runs, in this checkout (…/current/dist/bundle/edge/main.js → REPO/dist/bundle/edge/main.js). */
export const UNIT_MAIN: string = join(REPO, EXEC[ENTRY_AT]!.replace(/^\/opt\/estate-edge\/current\//, ''));

/** A gateway child started the way systemd starts it, on a fake notify socket. */
export interface UnitGateway {
  child: ChildProcess;
  sock: FakeNotifySocket;
  /** Process start → READY=1, seconds. */
  readyS: number;
  /** CPU seconds (user+system) the process had used at READY: robust to a busy machine. */
  cpuS: number;
  stop(): Promise<void>;
}

/** Children still running, killed if the benchmark is interrupted. */
export const unitChildren = new Set<ChildProcess>();

/** Write `config` as YAML into `dir` and start the unit's entry on it; resolves at READY. */
export async function startUnitGateway(config: Record<string, unknown>, dir: string, name = 'gateway'): Promise<UnitGateway> {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, stringify(config));
  const sock = new FakeNotifySocket();
  await sock.start();
  const t0 = monoMs();
  const child = spawn(process.execPath, [...UNIT_NODE_FLAGS, UNIT_MAIN, 'run', '--config', file], {
    stdio: ['ignore', 'ignore', 'inherit'],
    env: { ...process.env, ...UNIT_ENV, NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: '30000000' },
  });
  unitChildren.add(child);
  child.once('exit', () => unitChildren.delete(child));
  try {
    const ready = await sock.waitFor('READY', 120_000);
    return {
      child,
      sock,
      readyS: (ready.t - t0) / 1000,
      cpuS: procCpuS(child.pid!),
      async stop() {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        await sock.close();
      },
    };
  } catch (err) {
    child.kill('SIGKILL');
    await sock.close();
    throw err;
  }
}

/** utime+stime of a process in seconds (/proc/<pid>/stat, USER_HZ = 100 on Linux). */
export function procCpuS(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

/** A /proc/<pid>/status memory field (VmRSS, RssAnon, RssFile, VmHWM) in MB. */
export function procMemMB(pid: number, field = 'VmRSS'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

/** Resident memory three ways (MB), from /proc/<pid>/smaps_rollup: RSS counts every page
 *  mapped (shared libraries in full), PSS shares each page among the processes mapping it,
 *  USS (Private_Clean + Private_Dirty) is what the process alone holds: freed if it exits. */
export interface MemFigures {
  rss: number;
  pss: number;
  uss: number;
}

export function procMemFigures(pid: number): MemFigures {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN);
  return { rss: kb('Rss') / 1024, pss: kb('Pss') / 1024, uss: (kb('Private_Clean') + kb('Private_Dirty')) / 1024 };
}

/** Peak (by RSS, each figure its own peak) and last RSS/PSS/USS over a window, sampled every second. */
export async function peakMemFigures(pid: number, seconds: number): Promise<{ peak: MemFigures; last: MemFigures }> {
  const peak: MemFigures = { rss: 0, pss: 0, uss: 0 };
  let last: MemFigures = { rss: NaN, pss: NaN, uss: NaN };
  for (let i = 0; i < seconds; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    last = procMemFigures(pid);
    for (const k of ['rss', 'pss', 'uss'] as const) peak[k] = Math.max(peak[k], last[k]);
  }
  return { peak, last };
}

/** "RSS 81.2 MB (≤ 90) · PSS 52.0 MB · USS 38.1 MB (≤ 40)" with the budgets beside, and OVER where exceeded. */
export function memLine(m: MemFigures, budget: { rss?: number; uss?: number } = {}): string {
  const f = (v: number) => v.toFixed(1);
  const b = (v: number, max?: number) => (max === undefined ? '' : ` (budget ≤ ${max}${v > max ? ', OVER' : ''})`);
  return `RSS ${f(m.rss)} MB${b(m.rss, budget.rss)} · PSS ${f(m.pss)} MB · USS ${f(m.uss)} MB${b(m.uss, budget.uss)}`;
}

/** Peak and last VmRSS over a window, sampled every second. */
export async function peakRssMB(pid: number, seconds: number): Promise<{ peak: number; last: number }> {
  let peak = 0;
  let last = 0;
  for (let i = 0; i < seconds; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    last = procMemMB(pid);
    peak = Math.max(peak, last);
  }
  return { peak, last };
}
