// Learning from gate captures (edge/vision/learn.ts, templates.ts): only with the
// resident's consent, only from captures far more certain than a grant needs, anchored to
// the enrolled templates, capped apart from them, and gone without trace when consent is
// withdrawn. Real SQLite file, sealed templates, synthetic 16-d cosine embeddings whose
// similarities are set exactly.
import t from 'tap';
import Database from 'better-sqlite3';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TemplateStore } from '../../edge/vision/templates.js';
import { loadOrCreateKey } from '../../edge/vision/sealing.js';
import type { Match } from '../../edge/vision/gallery.js';
import { learnFromGate, type LearnOptions } from '../../edge/vision/learn.js';

const DIM = 16;
/** A unit vector at cosine `c` from axis `axis`, leaning towards axis `towards`. */
function at(axis: number, c: number, towards: number): Float32Array {
  const v = new Float32Array(DIM);
  v[axis] = c;
  v[towards] = Math.sqrt(1 - c * c);
  return v;
}
const unit = (axis: number) => at(axis, 1, (axis + 1) % DIM);
const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);

function rig(t: { teardown(fn: () => unknown): void }) {
  const dir = mkdtempSync(join(tmpdir(), 'ee-learn-'));
  const key = loadOrCreateKey(join(dir, 'keys', 'faces.key'));
  const file = join(dir, 'faces.db');
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  t.teardown(() => db.close());
  const clock = { now: 1_000_000_000_000 };
  const make = () => new TemplateStore({ db, key, model: 'm', dim: DIM, metric: 'cosine', l2Normalise: true, now: () => clock.now });
  return { dir, file, db, clock, store: make(), make };
}

const OPTS: LearnOptions = { maxTemplates: 2, minIntervalH: 24, minScoreGain: 0.05, maxSimilarity: 0.93 };
const THRESHOLD = 0.6;
const MARGIN = 0.1;

/** What the vision module hands over for a confirmed grant of `q` (search done by the store). */
function input(store: TemplateStore, q: Float32Array, now: number, liveness: number | 'off' = 0.9) {
  const match = store.search(q) as Match;
  return { match, embedding: q, metric: 'cosine' as const, threshold: THRESHOLD, requiredMargin: MARGIN, liveness: liveness === 'off' ? undefined : liveness, livenessThreshold: 0.5, now };
}

t.test('nothing is learned without consent, whatever the evidence', async (t) => {
  const { store, clock } = rig(t);
  store.add('ann', [unit(0)], { replace: false, source: 'photo', maxPerPerson: 10 });
  const q = at(0, 0.85, 1);
  t.same(learnFromGate(store, OPTS, input(store, q, clock.now)), { outcome: 'no_consent' });
  t.equal(store.count('ann'), 1);
  t.equal(store.learned('ann').count, 0);
  t.notOk(store.gateConsent('ann'), 'no consent until given');
});

t.test('with consent: each safeguard refuses on its own; a capture that passes them all is learned', async (t) => {
  const { store, clock } = rig(t);
  store.add('ann', [unit(0)], { replace: false, source: 'photo', maxPerPerson: 10 });
  store.add('bob', [unit(5)], { replace: false, source: 'photo', maxPerPerson: 10 });
  t.equal(store.setGateConsent('ann', true), 0);
  t.ok(store.gateConsent('ann'));
  const good = at(0, 0.85, 1);

  t.same(learnFromGate(store, { ...OPTS, maxTemplates: 0 }, input(store, good, clock.now)), { outcome: 'disabled' });
  t.same(learnFromGate(store, OPTS, input(store, good, clock.now, 'off')), { outcome: 'no_liveness' }, 'liveness off: never learned (a photo could teach the record)');
  t.same(learnFromGate(store, OPTS, input(store, good, clock.now, 0.3)), { outcome: 'no_liveness' });
  t.same(learnFromGate(store, OPTS, input(store, at(0, 0.63, 1), clock.now)), { outcome: 'not_confident' }, 'a grant 0.03 beyond the threshold is not certain enough');
  // Close to bob too: best 0.75 for ann, 0.6 for bob → margin 0.15 < 2 × 0.1.
  const between = new Float32Array(DIM);
  between[0] = 0.75;
  between[5] = 0.6;
  between[2] = Math.sqrt(1 - 0.75 ** 2 - 0.6 ** 2);
  t.same(learnFromGate(store, OPTS, input(store, between, clock.now)), { outcome: 'ambiguous' });
  t.same(learnFromGate(store, OPTS, input(store, at(0, 0.97, 1), clock.now)), { outcome: 'similar' }, 'a capture almost the enrolled photo teaches nothing');

  const r = learnFromGate(store, OPTS, input(store, good, clock.now));
  t.equal(r.outcome, 'learned');
  t.equal(r.templates, 2);
  t.same(store.learned('ann'), { count: 1, lastAt: clock.now });
  t.equal(store.search(at(0, 0.85, 1))!.personId, 'ann');
  t.ok(store.search(at(1, 0.99, 0))!.score > dot(unit(0), at(1, 0.99, 0)) + 0.4, 'the learned template is searched');

  clock.now += 3600_000;
  t.same(learnFromGate(store, OPTS, input(store, at(0, 0.8, 2), clock.now)), { outcome: 'too_soon' }, 'one learned template a day at most');
});

