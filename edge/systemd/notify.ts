// sd_notify for the gateway: READY=1 once the gateway has really started, WATCHDOG=1
// from the main event loop, STOPPING=1 on shutdown, STATUS= lines for `systemctl status`.
//
// Why a `systemd-notify` subprocess and not an addon: the protocol needs a unix
// *datagram* socket, which Node cannot open. The addons that can (`sd-notify`,
// `unix-dgram`) are node-gyp builds: they need a compiler, libsystemd-dev and Node's
// headers on the build host and a rebuild per target arch (the offline arm64 pack would
// need them too). `systemd-notify` is part of systemd itself, so it is on every box
// that can run the unit. Its caveats, and how they are handled:
//  - the message comes from the child's PID, not the main PID, so the unit needs
//    `NotifyAccess=all` (systemd attributes the message by the sender's cgroup);
//  - systemd must still find the sender alive to look its cgroup up: systemd-notify
//    (systemd ≥ 246) waits for the manager to process the message (BARRIER=1), unless
//    `--no-block`, which we therefore never pass;
//  - `--pid=<our pid>` adds MAINPID=<our pid>, so the manager's idea of the main process
//    stays on Node and never moves to the short-lived helper;
//  - a fork+exec per message: READY and STOPPING once, WATCHDOG every WatchdogSec/2
//    (15 s with the shipped unit), which costs a few ms of CPU on a Pi.
// The pings are scheduled by a timer on the main event loop, so a blocked loop stops
// them and systemd's watchdog restarts the service: that is the point of the watchdog.
import { spawn } from 'node:child_process';
import type { Logger } from 'pino';

export interface NotifierOptions {
  env?: NodeJS.ProcessEnv;
  log?: Pick<Logger, 'warn' | 'error' | 'debug'>;
  /** Binary to run (tests may point it elsewhere). */
  command?: string;
  /** Our main PID (sent as MAINPID=). */
  pid?: number;
  /** Give up on one helper after this long (it normally takes a few ms). */
  helperTimeoutMs?: number;
}

interface Job {
  assignments: string[];
  done: () => void;
}

/** The watchdog interval systemd asked for (WATCHDOG_USEC), if it is meant for this process. */
export function watchdogUsec(env: NodeJS.ProcessEnv, pid: number): number | undefined {
  const usec = Number(env.WATCHDOG_USEC);
  if (!Number.isFinite(usec) || usec <= 0) return undefined;
  // sd_watchdog_enabled(): WATCHDOG_PID, when set, names the process the watchdog is for.
  if (env.WATCHDOG_PID !== undefined && Number(env.WATCHDOG_PID) !== pid) return undefined;
  return usec;
}

/** Keep STATUS= to one readable line (systemctl status shows it verbatim). */
function statusLine(text: string): string {
  return text.replace(/[\r\n]+/g, ' ').slice(0, 200);
}

export class SystemdNotifier {
  /** True when started by systemd with a notify socket (Type=notify). */
  readonly enabled: boolean;
  /** Ping period (half of WATCHDOG_USEC), or undefined when no watchdog is configured. */
  readonly pingIntervalMs: number | undefined;
  private readonly command: string;
  private readonly pid: number;
  private readonly env: NodeJS.ProcessEnv;
  private readonly helperTimeoutMs: number;
  private queue: Job[] = [];
  private busy = false;
  private timer: NodeJS.Timeout | undefined;
  private broken = false;
  private statusSource: (() => string) | undefined;
  private lastStatus: string | undefined;
  private stoppingSent = false;
  pingsSent = 0;

  constructor(private readonly opts: NotifierOptions = {}) {
    this.env = opts.env ?? process.env;
    this.pid = opts.pid ?? process.pid;
    this.command = opts.command ?? 'systemd-notify';
    this.helperTimeoutMs = opts.helperTimeoutMs ?? 10_000;
    this.enabled = typeof this.env.NOTIFY_SOCKET === 'string' && this.env.NOTIFY_SOCKET !== '';
    const usec = this.enabled ? watchdogUsec(this.env, this.pid) : undefined;
    this.pingIntervalMs = usec === undefined ? undefined : Math.max(50, Math.floor(usec / 2000));
  }

  /** The gateway has started: READY=1 (and the first status line). */
  ready(status: string): Promise<void> {
    // A SIGTERM during start-up sends STOPPING first; READY after it would confuse systemd.
    if (this.stoppingSent) return Promise.resolve();
    this.lastStatus = statusLine(status);
    return this.send(['READY=1', `STATUS=${this.lastStatus}`]);
  }

  /** Shutdown has begun: STOPPING=1. Stops the watchdog pings (the stop has its own timeout). */
  stopping(status: string): Promise<void> {
    if (this.stoppingSent) return Promise.resolve();
    this.stoppingSent = true;
    this.stopWatchdog();
    this.lastStatus = statusLine(status);
    return this.send(['STOPPING=1', `STATUS=${this.lastStatus}`]);
  }

