// Request/response over a Line, one transaction at a time (RS-485 is half-duplex).
//
// - Before every write it waits until the line has been quiet for the inter-frame
//   silence (3.5 characters for Modbus RTU), counted from the last byte either way.
// - Received bytes are handed to the current expectation's framer, which finds the
//   reply in whatever arrived (noise, preambles, a late reply to an earlier request).
// - Bytes that arrive while nothing is expected (a reply after its timeout, noise) are
//   counted and thrown away: after a timeout the receive buffer is flushed, so a late
//   answer is never mistaken for the next one.
// - Every frame both ways can be tapped (hex in the console's raw poll tester).
import type { Line } from './line.js';
import { interFrameSilenceMs } from './line.js';

export type FramerResult =
  | { kind: 'frame'; start: number; end: number }
  | { kind: 'bad'; start: number; end: number; error: Error }
  /** `suspect`: the frame to hand over if the line stays quiet (protocols framed by silence). */
  | { kind: 'need-more'; skip: number; suspect?: { start: number; end: number } };

export type Framer = (buf: Buffer) => FramerResult;

export class TransactionTimeout extends Error {
  readonly code = 'timeout';
  constructor(readonly timeoutMs: number, readonly partial: Buffer) {
    super(partial.length ? `no complete reply within ${timeoutMs} ms (${partial.length} bytes received)` : `no reply within ${timeoutMs} ms`);
    this.name = 'TransactionTimeout';
  }
}

export interface TapEvent {
  dir: 'tx' | 'rx';
  bytes: Buffer;
  /** UTC ms. */
  at: number;
}

export interface TransactorStats {
  /** Bytes received while no reply was expected (late replies, noise between transactions). */
  strayBytes: number;
  /** Bytes skipped inside replies because no frame could start there. */
  garbageBytes: number;
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
  readonly stats: TransactorStats = { strayBytes: 0, garbageBytes: 0 };
  private readonly silenceMs: number;
  private readonly maxBuffer: number;
  private readonly now: () => number;
  private readonly onData = (d: Buffer) => this.receive(d);

  constructor(readonly line: Line, opts: TransactorOptions = {}) {
    this.silenceMs = opts.silenceMs ?? (line.serial ? interFrameSilenceMs(line.serial) : 0);
    this.maxBuffer = opts.maxBuffer ?? 1024;
    this.quietMs = opts.quietMs ?? Math.max(2 * this.silenceMs, 30);
    this.now = opts.now ?? Date.now;
    line.on('data', this.onData);
  }

  dispose(): void {
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
    this.lastActivity = performance.now();
    this.emitTap('rx', d);
    if (!this.expecting) {
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
    const exp = this.expecting;
    if (!exp || this.buf.length === 0) return;
    const r = exp.framer(this.buf);
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

  private complete(exp: Expectation, r: Exclude<FramerResult, { kind: 'need-more' }>): void {
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
    // `arm` runs after the flush and before the first byte goes out: from then on
    // received bytes belong to this request (a fast device may answer before write()
    // resolves), never before (a late reply arriving during the silence is stray).
    if (this.line.writeAfter) {
      const remaining = Math.max(0, this.silenceMs - (performance.now() - this.lastActivity));
      this.flush();
      arm?.();
      this.emitTap('tx', bytes);
      await this.line.writeAfter(bytes, remaining);
    } else {
      await this.waitSilence();
      this.flush();
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
  async request(bytes: Buffer, framer: Framer, timeoutMs: number): Promise<Buffer> {
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
        timer = setTimeout(() => reject(new TransactionTimeout(timeoutMs, Buffer.from(this.buf))), timeoutMs);
      });
      return await Promise.race([reply, timeout]);
    } catch (err) {
      this.expecting = undefined;
      this.flush();
      reply.catch(() => {});
      throw err;
    } finally {
      this.busy = false;
      if (timer) clearTimeout(timer);
    }
  }

  /** Reject the transaction in progress (line closed). */
  fail(err: Error): void {
    this.abort(err);
    this.flush();
  }
}
