// Request/response over a Line, one transaction at a time (RS-485 is half-duplex).
//
// - Before every write it waits until the line has been quiet for the inter-frame
//   silence (3.5 characters for Modbus RTU), counted from the last byte either way.
// - Received bytes are handed to the current expectation's framer, which finds the
//   reply in whatever arrived (noise, preambles, a late reply to an earlier request).
// - A reply is accepted only if it provably answers the request on the wire:
//   * on a paced line (real serial port, simulated wire) bytes that arrive before the
//     request can have left the line (write start + its wire time) are stray: no device
//     answers a request it has not heard yet (echo, noise, a late reply colliding);
//   * after a timeout the line is held silent for a guard interval (by default one more
//     timeout plus the wire time of the longest reply) and until it has been quiet, so
//     a late reply arrives while nothing is asked and is discarded and counted
//     (`lateReplies`) instead of landing in the next request's window, where a reply of
//     the same shape (Modbus RTU carries no transaction id) would pass every check;
//   * the framer may report a well-formed frame that answers some other request
//     (another address, identifier or sequence number): dropped, counted, waiting goes on.
// - Bytes that arrive while nothing is expected and no guard runs are counted
//   (`strayBytes`) and thrown away.
// - Every frame both ways can be tapped (hex in the console's raw poll tester).
import type { Line, SerialSettings } from './line.js';
import { charTimeMs, interFrameSilenceMs } from './line.js';

export type FramerResult =
  | { kind: 'frame'; start: number; end: number }
  | { kind: 'bad'; start: number; end: number; error: Error }
  /** A complete, well-formed frame that answers another request (late reply): dropped and counted. */
  | { kind: 'other'; start: number; end: number }
  /** `suspect`: the frame to hand over if the line stays quiet (protocols framed by silence). */
  | { kind: 'need-more'; skip: number; suspect?: { start: number; end: number } };

export type Framer = (buf: Buffer) => FramerResult;

export class TransactionTimeout extends Error {
  readonly code = 'timeout';
  /** Bursts that arrived during the guard after this timeout (the late reply, discarded). */
  lateReplies = 0;
  constructor(
    readonly timeoutMs: number,
    readonly partial: Buffer,
  ) {
    super(partial.length ? `no complete reply within ${timeoutMs} ms (${partial.length} bytes received)` : `no reply within ${timeoutMs} ms`);
    this.name = 'TransactionTimeout';
  }
}

/**
 * Two complete replies arrived together shortly after a timeout: one of them is the
 * late reply, and on a protocol without transaction ids nothing says which. Neither is
 * taken (the transaction fails; the extra frame is counted as a late reply).
 */
export class AmbiguousReply extends Error {
  readonly code = 'ambiguous';
  constructor() {
    super('two replies arrived together after a recent timeout: one is a late reply, neither is taken');
    this.name = 'AmbiguousReply';
  }
}

/** Longest reply any of the protocols sends (Modbus RTU ADU: 256 bytes). */
export const MAX_REPLY_BYTES = 256;

/**
 * Default guard after a timeout: one more timeout (a reply that took up to twice the
 * timeout is still caught) plus the wire time of the longest reply at the line's baud
 * rate (so a late reply that starts inside the guard has finished before it ends).
 */
export function defaultGuardMs(timeoutMs: number, serial: SerialSettings | undefined): number {
  return Math.ceil(timeoutMs + (serial ? MAX_REPLY_BYTES * charTimeMs(serial) : 0));
}

export interface TapEvent {
  dir: 'tx' | 'rx';
  bytes: Buffer;
  /** UTC ms. */
  at: number;
}

export interface TransactorStats {
  /**
   * Bytes received while no reply was expected and no guard ran (noise, replies later
   * than their guard), or before the request could have left the line.
   */
  strayBytes: number;
  /** Bytes skipped inside replies because no frame could start there. */
  garbageBytes: number;
  /** Late replies discarded: bursts during a guard, and frames answering another request. */
  lateReplies: number;
  /** Bytes of those late replies. */
  lateBytes: number;
  /** Guards held after timeouts, and their total time (ms): the cost of the guard. */
  guards: number;
  guardMs: number;
}

interface Expectation {
  framer: Framer;
  resolve: (frame: Buffer) => void;
  reject: (err: Error) => void;
}

