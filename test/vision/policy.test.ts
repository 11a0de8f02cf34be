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
  // Fail closed: a missing or absurd stranger rate is an error, never a NaN threshold that every score passes.
  t.throws(() => thresholdFor({ ...o, strangerRate: undefined as unknown as number }, 10, 10), /not a probability/);
  t.throws(() => judge({ ...o, strangerRate: Number.NaN }, { personId: 'a', score: 0.99 }, 10, 10), /not a probability/);
  t.throws(() => judge({ metric: 'cosine', fixedThreshold: Number.NaN, strangerRate: 1e-3 }, { personId: 'a', score: 0.99 }, 10, 10), /not a number/);
  t.match(judge(o, { personId: 'a', score: Number.NaN }, 10, 10), { kind: 'unknown' }, 'a NaN score is no match');
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
  store.add(
    'alice',
    [
      [1, 0, 0, 0],
      [0.9, 0.1, 0, 0],
    ],
    { replace: false, source: 'embedding', maxPerPerson: 10 },
  );
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

t.test('large 512-d galleries: the projected shortlist finds the same best and runner-up as an exact scan', async (t) => {
  const dim = 512;
  let seed = 99;
  const g = () => {
    const u = ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) + 1) / 2 ** 32;
    const v = ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) + 1) / 2 ** 32;
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  const unit = (v: Float32Array) => {
    const n = Math.hypot(...v);
    return v.map((x) => x / n);
  };
  const rows = Array.from({ length: 6000 }, () => unit(Float32Array.from({ length: dim }, g)));
  const store = new TemplateStore({ db: new Database(':memory:'), key: Buffer.alloc(32, 7), model: 'm', dim, metric: 'cosine', l2Normalise: true, now: Date.now });
  for (let p = 0; p < 3000; p++) store.add(`p${p}`, [rows[2 * p]!, rows[2 * p + 1]!], { replace: false, source: 'embedding', maxPerPerson: 10 });
  const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);
  let same = 0;
  let close = 0;
  const trials = 60;
  for (let k = 0; k < trials; k++) {
    // A probe of person k at a genuine-like cosine (~0.5) to one of its templates, plus a decoy close to another person.
    const target = rows[2 * k]!;
    // Every other probe also resembles another person (p(k+1000)): the margin case.
    const decoy = rows[2 * (k + 1000)]!;
    const probe = unit(target.map((x, i) => x + (k % 2 ? 0.8 * decoy[i]! : 0) + 1.7 * (g() / Math.sqrt(dim))));
    const got = store.search(probe)!;
    let best = { p: '', s: -Infinity };
    let second = { p: '', s: -Infinity };
    const perPerson = new Map<string, number>();
    rows.forEach((r, i) => {
      const p = `p${Math.floor(i / 2)}`;
      perPerson.set(p, Math.max(perPerson.get(p) ?? -Infinity, dot(r, probe)));
    });
    for (const [p, s] of perPerson) {
      if (s > best.s) [second, best] = [best, { p, s }];
      else if (s > second.s) second = { p, s };
    }
    // The best is exact; the runner-up must be exact whenever it is close enough to matter
    // for the margin (within 0.15 of the best); otherwise it may only be lower than the truth.
    const runnerOk = second.s >= best.s - 0.15 ? got.runnerUp?.personId === second.p : (got.runnerUp?.score ?? -Infinity) <= second.s + 1e-6;
    if (got.personId === best.p && Math.abs(got.score - best.s) < 1e-5 && runnerOk) same++;
    if (k % 2 && second.s >= best.s - 0.15) close++;
  }
  t.equal(same, trials, `${same}/${trials} probes: the same best person and score as the exact scan, and the runner-up whenever it is within 0.15`);
  t.ok(close >= trials / 4, `${close} probes had a runner-up within 0.15 (the margin case is exercised)`);
});