  /**
   * A reload has begun (the gateway stops and starts again in this process): RELOADING=1
   * with MONOTONIC_USEC (required by systemd ≥ 253 for notify-reload, harmless before);
   * the next run's READY=1 ends it. Stops the watchdog pings until then.
   */
  reloading(status: string): Promise<void> {
    if (this.stoppingSent) return Promise.resolve();
    this.stopWatchdog();
    this.lastStatus = statusLine(status);
    // process.hrtime is CLOCK_MONOTONIC on Linux (libuv's uv_hrtime), the clock systemd means.
    return this.send(['RELOADING=1', `MONOTONIC_USEC=${process.hrtime.bigint() / 1000n}`, `STATUS=${this.lastStatus}`]);
  }

  /** Send a status line now (rare events; routine changes ride on the watchdog pings). */
  status(status: string): Promise<void> {
    const line = statusLine(status);
    if (line === this.lastStatus) return Promise.resolve();
    this.lastStatus = line;
    return this.send([`STATUS=${line}`]);
  }

  /**
   * Start WATCHDOG=1 pings at half the interval systemd asked for. `status`, if given, is
   * read at each ping and sent along when it changed, so status updates cost no extra helper.
   */
  startWatchdog(status?: () => string): void {
    this.statusSource = status;
    if (this.pingIntervalMs === undefined || this.timer) return;
    this.timer = setInterval(() => this.ping(), this.pingIntervalMs);
    // The timer must not keep a finished process alive; it only matters while we run.
    this.timer.unref();
  }

  stopWatchdog(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private ping(): void {
    // A helper still in flight means the previous ping has not been delivered: sending
    // more would only pile up processes. The next tick tries again.
    if (this.busy || this.queue.length) return;
    const assignments = ['WATCHDOG=1'];
    if (this.statusSource) {
      let line: string | undefined;
      try {
        line = statusLine(this.statusSource());
      } catch {
        line = undefined;
      }
      if (line !== undefined && line !== this.lastStatus) {
        this.lastStatus = line;
        assignments.push(`STATUS=${line}`);
      }
    }
    this.pingsSent++;
    void this.send(assignments);
  }

  /** Wait until every queued message has been handed over (bounded by the helper timeout). */
  async flush(): Promise<void> {
    if (!this.busy && this.queue.length === 0) return;
    await new Promise<void>((resolve) => this.queue.push({ assignments: [], done: resolve }));
  }

  private send(assignments: string[]): Promise<void> {
    if (!this.enabled || this.broken) return Promise.resolve();
    return new Promise((resolve) => {
      this.queue.push({ assignments, done: resolve });
      this.drain();
    });
  }

  /** One helper at a time, in order: READY must never overtake STOPPING or vice versa. */
  private drain(): void {
    if (this.busy) return;
    const job = this.queue.shift();
    if (!job) return;
    if (job.assignments.length === 0 || this.broken) {
      job.done();
      this.drain();
      return;
    }
    this.busy = true;
    const finish = () => {
      clearTimeout(killer);
      this.busy = false;
      job.done();
      this.drain();
    };
    const child = spawn(this.command, [`--pid=${this.pid}`, ...job.assignments], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: this.env,
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      if (stderr.length < 500) stderr += d.toString();
    });
    const killer = setTimeout(() => {
      this.opts.log?.warn({ assignments: job.assignments }, 'systemd-notify did not return: killed');
      child.kill('SIGKILL');
    }, this.helperTimeoutMs);
    killer.unref();
    child.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        // Without the helper there is no way to talk to systemd: say so once, loudly.
        // With the shipped unit this means READY never arrives and systemd restarts us,
        // which is the correct outcome for a box missing part of systemd.
        this.broken = true;
        this.opts.log?.error({ command: this.command }, 'systemd-notify not found: cannot report READY/WATCHDOG to systemd');
      } else {
        this.opts.log?.error({ err: String(err) }, 'systemd-notify could not be started');
      }
      finish();
    });
    child.once('close', (code) => {
      if (code !== 0 && code !== null) this.opts.log?.warn({ code, stderr: stderr.trim(), assignments: job.assignments }, 'systemd-notify failed');
      finish();
    });
  }
}

/**
 * Test-only: block the event loop for `ms` milliseconds on SIGUSR2, so a test can check
 * that the watchdog pings stop while the loop is frozen. Enabled only when
 * ESTATE_EDGE_DEBUG_BLOCK_LOOP_MS is set (never in the shipped unit); returns whether it was.
 */
export function installDebugLoopBlocker(env: NodeJS.ProcessEnv, log?: Pick<Logger, 'warn'>): boolean {
  const ms = Number(env.ESTATE_EDGE_DEBUG_BLOCK_LOOP_MS);
  if (!env.ESTATE_EDGE_DEBUG_BLOCK_LOOP_MS || !Number.isFinite(ms) || ms <= 0) return false;
  log?.warn({ ms }, 'debug: SIGUSR2 will block the event loop (ESTATE_EDGE_DEBUG_BLOCK_LOOP_MS is set)');
  process.on('SIGUSR2', () => {
    // Atomics.wait on a private buffer sleeps the main thread without spinning the CPU.
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Math.min(ms, 600_000));
  });
  return true;
}
