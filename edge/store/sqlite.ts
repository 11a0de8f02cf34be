// Opening a SQLite file the way a box in the field needs it: WAL, a bounded WAL file,
// an integrity check at start, and a corrupt file moved aside (with a clear log line)
// instead of a crash loop that would need a site visit.
import type DatabaseT from 'better-sqlite3';
import { requireCjs } from '../cjs.js';
import { existsSync, renameSync } from 'node:fs';
import { ensureDir } from './dirs.js';
import { dirname } from 'node:path';
import type { Logger } from 'pino';

const Database = requireCjs('better-sqlite3') as typeof DatabaseT;

export type Db = DatabaseT.Database;

export interface OpenOptions {
  /** 'full' survives power loss for every commit; 'normal' may lose the last ones. */
  synchronous?: 'full' | 'normal';
  log?: Logger;
  /** Run PRAGMA quick_check at open (default true). */
  check?: boolean;
}

function tryOpen(path: string, opts: OpenOptions): Db {
  const db = new Database(path);
  try {
    // New files only (a no-op on an existing one): freed pages can be given back to the
    // filesystem (PRAGMA incremental_vacuum), so deleting records shrinks the file and the
    // disk budget holds, instead of the file staying at its high-water mark.
    db.pragma('auto_vacuum = INCREMENTAL');
    db.pragma('journal_mode = WAL');
    db.pragma(`synchronous = ${opts.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
    // Keep the WAL from growing without bound on an SD card: checkpoint every ~4 MB and
    // truncate the file back to 4 MB after a checkpoint.
    db.pragma('wal_autocheckpoint = 1000');
    db.pragma('journal_size_limit = 4194304');
    db.pragma('busy_timeout = 5000');
    // better-sqlite3 builds SQLite with a 16 MB page cache per connection; the box reads
    // its tables sequentially, so 2 MB does as well and keeps RSS down on a 1-GB board.
    db.pragma('cache_size = -2048');
    if (opts.check !== false) {
      const rows = db.pragma('quick_check', { simple: false }) as Array<{ quick_check: string }>;
      const bad = rows.map((r) => r.quick_check).filter((r) => r !== 'ok');
      if (bad.length) throw new Error(`integrity check failed: ${bad.slice(0, 3).join('; ')}`);
    }
    return db;
  } catch (err) {
    db.close();
    throw err;
  }
}

/**
 * Open (or create) a database. If the file is corrupt or not a database, it is renamed
 * to `<file>.corrupt-<timestamp>` (with its -wal/-shm), logged at error level, and a
 * fresh database is created. Returns the handle and whether a file was moved aside.
 */
export function openDatabase(path: string, opts: OpenOptions = {}): { db: Db; movedAside?: string } {
  ensureDir(dirname(path));
  try {
    return { db: tryOpen(path, opts) };
  } catch (err) {
    const code = (err as { code?: string }).code ?? '';
    const corrupt = /integrity check failed/.test(String(err)) || ['SQLITE_CORRUPT', 'SQLITE_NOTADB'].includes(code) || code.startsWith('SQLITE_CORRUPT');
    if (!corrupt) throw err;
    const aside = `${path}.corrupt-${new Date().toISOString().replace(/[:.]/g, '-')}`;
    for (const suffix of ['', '-wal', '-shm']) {
      if (existsSync(path + suffix)) renameSync(path + suffix, aside + suffix);
    }
    opts.log?.error({ path, movedTo: aside, err: String(err) }, 'database is corrupt: moved aside, starting with a fresh one');
    return { db: tryOpen(path, opts), movedAside: aside };
  }
}
