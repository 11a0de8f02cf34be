// The simulated GPIO backend: same interface as the hardware backends, for the
// simulated estate, tests and benchmarks. Inputs are driven by the caller (a person
// opening a door, a fire panel), outputs are observed with the time of every change.
//
// Edges are delivered synchronously by default (deterministic tests); with
// `async: true` they arrive on a later event-loop turn, like a real interrupt, so a
// benchmark sees the cost of a busy event loop.
import { DebouncedInput, SimpleOutput, physical } from './lines.js';
import { GpioError, realTimers, type GpioBackend, type GpioInput, type GpioOutput, type InputOptions, type OutputOptions, type Timers } from './types.js';

export interface SimulatedGpioOptions {
  timers?: Timers;
  async?: boolean;
  /** false: inputs behave as if the platform had no edge interrupts (polling fallback). */
  interrupts?: boolean;
  pollMs?: number;
  /** Number of lines of the simulated chip (BCM 0..lines-1). */
  lines?: number;
}

export interface OutputChange {
  /** UTC ms (from the injected timers). */
  at: number;
  /** Logical level. */
  value: boolean;
  /** Physical level on the pin. */
  raw: boolean;
}

interface SimLine {
  raw: boolean;
  direction: 'in' | 'out' | 'free';
  activeLow: boolean;
  label?: string;
  watchers: Set<(raw: boolean) => void>;
  history: OutputChange[];
}

export class SimulatedGpio implements GpioBackend {
  readonly kind = 'simulated' as const;
  private readonly lines = new Map<number, SimLine>();
  private readonly failures = new Map<number, GpioError>();
  private readonly writeFailures = new Map<number, GpioError>();
  private readonly timers: Timers;
  private readonly count: number;
  /** Writes to outputs, for observers (bench: fire input → output latency). */
  onOutput: ((line: number, change: OutputChange) => void) | undefined;

  constructor(private readonly opts: SimulatedGpioOptions = {}) {
    this.timers = opts.timers ?? realTimers;
    this.count = opts.lines ?? 58;
  }

  describe(): string {
    return `simulated GPIO (${this.count} lines${this.opts.interrupts === false ? ', polled' : ''})`;
  }

  private get(line: number): SimLine {
    let l = this.lines.get(line);
    if (!l) this.lines.set(line, (l = { raw: false, direction: 'free', activeLow: false, watchers: new Set(), history: [] }));
    return l;
  }

  private claim(line: number, label: string): SimLine {
    if (!Number.isInteger(line) || line < 0 || line >= this.count) throw new GpioError('bad_line', `line ${line} does not exist on the simulated chip (0..${this.count - 1})`);
    const injected = this.failures.get(line);
    if (injected) throw injected;
    const l = this.get(line);
    if (l.direction !== 'free') throw new GpioError('busy', `GPIO line ${line} is already in use by ${l.label ?? 'another user'} (wanted by ${label})`);
    l.label = label;
    return l;
  }

  async openInput(o: InputOptions): Promise<GpioInput> {
    const l = this.claim(o.line, o.label);
    l.direction = 'in';
    l.activeLow = !!o.activeLow;
    return new DebouncedInput(
      {
        readRaw: () => l.raw,
        ...(this.opts.interrupts === false
          ? {}
          : {
              watchRaw: (onEdge: (raw: boolean) => void) => {
                l.watchers.add(onEdge);
                return () => l.watchers.delete(onEdge);
              },
            }),
        release: () => {
          l.direction = 'free';
          l.watchers.clear();
        },
      },
      o,
      { timers: this.timers, pollMs: this.opts.pollMs ?? 20 },
    );
  }

  async openOutput(o: OutputOptions): Promise<GpioOutput> {
    const l = this.claim(o.line, o.label);
    l.direction = 'out';
    l.activeLow = !!o.activeLow;
    const set = (raw: boolean) => {
      const failure = this.writeFailures.get(o.line);
      if (failure) throw failure;
      // Record only real level changes, like a logic analyser on the pin.
      if (l.history.length > 0 && l.raw === raw) return;
      l.raw = raw;
      const change = { at: this.timers.now(), value: physical(raw, l.activeLow), raw };
      l.history.push(change);
      if (l.history.length > 10_000) l.history.splice(0, 5_000);
      this.onOutput?.(o.line, change);
    };
    set(physical(o.initial, o.activeLow));
    return new SimpleOutput(o, set, () => {
      // Like sysfs with the line left exported: the pin keeps its last level.
      l.direction = 'free';
    });
  }

  /** Set an input pin's physical level (true = high). */
  drive(line: number, raw: boolean): void {
    const l = this.get(line);
    if (l.raw === raw) return;
    l.raw = raw;
    const deliver = () => {
      for (const w of [...l.watchers]) w(raw);
    };
    if (this.opts.async) setImmediate(deliver);
    else deliver();
  }

  /** Set an input by its logical value (honours the active-low option it was opened with). */
  set(line: number, active: boolean): void {
    this.drive(line, physical(active, this.get(line).activeLow));
  }

  /** The logical level of an output (or input) line now. */
  level(line: number): boolean {
    const l = this.get(line);
    return physical(l.raw, l.activeLow);
  }

  /** Physical level of a pin. */
  raw(line: number): boolean {
    return this.get(line).raw;
  }

  /** Every change of an output line, oldest first. */
  history(line: number): readonly OutputChange[] {
    return this.get(line).history;
  }

  /** Whether a line is currently opened by someone. */
  inUse(line: number): boolean {
    return this.get(line).direction !== 'free';
  }

  /** Make the next open of a line fail (export failure, pin claimed by a kernel driver…). */
  failOpen(line: number, err: GpioError | undefined): void {
    if (err) this.failures.set(line, err);
    else this.failures.delete(line);
  }

  /** Make writes to an output line fail (a relay board that lost its supply, an I/O error). */
  failWrites(line: number, err: GpioError | undefined): void {
    if (err) this.writeFailures.set(line, err);
    else this.writeFailures.delete(line);
  }

  close(): void {
    for (const l of this.lines.values()) l.watchers.clear();
  }
}
