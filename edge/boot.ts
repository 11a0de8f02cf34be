// Boot sequence and clock watch: what lets the platform put records in order and on
// the right time when the box's wall clock was wrong.
//
// A box without RTC that boots without network starts in 1970 (or at the last saved
// time); NTP may set the clock minutes or years later. Records keep their order anyway:
// each stream has a persisted, never reused sequence number (`seq`), and records
// written while the clock is not synchronised carry `clockUnsynced: true`. This module
// adds the two facts needed to repair their timestamps upstream:
//   - `gateway.boot` (stream event) at each start: a boot counter persisted in the state
//     database, whether the clock was synchronised, and the last seq of every stream
//     before this boot;
//   - `clock.synced` when the clock becomes synchronised, and `clock.jumped` when the
//     wall clock moves against the monotonic clock by more than `jumpMs` later on:
//     the jump (`offsetMs`) and the last seq of every stream written before it. A
//     record of this boot with a seq at or below those, flagged clockUnsynced, happened
//     at `ts + offsetMs` in true time.
// The check runs every few seconds on a cheap timer and writes only when something
// happened, so it costs the SD card nothing on an idle box.
import type { GatewayModule, ModuleContext, ModuleHealth } from './module.js';
import { STREAM_NAMES, type StreamName } from './outbox/streams.js';

declare module './bus.js' {
  interface BusEvents {
    'clock.changed': { boot: number; synced: boolean; offsetMs: number; at: number };
  }
}

export interface BootWatchOptions {
  /** How often the clock is compared with the monotonic clock (ms). */
  checkMs?: number;
  /** A wall-clock move larger than this against the monotonic clock is a jump (ms). */
  jumpMs?: number;
}

export class BootWatch implements GatewayModule {
  readonly name = 'boot';
  boot = 0;
  private baseWall = 0;
  private baseMono = 0;
  private synced = false;
  private timer: NodeJS.Timeout | undefined;
  private jumps = 0;
  private readonly checkMs: number;
  private readonly jumpMs: number;

  constructor(
    private readonly ctx: ModuleContext,
    opts: BootWatchOptions = {},
  ) {
    this.checkMs = opts.checkMs ?? 5000;
    this.jumpMs = opts.jumpMs ?? 2000;
  }

  private lastSeqs(): Record<StreamName, number> {
    return Object.fromEntries(STREAM_NAMES.map((s) => [s, this.ctx.outbox.lastSeq(s)])) as Record<StreamName, number>;
  }

  start(): void {
    const db = this.ctx.stateDb;
    db.exec('CREATE TABLE IF NOT EXISTS boots (seq INTEGER PRIMARY KEY AUTOINCREMENT, started_at INTEGER NOT NULL, clock_synced INTEGER NOT NULL)');
    const clock = this.ctx.clock;
    this.synced = clock.synced();
    this.baseWall = clock.now();
    this.baseMono = clock.monotonic();
    this.boot = Number(db.prepare('INSERT INTO boots(started_at, clock_synced) VALUES (?, ?)').run(this.baseWall, this.synced ? 1 : 0).lastInsertRowid);
    // Old rows are of no use beyond a year of restarts.
    db.prepare('DELETE FROM boots WHERE seq < ?').run(this.boot - 1000);
    void this.ctx.outbox.append({ stream: 'event', type: 'gateway.boot', data: { boot: this.boot, clockSynced: this.synced, version: this.ctx.version, lastSeq: this.lastSeqs() } }).catch((err) => this.ctx.log.error({ err: String(err) }, 'cannot record the boot'));
    if (!this.synced) this.ctx.log.warn({ boot: this.boot, now: new Date(this.baseWall).toISOString() }, 'system clock not synchronised: records are flagged clockUnsynced until it is');
    this.timer = setInterval(() => this.check(), this.checkMs);
    this.timer.unref();
  }

  /** Compare the wall clock with the monotonic clock; record a sync or a jump. (Public for tests.) */
  check(): void {
    const clock = this.ctx.clock;
    const now = clock.now();
    const mono = clock.monotonic();
    const offsetMs = Math.round(now - (this.baseWall + (mono - this.baseMono)));
    const synced = clock.synced();
    const becameSynced = synced && !this.synced;
    if (becameSynced || Math.abs(offsetMs) > this.jumpMs) {
      const type = becameSynced ? 'clock.synced' : 'clock.jumped';
      if (!becameSynced) this.jumps++;
      const data = { boot: this.boot, offsetMs, synced, lastSeq: this.lastSeqs() };
      this.ctx.log.warn({ ...data, now: new Date(now).toISOString() }, type === 'clock.synced' ? 'system clock synchronised' : 'system clock jumped');
      void this.ctx.outbox.append({ stream: 'event', type, data }).catch((err) => this.ctx.log.error({ err: String(err) }, 'cannot record the clock change'));
      this.ctx.bus.emit('clock.changed', { boot: this.boot, synced, offsetMs, at: now });
    }
    this.synced = synced;
    this.baseWall = now;
    this.baseMono = mono;
  }

  health(): ModuleHealth {
    return {
      ok: true,
      ...(this.synced ? {} : { message: 'system clock not synchronised (records flagged clockUnsynced)' }),
      detail: { boot: this.boot, clockSynced: this.synced, clockJumps: this.jumps },
    };
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

export const bootModule = (ctx: ModuleContext): GatewayModule => new BootWatch(ctx);
