// The store-and-forward outbox: everything that leaves the box is committed here first
// and deleted only once the broker has acknowledged it.
//
// Layout: one table per stream (`rec_<stream>`), keyed by the stream's sequence number,
// holding the record's final JSON body, so publishing is a primary-key range scan plus
// a string join, and acknowledging is a range delete. Sequence counters live in
// `streams` and are updated in the same transaction as the inserts, so a sequence
// number is never reused, even after every record was acknowledged and deleted.
//
// Durability: producers are acknowledged only after the transaction holding their
// record has committed (fsync'd with synchronous=FULL). Appends arriving in the same
// event-loop turn are committed together (group commit), which is how the outbox keeps
// up with a full telemetry load on an SD card.
import { v7 as uuidv7 } from 'uuid';
import type { Logger } from 'pino';
import type { Db } from '../store/sqlite.js';
import type { Clock } from '../clock.js';
import { STREAMS, STREAM_NAMES, type StreamName } from './streams.js';
import { LogThrottle } from '../observability/throttle.js';

export interface RecordInput {
  stream: StreamName;
  /** What the record is, e.g. "meter.reading", "door.access", "alarm.raised". */
  type: string;
  data: unknown;
  /** When it happened (UTC ms); defaults to now. */
  ts?: number;
}

export interface AppendedRecord {
  id: string;
  seq: number;
  stream: StreamName;
  ts: number;
}

export interface StoredRecord {
  seq: number;
  body: string;
}

export interface StreamStats {
  count: number;
  bytes: number;
  /** Oldest buffered record's timestamp (UTC ms), or null when empty. */
  oldestTs: number | null;
  nextSeq: number;
  evicted: number;
}

export interface OutboxStats {
  count: number;
  bytes: number;
  oldestTs: number | null;
  evicted: number;
  dropped: number;
  streams: Record<StreamName, StreamStats>;
}

interface StreamState {
  name: StreamName;
  nextSeq: number;
  count: number;
  bytes: number;
  evicted: number;
  insert: import('better-sqlite3').Statement;
  range: import('better-sqlite3').Statement;
  del: import('better-sqlite3').Statement;
  sumRange: import('better-sqlite3').Statement;
  head: import('better-sqlite3').Statement;
}

interface Pending {
  stream: StreamState;
  seq: number;
  id: string;
  ts: number;
  body: string;
  resolve?: (r: AppendedRecord) => void;
  reject?: (e: Error) => void;
  /** Set when the disk refused a telemetry record: it was not stored. */
  dropped?: boolean;
}

export interface OutboxOptions {
  db: Db;
  clock: Clock;
  log: Logger;
  /** Quota for buffered record bytes; above it telemetry is evicted oldest-first. */
  quotaBytes: number;
  /** Called (after commit) whenever records were appended, with the streams touched. */
  onAppended?: (streams: ReadonlySet<StreamName>) => void;
  /** Called when telemetry was evicted (or never stored), so the gap is reported upstream. */
  onEvicted?: (e: Eviction) => void;
  /** A write failed (SQLITE_FULL…): the disk guard frees its reserve before the retry. */
  onWriteFailure?: (err: unknown) => void;
  /** Bytes of records deleted (acknowledged or evicted) per transaction, to bound the WAL (default 1 MB). */
  maxDeleteBytesPerTxn?: number;
}

/**
 * Records the outbox decided not to keep. reason: "quota" (oldest telemetry evicted to
 * stay within the quota or the disk budget), "disk_full" (telemetry the disk refused,
 * never stored), "memory" (critical records dropped after the in-memory buffer of a
 * disk that refuses writes overflowed — the last resort).
 */
export interface Eviction {
  stream: StreamName;
  fromSeq: number;
  toSeq: number;
  count: number;
  bytes: number;
  reason: 'quota' | 'disk_full' | 'memory';
}

export class OutboxFullError extends Error {}

interface AckRange {
  stream: StreamState;
  from: number;
  to: number;
}

/** Evict down to this fraction of the quota so eviction runs in chunks, not per append. */
const EVICT_TO = 0.9;
/** How long PUBACK deletions are collected before one transaction deletes them all. */
const ACK_FLUSH_MS = 50;
/** Critical records kept in memory while the disk refuses writes, before they are counted as dropped. */
const MAX_MEMORY_PENDING = 200_000;

