// The in-memory gallery the door searches: one Float32Array matrix (row = template),
// searched linearly — 1:N over 10k templates is a couple of milliseconds, no index needed
// at estate scale — with, for long cosine embeddings, a projected shortlist (below).
// It holds plain vectors only: the sealed copies at rest are TemplateStore's (templates.ts).

export interface Match {
  personId: string;
  /** Distance (euclidean) or similarity (cosine) of the best template of that person. */
  score: number;
  /** Same for the best other person (for the margin), if any. */
  runnerUp?: { personId: string; score: number };
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

export interface GalleryOptions {
  dim: number;
  metric: 'euclidean' | 'cosine';
  /** Normalise every vector to unit length (the recognizer's embeddings are compared that way). */
  l2Normalise: boolean;
}

/** A template row: its database id, its person, and whether it was learned at the gate. */
export interface GalleryRow {
  id: number;
  personId: string;
  learned: boolean;
}

export class Gallery {
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
  private readonly dim: number;
  private readonly cosine: boolean;
  private readonly l2Normalise: boolean;

  constructor(opts: GalleryOptions) {
    this.dim = opts.dim;
    this.cosine = opts.metric === 'cosine';
    this.l2Normalise = opts.l2Normalise;
    this.matrix = new Float32Array(64 * opts.dim);
    if (this.cosine && opts.dim > 2 * PROJECTED_DIM) {
      this.projMatrix = projection(opts.dim, PROJECTED_DIM);
      this.proj = new Float32Array(64 * PROJECTED_DIM);
    }
  }

  /** A copy of `v` as the gallery compares it (normalised when the recognizer's embeddings are). */
  prepare(v: Float32Array | number[]): Float32Array {
    const out = Float32Array.from(v);
    if (this.l2Normalise) {
      let n = 0;
      for (const x of out) n += x * x;
      n = Math.sqrt(n) || 1;
      for (let i = 0; i < out.length; i++) out[i]! /= n;
    }
    return out;
  }

  /** Add one template row. */
  add(id: number, personId: string, v: Float32Array, learned = false): void {
    const d = this.dim;
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
  /** Remove the rows for which `drop` is true (the matrix is compacted in place). */
  remove(drop: (row: GalleryRow) => boolean): void {
    const d = this.dim;
    let w = 0;
    for (let r = 0; r < this.rows; r++) {
      if (drop({ id: this.rowId[r]!, personId: this.rowPerson[r]!, learned: this.rowLearned[r]! })) {
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

  /** Persons with templates. */
  persons(): string[] {
    return [...this.perPerson.keys()];
  }

  /**
   * Best score of `query` against one person's templates: enrolled ones only (`learned`
   * false: the anchor a gate capture must match, so learned templates cannot drift away from
   * the enrolment), or all. Undefined when the person has no such template.
   */
  scoreAgainst(personId: string, query: Float32Array, opts: { learned: boolean }): number | undefined {
    const d = this.dim;
    const q = this.prepare(query);
    let qn = 0;
    for (let i = 0; i < d; i++) qn += q[i]! * q[i]!;
    const cosine = this.cosine;
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
    const d = this.dim;
    const out: Float32Array[] = [];
    for (let r = 0; r < this.rows; r++) if (this.rowPerson[r] === personId) out.push(this.matrix.slice(r * d, (r + 1) * d));
    return out;
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

  /** `v` in the PROJECTED_DIM-d projection. */
  private project(v: Float32Array): Float32Array {
    const d = this.dim;
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

  /**
   * 1:N search: the best template per person, returning the best person and the best
   * other person. Euclidean: lower is closer; cosine (on normalised vectors): higher is closer.
   */
  search(query: Float32Array, allowed?: ReadonlySet<string>): Match | undefined {
    if (this.rows === 0) return undefined;
    const d = this.dim;
    if (query.length !== d) throw new Error(`query has ${query.length} values, expected ${d}`);
    const q = this.prepare(query);
    const candidates = this.proj && this.rows >= SHORTLIST_MIN_ROWS ? this.shortlist(q, allowed) : undefined;
    const m = this.matrix;
    const cosine = this.cosine;
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
