// A Wiegand reader (card reader, keypad, or both) on two GPIO inputs, D0 and D1.
//
// On the wire both lines idle high (5 V at the reader: level-shift to 3.3 V before the
// Pi's pins); a 0 is a ~50–100 µs low pulse on D0, a 1 the same on D1, bits ≥1 ms
// apart, and a frame ends when the lines stay quiet (~25 ms between frames).
//
// Timing tolerance, on purpose: Node.js cannot time 50 µs (its timers have 1 ms
// granularity and an event loop that may be busy for tens of ms), and sysfs reports an
// interrupt well after the pulse ended. So this decoder never measures a pulse: the
// lines are opened in the GPIO layer's pulse mode (one report per active-going edge,
// whatever the level by the time it is read), a bit is appended per pulse in the order
// the pulses are reported, and a frame ends after `frameGapMs` without a pulse. Pulse
// widths and bit spacing can be anything the hardware sends. What it cannot survive is
// a lost interrupt (sysfs coalesces edges while the event loop is stalled for longer
// than the bit spacing): the frame then has the wrong length or parity and is rejected
// and counted, never misread — the card is simply read again on the next swipe. The
// character-device backend queues every edge in the kernel and does not lose them.
import type { GpioBackend, GpioInput, TimerHandle, Timers } from '../gpio/types.js';
import { decodeFrame, MAX_BITS, type Bit, type RejectCode, type WiegandFrame } from './codec.js';

export interface WiegandReaderOptions {
  /** BCM line of D0 (the "0" pulses). */
  d0: number;
  /** BCM line of D1 (the "1" pulses). */
  d1: number;
  /** Pulses are low (standard Wiegand). Default true. */
  activeLow?: boolean;
  /** Quiet time that ends a frame (ms). Default 25. */
  frameGapMs?: number;
  /** For logs and "line in use" messages ("door gate reader"). */
  label: string;
  bias?: 'pull-up' | 'pull-down' | 'disable';
}

export interface WiegandCounters {
  frames: number;
  cards: number;
  keys: number;
  rejected: Partial<Record<RejectCode, number>>;
}

export class WiegandReader {
  private d0: GpioInput | undefined;
  private d1: GpioInput | undefined;
  private bits: Bit[] = [];
  /** Pulses beyond MAX_BITS are only counted: a stuck or noisy line cannot grow memory. */
  private extra = 0;
  private gapTimer: TimerHandle | undefined;
  private readonly listeners = new Set<(f: WiegandFrame) => void>();
  readonly counters: WiegandCounters = { frames: 0, cards: 0, keys: 0, rejected: {} };
  private readonly gapMs: number;

  constructor(
    private readonly backend: GpioBackend,
    private readonly opts: WiegandReaderOptions,
    private readonly timers: Timers,
  ) {
    this.gapMs = opts.frameGapMs ?? 25;
  }

  /**
   * Open both lines. Throws the GPIO error of a line that cannot be opened (both closed
   * then). Returns a problem when the lines are only polled (no edge interrupts): the
   * reader cannot see 50 µs pulses then and says so instead of decoding nonsense.
   */
  async open(): Promise<string | undefined> {
    const common = { activeLow: this.opts.activeLow ?? true, pulses: true, debounceMs: 0, ...(this.opts.bias ? { bias: this.opts.bias } : {}) };
    try {
      this.d0 = await this.backend.openInput({ ...common, line: this.opts.d0, label: `${this.opts.label} D0` });
      this.d1 = await this.backend.openInput({ ...common, line: this.opts.d1, label: `${this.opts.label} D1` });
    } catch (err) {
      this.close();
      throw err;
    }
    this.d0.onChange((v) => v && this.pulse(0));
    this.d1.onChange((v) => v && this.pulse(1));
    if (this.d0.mode !== 'interrupt' || this.d1.mode !== 'interrupt') return `${this.opts.label}: the D0/D1 lines have no edge interrupts (polled): Wiegand pulses cannot be seen`;
    return undefined;
  }

  onFrame(listener: (f: WiegandFrame) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private pulse(bit: Bit): void {
    if (this.bits.length < MAX_BITS) this.bits.push(bit);
    else this.extra++;
    // Frame end is "no pulse for gapMs": restart the window on every pulse.
    this.timers.clearTimeout(this.gapTimer);
    this.gapTimer = this.timers.setTimeout(() => this.endFrame(), this.gapMs);
  }

  private endFrame(): void {
    this.gapTimer = undefined;
    const bits = this.bits;
    const extra = this.extra;
    this.bits = [];
    this.extra = 0;
    const frame: WiegandFrame = extra > 0 ? { kind: 'rejected', code: 'too_long', bits: bits.length + extra, message: `${bits.length + extra} bits: longer than any supported frame` } : decodeFrame(bits);
    this.counters.frames++;
    if (frame.kind === 'card') this.counters.cards++;
    else if (frame.kind === 'key') this.counters.keys++;
    else this.counters.rejected[frame.code] = (this.counters.rejected[frame.code] ?? 0) + 1;
    for (const l of [...this.listeners]) {
      try {
        l(frame);
      } catch {
        /* a listener's failure must not stop the reader */
      }
    }
  }

  /** Bits of the frame being received (tests, diagnostics). */
  pending(): number {
    return this.bits.length + this.extra;
  }

  close(): void {
    this.timers.clearTimeout(this.gapTimer);
    this.gapTimer = undefined;
    this.bits = [];
    this.extra = 0;
    for (const l of [this.d0, this.d1]) {
      try {
        l?.close();
      } catch {
        /* already closed */
      }
    }
    this.d0 = this.d1 = undefined;
    this.listeners.clear();
  }
}
