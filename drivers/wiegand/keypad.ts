// Keypad entry on a Wiegand keypad: keys arrive one frame each. Digits collect into an
// entry, '*' clears it, '#' ends it (the entry is handed over as a PIN), and an entry
// left alone for `timeoutMs` is dropped, so half a PIN typed by one person is never
// completed by the next one.
import type { TimerHandle, Timers } from '../gpio/types.js';
import type { Key } from './codec.js';

/** Digits kept at most; longer entries are still ended by '#' and then fail as a wrong PIN. */
const MAX_DIGITS = 16;

export type EntryEvent = { kind: 'entry'; digits: string; overflow: boolean } | { kind: 'cleared'; reason: 'star' | 'timeout'; digits: number };

export class KeypadEntry {
  private digits = '';
  private overflow = false;
  private timer: TimerHandle | undefined;

  constructor(
    private readonly timers: Timers,
    private readonly timeoutMs: number,
    private readonly emit: (e: EntryEvent) => void,
  ) {}

  key(k: Key): void {
    this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    if (k === '*') {
      const n = this.digits.length;
      this.reset();
      this.emit({ kind: 'cleared', reason: 'star', digits: n });
      return;
    }
    if (k === '#') {
      const digits = this.digits;
      const overflow = this.overflow;
      this.reset();
      // A lone '#' (nothing typed) is not an entry.
      if (digits.length > 0 || overflow) this.emit({ kind: 'entry', digits, overflow });
      return;
    }
    if (this.digits.length < MAX_DIGITS) this.digits += k;
    else this.overflow = true;
    this.timer = this.timers.setTimeout(() => {
      const n = this.digits.length;
      this.reset();
      this.emit({ kind: 'cleared', reason: 'timeout', digits: n });
    }, this.timeoutMs);
  }

  /** Digits typed so far (never logged; for tests). */
  length(): number {
    return this.digits.length;
  }

  private reset(): void {
    this.digits = '';
    this.overflow = false;
  }

  close(): void {
    this.timers.clearTimeout(this.timer);
    this.timer = undefined;
    this.reset();
  }
}