t.test('anchored to the enrolment: a learned template never vouches for the next one', async (t) => {
  const { store, clock, make } = rig(t);
  store.add('ann', [unit(0)], { replace: false, source: 'photo', maxPerPerson: 10 });
  store.setGateConsent('ann', true);
  // Learned: 0.7 from the enrolment, towards axis 1.
  const first = at(0, 0.7, 1);
  t.equal(learnFromGate(store, OPTS, input(store, first, clock.now)).outcome, 'learned');
  clock.now += 25 * 3600_000;
  // A capture close to the learned template (0.9) but only 0.45 from the enrolment: granted
  // via the learned template, never learned itself.
  const drift = new Float32Array(DIM);
  drift[0] = 0.45;
  drift[1] = 0.85;
  drift[3] = Math.sqrt(1 - 0.45 ** 2 - 0.85 ** 2);
  const x = input(store, drift, clock.now);
  t.ok(x.match.score > 0.8, `granted through the learned template (${x.match.score.toFixed(3)})`);
  t.same(learnFromGate(store, OPTS, x), { outcome: 'anchor' });
  // The same after a restart: the store knows which rows were learned from the database.
  const reopened = make();
  t.same(learnFromGate(reopened, OPTS, input(reopened, drift, clock.now)), { outcome: 'anchor' });
});

t.test('learned templates are capped apart from enrolled ones; consent withdrawn deletes them without trace', async (t) => {
  const { store, clock, dir, db, make } = rig(t);
  store.add('ann', [unit(0), at(0, 0.8, 7)], { replace: false, source: 'photo', maxPerPerson: 2 });
  store.setGateConsent('ann', true);
  const caps = [at(0, 0.8, 1), at(0, 0.8, 2), at(0, 0.8, 3)];
  for (const c of caps) {
    t.equal(learnFromGate(store, OPTS, input(store, c, clock.now)).outcome, 'learned');
    clock.now += 25 * 3600_000;
  }
  t.equal(store.count('ann'), 4, '2 enrolled + at most 2 learned');
  t.equal(store.learned('ann').count, 2);
  t.ok(store.scoreAgainst('ann', caps[0]!, { learned: true })! < 0.85, 'the oldest learned template went first');
  t.ok(store.scoreAgainst('ann', caps[2]!, { learned: true })! > 0.999, 'the newest is kept');
  // An enrolment topping up to the per-person limit drops the oldest *enrolled* one, never a learned one.
  store.add('ann', [at(0, 0.8, 9)], { replace: false, source: 'photo', maxPerPerson: 2 });
  t.equal(store.count('ann'), 4);
  t.equal(store.learned('ann').count, 2);

  // Reopened: the learned rows are still known as learned (the anchor must not use them).
  const again = make();
  t.equal(again.count('ann'), 4);
  t.ok(again.scoreAgainst('ann', caps[2]!, { learned: false })! < 0.9, 'after a restart the anchor ignores learned rows');
  t.equal(again.learned('ann').count, 2);

  const sealedLearned = (db.prepare("SELECT sealed FROM templates WHERE source = 'gate'").all() as Array<{ sealed: Buffer }>).map((r) => r.sealed);
  t.equal(again.setGateConsent('ann', false), 2, 'withdrawn: both learned templates deleted');
  t.notOk(again.gateConsent('ann'));
  t.equal(again.count('ann'), 2, 'enrolled ones stay');
  t.ok(again.scoreAgainst('ann', caps[2]!, { learned: true })! < 0.9, 'no longer searched');
  for (const f of readdirSync(dir).filter((n) => n.startsWith('faces.db'))) {
    const bytes = readFileSync(join(dir, f));
    t.notOk(
      sealedLearned.some((s) => bytes.includes(s.subarray(12, 60))),
      `${f}: no trace of a withdrawn template`,
    );
  }
  t.same(learnFromGate(again, OPTS, input(again, caps[1]!, clock.now)), { outcome: 'no_consent' });
});

t.test('a replacing enrolment and a deleted person take learned templates and consent with them', async (t) => {
  const { store, clock } = rig(t);
  store.add('ann', [unit(0)], { replace: false, source: 'photo', maxPerPerson: 10 });
  store.setGateConsent('ann', true);
  t.equal(learnFromGate(store, OPTS, input(store, at(0, 0.8, 1), clock.now)).outcome, 'learned');
  store.add('ann', [unit(4)], { replace: true, source: 'photo', maxPerPerson: 10 });
  t.equal(store.count('ann'), 1, 'replaced: learned from the old enrolment gone too');
  t.equal(store.learned('ann').count, 0);
  t.ok(store.gateConsent('ann'), 'consent is the person’s, not the enrolment’s');
  store.remove('ann');
  t.notOk(store.gateConsent('ann'), 'deleted person: consent record gone');
});
