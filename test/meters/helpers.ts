// Real serial peers for the meter tests: socat pseudo-terminal pairs and a pymodbus
// server process. Everything is bounded in time and killed by its pid.
import { spawn as spawnChild, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

// Every peer process is unref'd (with its pipes) and killed when the test process exits:
// a peer left behind by a test that failed half-way (socat started, pymodbus then could
// not) must not keep the file running until tap's per-file timeout.
const peers = new Set<ChildProcess>();
process.once('exit', () => {
  for (const p of peers) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});
function spawn(cmd: string, args: string[], opts: SpawnOptions): ChildProcess {
  const p = spawnChild(cmd, args, opts);
  peers.add(p);
  p.once('exit', () => peers.delete(p));
  p.unref();
  for (const s of [p.stdin, p.stdout, p.stderr]) (s as unknown as { unref?: () => void } | null)?.unref?.();
  return p;
}

export interface PtyPair {
  a: string;
  b: string;
  proc: ChildProcess;
  stop(): Promise<void>;
}

async function waitUntil(pred: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function kill(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      p.kill('SIGKILL');
    }, 2000);
    p.once('exit', () => {
      clearTimeout(t);
      resolve();
    });
    p.kill('SIGTERM');
  });
}

/** A socat pty pair: bytes written to one end come out of the other (instantly; ptys ignore baud and parity). */
export async function ptyPair(at?: { a?: string; b?: string }): Promise<PtyPair> {
  const dir = mkdtempSync(join(tmpdir(), 'ee-pty-'));
  const a = at?.a ?? join(dir, 'a');
  const b = at?.b ?? join(dir, 'b');
  const proc = spawn('socat', [`pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], { stdio: 'ignore' });
  let spawnError: Error | undefined;
  proc.once('error', (e) => (spawnError = e));
  await waitUntil(() => (existsSync(a) && existsSync(b)) || spawnError !== undefined || proc.exitCode !== null, 5000, 'socat ptys');
  if (spawnError || proc.exitCode !== null) throw new Error(`socat cannot start (${spawnError?.message ?? `exit ${proc.exitCode}`}): install the Debian package socat`);
  return { a, b, proc, stop: () => kill(proc) };
}

export interface PyServer {
  proc: ChildProcess;
  stop(): Promise<void>;
}

export type RegisterSpec = { units: Record<string, { ir?: Record<string, number>; hr?: Record<string, number>; co?: Record<string, number>; di?: Record<string, number> }>; baudrate?: number };

/** pymodbus server (Debian package, /usr/bin/python3) on a serial device ("rtu") or TCP port ("tcp"). */
export async function pymodbus(mode: 'rtu' | 'tcp', where: string | number, spec: RegisterSpec): Promise<PyServer> {
  const proc = spawn('/usr/bin/python3', [join(here, 'pymodbus_server.py'), mode, String(where), JSON.stringify(spec)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (err += d));
  await waitUntil(() => out.includes('READY') || proc.exitCode !== null, 15_000, 'pymodbus READY').catch((e) => {
    throw new Error(`${e.message}: ${err}`);
  });
  if (proc.exitCode !== null) {
    if (/No module named 'pymodbus'/.test(err)) throw new Error('pymodbus peer cannot start: the Debian package python3-pymodbus is not installed for /usr/bin/python3');
    throw new Error(`pymodbus exited: ${err}`);
  }
  return {
    proc,
    stop: async () => {
      proc.stdin!.end();
      await kill(proc);
    },
  };
}

/** Registers of float32 values (ABCD), for the pymodbus spec. */
export function floatRegs(values: Record<number, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [addr, v] of Object.entries(values)) {
    const b = Buffer.alloc(4);
    b.writeFloatBE(v);
    out[String(Number(addr))] = b.readUInt16BE(0);
    out[String(Number(addr) + 1)] = b.readUInt16BE(2);
  }
  return out;
}
