// N-aware match decisions (edge/vision/policy.ts) and the door-restricted search of the
// template store: pure logic and a real SQLite store, no models.
import t from 'tap';
import Database from 'better-sqlite3';
import { judge, thresholdFor, EvidenceStreak, policyFor, type PolicyOptions } from '../../edge/vision/policy.js';
import { TemplateStore } from '../../edge/vision/templates.js';
import { loadManifest, getModel } from '../../models/manifest.js';

const cal = { score: 0.4, rate: 1e-3, beta: 0.05, minThreshold: 0.35, maxThreshold: 0.8, margin: 0.08 };
const o: PolicyOptions = { metric: 'cosine', calibration: cal, strangerRate: 1e-3 };

t.test('the threshold rises with the gallery so that N·p(t) stays at the stranger rate', async (t) => {
  const at = (n: number) => thresholdFor(o, n, n);
  t.ok(at(25) < at(500) && at(500) < at(2000) && at(2000) < at(10000), 'monotonic in N');
  for (const n of [25, 500, 2000]) {
    const p = cal.rate * Math.exp(-(at(n) - cal.score) / cal.beta);
    t.ok(Math.abs(n * p - 1e-3) < 1e-9, `N=${n}: N·p(t) = ${(n * p).toExponential(2)} = stranger rate`);
  }
  t.equal(thresholdFor(o, 1, 1), 0.4, 'one comparison at rate 1e-3: the anchor itself');
  t.equal(thresholdFor({ ...o, strangerRate: 0.5 }, 1, 1), 0.35, 'never below the floor');
  t.equal(thresholdFor(o, 1e12, 1e12), 0.8, 'never above the ceiling');
  t.equal(thresholdFor({ ...o, fixedThreshold: 0.6 }, 2000, 6000), 0.6, 'a fixed threshold ignores N');
  t.ok(thresholdFor(o, 100, 300) > thresholdFor(o, 100, 100), 'more templates per person: more chances, higher threshold');
});

t.test('judge: below threshold, ambiguous runner-up, match', async (t) => {
  t.match(judge(o, undefined, 0, 0), { kind: 'unknown', reason: 'no_templates' });
  const thr = thresholdFor(o, 2000, 2000);
  t.match(judge(o, { personId: 'a', score: thr - 0.01 }, 2000, 2000), { kind: 'unknown', reason: 'below_threshold' });
  t.match(judge(o, { personId: 'a', score: thr + 0.1, runnerUp: { personId: 'b', score: thr + 0.05 } }, 2000, 2000), { kind: 'ambiguous', personId: 'a', runnerUp: 'b' });
  t.match(judge(o, { personId: 'a', score: thr + 0.1, runnerUp: { personId: 'b', score: thr - 0.2 } }, 2000, 2000), { kind: 'match', personId: 'a' });
  t.match(judge(o, { personId: 'a', score: thr + 0.01 }, 2000, 2000), { kind: 'match', personId: 'a' }, 'no runner-up: no margin needed');
  const eu: PolicyOptions = { metric: 'euclidean', fixedThreshold: 0.58, strangerRate: 1e-3, margin: 0.05 };
  t.match(judge(eu, { personId: 'a', score: 0.4, runnerUp: { personId: 'b', score: 0.43 } }, 10, 10), { kind: 'ambiguous' }, 'euclidean: lower is closer');
  t.match(judge(eu, { personId: 'a', score: 0.4, runnerUp: { personId: 'b', score: 0.7 } }, 10, 10), { kind: 'match' });
  t.match(judge(eu, { personId: 'a', score: 0.6 }, 10, 10), { kind: 'unknown' });
});

t.test('the manifest’s default recognizer is calibrated, dlib keeps its fixed threshold', async (t) => {
  const m = loadManifest();
  const def = getModel(m, m.defaults.recognizer, 'recognizer');
  t.ok(def.matching.calibration, `${m.defaults.recognizer} has an impostor-tail calibration`);
  const p = policyFor(def, { strangerRate: 1e-3 });
  t.ok(thresholdFor(p, 2000, 6000) > thresholdFor(p, 25, 75), 'its threshold depends on N');
  const dlib = policyFor(getModel(m, 'dlib-resnet-v1', 'recognizer'), { strangerRate: 1e-3 });
  t.equal(dlib.fixedThreshold, 0.58);
  t.equal(policyFor(def, { strangerRate: 1e-3, threshold: 0.7 }).fixedThreshold, 0.7, 'config threshold overrides');
});

t.test('evidence: K frames that differ, not repeats of one frame', async (t) => {
  const e = (x: number) => Float32Array.from({ length: 8 }, (_, i) => (i === 0 ? 1 : i === 1 ? x : 0.1));
  const s = new EvidenceStreak(3, 3000, 150, 0.995);
  t.equal(s.observe('a', 0, e(0)), 'counted');
  t.equal(s.observe('a', 50, e(0.3)), 'repeat', 'too soon after the last counted frame');
  t.equal(s.observe('a', 200, e(0)), 'repeat', 'the same embedding again (a still picture)');
  t.equal(s.observe('a', 400, e(0.3)), 'counted');
  t.equal(s.observe('b', 600, e(0.6)), 'counted', 'another person restarts the streak');
  t.equal(s.observe('b', 800, e(-0.3)), 'counted');
  t.equal(s.observe('b', 1000, e(0.2)), 'confirmed');
  t.equal(s.observe('b', 1200, e(0.9)), 'counted', 'the streak starts afresh after a confirmation');
  t.equal(s.observe('b', 5000, e(0.5)), 'counted', 'frames outside the window are forgotten');
  t.equal(s.observe('b', 5200, e(-0.5)), 'counted');
  const frozen = new EvidenceStreak(3, 3000, 0, 0.995);
  const one = e(0.3);
  let confirmed = false;
  for (let i = 0; i < 30; i++) confirmed ||= frozen.observe('a', i * 100, one) === 'confirmed';
  t.notOk(confirmed, 'thirty copies of one frame never confirm');
});

t.test('search is restricted to the allowed persons, and gallerySize counts them', async (t) => {
  const store = new TemplateStore({ db: new Database(':memory:'), key: Buffer.alloc(32, 7), model: 'm', dim: 4, metric: 'cosine', l2Normalise: true, now: Date.now });
  store.add('alice', [[1, 0, 0, 0], [0.9, 0.1, 0, 0]], { replace: false, source: 'embedding', maxPerPerson: 10 });
  store.add('bob', [[0, 1, 0, 0]], { replace: false, source: 'embedding', maxPerPerson: 10 });
  store.add('carol', [[0, 0, 1, 0]], { replace: false, source: 'embedding', maxPerPerson: 10 });
  const q = Float32Array.of(1, 0.05, 0, 0);
  t.equal(store.search(q)?.personId, 'alice');
  const r = store.search(q, new Set(['bob', 'carol']));
  t.equal(r?.personId, 'bob', 'alice is not allowed at this door now: not a candidate');
  t.equal(store.search(q, new Set()), undefined, 'nobody allowed: no match at all');
  t.same(store.gallerySize(), { persons: 3, templates: 4 });
  t.same(store.gallerySize(new Set(['alice', 'dave'])), { persons: 1, templates: 2 });
});