export interface TransactorOptions {
  /** Silence before each request (ms); default from the line's serial settings, 0 for TCP. */
  silenceMs?: number;
  /** Largest receive buffer before old bytes are dropped (noise flood protection). */
  maxBuffer?: number;
  /**
   * Quiet time after which a suspect frame (complete, bad CRC) is taken as the answer.
   * Default max(2 × silence, 30 ms): USB serial adapters and ptys deliver in chunks.
   */
  quietMs?: number;
  /**
   * Silence held after a timeout before the next request, given the request's timeout
   * (ms). Default defaultGuardMs(timeout, line serial settings); 0 disables the guard
   * (Modbus TCP, where transaction ids tell replies apart).
   */
  guardMs?: number | ((timeoutMs: number) => number);
  now?: () => number;
}

export class Transactor {
  private buf: Buffer = Buffer.alloc(0);
  private expecting: Expectation | undefined;
  private busy = false;
  private quietTimer: NodeJS.Timeout | undefined;
  private readonly quietMs: number;
  private lastActivity = 0;
  private taps = new Set<(e: TapEvent) => void>();
  readonly stats: TransactorStats = { strayBytes: 0, garbageBytes: 0, lateReplies: 0, lateBytes: 0, guards: 0, guardMs: 0 };
  private readonly silenceMs: number;
  private readonly maxBuffer: number;
  private readonly now: () => number;
  private readonly guardOpt: TransactorOptions['guardMs'];
  /** performance.now() before which a received byte cannot answer the current request. */
  private earliestReply = 0;
  /** Set while a guard runs after a timeout. */
  private guard: { late: number; bytes: number; buf: Buffer; framer: Framer; answered: boolean } | undefined;
  private readonly onData = (d: Buffer) => this.receive(d);
  /** A guard in progress ends at once on dispose (shutdown must not wait for it). */
  private disposed = false;
  /**
   * Until then (performance.now()) replies are taken only once the line has stayed
   * quiet after them: after a timeout a late reply may still come later than its guard
   * (a meter that was slow for a moment answers in order), and then arrives right
   * before the next answer; a second frame behind the first makes the reply ambiguous.
   */
  private waryUntil = 0;
  /** The frame waiting for its quiet check. */
  private waryPending: { exp: Expectation; frame: Extract<FramerResult, { kind: 'frame' }> } | undefined;

  constructor(
    readonly line: Line,
    opts: TransactorOptions = {},
  ) {
    this.silenceMs = opts.silenceMs ?? (line.serial ? interFrameSilenceMs(line.serial) : 0);
    this.maxBuffer = opts.maxBuffer ?? 1024;
    this.quietMs = opts.quietMs ?? Math.max(2 * this.silenceMs, 30);
    this.now = opts.now ?? Date.now;
    this.guardOpt = opts.guardMs;
    line.on('data', this.onData);
  }

  /** The guard held after a timeout of `timeoutMs`. */
  guardFor(timeoutMs: number): number {
    const g = this.guardOpt;
    if (g === undefined) return defaultGuardMs(timeoutMs, this.line.serial);
    return Math.max(0, typeof g === 'number' ? g : g(timeoutMs));
  }

  dispose(): void {
    this.disposed = true;
    this.line.off('data', this.onData);
    this.abort(new Error('transactor disposed'));
    this.flush();
  }

  /** Subscribe to every frame sent and received; returns the unsubscribe function. */
  tap(fn: (e: TapEvent) => void): () => void {
    this.taps.add(fn);
    return () => this.taps.delete(fn);
  }

  private emitTap(dir: 'tx' | 'rx', bytes: Buffer): void {
    if (this.taps.size === 0) return;
    const e = { dir, bytes: Buffer.from(bytes), at: this.now() };
    for (const fn of this.taps) fn(e);
  }

  private receive(d: Buffer): void {
    const now = performance.now();
    const quietBefore = now - this.lastActivity;
    this.lastActivity = now;
    this.emitTap('rx', d);
    const g = this.guard;
    if (g) {
      // A new burst after silence is one more late reply.
      if (g.bytes === 0 || quietBefore >= this.quietMs) {
        g.late++;
        this.stats.lateReplies++;
      }
      g.bytes += d.length;
      this.stats.lateBytes += d.length;
      g.buf = Buffer.concat([g.buf, d]).subarray(-this.maxBuffer);
      // The late reply complete: no second one is coming, the guard may end once quiet.
      const r = g.framer(g.buf);
      if (r.kind !== 'need-more') g.answered = true;
      return;
    }
    if (!this.expecting) {
      this.stats.strayBytes += d.length;
      return;
    }
    if (this.buf.length === 0 && now < this.earliestReply) {
      // Started before our request can have left the line: not its answer.
      this.stats.strayBytes += d.length;
      return;
    }
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    if (this.buf.length > this.maxBuffer) {
      this.stats.garbageBytes += this.buf.length - this.maxBuffer;
      this.buf = this.buf.subarray(this.buf.length - this.maxBuffer);
    }
    this.scan();
  }

