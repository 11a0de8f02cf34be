// Close-up faces: a resident standing right at the camera fills most of a 640×480 frame.
// YuNet was trained for faces up to about 300 px of its 640 input; measured on crops of
// the shared photos, its score falls from ≈ 0.92 (face 330 px) to ≈ 0.70–0.87 (face
// 560–640 px), and at 560–640 px it finds nothing in 9 of 45 close-ups. The pipeline's
// close-up passes (the frame shrunk ½ then ¼ into a zero-padded, centred canvas; then the
// close-up detector) must find such a face and the resident must be recognised in it.
// (The faces here are found by the ½ pass: YuNet's 5 landmarks, score ≈ 0.92–0.94.)
//
// The close-ups are made at test time from the shared photos with sharp: a 4:3 region
// around the face (found in the original photo), scaled to 640×480 so that the face box
// becomes `facePx` wide — an upscaled, softer image, as a camera close-up is.
import t from 'tap';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { Engine } from '../../edge/vision/engine.js';
import { analyze } from '../../edge/vision/worker.js';
import { resolveModels, isMatch } from '../../edge/vision/models.js';
import { policyFor, thresholdFor } from '../../edge/vision/policy.js';
import { VisionSchema } from '../../edge/vision/schema.js';
import { TemplateStore } from '../../edge/vision/templates.js';
import type { RgbImage } from '../../edge/vision/image.js';
import { FACES, identities, modelsDir, rgb } from './helpers.js';

const cfg = Value.Default(VisionSchema, { enabled: true, modelsDir: modelsDir(), liveness: { enabled: false } }) as any;
const resolved = resolveModels(cfg);
const engine = await Engine.create({ models: resolved.models, dir: resolved.dir, threads: 2, detectThreshold: resolved.detectThreshold });
t.teardown(() => engine.release());

/** A 640×480 close-up of the largest face of `photo`, the face box `facePx` wide. */
async function closeUp(photo: string, facePx: number): Promise<{ frame: RgbImage; fits: boolean }> {
  const img = await rgb(photo);
  const face = (await engine.detect(img))[0];
  if (!face) throw new Error(`no face in ${photo}`);
  const [x, y, w, h] = face.box;
  const k = facePx / w;
  const cw = Math.round(640 / k);
  const ch = Math.round(480 / k);
  const left = Math.round(x + w / 2 - cw / 2);
  const top = Math.round(y + h / 2 - ch / 2);
  const fits = left >= 0 && top >= 0 && left + cw <= img.width && top + ch <= img.height;
  const buf = await sharp(Buffer.from(img.data), { raw: { width: img.width, height: img.height, channels: 3 } })
    .extract({ left: Math.max(0, left), top: Math.max(0, top), width: Math.min(cw, img.width - Math.max(0, left)), height: Math.min(ch, img.height - Math.max(0, top)) })
    .resize(640, 480, { fit: 'fill', kernel: 'lanczos3' })
    .raw()
    .toBuffer();
  return { frame: { data: new Uint8Array(buf.buffer, buf.byteOffset, buf.length), width: 640, height: 480 }, fits };
}

// Close-ups the plain pass misses (measured: of 45 close-ups of the 15 non-LFW photos at
// 560/600/640 px it missed 9; the others it found with scores 0.70–0.87), each enrolled
// from another photo of the person; lin_manuel_miranda is never enrolled (an impostor).
const cases = [
  { photo: 'obama/1.jpg', facePx: 600, person: 'obama', enrolFrom: 'obama/2.jpg' },
  { photo: 'kit_harington/2.jpg', facePx: 640, person: 'kit_harington', enrolFrom: 'kit_harington/1.jpg' },
  { photo: 'rose_leslie/2.jpg', facePx: 600, person: 'rose_leslie', enrolFrom: 'rose_leslie/1.jpg' },
  { photo: 'lin_manuel_miranda/1.jpg', facePx: 640, person: undefined, enrolFrom: undefined },
];

let threshold = resolved.matchThreshold;

