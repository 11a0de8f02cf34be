// Wall clock plus monotonic time. Timestamps that leave the box are UTC milliseconds
// (`now()`); ordering and timeouts use `monotonic()` so a clock jump (NTP sync after a
// cold boot in 1970) cannot reorder or stall anything. `synced()` tells whether the
// wall clock can be trusted, so readings can carry a flag when it cannot.
import { existsSync } from 'node:fs';

export interface Clock {
  now(): number;
  monotonic(): number;
  synced(): boolean;
}

/** Earliest wall-clock time this build can believe (build year); anything before is a box that booted without RTC/NTP. */
const PLAUSIBLE_EPOCH_MS = Date.UTC(2025, 0, 1);

export class SystemClock implements Clock {
  private syncedCache: { value: boolean; at: number } | undefined;
  constructor(private readonly syncMarker = '/run/systemd/timesync/synchronized') {}

  now(): number {
    return Date.now();
  }

  monotonic(): number {
    return performance.now();
  }

  /**
   * systemd-timesyncd touches the marker file once NTP has synchronised. Where no
   * timesyncd runs (chrony, containers, CI) we fall back to a plausibility check.
   * Cached for 10 s: this is called for every reading.
   */
  synced(): boolean {
    const mono = this.monotonic();
    if (this.syncedCache && mono - this.syncedCache.at < 10_000) return this.syncedCache.value;
    let value: boolean;
    if (existsSync('/run/systemd/timesync')) value = existsSync(this.syncMarker);
    else value = Date.now() >= PLAUSIBLE_EPOCH_MS;
    this.syncedCache = { value, at: mono };
    return value;
  }
}

/** A clock the tests drive by hand (schedules across midnight, TTLs) without sleeping. */
export class ManualClock implements Clock {
  private mono = 0;
  constructor(
    private wall: number,
    private isSynced = true,
  ) {}
  now(): number {
    return this.wall;
  }
  monotonic(): number {
    return this.mono;
  }
  synced(): boolean {
    return this.isSynced;
  }
  advance(ms: number): void {
    this.wall += ms;
    this.mono += ms;
  }
  set(wall: number): void {
    this.wall = wall;
  }
  setSynced(v: boolean): void {
    this.isSynced = v;
  }
}
