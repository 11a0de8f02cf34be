// Exponential back-off, the one implementation every retry loop uses (uplink reconnects,
// meter back-off and line reopening, camera restarts, inference worker respawns, face
// model load retries).
//
// The delay before retry `attempt` (0 = the first retry) is
//   cap = min(maxMs, minMs × factor^attempt)
// and then, by `jitter`:
//   - 'none':  cap. For retries only this box makes against its own hardware (a meter, the
//     RS-485 line, the camera, the inference worker): nothing to de-synchronise, and a
//     fixed schedule is easier to read in the log and to test.
//   - 'equal': uniformly in [cap/2, cap]. For retries many boxes make against one server
//     (the MQTT broker): after a broker restart a fleet does not reconnect in step, and a
//     retry still never waits longer than cap.
//   - 'full':  uniformly in [minMs, cap]: more spread than 'equal', never below minMs.
// Every delay is a whole number of milliseconds, never above maxMs ('equal' may go below
// minMs, down to minMs/2, by design). backoffDelay never throws: it runs in timers.
export type Jitter = 'none' | 'equal' | 'full';

export interface BackoffOptions {
  /** Delay of the first retry (its upper bound with jitter 'equal'). > 0. */
  minMs: number;
  /** Longest delay. ≥ minMs. */
  maxMs: number;
  /** Growth per failed attempt; default 2 (doubling). ≥ 1. */
  factor?: number;
  /** Default 'none'. */
  jitter?: Jitter;
  /** Uniform in [0, 1); default Math.random (injected by tests). */
  random?: () => number;
}

/** Refuses options that are no back-off at all (for code that builds them, at construction). */
export function checkBackoff(o: BackoffOptions): void {
  const factor = o.factor ?? 2;
  if (!(o.minMs > 0) || !Number.isFinite(o.minMs)) throw new RangeError(`backoff: minMs must be a positive number, got ${o.minMs}`);
  if (!(o.maxMs >= o.minMs) || !Number.isFinite(o.maxMs)) throw new RangeError(`backoff: maxMs (${o.maxMs}) must be ≥ minMs (${o.minMs})`);
  if (!(factor >= 1) || !Number.isFinite(factor)) throw new RangeError(`backoff: factor must be ≥ 1, got ${factor}`);
}

/**
 * The un-jittered delay before retry `attempt` (0-based): min(maxMs, minMs × factor^attempt).
 * Never throws (it runs inside timers): maxMs wins over a larger minMs, as config checks
 * normally prevent (a test may pass a small max), and a factor below 1 counts as 1.
 */
export function backoffCap(attempt: number, o: BackoffOptions): number {
  const factor = Math.max(1, o.factor ?? 2);
  const n = Math.max(0, Math.floor(attempt) || 0);
  // After many failures factor^n overflows to Infinity, which min() turns into maxMs.
  return Math.max(0, Math.min(o.maxMs, o.minMs * factor ** n));
}

/** The delay in ms before retry `attempt` (0 = the first retry), jittered as configured. */
export function backoffDelay(attempt: number, o: BackoffOptions): number {
  const cap = backoffCap(attempt, o);
  const jitter = o.jitter ?? 'none';
  if (jitter === 'none') return Math.round(cap);
  // A random() outside [0, 1) is clamped rather than trusted.
  const r = Math.min(Math.max((o.random ?? Math.random)(), 0), 1) || 0;
  const lo = jitter === 'equal' ? cap / 2 : Math.min(o.minMs, cap);
  return Math.min(cap, Math.round(lo + r * (cap - lo)));
}

/** A retry loop's state: how many attempts failed since the last success. */
export class Backoff {
  private n = 0;
  constructor(private readonly opts: BackoffOptions) {
    checkBackoff(opts);
  }

  /** Failed attempts since the last reset(). */
  get attempts(): number {
    return this.n;
  }

  /** The delay before the next retry; counts one more failed attempt. */
  next(): number {
    return backoffDelay(this.n++, this.opts);
  }

  /** After a success: the next failure waits minMs again. */
  reset(): void {
    this.n = 0;
  }
}
