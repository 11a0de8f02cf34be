// Face templates at rest and in memory.
//
// At rest: their own SQLite file (not the state database) so they can be wiped and
// excluded from backups on their own, with secure_delete on and the WAL truncated after
// a deletion, so a removed template leaves no readable page behind. Every embedding (and
// every kept photo) is sealed with AES-256-GCM under a key kept in a separate 0600 file;
// the person id and recognizer id are the associated data, so a sealed row cannot be
// moved to another person or read as another model's template.
//
// In memory: one Float32Array matrix (row = template) searched linearly; 1:N search over
// 10k templates is a couple of milliseconds, no index needed at estate scale.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Db } from '../store/sqlite.js';

const KEY_BYTES = 32;
/** `templates.source` of a template learned from a gate capture (with the resident's consent). */
const GATE = 'gate';
const IV_BYTES = 12;

export class KeyFileError extends Error {}

/**
 * Load the template key, creating it (random, mode 0600, directory 0700) when absent.
 * A key readable by others is tightened to 0600 and reported through `onWarning`.
 */
export function loadOrCreateKey(path: string, onWarning: (msg: string) => void = () => {}): Buffer {
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const key = randomBytes(KEY_BYTES);
    // 'wx': never overwrite a key another process created meanwhile.
    try {
      const fd = openSync(path, 'wx', 0o600);
      try {
        writeSync(fd, key);
      } finally {
        closeSync(fd);
      }
      return key;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new KeyFileError(`cannot create template key ${path}: ${(err as Error).message}`);
    }
  }
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077) {
    chmodSync(path, 0o600);
    onWarning(`template key ${path} had mode ${mode.toString(8)}; tightened to 600`);
  }
  const key = readFileSync(path);
  if (key.length !== KEY_BYTES) throw new KeyFileError(`template key ${path} is ${key.length} bytes, expected ${KEY_BYTES}`);
  return key;
}

export function seal(key: Buffer, plain: Buffer, aad: string): Buffer {
  const iv = randomBytes(IV_BYTES);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([iv, c.getAuthTag(), body]);
}

export function open(key: Buffer, sealed: Buffer, aad: string): Buffer {
  if (sealed.length < IV_BYTES + 16) throw new Error('sealed value too short');
  const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV_BYTES));
  d.setAAD(Buffer.from(aad, 'utf8'));
  d.setAuthTag(sealed.subarray(IV_BYTES, IV_BYTES + 16));
  return Buffer.concat([d.update(sealed.subarray(IV_BYTES + 16)), d.final()]);
}

export interface Match {
  personId: string;
  /** Distance (euclidean) or similarity (cosine) of the best template of that person. */
  score: number;
  /** Same for the best other person (for the margin), if any. */
  runnerUp?: { personId: string; score: number };
}

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

/**
 * Long cosine embeddings (512-d) make an exact linear scan of 10,000 templates cost
 * ~5–6 ms in JS on the build host, over the 5 ms budget. Above SHORTLIST_MIN_ROWS rows such
 * galleries are scanned first in a PROJECTED_DIM-d random orthonormal projection (a fixed,
 * seeded matrix: inner products are preserved up to a scale, with an error of about
 * 1/√PROJECTED_DIM), and the best SHORTLIST rows are then scored exactly. A genuine match
 * (cosine ≥ 0.45 here) ranks within the shortlist unless hundreds of impostors project above
 * it; the best and runner-up persons reported are always exact scores of real rows.
 */
const PROJECTED_DIM = 128;
const SHORTLIST = 256;
const SHORTLIST_MIN_ROWS = 2048;

