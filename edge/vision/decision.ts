// Turning per-frame matches into door requests: K consecutive frames agreeing on the
// same person within a time window, a per-person cooldown after a decision, and a rate
// limit for the events of unknown faces and suspected spoofs. Pure and clocked by the
// caller (monotonic ms), so tests drive time by hand.

export class Confirmer {
  private key: string | undefined;
  private times: number[] = [];

  constructor(
    private readonly k: number,
    private readonly windowMs: number,
  ) {}

  /**
   * One analysed frame's verdict (a person id, or a sentinel such as "unknown").
   * Returns the key once K consecutive verdicts agree within the window; the streak
   * then starts afresh. A different verdict breaks the streak.
   */
  observe(key: string, t: number): string | undefined {
    if (key !== this.key) {
      this.key = key;
      this.times = [];
    }
    this.times.push(t);
    while (this.times.length && t - this.times[0]! > this.windowMs) this.times.shift();
    if (this.times.length >= this.k) {
      this.reset();
      return key;
    }
    return undefined;
  }

  /** Break the streak (a spoof, or a frame that disagrees). */
  reset(): void {
    this.key = undefined;
    this.times = [];
  }
}

export class Cooldown {
  private readonly until = new Map<string, number>();
  constructor(private readonly ms: number) {}

  active(key: string, t: number): boolean {
    const u = this.until.get(key);
    if (u === undefined) return false;
    if (t >= u) {
      this.until.delete(key);
      return false;
    }
    return true;
  }

  start(key: string, t: number): void {
    this.until.set(key, t + this.ms);
    // Bounded: forget expired entries when the map grows (a busy gate sees many people).
    if (this.until.size > 1000) for (const [k, u] of this.until) if (u <= t) this.until.delete(k);
  }
}

/** At most one event of each kind per interval; counts what it suppressed. */
export class RateLimit {
  private readonly last = new Map<string, number>();
  readonly suppressed = new Map<string, number>();
  constructor(private readonly intervalMs: (kind: string) => number) {}

  allow(kind: string, t: number): boolean {
    const l = this.last.get(kind);
    if (l !== undefined && t - l < this.intervalMs(kind)) {
      this.suppressed.set(kind, (this.suppressed.get(kind) ?? 0) + 1);
      return false;
    }
    this.last.set(kind, t);
    return true;
  }

  /** Suppressed count since the last allowed event of this kind (reported with it), then reset. */
  takeSuppressed(kind: string): number {
    const n = this.suppressed.get(kind) ?? 0;
    this.suppressed.delete(kind);
    return n;
  }
}
