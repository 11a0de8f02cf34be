// A fake systemd notify socket for tests and benchmarks: runs notify-listener.py (Node
// cannot create unix datagram sockets) and collects the messages the gateway sends.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const PYTHON = '/usr/bin/python3';
// Beside this file (scripts/lib) or, when compiled to dist/scripts/lib, in the source tree.
const LISTENER = [new URL('./notify-listener.py', import.meta.url), new URL('../../../scripts/lib/notify-listener.py', import.meta.url)].map((u) => fileURLToPath(u)).find((p) => existsSync(p)) ?? fileURLToPath(new URL('./notify-listener.py', import.meta.url));

export interface NotifyMessage {
  /** Arrival time, CLOCK_MONOTONIC in ms: comparable with monoMs(). */
  t: number;
  pid: number | null;
  msg: Record<string, string>;
}

/** CLOCK_MONOTONIC in ms (the listener stamps arrivals on the same clock). */
export function monoMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export class FakeNotifySocket {
  readonly path: string;
  readonly messages: NotifyMessage[] = [];
  private readonly dir: string;
  private child: ChildProcess | undefined;
  private waiters: Array<() => void> = [];

  constructor() {
    this.dir = mkdtempSync(join(tmpdir(), 'ee-notify-'));
    this.path = join(this.dir, 'notify.sock');
  }

  async start(): Promise<void> {
    const child = spawn(PYTHON, [LISTENER, this.path], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.child = child;
    const rl = createInterface({ input: child.stdout! });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('notify listener did not start')), 10_000);
      child.once('error', reject);
      rl.on('line', (line) => {
        const m = JSON.parse(line) as NotifyMessage & { listening?: string };
        if (m.listening) {
          clearTimeout(timer);
          resolve();
          return;
        }
        this.messages.push(m);
        for (const w of this.waiters.splice(0)) w();
      });
    });
  }

  /** Messages carrying KEY (e.g. "WATCHDOG"). */
  with(key: string): NotifyMessage[] {
    return this.messages.filter((m) => key in m.msg);
  }

  /** Wait until a message with KEY has arrived (or throw after timeoutMs). */
  async waitFor(key: string, timeoutMs: number, count = 1): Promise<NotifyMessage> {
    await this.waitUntil(() => this.with(key).length >= count, timeoutMs, `${count} ${key}= message(s)`);
    return this.with(key)[count - 1]!;
  }

  /** Wait until `done()` holds, re-checked on every message (or throw after timeoutMs). */
  async waitUntil(done: () => boolean, timeoutMs: number, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (done()) return;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${what} within ${timeoutMs} ms (got: ${JSON.stringify(this.messages.map((m) => m.msg))})`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  async close(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.stdin?.end();
      const timer = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
