// Console sessions, kept in the state database so a technician stays logged in across
// the service restart that applies a config change. The cookie carries a random token;
// only its SHA-256 is stored, so a copy of the database does not hand out sessions.
// Each session has its own CSRF token (synchronizer pattern): state-changing requests
// must echo it in the `x-csrf-token` header, which a cross-site form cannot do.
import { randomBytes, createHash, timingSafeEqual } from 'node:crypto';
import type { Db } from '../store/sqlite.js';
import type { Role } from './accounts.js';

export interface Session {
  /** SHA-256 of the cookie value: names the session without being it. */
  id: string;
  user: string;
  role: Role;
  csrf: string;
  createdAt: number;
  lastSeen: number;
}

interface Row {
  user: string;
  role: Role;
  csrf: string;
  created_at: number;
  last_seen: number;
}

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

/** A session (or all of a user's) ended on purpose: logout, password or role change, deletion. */
export type SessionEnd = { kind: 'session'; id: string } | { kind: 'user'; user: string };

/** A write the disk refused (full disk, I/O error): the session store keeps going in memory. */
function storageRefused(err: unknown): boolean {
  const code = String((err as { code?: unknown })?.code ?? '');
  return /^SQLITE_(FULL|IOERR|READONLY|CANTOPEN|BUSY)/.test(code) || /ENOSPC/.test(String(err));
}

export class SessionStore {
  private readonly listeners: Array<(e: SessionEnd) => void> = [];
  /**
   * Sessions the database refused to store (full disk): the technician who comes to fix
   * the disk must still be able to log in. They live until they expire, are ended, or the
   * service restarts.
   */
  private readonly memory = new Map<string, Session>();

  constructor(
    private readonly db: Db,
    private readonly ttlMs: number,
    private readonly now: () => number,
    private readonly onWriteFailed: (err: unknown) => void = () => {},
  ) {
    db.exec(`CREATE TABLE IF NOT EXISTS console_sessions (
      id TEXT PRIMARY KEY, user TEXT NOT NULL, role TEXT NOT NULL, csrf TEXT NOT NULL,
      created_at INTEGER NOT NULL, last_seen INTEGER NOT NULL)`);
  }

  /** Returns the cookie value (only ever held by the browser) and the session. */
  create(user: string, role: Role): { token: string; session: Session } {
    const token = randomBytes(32).toString('base64url');
    const now = this.now();
    const session: Session = { id: sha(token), user, role, csrf: randomBytes(24).toString('base64url'), createdAt: now, lastSeen: now };
    try {
      this.db.prepare('INSERT INTO console_sessions(id, user, role, csrf, created_at, last_seen) VALUES (?, ?, ?, ?, ?, ?)').run(session.id, user, role, session.csrf, now, now);
    } catch (err) {
      if (!storageRefused(err)) throw err;
      this.onWriteFailed(err);
      this.memory.set(session.id, { ...session });
    }
    return { token, session };
  }

  /** The live session for a cookie value, sliding its expiry; undefined when unknown or expired. */
  get(token: string | undefined): Session | undefined {
    if (!token || token.length > 100) return undefined;
    const id = sha(token);
    const now = this.now();
    const m = this.memory.get(id);
    if (m) {
      if (now - m.lastSeen > this.ttlMs) return void this.memory.delete(id);
      m.lastSeen = now;
      return { ...m };
    }
    const r = this.db.prepare('SELECT user, role, csrf, created_at, last_seen FROM console_sessions WHERE id = ?').get(id) as Row | undefined;
    if (!r) return undefined;
    if (now - r.last_seen > this.ttlMs) {
      this.bestEffort(() => this.db.prepare('DELETE FROM console_sessions WHERE id = ?').run(id));
      return undefined;
    }
    // Write the sliding timestamp at most once a minute: every request would otherwise
    // be an fsync on the SD card. On a full disk it is skipped (the request still works).
    if (now - r.last_seen > 60_000) this.bestEffort(() => this.db.prepare('UPDATE console_sessions SET last_seen = ? WHERE id = ?').run(now, id));
    return { id, user: r.user, role: r.role, csrf: r.csrf, createdAt: r.created_at, lastSeen: now };
  }

  /** The session by id as it is now, without sliding its expiry (a live stream's re-check). */
  peek(id: string): Session | undefined {
    const m = this.memory.get(id);
    if (m) return this.now() - m.lastSeen > this.ttlMs ? undefined : { ...m };
    const r = this.db.prepare('SELECT user, role, csrf, created_at, last_seen FROM console_sessions WHERE id = ?').get(id) as Row | undefined;
    if (!r || this.now() - r.last_seen > this.ttlMs) return undefined;
    return { id, user: r.user, role: r.role, csrf: r.csrf, createdAt: r.created_at, lastSeen: r.last_seen };
  }

  /** Called when a session or a user's sessions end on purpose (expiry is found by peek). */
  onEnd(fn: (e: SessionEnd) => void): void {
    this.listeners.push(fn);
  }

  destroy(token: string | undefined): void {
    if (!token) return;
    const id = sha(token);
    this.memory.delete(id);
    this.bestEffort(() => this.db.prepare('DELETE FROM console_sessions WHERE id = ?').run(id));
    this.emit({ kind: 'session', id });
  }

  /** End every session of a user (password change, role change, deletion). */
  destroyUser(user: string): void {
    for (const [id, m] of this.memory) if (m.user.toLowerCase() === user.toLowerCase()) this.memory.delete(id);
    // Not best effort: a session that must end (password or role change) and cannot be
    // deleted must fail the request that asked, not live on.
    this.db.prepare('DELETE FROM console_sessions WHERE user = ? COLLATE NOCASE').run(user);
    this.emit({ kind: 'user', user });
  }

  private emit(e: SessionEnd): void {
    // A listener's failure must not undo or fail the logout that caused it.
    for (const l of this.listeners) {
      try {
        l(e);
      } catch {
        /* the listener logs its own errors */
      }
    }
  }

  /** A write that may fail on a full disk without failing the request. */
  private bestEffort(write: () => unknown): void {
    try {
      write();
    } catch (err) {
      if (!storageRefused(err)) throw err;
      this.onWriteFailed(err);
    }
  }

  prune(): number {
    for (const [id, m] of this.memory) if (this.now() - m.lastSeen > this.ttlMs) this.memory.delete(id);
    return this.db.prepare('DELETE FROM console_sessions WHERE last_seen < ?').run(this.now() - this.ttlMs).changes;
  }

  static csrfMatches(session: Session, header: unknown): boolean {
    if (typeof header !== 'string' || header.length !== session.csrf.length) return false;
    return timingSafeEqual(Buffer.from(header), Buffer.from(session.csrf));
  }
}
