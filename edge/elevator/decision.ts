// The hold decision of one elevator car, frame by frame: no timers, no I/O (the module
// feeds it frames and the clock, and drives the relay and the prompt from its answers).
//
//   clear → holding   when at least `k` of the last `n` analysed frames showed an e-bike
//                     (one false detection never holds a car);
//   holding → clear   when at most `releaseK` of the last `n` frames showed one (hysteresis:
//                     a frame or two missed while the rider turns does not release) AND the
//                     hold has lasted `minHoldMs` (the doors do not flap);
//   override          a technician's release (elevator.release) drops the hold at once and
//                     ignores detections for `overrideMs`, so a misdetection the technician
//                     has seen cannot re-hold the car during that time;
//   camera lost       the caller releases (safe state) and calls `reset()`: no stale window
//                     survives a reconnect.

export interface DecisionOptions {
  k: number;
  n: number;
  releaseK: number;
  minHoldMs: number;
  overrideMs: number;
}

export type DecisionChange = { kind: 'hold'; at: number } | { kind: 'release'; at: number; reason: 'gone' | 'override' | 'camera_lost' | 'stopped' };

export class HoldDecision {
  private window: boolean[] = [];
  private holdingSince: number | undefined;
  private overrideUntil = 0;

  constructor(private readonly o: DecisionOptions) {
    if (!(o.k >= 1 && o.k <= o.n)) throw new Error(`elevator decision: k=${o.k} must be in 1..n=${o.n}`);
    if (!(o.releaseK >= 0 && o.releaseK < o.k)) throw new Error(`elevator decision: releaseK=${o.releaseK} must be below k=${o.k}`);
  }

  get holding(): boolean {
    return this.holdingSince !== undefined;
  }
  get since(): number | undefined {
    return this.holdingSince;
  }
  get positives(): number {
    return this.window.reduce((s, v) => s + (v ? 1 : 0), 0);
  }
  get overrideActiveUntil(): number | undefined {
    return this.overrideUntil > 0 ? this.overrideUntil : undefined;
  }

  /** One analysed frame: whether it showed an e-bike. Returns the change it caused, if any. */
  frame(ebike: boolean, at: number): DecisionChange | undefined {
    if (at < this.overrideUntil) ebike = false;
    this.window.push(ebike);
    if (this.window.length > this.o.n) this.window.shift();
    const pos = this.positives;
    if (this.holdingSince === undefined) {
      if (pos >= this.o.k) {
        this.holdingSince = at;
        return { kind: 'hold', at };
      }
      return undefined;
    }
    if (pos <= this.o.releaseK && at - this.holdingSince >= this.o.minHoldMs) {
      this.holdingSince = undefined;
      return { kind: 'release', at, reason: 'gone' };
    }
    return undefined;
  }

  /** Technician override: release now, ignore detections until at + overrideMs. */
  override(at: number): DecisionChange | undefined {
    this.overrideUntil = at + this.o.overrideMs;
    this.window = [];
    if (this.holdingSince === undefined) return undefined;
    this.holdingSince = undefined;
    return { kind: 'release', at, reason: 'override' };
  }

  /** Forget the window (camera lost, stop); returns the release when it was holding. */
  reset(at: number, reason: 'camera_lost' | 'stopped'): DecisionChange | undefined {
    this.window = [];
    if (this.holdingSince === undefined) return undefined;
    this.holdingSince = undefined;
    return { kind: 'release', at, reason };
  }
}