function projection(dim: number, k: number): Float32Array {
  let seed = 0x5eed1234;
  const gauss = () => {
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    const u = (seed + 1) / 4294967297;
    seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0;
    const v = (seed + 1) / 4294967297;
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  const p = new Float64Array(k * dim);
  for (let i = 0; i < p.length; i++) p[i] = gauss();
  // Gram–Schmidt: orthonormal rows.
  for (let r = 0; r < k; r++) {
    for (let q = 0; q < r; q++) {
      let d = 0;
      for (let i = 0; i < dim; i++) d += p[r * dim + i]! * p[q * dim + i]!;
      for (let i = 0; i < dim; i++) p[r * dim + i]! -= d * p[q * dim + i]!;
    }
    let n = 0;
    for (let i = 0; i < dim; i++) n += p[r * dim + i]! ** 2;
    n = Math.sqrt(n);
    for (let i = 0; i < dim; i++) p[r * dim + i]! /= n;
  }
  return Float32Array.from(p);
}

export class TemplateStore {
  private matrix: Float32Array;
  /** Projected rows (cosine stores with long embeddings only), PROJECTED_DIM per row. */
  private proj: Float32Array | undefined;
  private readonly projMatrix: Float32Array | undefined;
  /** Squared L2 norm of each row (Euclidean search). */
  private norms = new Float64Array(64);
  private rows = 0;
  private rowPerson: string[] = [];
  private rowId: number[] = [];
  /** Whether the row was learned from a gate capture (source 'gate') rather than enrolled. */
  private rowLearned: boolean[] = [];
  private readonly perPerson = new Map<string, number>();
  /** Rows that could not be decrypted at load (wrong key file, tampering). */
  readonly unreadable: number;

  constructor(private readonly o: TemplateStoreOptions) {
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
    this.matrix = new Float32Array(64 * o.dim);
    if (o.metric === 'cosine' && o.dim > 2 * PROJECTED_DIM) {
      this.projMatrix = projection(o.dim, PROJECTED_DIM);
      this.proj = new Float32Array(64 * PROJECTED_DIM);
    }
    let bad = 0;
    const rows = db.prepare('SELECT id, person_id, source, sealed FROM templates WHERE model = ? ORDER BY id').all(o.model) as Array<{ id: number; person_id: string; source: string; sealed: Buffer }>;
    for (const r of rows) {
      try {
        this.push(r.id, r.person_id, this.decode(r.person_id, r.sealed), r.source === GATE);
      } catch {
        bad++;
      }
    }
    this.unreadable = bad;
  }

  /** Whether the key file is the one the templates were sealed with (a fingerprint is stored on first use). */
  keyMatches(): boolean {
    const fp = createHash('sha256').update('estate-edge faces key v1').update(this.o.key).digest('hex').slice(0, 16);
    const row = this.o.db.prepare("SELECT v FROM meta WHERE k = 'key_fp'").get() as { v: string } | undefined;
    if (!row) {
      this.o.db.prepare("INSERT INTO meta(k, v) VALUES ('key_fp', ?)").run(fp);
      return true;
    }
    return row.v === fp;
  }

  private aad(personId: string): string {
    return `${personId}\u0000${this.o.model}`;
  }

  private decode(personId: string, sealed: Buffer): Float32Array {
    const plain = open(this.o.key, sealed, this.aad(personId));
    if (plain.length !== this.o.dim * 4) throw new Error('template has the wrong length');
    const v = new Float32Array(this.o.dim);
    Buffer.from(v.buffer).set(plain);
    return v;
  }

  private prepare(v: Float32Array | number[]): Float32Array {
    const out = Float32Array.from(v);
    if (this.o.l2Normalise) {
      let n = 0;
      for (const x of out) n += x * x;
      n = Math.sqrt(n) || 1;
      for (let i = 0; i < out.length; i++) out[i]! /= n;
    }
    return out;
  }

  private push(id: number, personId: string, v: Float32Array, learned = false): void {
    const d = this.o.dim;
    if ((this.rows + 1) * d > this.matrix.length) {
      const bigger = new Float32Array(Math.max(this.matrix.length * 2, (this.rows + 1) * d));
      bigger.set(this.matrix.subarray(0, this.rows * d));
      this.matrix = bigger;
    }
    const pv = this.prepare(v);
    this.matrix.set(pv, this.rows * d);
    if (this.proj && this.projMatrix) {
      if ((this.rows + 1) * PROJECTED_DIM > this.proj.length) {
        const bigger = new Float32Array(Math.max(this.proj.length * 2, (this.rows + 1) * PROJECTED_DIM));
        bigger.set(this.proj.subarray(0, this.rows * PROJECTED_DIM));
        this.proj = bigger;
      }
      this.proj.set(this.project(pv), this.rows * PROJECTED_DIM);
    }
    if (this.rows >= this.norms.length) {
      const bigger = new Float64Array(this.norms.length * 2);
      bigger.set(this.norms);
      this.norms = bigger;
    }
    let n = 0;
    for (const x of pv) n += x * x;
    this.norms[this.rows] = n;
    this.rowPerson[this.rows] = personId;
    this.rowId[this.rows] = id;
    this.rowLearned[this.rows] = learned;
    this.rows++;
    this.perPerson.set(personId, (this.perPerson.get(personId) ?? 0) + 1);
  }

  /** Rebuild the matrix without the rows for which `drop` is true. */
  private compact(drop: (row: number) => boolean): void {
    const d = this.o.dim;
    let w = 0;
    for (let r = 0; r < this.rows; r++) {
      if (drop(r)) {
        const p = this.rowPerson[r]!;
        const n = (this.perPerson.get(p) ?? 1) - 1;
        if (n > 0) this.perPerson.set(p, n);
        else this.perPerson.delete(p);
        continue;
      }
      if (w !== r) {
        this.matrix.copyWithin(w * d, r * d, (r + 1) * d);
        this.proj?.copyWithin(w * PROJECTED_DIM, r * PROJECTED_DIM, (r + 1) * PROJECTED_DIM);
        this.norms[w] = this.norms[r]!;
        this.rowPerson[w] = this.rowPerson[r]!;
        this.rowId[w] = this.rowId[r]!;
        this.rowLearned[w] = this.rowLearned[r]!;
      }
      w++;
    }
    this.matrix.fill(0, w * d, this.rows * d);
    this.proj?.fill(0, w * PROJECTED_DIM, this.rows * PROJECTED_DIM);
    this.rows = w;
    this.rowPerson.length = w;
    this.rowId.length = w;
    this.rowLearned.length = w;
  }

  /**
   * Store templates for a person (in one transaction); `replace` removes the old ones (and
   * kept photos, and templates learned at the gate from the old enrolment) first. Keeps at
   * most `maxPerPerson` enrolled templates (newest); learned ones are capped on their own
   * (learn()), so a learned template never pushes out an enrolled one.
   */
  add(personId: string, embeddings: Array<Float32Array | number[]>, opts: { replace: boolean; source: 'photo' | 'embedding' | 'mixed'; maxPerPerson: number }): number {
    const db = this.o.db;
    const now = this.o.now();
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
        const id = Number(ins.run(personId, this.o.model, opts.source, now, seal(this.o.key, Buffer.from(v.buffer), this.aad(personId))).lastInsertRowid);
        added.push({ id, v });
      }
      const excess = db.prepare(`DELETE FROM templates WHERE id IN (SELECT id FROM templates WHERE person_id = ? AND source != '${GATE}' ORDER BY created_at DESC, id DESC LIMIT -1 OFFSET ?) RETURNING id`).all(personId, opts.maxPerPerson) as Array<{ id: number }>;
      removedIds.push(...excess.map((r) => r.id));
    })();
    const gone = new Set(removedIds);
    if (gone.size) this.compact((r) => gone.has(this.rowId[r]!));
    for (const a of added) if (!gone.has(a.id)) this.push(a.id, personId, a.v);
    if (gone.size) this.scrubWal();
    return this.count(personId);
  }

  /**
   * The resident's consent to improve their record from gate captures (person.upsert
   * faces.gateUpdates). Withdrawing it deletes every template learned at the gate, at once
   * and without trace (secure_delete, WAL truncated); returns how many were deleted.
   */
  setGateConsent(personId: string, consent: boolean): number {
    const db = this.o.db;
    if (consent) {
      db.prepare('INSERT INTO gate_consent(person_id, given_at) VALUES (?, ?) ON CONFLICT(person_id) DO NOTHING').run(personId, this.o.now());
      return 0;
    }
    let ids: number[] = [];
    db.transaction(() => {
      db.prepare('DELETE FROM gate_consent WHERE person_id = ?').run(personId);
      ids = (db.prepare(`DELETE FROM templates WHERE person_id = ? AND source = '${GATE}' RETURNING id`).all(personId) as Array<{ id: number }>).map((r) => r.id);
    })();
    if (ids.length) {
      const gone = new Set(ids);
      this.compact((r) => gone.has(this.rowId[r]!));
      this.scrubWal();
    }
    return ids.length;
  }

  gateConsent(personId: string): boolean {
    return this.o.db.prepare('SELECT 1 FROM gate_consent WHERE person_id = ?').get(personId) !== undefined;
  }

  /** Templates of a person learned at the gate, and when the newest was learned (UTC ms). */
  learned(personId: string): { count: number; lastAt?: number } {
    const r = this.o.db.prepare(`SELECT COUNT(*) AS n, MAX(created_at) AS last FROM templates WHERE person_id = ? AND source = '${GATE}' AND model = ?`).get(personId, this.o.model) as { n: number; last: number | null };
    return { count: r.n, ...(r.last !== null ? { lastAt: r.last } : {}) };
  }

  /**
   * Best score of `query` against one person's templates: enrolled ones only (`learned`
   * false: the anchor a gate capture must match, so learned templates cannot drift away from
   * the enrolment), or all. Undefined when the person has no such template.
   */
  scoreAgainst(personId: string, query: Float32Array, opts: { learned: boolean }): number | undefined {
    const d = this.o.dim;
    const q = this.prepare(query);
    let qn = 0;
    for (let i = 0; i < d; i++) qn += q[i]! * q[i]!;
    const cosine = this.o.metric === 'cosine';
    let best: number | undefined;
    for (let r = 0; r < this.rows; r++) {
      if (this.rowPerson[r] !== personId || (!opts.learned && this.rowLearned[r])) continue;
      let dot = 0;
      const off = r * d;
      for (let i = 0; i < d; i++) dot += this.matrix[off + i]! * q[i]!;
      const s = cosine ? dot : Math.sqrt(Math.max(0, this.norms[r]! + qn - 2 * dot));
      if (best === undefined || (cosine ? s > best : s < best)) best = s;
    }
    return best;
  }

  /** The person's templates as stored in memory (copies; normalised when the recognizer's are). */
  embeddings(personId: string): Float32Array[] {
    const d = this.o.dim;
    const out: Float32Array[] = [];
    for (let r = 0; r < this.rows; r++) if (this.rowPerson[r] === personId) out.push(this.matrix.slice(r * d, (r + 1) * d));
    return out;
  }

  /**
   * Add one template learned from a gate capture (the caller has checked consent and the
   * evidence). Keeps at most `max` learned templates for the person, the oldest learned one
   * going first; enrolled templates are never touched. Returns the person's template count.
   */
  learn(personId: string, embedding: Float32Array, max: number): number {
    const db = this.o.db;
    const v = Float32Array.from(embedding);
    let id = 0;
    let removed: number[] = [];
    db.transaction(() => {
      id = Number(db.prepare('INSERT INTO templates(person_id, model, source, created_at, sealed) VALUES (?, ?, ?, ?, ?)').run(personId, this.o.model, GATE, this.o.now(), seal(this.o.key, Buffer.from(v.buffer), this.aad(personId))).lastInsertRowid);
      removed = (db.prepare(`DELETE FROM templates WHERE id IN (SELECT id FROM templates WHERE person_id = ? AND source = '${GATE}' ORDER BY created_at DESC, id DESC LIMIT -1 OFFSET ?) RETURNING id`).all(personId, max) as Array<{ id: number }>).map((r) => r.id);
    })();
    const gone = new Set(removed);
    if (gone.size) this.compact((r) => gone.has(this.rowId[r]!));
    if (!gone.has(id)) this.push(id, personId, v, true);
    if (gone.size) this.scrubWal();
    return this.count(personId);
  }

  /** Keep an (encrypted) enrolment photo. */
  addPhoto(personId: string, jpeg: Buffer): void {
    this.o.db.prepare('INSERT INTO photos(person_id, created_at, sealed) VALUES (?, ?, ?)').run(personId, this.o.now(), seal(this.o.key, jpeg, `${personId}\u0000photo`));
  }

  photos(personId: string): Buffer[] {
    const rows = this.o.db.prepare('SELECT sealed FROM photos WHERE person_id = ? ORDER BY id').all(personId) as Array<{ sealed: Buffer }>;
    return rows.map((r) => open(this.o.key, r.sealed, `${personId}\u0000photo`));
  }

  /** Remove every template and photo of a person, in the database and in memory. */
  remove(personId: string): number {
    const db = this.o.db;
    let n = 0;
    db.transaction(() => {
      n = db.prepare('DELETE FROM templates WHERE person_id = ?').run(personId).changes;
      n += db.prepare('DELETE FROM photos WHERE person_id = ?').run(personId).changes;
      db.prepare('DELETE FROM gate_consent WHERE person_id = ?').run(personId);
    })();
    this.compact((r) => this.rowPerson[r] === personId);
    this.scrubWal();
    return n;
  }

  /** Delete kept photos older than `before` (UTC ms); returns how many. */
  purgePhotosBefore(before: number): number {
    const n = this.o.db.prepare('DELETE FROM photos WHERE created_at < ?').run(before).changes;
    if (n) this.scrubWal();
    return n;
  }

  /** Persons with templates (for the retention sweep). */
  persons(): string[] {
    return [...this.perPerson.keys()];
  }

  /**
   * Deleted pages are zeroed by secure_delete in the database file, but their old content
   * may still sit in the WAL: checkpoint and truncate it so nothing of a removed template
   * remains on disk.
   */
  private scrubWal(): void {
    this.o.db.pragma('wal_checkpoint(TRUNCATE)');
  }

  /** Persons with templates, and their templates, among `allowed` (all when absent): the N a search runs against. */
  gallerySize(allowed?: ReadonlySet<string>): { persons: number; templates: number } {
    if (!allowed) return { persons: this.perPerson.size, templates: this.rows };
    let persons = 0;
    let templates = 0;
    for (const [p, n] of this.perPerson)
      if (allowed.has(p)) {
        persons++;
        templates += n;
      }
    return { persons, templates };
  }

  count(personId?: string): number {
    return personId === undefined ? this.rows : (this.perPerson.get(personId) ?? 0);
  }

  /**
   * 1:N search: the best template per person, returning the best person and the best
   * other person. Euclidean: lower is closer; cosine (on normalised vectors): higher is closer.
   */
  private project(v: Float32Array): Float32Array {
    const d = this.o.dim;
    const p = this.projMatrix!;
    const out = new Float32Array(PROJECTED_DIM);
    for (let k = 0; k < PROJECTED_DIM; k++) {
      let s = 0;
      for (let i = 0; i < d; i++) s += p[k * d + i]! * v[i]!;
      out[k] = s;
    }
    return out;
  }

  /** The SHORTLIST rows with the highest projected inner product (among `allowed`). */
  private shortlist(q: Float32Array, allowed?: ReadonlySet<string>): Int32Array {
    const pq = this.project(q);
    const P = this.proj!;
    const k = PROJECTED_DIM;
    const best = new Float64Array(SHORTLIST).fill(-Infinity);
    const rows = new Int32Array(SHORTLIST).fill(-1);
    let floor = -Infinity;
    let floorAt = 0;
    for (let r = 0; r < this.rows; r++) {
      if (allowed && !allowed.has(this.rowPerson[r]!)) continue;
      const off = r * k;
      let a0 = 0,
        a1 = 0,
        a2 = 0,
        a3 = 0;
      for (let i = 0; i < k; i += 4) {
        a0 += P[off + i]! * pq[i]!;
        a1 += P[off + i + 1]! * pq[i + 1]!;
        a2 += P[off + i + 2]! * pq[i + 2]!;
        a3 += P[off + i + 3]! * pq[i + 3]!;
      }
      const s = a0 + a1 + a2 + a3;
      if (s <= floor) continue;
      best[floorAt] = s;
      rows[floorAt] = r;
      // New floor: the lowest kept score (SHORTLIST is small; a linear pass only when one is replaced).
      floor = Infinity;
      for (let j = 0; j < SHORTLIST; j++)
        if (best[j]! < floor) {
          floor = best[j]!;
          floorAt = j;
        }
    }
    return rows.filter((r) => r >= 0);
  }

  search(query: Float32Array, allowed?: ReadonlySet<string>): Match | undefined {
    if (this.rows === 0) return undefined;
    const d = this.o.dim;
    if (query.length !== d) throw new Error(`query has ${query.length} values, expected ${d}`);
    const q = this.prepare(query);
    const candidates = this.proj && this.rows >= SHORTLIST_MIN_ROWS ? this.shortlist(q, allowed) : undefined;
    const m = this.matrix;
    const cosine = this.o.metric === 'cosine';
    // Euclidean via |m|² + |q|² − 2·m·q with the row norms precomputed: one multiply-add
    // per element, unrolled by four (10k × 128 in about a millisecond).
    let qn = 0;
    for (let i = 0; i < d; i++) qn += q[i]! * q[i]!;
    const norms = this.norms;
    // One pass keeping the best row and the best row of any *other* person
    // (scores: lower is better; cosine similarities are negated).
    let best = Infinity;
    let personId = '';
    let second = Infinity;
    let secondPerson: string | undefined;
    const d4 = d - (d % 4);
    const n = candidates ? candidates.length : this.rows;
    for (let c = 0; c < n; c++) {
      const r = candidates ? candidates[c]! : c;
      // Only the persons the door lets in now are candidates (the caller's set).
      if (allowed && !allowed.has(this.rowPerson[r]!)) continue;
      const off = r * d;
      let a0 = 0,
        a1 = 0,
        a2 = 0,
        a3 = 0;
      let i = 0;
      for (; i < d4; i += 4) {
        a0 += m[off + i]! * q[i]!;
        a1 += m[off + i + 1]! * q[i + 1]!;
        a2 += m[off + i + 2]! * q[i + 2]!;
        a3 += m[off + i + 3]! * q[i + 3]!;
      }
      for (; i < d; i++) a0 += m[off + i]! * q[i]!;
      const dot = a0 + a1 + a2 + a3;
      const score = cosine ? -dot : norms[r]! + qn - 2 * dot;
      if (score < best) {
        const p = this.rowPerson[r]!;
        if (p !== personId) {
          second = best;
          secondPerson = personId || undefined;
        }
        best = score;
        personId = p;
      } else if (score < second) {
        const p = this.rowPerson[r]!;
        if (p !== personId) {
          second = score;
          secondPerson = p;
        }
      }
    }
    if (!personId) return undefined;
    const fix = (s: number) => (cosine ? -s : Math.sqrt(Math.max(0, s)));
    return { personId, score: fix(best), ...(secondPerson !== undefined ? { runnerUp: { personId: secondPerson, score: fix(second) } } : {}) };
  }
}
