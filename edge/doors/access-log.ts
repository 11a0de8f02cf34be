// The local log of access decisions, for the console's event list (the upstream copy
// goes through the outbox and is deleted once the broker has it). Rows are written in
// batches on the next event-loop turn, so a decision never waits for an fsync, and
// pruned by age and count.
import type { Db } from '../store/sqlite.js';
import type { AccessEvent, AccessEventQuery, Credential } from './api.js';

export type { AccessEvent, AccessEventQuery };

type Row = Omit<AccessEvent, 'seq'>;

/** Rows kept in memory while the disk refuses writes. */
const MAX_QUEUED = 20_000;

export class AccessLog {
  private queue: Row[] = [];
  private scheduled = false;
  private retry: NodeJS.Timeout | undefined;
  private readonly insert;

  constructor(
    private readonly db: Db,
    private readonly onError: (err: unknown) => void,
  ) {
    db.exec(`CREATE TABLE IF NOT EXISTS door_access_log (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      ts INTEGER NOT NULL,
      door_id TEXT NOT NULL,
      person_id TEXT,
      credential TEXT NOT NULL,
      granted INTEGER NOT NULL,
      reason TEXT NOT NULL,
      data TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS door_access_log_ts ON door_access_log(ts);
    CREATE INDEX IF NOT EXISTS door_access_log_door ON door_access_log(door_id, seq);
    CREATE INDEX IF NOT EXISTS door_access_log_person ON door_access_log(person_id, seq);`);
    this.insert = db.prepare('INSERT INTO door_access_log(ts, door_id, person_id, credential, granted, reason, data) VALUES (?, ?, ?, ?, ?, ?, ?)');
  }

  add(row: Row): void {
    this.queue.push(row);
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flush();
    });
  }

  flush(): void {
    if (this.queue.length === 0) return;
    const rows = this.queue;
    this.queue = [];
    try {
      this.db.transaction(() => {
        for (const r of rows) this.insert.run(r.ts, r.doorId, r.personId ?? null, r.credential, r.granted ? 1 : 0, r.reason, JSON.stringify(r.data));
      })();
    } catch (err) {
      // A full disk: keep the rows (in order, bounded) and retry, so every actuation ends
      // up in the local log once the disk guard has made room. The outbox holds the
      // authoritative copy in any case.
      this.onError(err);
      this.queue = rows.concat(this.queue);
      if (this.queue.length > MAX_QUEUED) this.queue.splice(0, this.queue.length - MAX_QUEUED);
      if (!this.retry) {
        this.retry = setTimeout(() => {
          this.retry = undefined;
          this.flush();
        }, 1000);
        this.retry.unref();
      }
    }
  }

  /** Rows not yet written (normally 0; >0 while the disk refuses writes). */
  queued(): number {
    return this.queue.length;
  }

  close(): void {
    if (this.retry) clearTimeout(this.retry);
    this.retry = undefined;
    this.flush();
    if (this.retry) clearTimeout(this.retry);
  }

  query(q: AccessEventQuery): AccessEvent[] {
    this.flush();
    const where: string[] = [];
    const args: unknown[] = [];
    if (q.doorId !== undefined) where.push('door_id = ?'), args.push(q.doorId);
    if (q.personId !== undefined) where.push('person_id = ?'), args.push(q.personId);
    if (q.credential !== undefined) where.push('credential = ?'), args.push(q.credential);
    if (q.granted !== undefined) where.push('granted = ?'), args.push(q.granted ? 1 : 0);
    if (q.since !== undefined) where.push('ts >= ?'), args.push(q.since);
    if (q.until !== undefined) where.push('ts < ?'), args.push(q.until);
    if (q.beforeSeq !== undefined) where.push('seq < ?'), args.push(q.beforeSeq);
    const sql = `SELECT seq, ts, door_id, person_id, credential, granted, reason, data FROM door_access_log ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?`;
    args.push(Math.min(Math.max(q.limit ?? 100, 1), 1000));
    const rows = this.db.prepare(sql).all(...args) as Array<{ seq: number; ts: number; door_id: string; person_id: string | null; credential: Credential; granted: number; reason: string; data: string }>;
    return rows.map((r) => ({
      seq: r.seq,
      ts: r.ts,
      doorId: r.door_id,
      ...(r.person_id !== null ? { personId: r.person_id } : {}),
      credential: r.credential,
      granted: r.granted === 1,
      reason: r.reason,
      data: JSON.parse(r.data) as Record<string, unknown>,
    }));
  }

  /** Delete rows older than `beforeTs`, and the oldest beyond `maxRows`. Returns rows deleted. */
  prune(beforeTs: number, maxRows: number): number {
    this.flush();
    let n = this.db.prepare('DELETE FROM door_access_log WHERE ts < ?').run(beforeTs).changes;
    const max = this.db.prepare('SELECT MAX(seq) AS m FROM door_access_log').get() as { m: number | null };
    if (max.m !== null) n += this.db.prepare('DELETE FROM door_access_log WHERE seq <= ?').run(max.m - maxRows).changes;
    return n;
  }
}
