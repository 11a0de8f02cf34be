// Face templates at rest: their own SQLite file (not the state database) so they can be
// wiped and excluded from backups on their own, with secure_delete on and the WAL truncated
// after a deletion, so a removed template leaves no readable page behind. Every embedding
// (and every kept photo) is sealed (sealing.ts) under a key kept in a separate 0600 file;
// the person id and recognizer id are the associated data, so a sealed row cannot be moved
// to another person or read as another model's template.
//
// The door searches the plain vectors in memory (gallery.ts); this store keeps the two in
// step: every change is made in the database first (one transaction), then in the gallery.
import { createHash } from 'node:crypto';
import type { Db } from '../store/sqlite.js';
import { Gallery, type Match } from './gallery.js';
import { open, seal } from './sealing.js';

/** `templates.source` of a template learned from a gate capture (with the resident's consent). */
const GATE = 'gate';

export interface TemplateStoreOptions {
  db: Db;
  key: Buffer;
  /** Recognizer id: templates of another recognizer are not loaded (they are incomparable). */
  model: string;
  dim: number;
  metric: 'euclidean' | 'cosine';
  l2Normalise: boolean;
  now: () => number;
}

export class TemplateStore {
  private readonly db: Db;
  private readonly key: Buffer;
  private readonly model: string;
  private readonly dim: number;
  private readonly now: () => number;
  private readonly gallery: Gallery;
  /** Rows that could not be decrypted at load (wrong key file, tampering). */
  readonly unreadable: number;

  constructor(o: TemplateStoreOptions) {
    this.db = o.db;
    this.key = o.key;
    this.model = o.model;
    this.dim = o.dim;
    this.now = o.now;
    this.gallery = new Gallery({ dim: o.dim, metric: o.metric, l2Normalise: o.l2Normalise });
    const db = o.db;
    db.pragma('secure_delete = ON');
    // AUTOINCREMENT: a row id is never reused, so ids removed and ids added in one call cannot collide in memory.
    db.exec(`CREATE TABLE IF NOT EXISTS templates (
      id INTEGER PRIMARY KEY AUTOINCREMENT, person_id TEXT NOT NULL, model TEXT NOT NULL, source TEXT NOT NULL,
      created_at INTEGER NOT NULL, sealed BLOB NOT NULL);
      CREATE INDEX IF NOT EXISTS templates_person ON templates(person_id);
      CREATE TABLE IF NOT EXISTS photos (
      id INTEGER PRIMARY KEY, person_id TEXT NOT NULL, created_at INTEGER NOT NULL, sealed BLOB NOT NULL);
      CREATE INDEX IF NOT EXISTS photos_person ON photos(person_id);
      CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
      CREATE TABLE IF NOT EXISTS gate_consent (person_id TEXT PRIMARY KEY, given_at INTEGER NOT NULL);`);
    let bad = 0;
    const rows = db.prepare('SELECT id, person_id, source, sealed FROM templates WHERE model = ? ORDER BY id').all(o.model) as Array<{ id: number; person_id: string; source: string; sealed: Buffer }>;
    for (const r of rows) {
      try {
        this.gallery.add(r.id, r.person_id, this.decode(r.person_id, r.sealed), r.source === GATE);
      } catch {
        bad++;
      }
    }
    this.unreadable = bad;
  }

  /** Whether the key file is the one the templates were sealed with (a fingerprint is stored on first use). */
  keyMatches(): boolean {
    const fp = createHash('sha256').update('estate-edge faces key v1').update(this.key).digest('hex').slice(0, 16);
    const row = this.db.prepare("SELECT v FROM meta WHERE k = 'key_fp'").get() as { v: string } | undefined;
    if (!row) {
      this.db.prepare("INSERT INTO meta(k, v) VALUES ('key_fp', ?)").run(fp);
      return true;
    }
    return row.v === fp;
  }

  private aad(personId: string): string {
    return `${personId}\u0000${this.model}`;
  }

  private decode(personId: string, sealed: Buffer): Float32Array {
    const plain = open(this.key, sealed, this.aad(personId));
    if (plain.length !== this.dim * 4) throw new Error('template has the wrong length');
    const v = new Float32Array(this.dim);
    Buffer.from(v.buffer).set(plain);
    return v;
  }

