// The GPIO interface every backend (sysfs, character device, simulated) implements.
// Values are *logical*: `true` means "active" after the line's active-low inversion, so
// door logic never has to know how a relay board or a reed contact is wired.
//
// Backends open lines; debouncing, inversion, edge delivery and the polling fallback
// are common (lines.ts), so the three backends only move raw bits.

export type GpioBackendKind = 'sysfs' | 'chardev' | 'simulated';

export interface InputOptions {
  /** BCM line number (offset on the GPIO chip). */
  line: number;
  /** The line reads 0 when active (contact to ground with a pull-up). */
  activeLow?: boolean;
  /** A change must be stable this long before it is reported. 0 = off. */
  debounceMs?: number;
  /**
   * Report the first edge at once and ignore bounces for debounceMs afterwards, instead
   * of waiting for the level to settle (the fire input: a release must not wait).
   */
  leadingEdge?: boolean;
  /** Who uses the line, for logs and "pin already in use" messages. */
  label: string;
  /** Pull resistor. Only the character-device backend can set it; with sysfs it is set in config.txt (gpio=N=ip,pu). */
  bias?: 'pull-up' | 'pull-down' | 'disable';
  /**
   * Pulse mode, for lines that carry short pulses rather than levels (Wiegand D0/D1:
   * 50–100 µs low, ≥1 ms apart). Every active-going edge is reported as one pulse —
   * `true` then at once `false` — even when the line is already back at rest by the
   * time the backend looks at it (sysfs reads the level after the interrupt, long after
   * a 50 µs pulse ended). Debounce and leadingEdge are ignored; a polled line cannot see
   * such pulses at all, so a user of pulse mode must check `mode === 'interrupt'`.
   */
  pulses?: boolean;
}

export interface OutputOptions {
  line: number;
  activeLow?: boolean;
  /** Logical level the line takes when opened; set atomically with the direction (no glitch). */
  initial: boolean;
  label: string;
}

export type InputMode = 'interrupt' | 'polling';

export interface GpioInput {
  readonly line: number;
  readonly label: string;
  /** How changes are detected: edge interrupts, or polling when interrupts are unavailable. */
  readonly mode: InputMode;
  /** Current (debounced) logical value. */
  value(): boolean;
  /** Called on every debounced change, with the time (UTC ms) the edge was seen. */
  onChange(listener: (value: boolean, at: number) => void): () => void;
  close(): void;
}

export interface GpioOutput {
  readonly line: number;
  readonly label: string;
  /** Set the logical level. Synchronous where the backend allows it (sysfs, simulated). */
  write(value: boolean): void;
  /** The level last written. */
  value(): boolean;
  close(): void;
}

export interface GpioBackend {
  readonly kind: GpioBackendKind;
  /** One line for logs and the console ("sysfs gpiochip512 [pinctrl-bcm2711] base 512"). */
  describe(): string;
  openInput(opts: InputOptions): Promise<GpioInput>;
  openOutput(opts: OutputOptions): Promise<GpioOutput>;
  close(): void;
}

/** Options every hardware backend takes. */
export interface BackendOptions {
  /** Labels of the header's GPIO chip, in preference order. */
  chipLabels?: readonly string[];
  timers?: Timers;
  /** Input polling period when edge interrupts are unavailable (ms). */
  pollMs?: number;
  /** Told about degraded operation (polling fallback, a helper process that died). */
  warn?: (msg: string, detail: Record<string, unknown>) => void;
}

/** Codes of GPIO failures, for command results, logs and counters. */
export type GpioErrorCode = 'no_gpio' | 'no_chip' | 'bad_line' | 'busy' | 'export_failed' | 'permission' | 'io' | 'tool_missing';

export class GpioError extends Error {
  constructor(
    readonly code: GpioErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'GpioError';
  }
}

/**
 * Timers and a time source, injectable so tests drive debounce, unlock pulses and
 * held-open alarms without sleeping. `now()` is UTC ms.
 */
export interface Timers {
  now(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
  setInterval(fn: () => void, ms: number): TimerHandle;
  clearInterval(handle: TimerHandle | undefined): void;
}

export type TimerHandle = { readonly __timer: true } | NodeJS.Timeout;

export const realTimers: Timers = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout | undefined),
  setInterval: (fn, ms) => {
    const t = setInterval(fn, ms);
    t.unref();
    return t;
  },
  clearInterval: (h) => clearInterval(h as NodeJS.Timeout | undefined),
};