export class Outbox {
  private readonly db: Db;
  private readonly streams = new Map<StreamName, StreamState>();
  private pending: Pending[] = [];
  private acks: Array<{ stream: StreamState; from: number; to: number }> = [];
  private flushScheduled = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private ackTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private saveSeq: import('better-sqlite3').Statement;
  private dropped = 0;
  private readonly touched = new Set<StreamName>();
  /** Streams whose evicted counter changed without a commit (saved with the next one). */
  private readonly dirty = new Set<StreamName>();
  private quotaBytes: number;
  private readonly writeThrottle = new LogThrottle();
  private readonly evictThrottle = new LogThrottle();

  constructor(private readonly opts: OutboxOptions) {
    this.db = opts.db;
    this.quotaBytes = opts.quotaBytes;
    this.db.exec(`CREATE TABLE IF NOT EXISTS streams (name TEXT PRIMARY KEY, next_seq INTEGER NOT NULL, evicted INTEGER NOT NULL DEFAULT 0)`);
    this.saveSeq = this.db.prepare('INSERT INTO streams(name, next_seq, evicted) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET next_seq = excluded.next_seq, evicted = excluded.evicted');
    const getSeq = this.db.prepare('SELECT next_seq AS nextSeq, evicted FROM streams WHERE name = ?');
    for (const name of STREAM_NAMES) {
      const t = `rec_${name}`;
      this.db.exec(`CREATE TABLE IF NOT EXISTS ${t} (seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL, body TEXT NOT NULL)`);
      const agg = this.db.prepare(`SELECT COUNT(*) AS c, COALESCE(SUM(length(body)),0) AS b, MAX(seq) AS m FROM ${t}`).get() as { c: number; b: number; m: number | null };
      const saved = getSeq.get(name) as { nextSeq: number; evicted: number } | undefined;
      this.streams.set(name, {
        name,
        // Never go back: the larger of the saved counter and what the table holds.
        nextSeq: Math.max(saved?.nextSeq ?? 1, (agg.m ?? 0) + 1),
        count: agg.c,
        bytes: agg.b,
        evicted: saved?.evicted ?? 0,
        insert: this.db.prepare(`INSERT INTO ${t}(seq, ts, body) VALUES (?, ?, ?)`),
        range: this.db.prepare(`SELECT seq, body FROM ${t} WHERE seq > ? AND seq <= ? ORDER BY seq LIMIT ?`).raw(true),
        del: this.db.prepare(`DELETE FROM ${t} WHERE seq BETWEEN ? AND ?`),
        sumRange: this.db.prepare(`SELECT COUNT(*) AS c, COALESCE(SUM(length(body)),0) AS b FROM ${t} WHERE seq BETWEEN ? AND ?`),
        head: this.db.prepare(`SELECT seq, ts FROM ${t} ORDER BY seq LIMIT 1`),
      });
    }
  }

  private state(stream: StreamName): StreamState {
    const s = this.streams.get(stream);
    if (!s) throw new Error(`unknown outbox stream "${stream}"`);
    return s;
  }

  private build(input: RecordInput): Pending {
    const s = this.state(input.stream);
    const ts = input.ts ?? this.opts.clock.now();
    const seq = s.nextSeq++;
    const id = uuidv7();
    const synced = this.opts.clock.synced();
    // The body is the record exactly as it goes upstream; built once, here.
    const body = `{"id":"${id}","seq":${seq},"ts":${ts},"type":${JSON.stringify(input.type)}${synced ? '' : ',"clockUnsynced":true'},"data":${JSON.stringify(input.data ?? null)}}`;
    return { stream: s, seq, id, ts, body };
  }

  /**
   * Append one record. The promise resolves once the record is committed to disk (it
   * then survives kill -9 and power loss); it rejects only for telemetry the disk has
   * no room for. Records appended in the same turn share one transaction.
   */
  append(input: RecordInput): Promise<AppendedRecord> {
    if (this.closed) return Promise.reject(new Error('outbox is closed'));
    const p = this.build(input);
    return new Promise((resolve, reject) => {
      p.resolve = resolve;
      p.reject = reject;
      this.pending.push(p);
      this.scheduleFlush();
    });
  }