  /**
   * Store templates for a person (in one transaction); `replace` removes the old ones (and
   * kept photos, and templates learned at the gate from the old enrolment) first. Keeps at
   * most `maxPerPerson` enrolled templates (newest); learned ones are capped on their own
   * (learn()), so a learned template never pushes out an enrolled one.
   */
  add(personId: string, embeddings: Array<Float32Array | number[]>, opts: { replace: boolean; source: 'photo' | 'embedding' | 'mixed'; maxPerPerson: number }): number {
    const db = this.db;
    const now = this.now();
    const ins = db.prepare('INSERT INTO templates(person_id, model, source, created_at, sealed) VALUES (?, ?, ?, ?, ?)');
    const added: Array<{ id: number; v: Float32Array }> = [];
    let removedIds: number[] = [];
    db.transaction(() => {
      if (opts.replace) {
        removedIds = (db.prepare('DELETE FROM templates WHERE person_id = ? RETURNING id').all(personId) as Array<{ id: number }>).map((r) => r.id);
        // Kept photos belong to the replaced enrolment.
        db.prepare('DELETE FROM photos WHERE person_id = ?').run(personId);
      }
      for (const e of embeddings) {
        const v = Float32Array.from(e);
        const id = Number(ins.run(personId, this.model, opts.source, now, seal(this.key, Buffer.from(v.buffer), this.aad(personId))).lastInsertRowid);
        added.push({ id, v });
      }
      const excess = db.prepare(`DELETE FROM templates WHERE id IN (SELECT id FROM templates WHERE person_id = ? AND source != '${GATE}' ORDER BY created_at DESC, id DESC LIMIT -1 OFFSET ?) RETURNING id`).all(personId, opts.maxPerPerson) as Array<{ id: number }>;
      removedIds.push(...excess.map((r) => r.id));
    })();
    const gone = new Set(removedIds);
    if (gone.size) this.gallery.remove((r) => gone.has(r.id));
    for (const a of added) if (!gone.has(a.id)) this.gallery.add(a.id, personId, a.v);
    if (gone.size) this.scrubWal();
    return this.count(personId);
  }

  /**
   * The resident's consent to improve their record from gate captures (person.upsert
   * faces.gateUpdates). Withdrawing it deletes every template learned at the gate, at once
   * and without trace (secure_delete, WAL truncated); returns how many were deleted.
   */
  setGateConsent(personId: string, consent: boolean): number {
    const db = this.db;
    if (consent) {
      db.prepare('INSERT INTO gate_consent(person_id, given_at) VALUES (?, ?) ON CONFLICT(person_id) DO NOTHING').run(personId, this.now());
      return 0;
    }
    let ids: number[] = [];
    db.transaction(() => {
      db.prepare('DELETE FROM gate_consent WHERE person_id = ?').run(personId);
      ids = (db.prepare(`DELETE FROM templates WHERE person_id = ? AND source = '${GATE}' RETURNING id`).all(personId) as Array<{ id: number }>).map((r) => r.id);
    })();
    if (ids.length) {
      const gone = new Set(ids);
      this.gallery.remove((r) => gone.has(r.id));
      this.scrubWal();
    }
    return ids.length;
  }

  gateConsent(personId: string): boolean {
    return this.db.prepare('SELECT 1 FROM gate_consent WHERE person_id = ?').get(personId) !== undefined;
  }

  /** Templates of a person learned at the gate, and when the newest was learned (UTC ms). */
  learned(personId: string): { count: number; lastAt?: number } {
    const r = this.db.prepare(`SELECT COUNT(*) AS n, MAX(created_at) AS last FROM templates WHERE person_id = ? AND source = '${GATE}' AND model = ?`).get(personId, this.model) as { n: number; last: number | null };
    return { count: r.n, ...(r.last !== null ? { lastAt: r.last } : {}) };
  }

