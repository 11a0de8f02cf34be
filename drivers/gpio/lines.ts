// What every backend shares: active-low inversion, debouncing, change listeners and the
// polling fallback. A backend only supplies a raw line source (read the physical bit,
// optionally deliver edges); this class turns it into a debounced logical input.
import { GpioError, type GpioInput, type GpioOutput, type InputMode, type InputOptions, type OutputOptions, type TimerHandle, type Timers } from './types.js';

export interface RawInputSource {
  /** The physical level now (true = high). Throws GpioError on an I/O failure. */
  readRaw(): boolean;
  /**
   * Deliver physical edges as they happen (interrupts). Returns the function that stops
   * them. Absent, or throwing, means interrupts are unavailable: the input is polled.
   */
  watchRaw?(onEdge: (raw: boolean) => void, onError: (err: Error) => void): () => void;
  /** Release the line (unexport, end a helper process). */
  release(): void;
}

export interface InputHooks {
  timers: Timers;
  /** Polling period when interrupts are unavailable. */
  pollMs: number;
  /** Told once when an input falls back to polling, or a read fails while polling. */
  warn?: (msg: string, detail: Record<string, unknown>) => void;
}

export const physical = (logical: boolean, activeLow: boolean | undefined): boolean => (activeLow ? !logical : logical);

export class DebouncedInput implements GpioInput {
  readonly line: number;
  readonly label: string;
  mode: InputMode = 'interrupt';
  private stable: boolean;
  private lastRaw: boolean;
  private lastEdgeAt: number;
  private debounceTimer: TimerHandle | undefined;
  private pollTimer: TimerHandle | undefined;
  private stopWatch: (() => void) | undefined;
  private readonly listeners = new Set<(value: boolean, at: number) => void>();
  private closed = false;
  private pollFailing = false;

  constructor(
    private readonly src: RawInputSource,
    private readonly opts: InputOptions,
    private readonly hooks: InputHooks,
  ) {
    this.line = opts.line;
    this.label = opts.label;
    this.lastRaw = src.readRaw();
    this.stable = opts.pulses ? false : physical(this.lastRaw, opts.activeLow);
    this.lastEdgeAt = hooks.timers.now();
    let reason: string | undefined;
    if (src.watchRaw) {
      try {
        this.stopWatch = src.watchRaw(
          (raw) => this.edge(raw),
          (err) => this.fallBackToPolling(`edge interrupts failed: ${err.message}`),
        );
      } catch (err) {
        reason = `edge interrupts unavailable: ${(err as Error).message}`;
      }
    } else reason = 'backend has no edge interrupts';
    if (reason !== undefined) this.fallBackToPolling(reason);
  }

  private fallBackToPolling(reason: string): void {
    if (this.closed || this.pollTimer) return;
    this.stopWatch?.();
    this.stopWatch = undefined;
    this.mode = 'polling';
    this.hooks.warn?.(`GPIO input ${this.label} (line ${this.line}) is polled every ${this.hooks.pollMs} ms: ${reason}`, { line: this.line, label: this.label });
    this.pollTimer = this.hooks.timers.setInterval(() => this.poll(), this.hooks.pollMs);
  }

  private poll(): void {
    let raw: boolean;
    try {
      raw = this.src.readRaw();
    } catch (err) {
      // A failing read keeps the last known value (the door logic stays in its state)
      // and is reported once per failure streak, not every poll.
      if (!this.pollFailing) this.hooks.warn?.(`GPIO input ${this.label} (line ${this.line}) cannot be read: ${(err as Error).message}`, { line: this.line, label: this.label });
      this.pollFailing = true;
      return;
    }
    this.pollFailing = false;
    if (raw !== this.lastRaw) this.edge(raw);
  }

  private edge(raw: boolean): void {
    if (this.closed) return;
    if (this.opts.pulses) {
      // Pulse mode: count the active-going edge, whatever comes after it; value() stays
      // inactive. lastRaw follows the line, so a polled line held active is one pulse, not
      // one per poll.
      this.lastRaw = raw;
      if (!physical(raw, this.opts.activeLow)) return;
      const at = (this.lastEdgeAt = this.hooks.timers.now());
      for (const l of [...this.listeners]) l(true, at);
      for (const l of [...this.listeners]) l(false, at);
      return;
    }
    this.lastRaw = raw;
    this.lastEdgeAt = this.hooks.timers.now();
    const debounce = this.opts.debounceMs ?? 0;
    if (debounce <= 0) {
      this.commit();
      return;
    }
    if (this.opts.leadingEdge) {
      // Leading-edge mode: the first edge counts at once, then changes are ignored for
      // debounceMs and the level at the end of the window is committed (if it differs).
      // The window is not re-armed after that: the next edge is again acted on at once.
      if (this.debounceTimer !== undefined) return;
      this.commit();
      this.debounceTimer = this.hooks.timers.setTimeout(() => {
        this.debounceTimer = undefined;
        this.commit();
      }, debounce);
      return;
    }
    // Restart the window on every edge: only a level that stays put for debounceMs counts.
    this.hooks.timers.clearTimeout(this.debounceTimer);
    this.debounceTimer = this.hooks.timers.setTimeout(() => {
      this.debounceTimer = undefined;
      this.commit();
    }, debounce);
  }

  private commit(): void {
    const v = physical(this.lastRaw, this.opts.activeLow);
    if (v === this.stable) return;
    this.stable = v;
    for (const l of [...this.listeners]) l(v, this.lastEdgeAt);
  }

  value(): boolean {
    return this.stable;
  }

  onChange(listener: (value: boolean, at: number) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.hooks.timers.clearTimeout(this.debounceTimer);
    this.hooks.timers.clearInterval(this.pollTimer);
    this.stopWatch?.();
    this.listeners.clear();
    this.src.release();
  }
}

/** An output over a raw "write the physical bit" function; inversion done here. */
export class SimpleOutput implements GpioOutput {
  readonly line: number;
  readonly label: string;
  private readonly activeLow: boolean | undefined;
  private current: boolean;
  private closed = false;
  constructor(
    o: OutputOptions,
    private readonly writeRaw: (raw: boolean) => void,
    private readonly releaseFn: () => void,
  ) {
    this.line = o.line;
    this.label = o.label;
    this.activeLow = o.activeLow;
    this.current = o.initial;
  }

  write(value: boolean): void {
    if (this.closed) throw new GpioError('io', `GPIO output ${this.label} (line ${this.line}) is closed`);
    this.writeRaw(physical(value, this.activeLow));
    this.current = value;
  }

  value(): boolean {
    return this.current;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.releaseFn();
  }
}