  private scan(): void {
    if (this.quietTimer) clearTimeout(this.quietTimer);
    this.quietTimer = undefined;
    this.waryPending = undefined;
    const exp = this.expecting;
    if (!exp || this.buf.length === 0) return;
    let r = exp.framer(this.buf);
    while (r.kind === 'other') {
      // A well-formed answer to another request (a late reply): drop it, keep waiting.
      this.stats.lateReplies++;
      this.stats.lateBytes += r.end - r.start;
      this.stats.garbageBytes += r.start;
      this.buf = this.buf.subarray(r.end);
      if (this.buf.length === 0) return;
      r = exp.framer(this.buf);
    }
    if (r.kind === 'frame' && performance.now() < this.waryUntil) {
      const rest = this.buf.subarray(r.end);
      const next = rest.length ? exp.framer(rest) : undefined;
      // (A frame that says it answers another request behind ours is no rival: dropped later.)
      if (next && (next.kind === 'frame' || next.kind === 'bad')) {
        this.stats.lateReplies++;
        this.stats.lateBytes += this.buf.length;
        this.buf = Buffer.alloc(0);
        this.expecting = undefined;
        exp.reject(new AmbiguousReply());
        return;
      }
      // Taken once nothing more has arrived for the quiet time (scan() runs again on more bytes).
      const frame = r;
      this.waryPending = { exp, frame };
      this.quietTimer = setTimeout(() => {
        this.quietTimer = undefined;
        if (this.expecting === exp) this.complete(exp, frame);
      }, this.quietMs);
      return;
    }
    if (r.kind === 'need-more') {
      if (r.skip > 0) {
        this.stats.garbageBytes += r.skip;
        this.buf = this.buf.subarray(r.skip);
      }
      const s = r.suspect;
      if (s) {
        // End of frame = silence: if nothing more arrives, the suspect is the answer.
        const start = s.start - r.skip;
        const end = s.end - r.skip;
        this.quietTimer = setTimeout(() => {
          this.quietTimer = undefined;
          if (this.expecting !== exp) return;
          this.complete(exp, { kind: 'frame', start, end });
        }, this.quietMs);
      }
      return;
    }
    this.complete(exp, r);
  }

  private complete(exp: Expectation, r: Extract<FramerResult, { kind: 'frame' | 'bad' }>): void {
    this.waryPending = undefined;
    this.stats.garbageBytes += r.start;
    const frame = Buffer.from(this.buf.subarray(r.start, r.end));
    this.buf = this.buf.subarray(r.end);
    this.expecting = undefined;
    if (r.kind === 'frame') exp.resolve(frame);
    else exp.reject(r.error);
  }

  /** Discard whatever is buffered (after a timeout or error, before a request). */
  flush(): void {
    if (this.quietTimer) clearTimeout(this.quietTimer);
    this.quietTimer = undefined;
    if (this.buf.length) this.stats.strayBytes += this.buf.length;
    this.buf = Buffer.alloc(0);
  }

  private abort(err: Error): void {
    const e = this.expecting;
    this.expecting = undefined;
    e?.reject(err);
  }

  /** Wait until the line has been quiet for the inter-frame silence. */
  private async waitSilence(): Promise<void> {
    for (let i = 0; i < 50; i++) {
      const quietFor = performance.now() - this.lastActivity;
      if (quietFor >= this.silenceMs) return;
      await new Promise((r) => setTimeout(r, Math.max(1, Math.ceil(this.silenceMs - quietFor))));
    }
  }

  /** Write after the inter-frame silence: kept by the line itself when it can, else by waiting. */
  private async writeQuietly(bytes: Buffer, arm?: () => void): Promise<void> {
    // Lower bound of the moment the request's last bit leaves the line: a byte that
    // arrives earlier cannot answer it. Only where bytes take wire time (`paced`).
    const wireMs = this.line.paced && this.line.serial ? bytes.length * charTimeMs(this.line.serial) : 0;
    // `arm` runs after the flush and before the first byte goes out: from then on
    // received bytes belong to this request (a fast device may answer before write()
    // resolves), never before (a late reply arriving during the silence is stray).
    if (this.line.writeAfter) {
      const remaining = Math.max(0, this.silenceMs - (performance.now() - this.lastActivity));
      this.flush();
      this.earliestReply = performance.now() + remaining + wireMs;
      arm?.();
      this.emitTap('tx', bytes);
      await this.line.writeAfter(bytes, remaining);
    } else {
      await this.waitSilence();
      this.flush();
      this.earliestReply = performance.now() + wireMs;
      arm?.();
      this.emitTap('tx', bytes);
      this.lastActivity = performance.now();
      await this.line.write(bytes);
    }
    this.lastActivity = performance.now();
  }

