// The bus scheduler: one loop per RS-485 line (or converter), lines run in parallel.
//
// - One transaction at a time per line (half-duplex); on-demand jobs (meter.read,
//   bus.scan, raw polls, time sync) run between polls from a small bounded queue.
// - Each device has its own poll interval. The device whose poll is due earliest goes
//   next, so an overloaded line degrades to round-robin. A poll that is late by a whole
//   interval or more is skipped and counted, never queued: there is at most one
//   pending poll per device, and a published value is never older than one cycle.
// - A device that does not answer stops its poll after the first timeout; after
//   `offlineAfter` failed polls it is reported offline and probed with one request at
//   exponential back-off, so a dead meter costs the healthy ones at most one timeout
//   per back-off period.
// - "Illegal data address" on a coalesced block splits it into per-point reads; on a
//   single point it marks the point unsupported.
// - The line is reopened with back-off when it fails (unplugged USB adapter, TCP
//   converter dropping the connection); the transactor flushes after every timeout.
import type { Logger } from 'pino';
import type { Line } from '../../drivers/serial/line.js';
import type { TapEvent } from '../../drivers/serial/transactor.js';
import type { Clock } from '../clock.js';
import { backoffDelay } from '../backoff.js';
import type { MeterCounters } from './api.js';
import type { MeterBusConfig, MeterDeviceConfig } from './schema.js';
import type { Profile } from './profiles.js';
import { Plausibility } from './plausibility.js';
import { planReads, resolvePoints, splitBlock, type Block, type PointSpec } from './plan.js';
import { ReadError, type BusProtocol, type DeviceTarget, type ErrorKind, type ScanHit, type PointValue } from './protocols.js';

/** `suspect`: read correctly off the wire but implausible for its point kind (plausibility.ts). */
export type Quality = 'good' | 'invalid' | 'unsupported' | 'suspect';

export interface LatestValue {
  value: number | null;
  unit: string;
  kind: string;
  quality: Quality;
  /** UTC ms of the reply that carried it. */
  ts: number;
}

/** Per-device counters (the console's and meter.status' shape). */
export type DeviceCounters = MeterCounters;

export type DeviceState = 'unknown' | 'online' | 'offline';

export interface DeviceRuntime {
  id: string;
  cfg: MeterDeviceConfig;
  profile: Profile;
  target: DeviceTarget;
  points: PointSpec[];
  blocks: Block[];
  intervalMs: number;
  nextDue: number;
  state: DeviceState;
  stateSince: number;
  failures: number;
  counters: DeviceCounters;
  latest: Map<string, LatestValue>;
  plausibility: Plausibility;
  lastError?: { at: number; kind: ErrorKind | 'unsupported'; message: string };
  lastSuccessAt?: number;
}

export interface ReadingEvent {
  device: DeviceRuntime;
  values: Array<PointValue & { at: number; quality: Quality }>;
  /** Poll slot (monotonic) this reading belongs to. */
  due: number;
}

export interface SchedulerHooks {
  onReading?(e: ReadingEvent): void;
  onState?(d: DeviceRuntime, state: 'online' | 'offline', reason: string): void;
  onError?(d: DeviceRuntime, kind: ErrorKind, err: ReadError): void;
  onRequest?(d: DeviceRuntime, latencyMs: number | undefined): void;
  onSkipped?(d: DeviceRuntime, n: number): void;
  onLate?(d: DeviceRuntime, n: number): void;
  onSuspect?(d: DeviceRuntime, point: string, reason: string): void;
  onLine?(open: boolean, reason?: string): void;
}

export class BusBusyError extends Error {
  readonly code = 'bus_busy';
}

/** meter.read of a point the device does not poll (not in its profile, not in its `points`, or disabled as unsupported). */
export class UnknownPointError extends Error {
  readonly code = 'unknown_point';
}

/** How long an on-demand request may wait for the line before it is refused (bus_busy), never run late. */
export const MAX_JOB_WAIT_MS = 5000;

