// The configuration's revision history, on disk in the data dir: who applied which
// revision, when, why, from where, and what became of it (pending → confirmed or
// rolled_back), with the file text of the last N revisions so `config.rollback` can go
// back to one. Bounded in entries (and so in files); each write is atomic.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { writeAtomic } from './apply.js';

export type HistoryStatus = 'pending' | 'confirmed' | 'rolled_back' | 'running';

export interface HistoryEntry {
  revision: string;
  previousRevision?: string;
  at: number;
  /** Console user, or the platform ("platform" over MQTT). */
  user: string;
  source: 'console' | 'mqtt' | 'start';
  commandId?: string;
  /** Why, as the person or platform said it. */
  reason?: string;
  status: HistoryStatus;
  decidedAt?: number;
  /** Why it was rolled back, when it was. */
  rollbackReason?: string;
}

const REV = /^[0-9a-f]{6,64}$/;

export class ConfigHistory {
  readonly dir: string;
  private readonly indexPath: string;

  constructor(
    dataDir: string,
    private readonly keep = 10,
  ) {
    this.dir = join(dataDir, 'config-history');
    this.indexPath = join(this.dir, 'index.json');
  }

  entries(): HistoryEntry[] {
    if (!existsSync(this.indexPath)) return [];
    try {
      const list = JSON.parse(readFileSync(this.indexPath, 'utf8')) as unknown;
      return Array.isArray(list) ? (list as HistoryEntry[]) : [];
    } catch {
      // A damaged index loses the list, never the running config: start a new one.
      return [];
    }
  }

  text(revision: string): string | undefined {
    if (!REV.test(revision)) return undefined;
    const p = join(this.dir, `${revision}.yaml`);
    return existsSync(p) ? readFileSync(p, 'utf8') : undefined;
  }

  /** Keep a revision's text (the running one before a change, the new one) — 0600: it holds the file's inline secrets. */
  keepText(revision: string, text: string): void {
    if (!REV.test(revision)) throw new Error(`bad revision "${revision}"`);
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeAtomic(join(this.dir, `${revision}.yaml`), text, 0o600);
  }

  add(e: HistoryEntry): void {
    this.save([...this.entries(), e]);
  }

  /** Set the outcome of the latest entry of a revision. */
  decide(revision: string, status: HistoryStatus, at: number, rollbackReason?: string): void {
    const list = this.entries();
    for (let i = list.length - 1; i >= 0; i--) {
      const e = list[i]!;
      if (e.revision !== revision || e.status !== 'pending') continue;
      list[i] = { ...e, status, decidedAt: at, ...(rollbackReason ? { rollbackReason } : {}) };
      this.save(list);
      return;
    }
  }

  private save(list: HistoryEntry[]): void {
    const kept = list.slice(-this.keep);
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    writeAtomic(this.indexPath, `${JSON.stringify(kept, null, 1)}\n`, 0o600);
    // Texts of revisions no entry names any more (as revision or previous) are removed.
    const wanted = new Set(kept.flatMap((e) => [e.revision, e.previousRevision].filter((r): r is string => !!r)));
    for (const f of readdirSync(this.dir)) {
      const m = /^([0-9a-f]+)\.yaml$/.exec(f);
      if (m && !wanted.has(m[1]!)) rmSync(join(this.dir, f), { force: true });
    }
  }
}
