// Virtual time for tests and benchmarks: a Clock (wall + monotonic) and Timers in one,
// advanced by hand. Timers fire in due order, each seeing `now()` at its due time, so
// a 30 s held-open alarm is tested in microseconds.
import type { Timers, TimerHandle } from './types.js';

interface Pending {
  id: number;
  due: number;
  fn: () => void;
  every?: number;
}

export class VirtualTime implements Timers {
  private wall: number;
  private mono = 0;
  private seq = 0;
  private readonly pending = new Map<number, Pending>();

  constructor(
    startWallMs: number,
    private isSynced = true,
  ) {
    this.wall = startWallMs;
  }

  now(): number {
    return this.wall;
  }
  monotonic(): number {
    return this.mono;
  }
  synced(): boolean {
    return this.isSynced;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.seq;
    this.pending.set(id, { id, due: this.mono + Math.max(0, ms), fn });
    return { __timer: true, id } as unknown as TimerHandle;
  }
  setInterval(fn: () => void, ms: number): TimerHandle {
    const id = ++this.seq;
    const every = Math.max(1, ms);
    this.pending.set(id, { id, due: this.mono + every, fn, every });
    return { __timer: true, id } as unknown as TimerHandle;
  }
  clearTimeout(h: TimerHandle | undefined): void {
    if (h) this.pending.delete((h as unknown as { id: number }).id);
  }
  clearInterval(h: TimerHandle | undefined): void {
    this.clearTimeout(h);
  }

  /** Move time forward, firing every timer that falls due, in order. */
  advance(ms: number): void {
    const end = this.mono + ms;
    for (;;) {
      let next: Pending | undefined;
      for (const p of this.pending.values()) if (p.due <= end && (!next || p.due < next.due || (p.due === next.due && p.id < next.id))) next = p;
      if (!next) break;
      this.wall += next.due - this.mono;
      this.mono = next.due;
      if (next.every) next.due += next.every;
      else this.pending.delete(next.id);
      next.fn();
    }
    this.wall += end - this.mono;
    this.mono = end;
  }

  /** Jump the wall clock (NTP step) without moving monotonic time or firing timers. */
  setWall(ms: number): void {
    this.wall = ms;
  }

  timersPending(): number {
    return this.pending.size;
  }
}
