// Learning from gate captures: a resident who consented (person.upsert faces.gateUpdates)
// gets the face of a confident, live, unambiguous granted approach added to their record,
// so the gallery follows them (new glasses, a beard, the winter light at this gate)
// instead of decaying until they are refused. Without consent nothing is ever learned.
//
// The risk is template poisoning: a wrong grant that is learned makes the next wrong grant
// easier. So a capture is learned only when it is far more certain than a grant needs to
// be — beyond the door's threshold by `minScoreGain`, beyond the runner-up by twice the
// margin, live by the liveness model (never with liveness off) — and when it matches the
// person's *enrolled* templates by itself (the anchor: learned templates never vouch for
// the next one, so the record cannot drift away from the enrolment). Learned templates are
// capped per person on their own and never push out an enrolled one; withdrawing consent
// deletes them all (templates.ts).
import type { Match } from './gallery.js';
import type { TemplateStore } from './templates.js';
import { cosine } from './policy.js';

export interface LearnOptions {
  /** Learned templates kept per person; 0 disables learning. */
  maxTemplates: number;
  /** At most one learned template per person per this many hours. */
  minIntervalH: number;
  /** How far beyond the door's threshold the capture must score (similarity units). */
  minScoreGain: number;
  /** A capture this similar (cosine) to one of the person's templates teaches nothing. */
  maxSimilarity: number;
}

export interface LearnInput {
  match: Match;
  embedding: Float32Array;
  metric: 'euclidean' | 'cosine';
  threshold: number;
  /** The margin the decision rule requires over the runner-up. */
  requiredMargin: number;
  /** p(real) of the confirming frame; undefined when liveness is off. */
  liveness: number | undefined;
  livenessThreshold: number;
  now: number;
}

/** Outcome codes (counted as estate_vision_learned_total{outcome}). */
export type LearnOutcome = 'learned' | 'no_consent' | 'disabled' | 'no_liveness' | 'not_confident' | 'ambiguous' | 'anchor' | 'similar' | 'too_soon';

/** Higher = more similar, for either metric. */
const sim = (metric: LearnInput['metric'], s: number) => (metric === 'euclidean' ? -s : s);

/** Decide whether to learn this capture, and learn it. Consent is checked first: nothing else is looked at without it. */
export function learnFromGate(store: TemplateStore, o: LearnOptions, x: LearnInput): { outcome: LearnOutcome; templates?: number; score?: number } {
  const personId = x.match.personId;
  if (!store.gateConsent(personId)) return { outcome: 'no_consent' };
  if (o.maxTemplates <= 0) return { outcome: 'disabled' };
  if (x.liveness === undefined || x.liveness < x.livenessThreshold) return { outcome: 'no_liveness' };
  const best = sim(x.metric, x.match.score);
  if (best < sim(x.metric, x.threshold) + o.minScoreGain) return { outcome: 'not_confident' };
  if (x.match.runnerUp && best - sim(x.metric, x.match.runnerUp.score) < 2 * x.requiredMargin) return { outcome: 'ambiguous' };
  const anchor = store.scoreAgainst(personId, x.embedding, { learned: false });
  if (anchor === undefined || sim(x.metric, anchor) < sim(x.metric, x.threshold)) return { outcome: 'anchor' };
  const last = store.learned(personId).lastAt;
  if (last !== undefined && x.now - last < o.minIntervalH * 3600_000) return { outcome: 'too_soon' };
  const mostSimilar = store.embeddings(personId).reduce((m, e) => Math.max(m, cosine(e, x.embedding)), -1);
  if (mostSimilar >= o.maxSimilarity) return { outcome: 'similar' };
  const templates = store.learn(personId, x.embedding, o.maxTemplates);
  return { outcome: 'learned', templates, score: x.match.score };
}
