// One disk budget for everything the gateway writes under gateway.dataDir (outbox and
// its WAL, state.db and its WAL, faces.db, kept logs, snapshots, console TLS files),
// and a reserve so that deletes, acknowledgements, command de-duplication and critical
// records have room when the disk fills up anyway (other writers, a small card).
//
// - Measure: every few seconds the guard adds up the allocated size of every file in
//   the data directory.
// - Keep WAL files bounded: a database whose WAL has grown past the limit gets a
//   TRUNCATE checkpoint.
// - Hold the budget: above 85 % of it, the outbox quota is lowered so the oldest
//   telemetry is evicted down to 75 % (and reported upstream as outbox.evicted), then
//   freed pages are given back to the filesystem (incremental vacuum); the quota is
//   restored once usage is back under 70 %. The margin is for the WAL growth between
//   two checks (every 500 ms).
// - Reserve: a pre-allocated file (gateway.diskReserveMB) is deleted the moment a write
//   fails with SQLITE_FULL/ENOSPC, which gives the retry room; it is re-created once the
//   disk has space again.
// - Health: `storage` turns not-ok with the reason while the disk is the problem.
import { closeSync, openSync, readdirSync, lstatSync, statfsSync, unlinkSync, writeSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { Db } from './sqlite.js';
import type { ModuleHealth } from '../module.js';
import type { Metrics } from '../observability/metrics.js';
import { LogThrottle } from '../observability/throttle.js';

export const RESERVE_FILE = '.disk-reserve';

export interface GuardedDb {
  name: string;
  db: Db;
  /** Path of the database file (its -wal is measured). */
  path: string;
}

export interface DiskGuardOptions {
  dataDir: string;
  budgetBytes: number;
  reserveBytes: number;
  dbs: GuardedDb[];
  log: Logger;
  metrics: Metrics;
  /** Bytes of records in the outbox, and a way to change its quota. */
  outbox: { stats(): { bytes: number }; setQuota(bytes: number): void; quota(): number };
  configuredQuotaBytes: number;
  now: () => number;
  intervalMs?: number;
}

/** Above this fraction of the budget the guard evicts the oldest telemetry… */
export const BUDGET_EVICT_AT = 0.85;
/** …down to this fraction. */
export const BUDGET_EVICT_TO = 0.75;
/** Below this fraction the configured outbox quota comes back. */
export const BUDGET_RESTORE_AT = 0.7;
/**
 * Data the guard cannot evict (face templates, people, accounts: everything but buffered
 * records) may take at most this share of the budget, so the outbox always keeps room to
 * buffer an outage: new such data beyond it is refused (roomFor).
 */
export const FIXED_SHARE = 0.6;

const FULL_CODES = /SQLITE_FULL|ENOSPC|SQLITE_IOERR|EDQUOT/;
const MAX_ENTRIES = 20_000;

export class DiskGuard {
  private timer: NodeJS.Timeout | undefined;
  private reserveHeld = false;
  private lastFullAt = -Infinity;
  private lastUsage = 0;
  private fullEvents = 0;
  private overBudget = false;
  private readonly throttle = new LogThrottle();
  private readonly walLimit: number;
  private readonly m;

  constructor(private readonly o: DiskGuardOptions) {
    // A WAL may take 1/16 of the budget (at most the 4 MB SQLite itself keeps).
    this.walLimit = Math.max(256 * 1024, Math.min(4 * 1048576, Math.floor(o.budgetBytes / 16)));
    for (const g of o.dbs) this.limitWal(g);
    const guard = this;
    this.m = {
      full: o.metrics.counter({ name: 'estate_disk_full_total', help: 'Writes refused by the disk (SQLITE_FULL/ENOSPC)' }),
      checkpoints: o.metrics.counter({ name: 'estate_disk_wal_checkpoints_total', help: 'WAL files truncated by the disk guard' }),
    };
    o.metrics.gauge({
      name: 'estate_disk_usage_bytes',
      help: 'Bytes used under gateway.dataDir (all files, reserve included)',
      collect() {
        this.set(guard.lastUsage);
      },
    });
    o.metrics.gauge({
      name: 'estate_disk_budget_bytes',
      help: 'gateway.diskBudgetMB in bytes',
      collect() {
        this.set(o.budgetBytes);
      },
    });
    o.metrics.gauge({
      name: 'estate_disk_reserve_held',
      help: '1 while the disk reserve file is in place',
      collect() {
        this.set(guard.reserveHeld ? 1 : 0);
      },
    });
  }

  /** SQLite's own auto-checkpoint then keeps each WAL near the limit between our checks. */
  private limitWal(g: GuardedDb): void {
    try {
      const page = g.db.pragma('page_size', { simple: true }) as number;
      g.db.pragma(`wal_autocheckpoint = ${Math.max(16, Math.floor(this.walLimit / page / 2))}`);
      g.db.pragma(`journal_size_limit = ${this.walLimit}`);
    } catch {
      /* a closed or read-only handle: the periodic check still runs */
    }
  }

  /**
   * A module's own database (faces.db) joins the checks: its WAL bounded like the outbox's
   * and state.db's, its freed pages given back. Returns the function that removes it again
   * (call it before closing the database).
   */
  guard(g: GuardedDb): () => void {
    this.limitWal(g);
    this.o.dbs.push(g);
    return () => {
      const i = this.o.dbs.indexOf(g);
      if (i >= 0) this.o.dbs.splice(i, 1);
    };
  }

  start(): void {
    this.makeReserve();
    this.tick();
    this.timer = setInterval(() => this.tick(), this.o.intervalMs ?? 500).unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  private reservePath(): string {
    return join(this.o.dataDir, RESERVE_FILE);
  }

  private makeReserve(): void {
    if (this.o.reserveBytes <= 0) return;
    const path = this.reservePath();
    try {
      if (existsSync(path) && statSync(path).size >= this.o.reserveBytes) {
        this.reserveHeld = true;
        return;
      }
      const fd = openSync(path, 'w', 0o600);
      try {
        const chunk = Buffer.alloc(Math.min(1048576, this.o.reserveBytes));
        for (let left = this.o.reserveBytes; left > 0; left -= chunk.length) writeSync(fd, chunk, 0, Math.min(chunk.length, left));
      } finally {
        closeSync(fd);
      }
      this.reserveHeld = true;
    } catch (err) {
      try {
        unlinkSync(path);
      } catch {
        /* not there */
      }
      this.reserveHeld = false;
      this.throttle.run((suppressed) => this.o.log.warn({ err: String(err), suppressed }, 'cannot create the disk reserve (disk full?)'));
    }
  }

  private releaseReserve(): void {
    if (!this.reserveHeld) return;
    try {
      unlinkSync(this.reservePath());
    } catch {
      /* gone already */
    }
    this.reserveHeld = false;
    this.o.log.error({ reserveMB: this.o.reserveBytes / 1048576 }, 'disk full: reserve released so deletes, acknowledgements and critical records can be written');
  }

  /** A write failed. Disk-full errors release the reserve and mark the disk as the problem. */
  writeFailed(err: unknown): void {
    const text = `${(err as { code?: string }).code ?? ''} ${String(err)}`;
    if (!FULL_CODES.test(text)) return;
    this.fullEvents++;
    this.m.full.inc();
    this.lastFullAt = this.o.now();
    this.releaseReserve();
  }

  /**
   * Whether `bytes` more of data that cannot be evicted fit: what the data directory holds
   * beyond the buffered records, plus `bytes`, within FIXED_SHARE of the budget. Returns the
   * reason when not (for the refusal the caller gives), undefined when it fits.
   */
  roomFor(bytes: number): string | undefined {
    const used = this.usage();
    const fixed = Math.max(0, used - this.o.outbox.stats().bytes);
    const ceiling = this.o.budgetBytes * FIXED_SHARE;
    if (fixed + bytes <= ceiling) return undefined;
    const mb = (b: number) => (b / 1048576).toFixed(2);
    return `disk budget: ${mb(fixed)} MB of data that is never evicted (templates, people, accounts) + ${mb(bytes)} MB would exceed ${mb(ceiling)} MB, ${Math.round(FIXED_SHARE * 100)} % of gateway.diskBudgetMB (${mb(this.o.budgetBytes)} MB; the rest is kept for buffering): raise the budget or remove people`;
  }

  /** Allocated bytes of every file under the data directory (bounded walk). */
  usage(): number {
    return dataDirUsage(this.o.dataDir).total;
  }

  private fsFree(): number {
    try {
      const s = statfsSync(this.o.dataDir);
      return s.bavail * s.bsize;
    } catch {
      return Infinity;
    }
  }

  tick(): void {
    try {
      for (const g of this.o.dbs) {
        let wal = 0;
        try {
          wal = statSync(`${g.path}-wal`).size;
        } catch {
          continue;
        }
        this.shrink(g);
        if (wal > this.walLimit) {
          try {
            g.db.pragma('wal_checkpoint(TRUNCATE)');
            this.m.checkpoints.inc();
          } catch (err) {
            this.writeFailed(err);
          }
        }
      }
      let used = this.usage();
      const budget = this.o.budgetBytes;
      if (used > budget * BUDGET_EVICT_AT) {
        // Over budget: evict telemetry by the excess (plus a margin), then shrink the files.
        const excess = used - Math.floor(budget * BUDGET_EVICT_TO);
        const bytes = this.o.outbox.stats().bytes;
        this.o.outbox.setQuota(Math.max(0, bytes - excess));
        for (const g of this.o.dbs) this.shrink(g);
        used = this.usage();
        if (!this.overBudget) this.o.log.warn({ usedMB: +(used / 1048576).toFixed(2), budgetMB: budget / 1048576 }, 'disk budget reached: oldest telemetry evicted to stay within it');
        this.overBudget = true;
      } else if (used < budget * BUDGET_RESTORE_AT && this.o.outbox.quota() < this.o.configuredQuotaBytes) {
        this.o.outbox.setQuota(Math.min(this.o.configuredQuotaBytes, this.o.outbox.quota() + Math.floor(budget * BUDGET_RESTORE_AT - used)));
        this.overBudget = false;
      } else if (used <= budget * BUDGET_EVICT_AT) this.overBudget = false;
      this.lastUsage = used;
      // Space is back: take the reserve again (it must fit with room to spare, within the budget).
      if (!this.reserveHeld && this.o.reserveBytes > 0 && this.o.now() - this.lastFullAt > 5000 && this.fsFree() > 2 * this.o.reserveBytes && used + this.o.reserveBytes <= budget * BUDGET_RESTORE_AT) {
        this.makeReserve();
        if (this.reserveHeld) this.o.log.info('disk has room again: reserve re-created');
      }
    } catch (err) {
      this.throttle.run((suppressed) => this.o.log.error({ err: String(err), suppressed }, 'disk guard check failed'));
    }
  }

  /**
   * Give freed pages (acknowledged or evicted records) back to the filesystem. An
   * incremental vacuum moves pages from the end of the file into the holes, and every
   * moved page is written to the WAL first: done all at once it would grow the WAL by the
   * size of the free space. So it runs in steps of a quarter of the WAL limit, each
   * followed by a TRUNCATE checkpoint, at most 8 steps per check.
   */
  private shrink(g: GuardedDb): void {
    try {
      const page = g.db.pragma('page_size', { simple: true }) as number;
      const step = Math.max(8, Math.floor(this.walLimit / page / 4));
      for (let i = 0; i < 8; i++) {
        const free = g.db.pragma('freelist_count', { simple: true }) as number;
        if (free * page < 256 * 1024) return;
        g.db.pragma(`incremental_vacuum(${step})`);
        g.db.pragma('wal_checkpoint(TRUNCATE)');
      }
    } catch (err) {
      this.writeFailed(err);
    }
  }

  health(): ModuleHealth {
    const now = this.o.now();
    const problems: string[] = [];
    const mb = (b: number) => (b / 1048576).toFixed(1);
    if (now - this.lastFullAt < 10_000) problems.push(`disk full: writes refused in the last 10 s (${this.fullEvents} so far)`);
    if (!this.reserveHeld && this.o.reserveBytes > 0) problems.push('disk reserve released (the disk filled up)');
    if (this.overBudget) problems.push(`disk budget reached: ${mb(this.lastUsage)} of ${mb(this.o.budgetBytes)} MB used, oldest telemetry being evicted`);
    const free = this.fsFree();
    if (free < this.o.reserveBytes) problems.push(`filesystem almost full: ${mb(free)} MB free`);
    return {
      ok: problems.length === 0,
      ...(problems.length ? { message: problems.join('; ') } : {}),
      detail: { usedBytes: this.lastUsage, budgetBytes: this.o.budgetBytes, reserveHeld: this.reserveHeld, fsFreeBytes: Number.isFinite(free) ? free : null, fullEvents: this.fullEvents, outboxQuotaBytes: this.o.outbox.quota() },
    };
  }
}

/** What one file counts for: its allocated blocks, or its length when that is larger (sparse or just-extended files). */
export function fileBytes(st: { size: number; blocks: number }): number {
  return Math.max(st.size, st.blocks * 512);
}

export interface DataDirUsage {
  /** Bytes of every file under the directory: what the budget is held against. */
  total: number;
  /** The same bytes by top-level entry (a directory's files summed under its name). */
  entries: Map<string, number>;
}

/**
 * The budget's accounting, shared by the guard and `estate-edge doctor` so both report
 * the same figure: every file under dataDir (walk bounded in depth and entries, so a
 * directory someone filled with junk cannot stall the check), symlinks not followed.
 */
export function dataDirUsage(dataDir: string): DataDirUsage {
  const entries = new Map<string, number>();
  let total = 0;
  let seen = 0;
  const walk = (dir: string, depth: number, top: string | undefined) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      if (++seen > MAX_ENTRIES) return;
      const p = join(dir, n);
      const key = top ?? n;
      try {
        const st = lstatSync(p);
        if (st.isDirectory()) {
          if (depth < 8) walk(p, depth + 1, key);
        } else {
          const b = fileBytes(st);
          total += b;
          entries.set(key, (entries.get(key) ?? 0) + b);
        }
      } catch {
        /* vanished */
      }
    }
  };
  walk(dataDir, 0, undefined);
  return { total, entries };
}