  /** Append many records in one transaction, synchronously: durable when it returns. */
  appendBatch(inputs: readonly RecordInput[]): AppendedRecord[] {
    if (this.closed) throw new Error('outbox is closed');
    const batch = inputs.map((i) => this.build(i));
    this.pending.push(...batch);
    this.flush();
    const dropped = batch.filter((p) => p.dropped).length;
    const kept = batch.filter((p) => this.pending.includes(p)).length;
    if (dropped || kept) throw new OutboxFullError(`disk refused the write: ${dropped} telemetry record(s) dropped, ${kept} critical record(s) kept in memory and retried`);
    return batch.map((p) => ({ id: p.id, seq: p.seq, stream: p.stream.name, ts: p.ts }));
  }

  /** Read records after `afterSeq` (up to `uptoSeq`), at most `maxRecords` and about `maxBytes`. */
  read(stream: StreamName, afterSeq: number, uptoSeq: number, maxRecords: number, maxBytes: number): StoredRecord[] {
    const rows = this.state(stream).range.all(afterSeq, uptoSeq, maxRecords) as Array<[number, string]>;
    const out: StoredRecord[] = [];
    let bytes = 0;
    for (const [seq, body] of rows) {
      if (out.length > 0 && bytes + body.length + 1 > maxBytes) break;
      bytes += body.length + 1;
      out.push({ seq, body });
    }
    return out;
  }

  /** Highest sequence number committed so far in a stream (0 if none). */
  lastSeq(stream: StreamName): number {
    const s = this.state(stream);
    let last = s.nextSeq - 1;
    // Records built but not yet committed are not readable yet.
    for (const p of this.pending) if (p.stream === s && p.seq <= last) last = p.seq - 1;
    return last;
  }