  /** Send without expecting a reply (broadcasts). */
  async send(bytes: Buffer): Promise<void> {
    await this.writeQuietly(bytes);
  }

  /**
   * Send a request and resolve with the raw reply frame found by `framer`. Rejects
   * with TransactionTimeout, the framer's error (bad checksum…) or a line error; in
   * every case the receive buffer is flushed before the next transaction.
   */
  async request(bytes: Buffer, framer: Framer, timeoutMs: number, opts: { guardMs?: number } = {}): Promise<Buffer> {
    if (this.busy) throw new Error('a transaction is already in progress on this line');
    let timer: NodeJS.Timeout | undefined;
    let expectation!: Expectation;
    const reply = new Promise<Buffer>((resolve, reject) => {
      expectation = { framer, resolve, reject };
    });
    this.busy = true;
    try {
      await this.writeQuietly(bytes, () => (this.expecting = expectation));
      // The timeout runs from the end of the request on the wire: a long request at a
      // low baud rate must not eat the meter's answer time.
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => {
          // A reply that arrived in time and only waits for its quiet check is taken: the
          // wait was ours, not the meter's.
          const w = this.waryPending;
          if (w && w.exp === expectation && this.expecting === expectation) {
            if (this.quietTimer) clearTimeout(this.quietTimer);
            this.quietTimer = undefined;
            this.complete(expectation, w.frame);
            return;
          }
          reject(new TransactionTimeout(timeoutMs, Buffer.from(this.buf)));
        }, timeoutMs);
      });
      return await Promise.race([reply, timeout]);
    } catch (err) {
      this.expecting = undefined;
      if (timer) clearTimeout(timer);
      reply.catch(() => {});
      if (err instanceof TransactionTimeout) {
        // The stale bytes of a partial reply belong to the late reply, not to noise.
        const partial = this.buf;
        this.buf = Buffer.alloc(0);
        if (this.quietTimer) clearTimeout(this.quietTimer);
        this.quietTimer = undefined;
        const guardMs = opts.guardMs ?? this.guardFor(timeoutMs);
        err.lateReplies = await this.holdGuard(guardMs, framer, partial);
        if (guardMs > 0) this.waryUntil = performance.now() + 4 * timeoutMs;
      } else this.flush();
      throw err;
    } finally {
      this.busy = false;
      if (timer) clearTimeout(timer);
    }
  }

  /**
   * Hold the line silent after a timeout for `ms` and until it has been quiet for the
   * quiet time; everything that arrives meanwhile is the late reply (or part of it) and
   * is discarded. Ends early once a complete late reply has arrived and the line went
   * quiet (the device answered once; nothing more is coming). Returns the bursts seen.
   */
  private async holdGuard(ms: number, framer: Framer, partial: Buffer): Promise<number> {
    if (ms <= 0) {
      if (partial.length) this.stats.strayBytes += partial.length;
      return 0;
    }
    const started = performance.now();
    const g = { late: 0, bytes: partial.length, buf: partial, framer, answered: false };
    if (partial.length) {
      g.late = 1;
      this.stats.lateReplies++;
      this.stats.lateBytes += partial.length;
    }
    this.guard = g;
    this.stats.guards++;
    try {
      const until = started + ms;
      for (let i = 0; i < 10_000; i++) {
        const now = performance.now();
        const quietFor = now - this.lastActivity;
        if (this.disposed || (quietFor >= this.quietMs && (now >= until || g.answered))) break;
        const wait = g.answered ? this.quietMs - quietFor : Math.max(until - now, this.quietMs - quietFor);
        await new Promise((r) => setTimeout(r, Math.max(1, Math.ceil(wait))));
      }
    } finally {
      this.guard = undefined;
      this.stats.guardMs += performance.now() - started;
    }
    return g.late;
  }

  /**
   * Hold the line silent as after a timeout of `timeoutMs` (after a run of unguarded
   * requests, e.g. bus.scan probes, before polling resumes). Returns the bursts seen.
   */
  async hold(timeoutMs: number): Promise<number> {
    if (this.busy) throw new Error('a transaction is already in progress on this line');
    this.busy = true;
    try {
      return await this.holdGuard(this.guardFor(timeoutMs), () => ({ kind: 'need-more', skip: 0 }), Buffer.alloc(0));
    } finally {
      this.busy = false;
    }
  }

  /** Reject the transaction in progress (line closed). */
  fail(err: Error): void {
    this.abort(err);
    this.flush();
  }
}