export interface BusRunnerOptions {
  bus: MeterBusConfig;
  line: Line;
  protocol: BusProtocol;
  profiles: ReadonlyMap<string, Profile>;
  clock: Clock;
  log: Logger;
  hooks?: SchedulerHooks;
  /** Coalesce Modbus points into block reads (default true; the bench compares). */
  coalesce?: boolean;
  maxJobs?: number;
}

function newCounters(): DeviceCounters {
  return { polls: 0, requests: 0, responses: 0, timeouts: 0, crcErrors: 0, wrongUnit: 0, badReplies: 0, portErrors: 0, exceptions: {}, skippedPolls: 0, readings: 0, lateReplies: 0, strayBytes: 0, suspectValues: 0, latencyMs: { last: 0, avg: 0, max: 0 } };
}

export function deviceTarget(cfg: MeterDeviceConfig, profile: Profile): DeviceTarget {
  if (profile.protocol === 'modbus') return { address: Number(cfg.address) };
  if (profile.protocol === 'cjt188') return { address: String(cfg.address).padStart(14, '0').toUpperCase(), meterType: profile.meterType, diOrder: profile.diOrder ?? '901F' };
  return { address: String(cfg.address).padStart(12, '0').toUpperCase() };
}

interface Job {
  run: () => Promise<void>;
  /** Refuse the job (it has not started): bus_busy, or the bus stopped. */
  refuse: (err: Error) => void;
  /** monotonic ms after which the job is refused instead of started. */
  deadline: number;
  /** A safety write (relay cut): goes first and may run between the blocks of a poll. */
  urgent?: boolean;
}

export class BusRunner {
  readonly id: string;
  readonly devices: DeviceRuntime[] = [];
  private running = false;
  private loopDone: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private wakeTimer: NodeJS.Timeout | undefined;
  private readonly jobs: Job[] = [];
  private lineUp = false;
  private lineDownSince: number | undefined;
  lineError: string | undefined;
  /** Failed attempts to open the line since it was last up (its reopen back-off). */
  private reopenFailures = 0;
  /** The long on-demand operation holding the line (bus.scan), for honest bus_busy answers. */
  private longJob: { what: string; since: number } | undefined;
  private stopping = false;
  private lineUpSince: number | undefined;
  /** Transactions per poll cycle etc. for the console and the bench. */
  readonly stats = { transactions: 0, polls: 0, skipped: 0, lineOpens: 0, lineFailures: 0 };

  /** The bus's config section (devices, timeouts, offline rule, back-off). */
  private readonly config: MeterBusConfig;
  readonly line: Line;
  readonly protocol: BusProtocol;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly hooks: SchedulerHooks | undefined;
  /** Bound of the on-demand queue (default 8). */
  private readonly maxJobs: number | undefined;

  constructor(o: BusRunnerOptions) {
    this.config = o.bus;
    this.line = o.line;
    this.protocol = o.protocol;
    this.clock = o.clock;
    this.log = o.log;
    this.hooks = o.hooks;
    this.maxJobs = o.maxJobs;
    this.id = o.bus.id;
    const now = o.clock.monotonic();
    o.bus.devices.forEach((cfg, i) => {
      if (!cfg.enabled) return;
      const profile = o.profiles.get(cfg.profile);
      if (!profile) throw new Error(`device ${cfg.id}: unknown profile "${cfg.profile}"`);
      const points = resolvePoints(profile, cfg.points);
      this.devices.push({
        id: cfg.id,
        cfg,
        profile,
        target: deviceTarget(cfg, profile),
        points,
        blocks: planReads(profile, points, { coalesce: o.coalesce !== false }),
        intervalMs: cfg.pollIntervalMs,
        // Spread the first polls over the first interval so meters do not all fall due at once.
        nextDue: now + Math.min(cfg.pollIntervalMs, 1000) * (i / Math.max(1, o.bus.devices.length)),
        state: 'unknown',
        stateSince: o.clock.now(),
        failures: 0,
        counters: newCounters(),
        latest: new Map(),
        plausibility: this.plausibilityFor(cfg.id),
      });
    });
    o.line.on('close', (err) => this.onLineClosed(err));
  }