  /**
   * The broker acknowledged records fromSeq..toSeq of a stream: delete them. Deletions
   * are batched over ACK_FLUSH_MS: a deletion lost to a power cut only means the records
   * are sent again (the platform de-duplicates by id), so it need not cost an fsync per
   * PUBACK — that would cap draining at the disk's fsync rate.
   */
  ack(stream: StreamName, fromSeq: number, toSeq: number): void {
    if (this.closed) return;
    this.acks.push({ stream: this.state(stream), from: fromSeq, to: toSeq });
    if (!this.ackTimer && !this.flushScheduled) {
      this.ackTimer = setTimeout(() => {
        this.ackTimer = undefined;
        this.flush();
      }, ACK_FLUSH_MS);
    }
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  /** Commit pending appends and acknowledgements in one transaction. */
  flush(): void {
    if (this.ackTimer) {
      clearTimeout(this.ackTimer);
      this.ackTimer = undefined;
    }
    if (this.pending.length === 0 && this.acks.length === 0) return;
    const pending = this.pending;
    const { now: acks, later } = this.splitAcks(this.acks);
    this.pending = [];
    this.acks = later;
    this.touched.clear();
    const deltas = new Map<StreamState, { count: number; bytes: number }>();
    const delta = (s: StreamState) => {
      let d = deltas.get(s);
      if (!d) deltas.set(s, (d = { count: 0, bytes: 0 }));
      return d;
    };
    try {
      this.db.transaction(() => {
        for (const p of pending) {
          p.stream.insert.run(p.seq, p.ts, p.body);
          const d = delta(p.stream);
          d.count++;
          d.bytes += p.body.length;
          this.touched.add(p.stream.name);
        }
        for (const a of acks) {
          const r = a.stream.sumRange.get(a.from, a.to) as { c: number; b: number };
          if (r.c === 0) continue;
          a.stream.del.run(a.from, a.to);
          const d = delta(a.stream);
          d.count -= r.c;
          d.bytes -= r.b;
        }
        for (const s of new Set([...this.touched, ...this.dirty])) {
          const st = this.state(s);
          this.saveSeq.run(s, st.nextSeq, st.evicted);
        }
      })();
      this.dirty.clear();
    } catch (err) {
      this.onWriteFailure(err, pending, acks);
      return;
    }
    for (const [s, d] of deltas) {
      s.count += d.count;
      s.bytes += d.bytes;
    }
    for (const p of pending) p.resolve?.({ id: p.id, seq: p.seq, stream: p.stream.name, ts: p.ts });
    if (this.touched.size) this.opts.onAppended?.(new Set(this.touched));
    this.enforceQuota();
    // The rest of a large acknowledgement in the next turn (after SQLite's auto-checkpoint).
    if (this.acks.length && !this.ackTimer) this.ackTimer = setTimeout(() => ((this.ackTimer = undefined), this.flush()), 0);
  }

  private onWriteFailure(err: unknown, pending: Pending[], acks: typeof this.acks): void {
    const code = (err as { code?: string }).code ?? '';
    this.writeThrottle.run((suppressed) => this.opts.log.error({ err: String(err), code, records: pending.length, acks: acks.length, suppressed }, 'outbox write failed'));
    const full = code === 'SQLITE_FULL' || code === 'SQLITE_IOERR' || code.startsWith('SQLITE_IOERR');
    // Let the disk guard release its reserve first: deletes need room in the WAL too.
    this.opts.onWriteFailure?.(err);
    // Acknowledged records are deleted on their own first: that frees space and never
    // waits behind inserts the disk refuses (deleting twice is harmless).
    if (acks.length) {
      try {
        const deltas: Array<[StreamState, number, number]> = [];
        this.db.transaction(() => {
          for (const a of acks) {
            const r = a.stream.sumRange.get(a.from, a.to) as { c: number; b: number };
            if (r.c === 0) continue;
            a.stream.del.run(a.from, a.to);
            deltas.push([a.stream, r.c, r.b]);
          }
        })();
        for (const [st, c, b] of deltas) {
          st.count -= c;
          st.bytes -= b;
        }
      } catch {
        this.acks.unshift(...acks);
      }
    }
    // Make room: a full disk is exactly when old telemetry must go first.
    if (full) this.evictTelemetry(Math.max(1, Math.floor(this.totalBytes() * 0.2)));
    const keep: Pending[] = [];
    const lost: Pending[] = [];
    for (const p of pending) {
      if (STREAMS[p.stream.name].evictable) {
        this.dropped++;
        p.dropped = true;
        lost.push(p);
        p.reject?.(new OutboxFullError(`outbox cannot store telemetry: ${code || String(err)}`));
      } else keep.push(p);
    }
    this.reportLost(lost, 'disk_full');
    // Critical records stay in memory (in order, ahead of newer ones) and are retried.
    const overflow: Pending[] = [];
    while (keep.length + this.pending.length > MAX_MEMORY_PENDING && keep.length) {
      const p = keep.shift()!;
      this.dropped++;
      overflow.push(p);
      p.reject?.(new OutboxFullError('outbox memory buffer exhausted while the disk refuses writes'));
    }
    this.reportLost(overflow, 'memory');
    this.pending.unshift(...keep);
    if (!this.retryTimer && !this.closed && (this.pending.length || this.acks.length)) {
      this.retryTimer = setTimeout(() => {
        this.retryTimer = undefined;
        this.flush();
      }, 500); // not unref'd: records waiting for the disk are a reason to stay alive
    }
  }

  /**
   * Acknowledgements to delete in this transaction, and the rest. Deleting ~10,000 records
   * in one transaction (a backlog draining at full speed) writes megabytes of WAL at
   * once; in chunks, SQLite's auto-checkpoint keeps the WAL within the disk budget.
   */
  private splitAcks(acks: AckRange[]): { now: AckRange[]; later: AckRange[] } {
    let budget = this.opts.maxDeleteBytesPerTxn ?? 1048576;
    const now: AckRange[] = [];
    const later: AckRange[] = [];
    for (const a of acks) {
      if (budget <= 0) {
        later.push(a);
        continue;
      }
      const avg = a.stream.count ? Math.max(1, a.stream.bytes / a.stream.count) : 256;
      const fit = Math.max(1, Math.floor(budget / avg));
      if (a.to - a.from + 1 <= fit) {
        now.push(a);
        budget -= (a.to - a.from + 1) * avg;
      } else {
        now.push({ stream: a.stream, from: a.from, to: a.from + fit - 1 });
        later.push({ stream: a.stream, from: a.from + fit, to: a.to });
        budget = 0;
      }
    }
    return { now, later };
  }

  /** Records given a sequence number but never stored: counted as evicted and reported as ranges. */
  private reportLost(lost: Pending[], reason: Eviction['reason']): void {
    if (!lost.length) return;
    const byStream = new Map<StreamState, Pending[]>();
    for (const p of lost) {
      const l = byStream.get(p.stream) ?? [];
      l.push(p);
      byStream.set(p.stream, l);
    }
    for (const [st, ps] of byStream) {
      ps.sort((a, b) => a.seq - b.seq);
      let start = 0;
      for (let i = 1; i <= ps.length; i++) {
        if (i < ps.length && ps[i]!.seq === ps[i - 1]!.seq + 1) continue;
        const range = ps.slice(start, i);
        const bytes = range.reduce((n, p) => n + p.body.length, 0);
        st.evicted += range.length;
        this.dirty.add(st.name);
        this.opts.onEvicted?.({ stream: st.name, fromSeq: range[0]!.seq, toSeq: range[range.length - 1]!.seq, count: range.length, bytes, reason });
        start = i;
      }
    }
  }

  /** Lower (or restore) the quota at run time: the disk guard shrinks it while the disk budget is exceeded. */
  setQuota(bytes: number): void {
    this.quotaBytes = Math.max(0, Math.min(this.opts.quotaBytes, Math.floor(bytes)));
    this.enforceQuota();
  }

  quota(): number {
    return this.quotaBytes;
  }

  private totalBytes(): number {
    let b = 0;
    for (const s of this.streams.values()) b += s.bytes;
    return b;
  }

  private enforceQuota(): void {
    const total = this.totalBytes();
    if (total <= this.quotaBytes) return;
    this.evictTelemetry(total - Math.floor(this.quotaBytes * EVICT_TO));
  }

  /** Delete the oldest telemetry until `bytesToFree` are freed (or no telemetry is left). */
  private evictTelemetry(bytesToFree: number): void {
    const chunkBytes = this.opts.maxDeleteBytesPerTxn ?? 1048576;
    for (const name of STREAM_NAMES) {
      if (!STREAMS[name].evictable) continue;
      const s = this.state(name);
      // In chunks of one transaction each, so the WAL stays bounded (auto-checkpoint between).
      for (let chunk = 0; chunk < 256 && bytesToFree > 0 && s.count > 0; chunk++) {
        const head = s.head.get() as { seq: number } | undefined;
        if (!head) break;
        // Average record size gives the cut; the next chunk corrects any shortfall.
        const avg = Math.max(1, s.bytes / s.count);
        const n = Math.min(s.count, Math.ceil(bytesToFree / avg), Math.max(1, Math.floor(chunkBytes / avg)));
        const cut = this.db
          .prepare(`SELECT seq FROM rec_${name} ORDER BY seq LIMIT 1 OFFSET ?`)
          .pluck()
          .get(n - 1) as number;
        try {
          const r = s.sumRange.get(head.seq, cut) as { c: number; b: number };
          this.db.transaction(() => {
            s.del.run(head.seq, cut);
            this.saveSeq.run(name, s.nextSeq, s.evicted + r.c);
          })();
          // Counted only once the delete has committed: a failed eviction evicted nothing.
          s.evicted += r.c;
          s.count -= r.c;
          s.bytes -= r.b;
          bytesToFree -= r.b;
          this.evictThrottle.run((suppressed) => this.opts.log.warn({ stream: name, fromSeq: head.seq, toSeq: cut, count: r.c, bytes: r.b, suppressed }, 'outbox quota reached: oldest telemetry evicted'));
          this.opts.onEvicted?.({ stream: name, fromSeq: head.seq, toSeq: cut, count: r.c, bytes: r.b, reason: 'quota' });
        } catch (err) {
          this.opts.onWriteFailure?.(err);
          this.evictThrottle.run((suppressed) => this.opts.log.error({ err: String(err), suppressed }, 'outbox eviction failed'));
          return;
        }
      }
    }
  }

  stats(): OutboxStats {
    const streams = {} as Record<StreamName, StreamStats>;
    let count = 0;
    let bytes = 0;
    let evicted = 0;
    let oldestTs: number | null = null;
    for (const s of this.streams.values()) {
      const head = s.count ? (s.head.get() as { ts: number } | undefined) : undefined;
      const o = head?.ts ?? null;
      streams[s.name] = { count: s.count, bytes: s.bytes, oldestTs: o, nextSeq: s.nextSeq, evicted: s.evicted };
      count += s.count;
      bytes += s.bytes;
      evicted += s.evicted;
      if (o !== null && (oldestTs === null || o < oldestTs)) oldestTs = o;
    }
    return { count, bytes, oldestTs, evicted, dropped: this.dropped, streams };
  }

  /** Records still waiting in memory for a commit (normally 0; >0 while the disk refuses writes). */
  pendingInMemory(): number {
    return this.pending.length;
  }

  /** Commit what is pending and stop accepting records. The database is closed by its owner. */
  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    if (this.ackTimer) clearTimeout(this.ackTimer);
    for (const p of this.pending) p.reject?.(new Error('outbox closed before the record could be stored'));
    this.pending = [];
  }
}