  /**
   * Best score of `query` against one person's templates: enrolled ones only (`learned`
   * false: the anchor a gate capture must match, so learned templates cannot drift away from
   * the enrolment), or all. Undefined when the person has no such template.
   */
  scoreAgainst(personId: string, query: Float32Array, opts: { learned: boolean }): number | undefined {
    return this.gallery.scoreAgainst(personId, query, opts);
  }

  /** The person's templates as stored in memory (copies; normalised when the recognizer's are). */
  embeddings(personId: string): Float32Array[] {
    return this.gallery.embeddings(personId);
  }

  /**
   * Add one template learned from a gate capture (the caller has checked consent and the
   * evidence). Keeps at most `max` learned templates for the person, the oldest learned one
   * going first; enrolled templates are never touched. Returns the person's template count.
   */
  learn(personId: string, embedding: Float32Array, max: number): number {
    const db = this.db;
    const v = Float32Array.from(embedding);
    let id = 0;
    let removed: number[] = [];
    db.transaction(() => {
      id = Number(db.prepare('INSERT INTO templates(person_id, model, source, created_at, sealed) VALUES (?, ?, ?, ?, ?)').run(personId, this.model, GATE, this.now(), seal(this.key, Buffer.from(v.buffer), this.aad(personId))).lastInsertRowid);
      removed = (db.prepare(`DELETE FROM templates WHERE id IN (SELECT id FROM templates WHERE person_id = ? AND source = '${GATE}' ORDER BY created_at DESC, id DESC LIMIT -1 OFFSET ?) RETURNING id`).all(personId, max) as Array<{ id: number }>).map((r) => r.id);
    })();
    const gone = new Set(removed);
    if (gone.size) this.gallery.remove((r) => gone.has(r.id));
    if (!gone.has(id)) this.gallery.add(id, personId, v, true);
    if (gone.size) this.scrubWal();
    return this.count(personId);
  }

  /** Keep an (encrypted) enrolment photo. */
  addPhoto(personId: string, jpeg: Buffer): void {
    this.db.prepare('INSERT INTO photos(person_id, created_at, sealed) VALUES (?, ?, ?)').run(personId, this.now(), seal(this.key, jpeg, `${personId}\u0000photo`));
  }

  photos(personId: string): Buffer[] {
    const rows = this.db.prepare('SELECT sealed FROM photos WHERE person_id = ? ORDER BY id').all(personId) as Array<{ sealed: Buffer }>;
    return rows.map((r) => open(this.key, r.sealed, `${personId}\u0000photo`));
  }

  /** Remove every template and photo of a person, in the database and in memory. */
  remove(personId: string): number {
    const db = this.db;
    let n = 0;
    db.transaction(() => {
      n = db.prepare('DELETE FROM templates WHERE person_id = ?').run(personId).changes;
      n += db.prepare('DELETE FROM photos WHERE person_id = ?').run(personId).changes;
      db.prepare('DELETE FROM gate_consent WHERE person_id = ?').run(personId);
    })();
    this.gallery.remove((r) => r.personId === personId);
    this.scrubWal();
    return n;
  }

  /** Delete kept photos older than `before` (UTC ms); returns how many. */
  purgePhotosBefore(before: number): number {
    const n = this.db.prepare('DELETE FROM photos WHERE created_at < ?').run(before).changes;
    if (n) this.scrubWal();
    return n;
  }

  /** Persons with templates (for the retention sweep). */
  persons(): string[] {
    return this.gallery.persons();
  }

  /**
   * Deleted pages are zeroed by secure_delete in the database file, but their old content
   * may still sit in the WAL: checkpoint and truncate it so nothing of a removed template
   * remains on disk.
   */
  private scrubWal(): void {
    this.db.pragma('wal_checkpoint(TRUNCATE)');
  }

  /** Persons with templates, and their templates, among `allowed` (all when absent): the N a search runs against. */
  gallerySize(allowed?: ReadonlySet<string>): { persons: number; templates: number } {
    return this.gallery.gallerySize(allowed);
  }

  count(personId?: string): number {
    return this.gallery.count(personId);
  }

  /** 1:N search among `allowed` (every person when absent): the best person and the best other one (gallery.ts). */
  search(query: Float32Array, allowed?: ReadonlySet<string>): Match | undefined {
    return this.gallery.search(query, allowed);
  }
}