  private plausibilityFor(device: string): Plausibility {
    const p = new Plausibility();
    p.onReset = (pt, from, to) => this.log.warn({ bus: this.id, device, point: pt.name, from, to }, 'counter stayed lower: taken as a meter reset or replacement');
    return p;
  }

  get isLineUp(): boolean {
    return this.lineUp;
  }

  device(id: string): DeviceRuntime | undefined {
    return this.devices.find((d) => d.id === id);
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loopDone = this.loop().catch((err) => this.log.error({ bus: this.id, err }, 'bus loop crashed'));
  }

  async stop(): Promise<void> {
    // From here on a closing line is ours, not a lost one.
    this.stopping = true;
    this.running = false;
    this.kick();
    await this.loopDone;
    for (const j of this.jobs.splice(0)) j.refuse(new Error(`bus ${this.id} stopped`));
    this.protocol.dispose();
    await this.line.close().catch(() => {});
  }

  private kick(): void {
    if (this.wakeTimer) clearTimeout(this.wakeTimer);
    this.wakeTimer = undefined;
    const w = this.wake;
    this.wake = undefined;
    w?.();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      this.wake = resolve;
      this.wakeTimer = setTimeout(() => this.kick(), Math.max(0, ms));
    });
  }

  /**
   * Run `fn` exclusively on the line between polls. Honest about waiting: refused at
   * once (BusBusyError) while a bus.scan holds the line or when the queue is full, and
   * refused, never run late, when it has not started within `maxWaitMs` (default
   * MAX_JOB_WAIT_MS): a caller that was told "busy" must not see it happen afterwards.
   */
  exclusive<T>(fn: () => Promise<T>, opts: { maxWaitMs?: number; long?: string; urgent?: boolean } = {}): Promise<T> {
    if (!this.running) return Promise.reject(new BusBusyError(`bus ${this.id} is not running`));
    if (this.longJob) {
      const s = Math.round((this.clock.monotonic() - this.longJob.since) / 1000);
      return Promise.reject(new BusBusyError(`bus ${this.id} is busy with ${this.longJob.what} (running for ${s} s); polling resumes when it ends`));
    }
    // Urgent jobs (relay cuts) are bounded by the caller (one per relay), not by the on-demand queue.
    if (!opts.urgent && this.jobs.length >= (this.maxJobs ?? 8)) return Promise.reject(new BusBusyError(`bus ${this.id} has too many pending on-demand requests`));
    const maxWaitMs = opts.maxWaitMs ?? MAX_JOB_WAIT_MS;
    return new Promise<T>((resolve, reject) => {
      const job: Job = {
        deadline: this.clock.monotonic() + maxWaitMs,
        refuse: reject,
        run: async () => {
          if (!this.running) return reject(new BusBusyError(`bus ${this.id} stopped`));
          if (opts.long) this.longJob = { what: opts.long, since: this.clock.monotonic() };
          try {
            resolve(await fn());
          } catch (err) {
            reject(err);
          } finally {
            if (opts.long) this.longJob = undefined;
          }
        },
      };
      if (opts.urgent) {
        job.urgent = true;
        // Behind the urgent jobs already waiting, ahead of every poll and on-demand read.
        const at = this.jobs.findIndex((j) => !j.urgent);
        this.jobs.splice(at < 0 ? this.jobs.length : at, 0, job);
      } else this.jobs.push(job);
      // A long job queued behind others: refuse newcomers already.
      if (opts.long && !this.longJob) this.longJob = { what: `${opts.long} (queued)`, since: this.clock.monotonic() };
      const timer = setTimeout(() => {
        const i = this.jobs.indexOf(job);
        if (i < 0) return;
        this.jobs.splice(i, 1);
        if (opts.long && this.longJob?.what.endsWith('(queued)')) this.longJob = undefined;
        reject(new BusBusyError(`bus ${this.id}: the line did not become free within ${maxWaitMs} ms; not executed`));
      }, maxWaitMs);
      timer.unref?.();
      const run = job.run;
      job.run = () => {
        clearTimeout(timer);
        return run();
      };
      this.kick();
    });
  }

  private onLineClosed(err: Error | undefined): void {
    if (!this.lineUp || this.stopping) return;
    this.lineUp = false;
    // A line that reopened but never carried an answer since (an adapter flapping while
    // it is unplugged) keeps its original down time: the offline deadline is not reset.
    this.lineDownSince ??= this.clock.monotonic();
    this.lineError = err?.message ?? 'line closed';
    this.log.warn({ bus: this.id, line: this.line.description, reason: this.lineError }, 'bus line lost; reopening');
    this.protocol.transactor.fail(new ReadError('port', this.lineError));
    this.hooks?.onLine?.(false, this.lineError);
    this.kick();
  }

  private async ensureOpen(): Promise<boolean> {
    if (this.lineUp && this.line.isOpen) {
      // Open for a whole offline deadline without failing again: the loss is over.
      if (this.lineDownSince !== undefined && this.lineUpSince !== undefined && this.clock.monotonic() - this.lineUpSince > this.offlineDeadline() - this.lineDownSince) this.lineDownSince = undefined;
      return true;
    }
    try {
      if (!this.line.isOpen) await this.line.open();
      await this.protocol.attach();
      this.lineUp = true;
      this.lineUpSince = this.clock.monotonic();
      this.stats.lineOpens++;
      this.reopenFailures = 0;
      const wasDown = this.lineDownSince !== undefined;
      // lineDownSince is cleared by the first answer (readBlocks) or after a stable period.
      this.lineError = undefined;
      if (wasDown) this.log.info({ bus: this.id, line: this.line.description }, 'bus line back');
      this.hooks?.onLine?.(true);
      // Devices that failed only because the line was gone are polled again right away.
      const now = this.clock.monotonic();
      for (const d of this.devices) if (d.failures > 0) d.nextDue = Math.min(d.nextDue, now);
      return true;
    } catch (err) {
      this.stats.lineFailures++;
      const msg = (err as Error).message;
      if (this.lineError !== msg) this.log.warn({ bus: this.id, line: this.line.description, err: msg }, 'cannot open bus line; retrying');
      this.lineError = msg;
      this.lineDownSince ??= this.clock.monotonic();
      this.markLineDown();
      // Wake up for the offline deadline too, not only at the back-off steps.
      const untilOffline = this.offlineDeadline() - this.clock.monotonic();
      // 0.5 s doubling, capped low: reopening a missing port or a refused TCP connection costs nothing.
      const reopenDelay = backoffDelay(this.reopenFailures++, { minMs: 500, maxMs: 5000 });
      await this.sleep(untilOffline > 0 ? Math.min(reopenDelay, untilOffline) : reopenDelay);
      return false;
    }
  }

  /** Monotonic ms at which a line that is down takes its devices offline: max(5 s, timeout × offlineAfter). */
  private offlineDeadline(): number {
    return (this.lineDownSince ?? Infinity) + Math.max(5000, this.config.timeoutMs * this.config.offlineAfter);
  }

  /**
   * While the line is down: every poll that falls due is skipped and counted as a
   * skipped poll and a port error (the line's fault, not the meter's), and devices are
   * reported offline once the line has been gone for the offline deadline.
   */
  private markLineDown(): void {
    if (this.lineDownSince === undefined) return;
    const now = this.clock.monotonic();
    const err = new ReadError('port', `line down: ${this.lineError}`);
    for (const d of this.devices) {
      let skipped = 0;
      while (d.nextDue <= now) {
        d.nextDue += d.intervalMs;
        skipped++;
      }
      if (!skipped) continue;
      d.counters.skippedPolls += skipped;
      d.counters.portErrors += skipped;
      this.stats.skipped += skipped;
      d.lastError = { at: this.clock.now(), kind: 'port', message: err.message };
      this.hooks?.onSkipped?.(d, skipped);
      for (let i = 0; i < skipped; i++) this.hooks?.onError?.(d, 'port', err);
    }
    if (now < this.offlineDeadline()) return;
    for (const d of this.devices) if (d.state !== 'offline') this.setState(d, 'offline', `line down: ${this.lineError}`);
  }

  private async loop(): Promise<void> {
    while (this.running) {
      if (!(await this.ensureOpen())) continue;
      const job = this.jobs.shift();
      if (job) {
        if (this.clock.monotonic() > job.deadline) job.refuse(new BusBusyError(`bus ${this.id}: the line did not become free in time; not executed`));
        else await job.run();
        continue;
      }
      const now = this.clock.monotonic();
      let next: DeviceRuntime | undefined;
      for (const d of this.devices) if (!next || d.nextDue < next.nextDue) next = d;
      if (!next) {
        await this.sleep(60_000);
        continue;
      }
      if (next.nextDue > now) {
        await this.sleep(next.nextDue - now);
        continue;
      }
      await this.poll(next, now);
    }
  }

  /** Run the urgent jobs waiting (they are at the head of the queue). */
  private async runUrgent(): Promise<void> {
    while (this.jobs[0]?.urgent && this.running) {
      const job = this.jobs.shift()!;
      await job.run();
    }
  }

  private backoffMs(d: DeviceRuntime): number {
    const over = d.failures - this.config.offlineAfter;
    if (over < 0) return d.intervalMs;
    return backoffDelay(over, { minMs: this.config.backoffBaseMs, maxMs: this.config.backoffMaxMs });
  }

  private async poll(d: DeviceRuntime, startedAt: number): Promise<void> {
    const due = d.nextDue;
    d.counters.polls++;
    this.stats.polls++;
    const probing = d.state === 'offline';
    const res = await this.readBlocks(d, probing ? d.blocks.slice(0, 1) : d.blocks, { stopOnSilence: true });
    if (!this.running) return;
    const now = this.clock.monotonic();
    if (res.answered) {
      d.failures = 0;
      d.lastSuccessAt = this.clock.now();
      if (d.state !== 'online') this.setState(d, 'online', probing ? 'answered probe' : 'answered');
      if (res.values.length) this.hooks?.onReading?.({ device: d, values: res.values, due });
      // Back on schedule; a probe that succeeded reads everything at once.
      let nextDue = probing ? now : due + d.intervalMs;
      let skipped = 0;
      while (nextDue + d.intervalMs <= now) {
        nextDue += d.intervalMs;
        skipped++;
      }
      if (skipped) {
        d.counters.skippedPolls += skipped;
        this.stats.skipped += skipped;
        this.hooks?.onSkipped?.(d, skipped);
      }
      d.nextDue = nextDue;
    } else if (res.lineFailed) {
      // Not the meter's fault: retry when the line is back.
      d.nextDue = now + d.intervalMs;
    } else {
      d.failures++;
      if (d.failures >= this.config.offlineAfter && d.state !== 'offline') this.setState(d, 'offline', d.lastError?.message ?? 'no answer');
      d.nextDue = Math.max(startedAt, now) + this.backoffMs(d);
    }
  }

  /**
   * Execute blocks against one device. A device that stays silent on a request is not
   * asked again in the same poll (stopOnSilence): its other blocks would only cost more
   * timeouts.
   */
  async readBlocks(d: DeviceRuntime, blocks: Block[], opts: { stopOnSilence: boolean }): Promise<{ answered: boolean; lineFailed: boolean; values: ReadingEvent['values'] }> {
    const values: ReadingEvent['values'] = [];
    let answered = false;
    let lineFailed = false;
    const queue = [...blocks];
    let first = true;
    while (queue.length && this.running) {
      // A relay cut does not wait for the rest of a multi-block poll: it runs here, between two requests.
      if (!first) await this.runUrgent();
      first = false;
      const block = queue.shift()!;
      d.counters.requests++;
      this.stats.transactions++;
      // Late replies and stray bytes seen while this device's request (and the guard
      // after its timeout) held the line are this device's.
      const ts = this.protocol.transactor.stats;
      const late0 = ts.lateReplies;
      const stray0 = ts.strayBytes;
      try {
        const out = await this.protocol.read(d.target, block, this.config.timeoutMs).finally(() => {
          if (ts.lateReplies > late0) this.hooks?.onLate?.(d, ts.lateReplies - late0);
          d.counters.lateReplies += ts.lateReplies - late0;
          d.counters.strayBytes += ts.strayBytes - stray0;
        });
        answered = true;
        this.lineDownSince = undefined;
        d.counters.responses++;
        const l = d.counters.latencyMs;
        l.last = out.latencyMs;
        l.max = Math.max(l.max, out.latencyMs);
        l.avg = d.counters.responses === 1 ? out.latencyMs : l.avg * 0.9 + out.latencyMs * 0.1;
        this.hooks?.onRequest?.(d, out.latencyMs);
        for (const v of out.values) {
          let quality: Quality = v.value === undefined ? 'invalid' : 'good';
          if (v.value !== undefined) {
            const why = d.plausibility.check(v.point, v.value);
            if (why) {
              quality = 'suspect';
              d.counters.suspectValues++;
              this.hooks?.onSuspect?.(d, v.point.name, why);
              // Once per point at warn (a pattern worth a look), then at debug.
              const first = d.latest.get(v.point.name)?.quality !== 'suspect';
              this.log[first ? 'warn' : 'debug']({ bus: this.id, device: d.id, point: v.point.name, value: v.value, reason: why }, 'implausible value published as suspect');
            }
          }
          values.push({ ...v, at: out.at, quality });
          d.latest.set(v.point.name, { value: v.value ?? null, unit: v.point.unit, kind: v.point.kind, quality, ts: out.at });
        }
        d.counters.readings += out.values.length;
      } catch (err) {
        const e = err instanceof ReadError ? err : new ReadError('port', (err as Error).message);
        this.hooks?.onRequest?.(d, undefined);
        this.countError(d, e);
        if (e.kind === 'exception' || e.kind === 'crc' || e.kind === 'wrong_unit' || e.kind === 'bad_reply') answered = answered || e.kind === 'exception';
        if (e.unsupported) {
          if (block.points.length > 1) {
            // Fall back to smaller reads for good: the device rejects this block's span.
            const parts = splitBlock(block);
            const i = d.blocks.indexOf(block);
            if (i >= 0) d.blocks.splice(i, 1, ...parts);
            queue.unshift(...parts);
            this.log.info({ bus: this.id, device: d.id, block: describeBlock(block) }, 'illegal data address on a block read: falling back to per-point reads');
          } else {
            const p = block.points[0]!;
            const i = d.blocks.indexOf(block);
            if (i >= 0) d.blocks.splice(i, 1);
            d.latest.set(p.name, { value: null, unit: p.unit, kind: p.kind, quality: 'unsupported', ts: this.clock.now() });
            d.lastError = { at: this.clock.now(), kind: 'unsupported', message: `point ${p.name} not supported by the device (${e.message}); no longer polled` };
            this.log.warn({ bus: this.id, device: d.id, point: p.name }, 'device rejects point address: point disabled');
          }
          continue;
        }
        if (e.kind === 'port') {
          lineFailed = true;
          break;
        }
        if (e.kind === 'timeout' && opts.stopOnSilence && !answered) break;
      }
    }
    return { answered, lineFailed, values };
  }

  private countError(d: DeviceRuntime, e: ReadError): void {
    const c = d.counters;
    if (e.kind === 'timeout') c.timeouts++;
    else if (e.kind === 'crc') c.crcErrors++;
    else if (e.kind === 'wrong_unit') c.wrongUnit++;
    else if (e.kind === 'bad_reply') c.badReplies++;
    else if (e.kind === 'port') c.portErrors++;
    else if (e.kind === 'exception') c.exceptions[String(e.exceptionCode ?? '?')] = (c.exceptions[String(e.exceptionCode ?? '?')] ?? 0) + 1;
    d.lastError = { at: this.clock.now(), kind: e.kind, message: e.message };
    this.hooks?.onError?.(d, e.kind, e);
    this.log.debug({ bus: this.id, device: d.id, kind: e.kind, err: e.message }, 'meter request failed');
  }

  private setState(d: DeviceRuntime, state: 'online' | 'offline', reason: string): void {
    const prev = d.state;
    d.state = state;
    d.stateSince = this.clock.now();
    // Every transition goes upstream, including the first contact after start (unknown →
    // online/offline), so the platform knows the state of each meter after a restart.
    // Only changes that mean trouble or recovery are worth a log line above debug.
    const level = state === 'offline' ? 'warn' : prev === 'offline' ? 'info' : 'debug';
    this.log[level]({ bus: this.id, device: d.id, reason }, `meter ${state}`);
    this.hooks?.onState?.(d, state, reason);
  }

  // ---- on-demand operations (run exclusively between polls) ------------------------

  /** Read a device now (all points or one); updates the latest values. */
  readNow(deviceId: string, point?: string): Promise<ReadingEvent['values']> {
    const d = this.device(deviceId);
    if (!d) return Promise.reject(new Error(`no device ${deviceId} on bus ${this.id}`));
    // Checked before queueing: an unknown point costs no line time and gets its own code.
    if (point && !d.blocks.some((b) => b.points.some((p) => p.name === point))) {
      const why = !d.profile.points.some((p) => p.name === point)
        ? `profile ${d.profile.id} has no point "${point}" (points: ${d.profile.points.map((p) => p.name).join(', ')})`
        : d.latest.get(point)?.quality === 'unsupported'
          ? `point "${point}" was disabled: the device rejects it as unsupported`
          : `point "${point}" is not among the device's configured points (${d.points.map((p) => p.name).join(', ')})`;
      return Promise.reject(new UnknownPointError(`device ${deviceId}: ${why}`));
    }
    return this.exclusive(async () => {
      const blocks = point ? d.blocks.filter((b) => b.points.some((p) => p.name === point)) : d.blocks;
      const res = await this.readBlocks(d, blocks, { stopOnSilence: true });
      if (!res.answered) throw new ReadError(d.lastError?.kind === 'port' ? 'port' : 'timeout', d.lastError?.message ?? 'no answer');
      return point ? res.values.filter((v) => v.point.name === point) : res.values;
    });
  }

  /** Probe addresses (Modbus unit ids) or a protocol's read-address; returns what answered. */
  scan(addresses: Array<number | string | undefined>, timeoutMs: number): Promise<ScanHit[]> {
    return this.exclusive(
      async () => {
        const hits: ScanHit[] = [];
        try {
          for (const a of addresses) {
            if (!this.running || !this.lineUp) break;
            hits.push(...(await this.protocol.probe(a, timeoutMs)));
          }
        } finally {
          // Probes run unguarded: one guard before polling resumes catches a late answer.
          if (this.lineUp) await this.protocol.transactor.hold(timeoutMs).catch(() => {});
        }
        return hits;
      },
      { long: 'bus.scan' },
    );
  }

  /** Run `fn` with every frame on the line recorded (the console's raw poll tester). */
  withTap<T>(fn: () => Promise<T>): Promise<{ result?: T; error?: string; frames: TapEvent[] }> {
    return this.exclusive(async () => {
      const frames: TapEvent[] = [];
      const untap = this.protocol.transactor.tap((e) => frames.push(e));
      try {
        return { result: await fn(), frames };
      } catch (err) {
        return { error: (err as Error).message, frames };
      } finally {
        untap();
      }
    });
  }

  /** Read blocks without the exclusive wrapper (callers already hold the line). */
  readRaw(d: DeviceRuntime, point?: string): Promise<ReadingEvent['values']> {
    const blocks = point ? d.blocks.filter((b) => b.points.some((p) => p.name === point)) : d.blocks;
    return this.readBlocks(d, blocks, { stopOnSilence: true }).then((r) => {
      if (!r.answered) throw new Error(d.lastError?.message ?? 'no answer');
      return r.values;
    });
  }
}

export function describeBlock(b: Block): string {
  if (b.kind === 'modbus') return `FC${b.fc} ${b.address}+${b.count}`;
  if (b.kind === 'dlt645') return `DI ${b.identifier}`;
  return 'DI 901F';
}
