// Match decisions that account for the size of the gallery searched.
//
// A stranger at the gate is compared with every enrolled person the door allows: if one
// comparison falsely matches with probability p(t) at threshold t, an approach against N
// persons of T templates each matches *somebody* with probability ≈ N·T·p(t). So the
// threshold is not a constant: it is the score at which N·T·p(t) equals the accepted
// stranger rate per approach (vision.match.strangerRate, default 0.1 %). p(t) comes from
// the recognizer's measured impostor tail (manifest matching.calibration): an exponential
// fitted to the upper tail of impostor cosine similarities on public face sets,
// p(t) = rate · exp(−(t − score)/beta) above the anchor. Frames of one approach are not
// independent (one face, one pose), so K frames are not counted as K chances: the rate is
// per approach, not per frame.
//
// On top of the threshold, the best person must beat the best *other* person by a margin
// (a resident who resembles another enrolled person is refused rather than risked as a
// wrong-person grant), and the door asks only among persons it would let in now (the
// caller restricts the search), which is both fewer chances for a stranger and the N the
// threshold is computed for.
import type { RecognizerModel } from '../../models/manifest.js';
import type { Match } from './gallery.js';

export interface Calibration {
  /** Anchor of the impostor tail: P(impostor similarity ≥ score) = rate. */
  score: number;
  rate: number;
  /** Exponential decay of the tail above the anchor (similarity units). */
  beta: number;
  /** Never decide below / above these, whatever N. */
  minThreshold: number;
  maxThreshold: number;
  /** Required gap between the best person and the runner-up. */
  margin: number;
}

export interface PolicyOptions {
  metric: 'euclidean' | 'cosine';
  /** Fixed threshold (config override or a recognizer without calibration): N is then ignored. */
  fixedThreshold?: number;
  calibration?: Calibration;
  /** Accepted probability that a stranger's approach is granted (e.g. 0.001). */
  strangerRate: number;
  /** Margin override. */
  margin?: number;
}

export type Verdict =
  | { kind: 'match'; personId: string; score: number; threshold: number; margin?: number }
  | { kind: 'unknown'; reason: 'no_templates' | 'below_threshold'; score?: number; threshold: number }
  | { kind: 'ambiguous'; personId: string; runnerUp: string; score: number; margin: number; required: number; threshold: number };

/** Threshold for a search over `persons` persons holding `templates` templates in all. */
export function thresholdFor(o: PolicyOptions, persons: number, templates: number): number {
  if (o.fixedThreshold !== undefined || !o.calibration) {
    if (o.fixedThreshold === undefined) throw new Error('recognizer has neither a calibration nor a fixed threshold');
    return o.fixedThreshold;
  }
  const c = o.calibration;
  if (!(o.strangerRate > 0 && o.strangerRate < 1)) throw new Error(`stranger rate ${o.strangerRate} is not a probability in (0, 1)`);
  // Comparisons a stranger gets: every template of every person searched (at least one).
  const comparisons = Math.max(1, templates, persons);
  const perComparison = o.strangerRate / comparisons;
  const t = c.score + c.beta * Math.log(c.rate / perComparison);
  return Math.min(c.maxThreshold, Math.max(c.minThreshold, t));
}

export function marginFor(o: PolicyOptions): number {
  return o.margin ?? o.calibration?.margin ?? 0;
}

/** Higher = more similar, for either metric. */
const similarity = (metric: PolicyOptions['metric'], s: number) => (metric === 'euclidean' ? -s : s);

/** The verdict for one frame's best match in a search over `persons` persons / `templates` templates. */
export function judge(o: PolicyOptions, match: Match | undefined, persons: number, templates: number): Verdict {
  const threshold = thresholdFor(o, persons, templates);
  // Fail closed: a threshold that is not a number would compare false with every score.
  if (!Number.isFinite(threshold)) throw new Error(`match threshold ${threshold} is not a number`);
  if (!match) return { kind: 'unknown', reason: 'no_templates', threshold };
  if (!Number.isFinite(match.score)) return { kind: 'unknown', reason: 'below_threshold', score: match.score, threshold };
  const best = similarity(o.metric, match.score);
  if (best < similarity(o.metric, threshold)) return { kind: 'unknown', reason: 'below_threshold', score: match.score, threshold };
  const required = marginFor(o);
  if (match.runnerUp) {
    const margin = best - similarity(o.metric, match.runnerUp.score);
    if (margin < required) return { kind: 'ambiguous', personId: match.personId, runnerUp: match.runnerUp.personId, score: match.score, margin, required, threshold };
    return { kind: 'match', personId: match.personId, score: match.score, threshold, margin };
  }
  return { kind: 'match', personId: match.personId, score: match.score, threshold };
}

/** Policy options for a recognizer and the vision.match config. */
export function policyFor(rec: RecognizerModel, match: { threshold?: number | undefined; strangerRate: number; margin?: number | undefined }): PolicyOptions {
  const cal = rec.matching.calibration;
  return {
    metric: rec.matching.metric,
    strangerRate: match.strangerRate,
    ...(match.threshold !== undefined ? { fixedThreshold: match.threshold } : cal ? {} : { fixedThreshold: rec.matching.threshold }),
    ...(cal ? { calibration: cal } : {}),
    ...(match.margin !== undefined ? { margin: match.margin } : {}),
  };
}

/**
 * K-frame evidence from frames that differ: a frame adds to the streak only when it comes
 * at least `minGapMs` after the last one counted and its embedding differs from every frame
 * already counted (cosine below `maxRepeat`): a still picture or a frozen stream repeats
 * one face and cannot make up the K frames on its own.
 */
export class EvidenceStreak {
  private key: string | undefined;
  private frames: Array<{ t: number; e: Float32Array }> = [];

  constructor(
    private readonly k: number,
    private readonly windowMs: number,
    private readonly minGapMs: number,
    private readonly maxRepeat: number,
  ) {}

  /** Returns the key once K distinct frames agree within the window; a different key restarts the streak. */
  observe(key: string, t: number, embedding: Float32Array): 'confirmed' | 'counted' | 'repeat' {
    if (key !== this.key) {
      this.key = key;
      this.frames = [];
    }
    this.frames = this.frames.filter((f) => t - f.t <= this.windowMs);
    const last = this.frames[this.frames.length - 1];
    if (last && (t - last.t < this.minGapMs || this.frames.some((f) => cosine(f.e, embedding) >= this.maxRepeat))) return 'repeat';
    this.frames.push({ t, e: embedding });
    if (this.frames.length >= this.k) {
      this.reset();
      return 'confirmed';
    }
    return 'counted';
  }

  reset(): void {
    this.key = undefined;
    this.frames = [];
  }
}

/** Cosine similarity of two embeddings (0 for a zero vector); shared by enrolment and the harness. */
export function cosine(a: Float32Array, b: Float32Array): number {
  let s = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    s += a[i]! * b[i]!;
    na += a[i]! * a[i]!;
    nb += b[i]! * b[i]!;
  }
  return s / Math.sqrt(na * nb || 1);
}
