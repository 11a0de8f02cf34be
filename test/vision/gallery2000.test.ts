// A 2,000-person gallery does not let the shared set's impostors in.
//
// Real models on real photos: every identity of ../shared/media/faces is enrolled from its
// first usable photo, the gallery is filled to 2,000 persons with synthetic identities, and
// the product's decision (edge/vision/policy.ts: the threshold for the 2,000 persons
// searched, the margin) is asked for every photo of every identity *left out* of the
// gallery (leave-one-out: each identity in turn is the stranger) and for the identity that
// is never enrolled. None may be granted, and no resident photo may be granted as somebody
// else. One frame per approach: a stranger who fails on one frame fails the K-frame rule too.
//
// The synthetic identities are unit vectors around the mean of the real embeddings, spread
// so that their cosine to real faces has the spread real impostor pairs have on these photos
// (measured here, not assumed); the impostors themselves are real photos. The harness
// (npm run eval:face) measures the same with real distractor photos.
import t from 'tap';
import Database from 'better-sqlite3';
import { Value } from '@sinclair/typebox/value';
import { VisionSchema } from '../../edge/vision/schema.js';
import { resolveModels } from '../../edge/vision/models.js';
import { Engine } from '../../edge/vision/engine.js';
import { analyze } from '../../edge/vision/worker.js';
import { TemplateStore } from '../../edge/vision/templates.js';
import { judge, policyFor, thresholdFor } from '../../edge/vision/policy.js';
import { identities, modelsDir, rgb } from './helpers.js';

const N = 2000;
const cfg = Value.Default(VisionSchema, { enabled: true, modelsDir: modelsDir(), liveness: { enabled: false } }) as any;
const resolved = resolveModels(cfg);
const rec = resolved.models.recognizer;
const policy = policyFor(rec, cfg.match);
const engine = await Engine.create({ models: resolved.models, dir: resolved.dir, threads: 2, detectThreshold: resolved.detectThreshold });
t.teardown(() => engine.release());
const probeLimits = { ...cfg.enrolment.quality, minSharpness: 0, minFacePx: 20 };

const unit = (v: Float32Array) => {
  let n = 0;
  for (const x of v) n += x * x;
  n = Math.sqrt(n) || 1;
  return v.map((x) => x / n);
};
const dot = (a: Float32Array, b: Float32Array) => a.reduce((s, x, i) => s + x * b[i]!, 0);
const sd = (xs: number[]) => {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  return Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / xs.length);
};

t.test(`no impostor of the shared set is granted against a ${N}-person gallery`, async (t) => {
  // Every usable photo, embedded once.
  const photos: Array<{ id: string; file: string; e: Float32Array; enrolable: boolean }> = [];
  for (const [id, files] of identities()) {
    for (const file of files) {
      const img = await rgb(file);
      const asProbe = await analyze(engine, { image: img, mode: 'frame', limits: probeLimits, liveness: false });
      if (!asProbe.subject?.embedding) continue;
      const asEnrol = await analyze(engine, { image: img, mode: 'photo', limits: cfg.enrolment.quality, liveness: false });
      photos.push({ id, file, e: unit(asProbe.subject.embedding), enrolable: !!asEnrol.subject?.embedding });
    }
  }
  const ids = [...new Set(photos.map((p) => p.id))];
  t.ok(ids.length >= 10 && photos.length >= 30, `${photos.length} photos of ${ids.length} identities analysed`);

  // Synthetic identities with the spread of real impostor similarities.
  const impostor: number[] = [];
  for (let i = 0; i < photos.length; i++) for (let j = i + 1; j < photos.length; j++) if (photos[i]!.id !== photos[j]!.id) impostor.push(dot(photos[i]!.e, photos[j]!.e));
  const dim = rec.embedding.dim;
  const mean = unit(photos.reduce((acc, p) => acc.map((x, i) => x + p.e[i]!), new Float32Array(dim)));
  let seed = 20261202;
  const gauss = () => {
    const u = ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) + 1) / 2 ** 32;
    const v = ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) + 1) / 2 ** 32;
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  };
  const synth = (spread: number) => unit(mean.map((m) => m + (spread / Math.sqrt(dim)) * gauss()));
  const target = sd(impostor);
  let spread = 1;
  let best = Infinity;
  for (const s of [0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 8]) {
    const sims = Array.from({ length: 200 }, () => synth(s)).flatMap((v) => photos.slice(0, 12).map((p) => dot(v, p.e)));
    const gap = Math.abs(sd(sims) - target) + Math.abs(sims.reduce((a, b) => a + b, 0) / sims.length - impostor.reduce((a, b) => a + b, 0) / impostor.length);
    if (gap < best) [best, spread] = [gap, s];
  }
  t.comment(`real impostor pairs: n=${impostor.length}, sd ${target.toFixed(3)}, max ${Math.max(...impostor).toFixed(3)}; synthetic spread ${spread}`);

  let strangers = 0;
  let strangersGranted = 0;
  let residents = 0;
  let residentsGranted = 0;
  let wrongPerson = 0;
  for (const left of [...ids, undefined]) {
    const store = new TemplateStore({ db: new Database(':memory:'), key: Buffer.alloc(32, 5), model: resolved.recognizerId, dim, metric: resolved.metric, l2Normalise: resolved.l2Normalise, now: Date.now });
    const enrolledFrom = new Map<string, string>();
    for (const id of ids) {
      if (id === left) continue;
      const first = photos.find((p) => p.id === id && p.enrolable);
      if (!first || photos.filter((p) => p.id === id).length < 2) continue; // one-photo identities are impostors only
      store.add(id, [first.e], { replace: false, source: 'photo', maxPerPerson: 10 });
      enrolledFrom.set(id, first.file);
    }
    for (let i = store.gallerySize().persons; i < N; i++) store.add(`synthetic-${i}`, [synth(spread)], { replace: false, source: 'embedding', maxPerPerson: 10 });
    const size = store.gallerySize();
    t.equal(size.persons, N);
    for (const p of photos) {
      if (enrolledFrom.get(p.id) === p.file) continue;
      const v = judge(policy, store.search(p.e), size.persons, size.templates);
      const name = p.file.split('/').slice(-2).join('/');
      if (enrolledFrom.has(p.id)) {
        if (left !== undefined) continue; // residents are counted once, in the full gallery
        residents++;
        if (v.kind === 'match' && v.personId === p.id) residentsGranted++;
        if (v.kind === 'match' && v.personId !== p.id) {
          wrongPerson++;
          t.fail(`${name}: granted as ${v.personId}`);
        }
      } else if (left === p.id || (left === undefined && !enrolledFrom.has(p.id))) {
        strangers++;
        if (v.kind === 'match') {
          strangersGranted++;
          t.fail(`stranger ${name} (${p.id} not enrolled) granted as ${v.personId} at ${v.score.toFixed(3)} (threshold ${v.threshold.toFixed(3)})`);
        }
      }
    }
  }
  const thr = thresholdFor(policy, N, N);
  t.ok(strangers >= 30, `${strangers} stranger approaches`);
  t.equal(strangersGranted, 0, `strangers granted: ${strangersGranted}/${strangers} at the ${N}-person threshold ${thr.toFixed(3)}`);
  t.equal(wrongPerson, 0, 'no resident granted as somebody else');
  t.comment(`residents granted as themselves from one frame of another photo: ${residentsGranted}/${residents} (the LFW thumbnails are far below a door camera's resolution; the harness measures residents on a real set)`);
});