t.test('a face filling the frame: the plain full-frame pass misses it, the close-up passes find it and the resident is recognised', async (t) => {
  // Everyone enrolled (one photo each, never the one the close-up is made from), so a
  // close-up could also be confused with someone else.
  const store = new TemplateStore({ db: new Database(':memory:'), key: Buffer.alloc(32, 7), model: resolved.recognizerId, dim: resolved.models.recognizer.embedding.dim, metric: resolved.metric, l2Normalise: resolved.l2Normalise, now: Date.now });
  for (const [id, photos] of identities()) {
    if (id === 'lin_manuel_miranda') continue;
    const from = cases.find((c) => c.person === id)?.enrolFrom ?? photos[0]!.split('/').slice(-2).join('/');
    // Several photos per person, as enrolment recommends (every one but the close-up's source).
    const sources = [from, ...photos.map((p) => p.split('/').slice(-2).join('/')).filter((p) => p !== from && !cases.some((c) => c.photo === p))];
    const embs: number[][] = [];
    for (const src of sources) {
      const r = await analyze(engine, { image: await rgb(join(FACES(), src)), mode: 'photo', limits: cfg.enrolment.quality, liveness: false });
      if (r.subject?.embedding) embs.push(Array.from(r.subject.embedding));
    }
    t.ok(embs.length > 0, `${id} enrolled from ${embs.length} of ${sources.join(', ')}`);
    if (embs.length) store.add(id, embs, { replace: false, source: 'photo', maxPerPerson: 10 });
    const size = store.gallerySize();
    threshold = thresholdFor(policyFor(resolved.models.recognizer, cfg.match), size.persons, size.templates);
  }
  for (const c of cases) {
    const name = `${c.photo} face ${c.facePx} px`;
    const { frame, fits } = await closeUp(join(FACES(), c.photo), c.facePx);
    t.ok(fits, `${name}: the 4:3 crop lies inside the photo (no stretched border)`);
    const single = await engine.detect(frame, { closeUpPasses: false });
    t.equal(single.length, 0, `${name}: the plain full-frame pass finds no face at ${resolved.detectThreshold}`);
    const faces = await engine.detect(frame);
    t.equal(faces.length, 1, `${name}: the close-up passes find one face`);
    const f = faces[0];
    if (!f) continue;
    t.ok(f.box[2] > 300 && f.box[3] > 300, `${name}: it is a close-up (box ${f.box[2].toFixed(0)}×${f.box[3].toFixed(0)} px, score ${f.score.toFixed(3)}, ${f.landmarkNames.length} landmarks)`);
    // The camera path: quality gates at the camera's limits, alignment, embedding, 1:N search.
    const a = await analyze(engine, { image: frame, mode: 'frame', limits: cfg.quality, liveness: false });
    t.notOk(a.problem, `${name}: passes the camera quality gates (${a.problem?.message ?? `sharpness ${a.subject?.sharpness?.toFixed(0)}`})`);
    const emb = a.subject?.embedding;
    if (!emb) continue;
    const m = store.search(emb)!;
    if (c.person === undefined) {
      t.notOk(isMatch(resolved.metric, m.score, threshold), `${name} (not enrolled): nearest ${m.personId} at ${m.score.toFixed(3)} is no match`);
      continue;
    }
    t.equal(m.personId, c.person, `${name}: recognised as ${m.personId} at ${m.score.toFixed(3)}`);
    // Known weakness of the MobileFaceNet recognizer (docs/face-access.md): this 640 px
    // close-up of kit_harington/2 scores 0.457 against his other photos (the same photo at
    // its own size: 0.68), under the threshold for this gallery; dlib recognised it.
    const todo = resolved.recognizerId === 'faceplugin-mbf-512' && c.photo === 'kit_harington/2.jpg' ? { todo: 'MobileFaceNet loses this 640 px close-up (0.457)' } : {};
    t.ok(isMatch(resolved.metric, m.score, threshold), `${name}: distance ${m.score.toFixed(3)} within the threshold ${threshold.toFixed(3)}`, todo);
    t.notOk(m.runnerUp && isMatch(resolved.metric, m.runnerUp.score, threshold), `${name}: nearest other person ${m.runnerUp?.personId} at ${m.runnerUp?.score.toFixed(3)} is no match`);
  }
});

t.test('a large face the full-frame pass finds only weakly gets the ½ pass too (the better-scoring pass wins); a confident one does not', async (t) => {
  // Face ≈ 360 px: above YuNet's trained range but found confidently: left to pass 1.
  const { frame } = await closeUp(join(FACES(), 'obama/1.jpg'), 360);
  const single = await engine.detect(frame, { closeUpPasses: false });
  const full = await engine.detect(frame);
  t.equal(single.length, 1, `single pass finds it (score ${single[0]?.score.toFixed(3)}, box ${single[0]?.box[2].toFixed(0)} px)`);
  t.same(
    full.map((f) => f.box),
    single.map((f) => f.box),
    'the pipeline returns the same face',
  );

  // Measured: alex_lacamoire/3 at 640 px is found by the plain pass as a weak box about
  // half the face's size; the ½ pass finds the whole face.
  const big = await closeUp(join(FACES(), 'alex_lacamoire/3.jpg'), 640);
  const weak = await engine.detect(big.frame, { closeUpPasses: false });
  const best = await engine.detect(big.frame);
  t.ok(weak.length >= 1 && weak[0]!.box[2] < 420, `plain pass: a too-small box (${weak[0]?.box[2].toFixed(0)} px, score ${weak[0]?.score.toFixed(3)})`);
  t.ok(best.length >= 1 && best[0]!.box[2] > 480, `pipeline: the whole face (${best[0]?.box[2].toFixed(0)} px, score ${best[0]?.score.toFixed(3)})`);
  t.ok(best[0]!.score > weak[0]!.score, 'with a better score');
});
