// Enrolment checks with the real models: every rejection code on images made with sharp
// from the shared photos, ready-made embeddings, replace semantics, kept photos and their
// retention, the per-request limit.
import t from 'tap';
import Database from 'better-sqlite3';
import sharp from 'sharp';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { InferenceClient } from '../../edge/vision/inference.js';
import { TemplateStore } from '../../edge/vision/templates.js';
import { ImageHelper } from '../../edge/vision/imaging.js';
import { Enroller, EnrolError } from '../../edge/vision/enrol.js';
import { resolveModels } from '../../edge/vision/models.js';
import { VisionSchema } from '../../edge/vision/schema.js';
import { FACES, MULTI, modelsDir, photo } from './helpers.js';

const cfg = Value.Default(VisionSchema, { enabled: true, modelsDir: modelsDir(), liveness: { enabled: false } }) as any;
const resolved = resolveModels(cfg);
const D = resolved.models.recognizer.embedding.dim;
const client = await InferenceClient.start({ engine: { models: resolved.models, dir: resolved.dir, threads: 2 }, maxQueuedPhotos: 8 });
t.teardown(() => client.stop());
const imaging = new ImageHelper();
t.teardown(() => imaging.stop());

let now = Date.UTC(2026, 10, 27, 12);
function rig(opts: { keepPhotos?: boolean; unavailable?: string } = {}) {
  const db = new Database(join(mkdtempSync(join(tmpdir(), 'ee-enrol-')), 'faces.db'));
  t.teardown(() => db.close());
  const store = new TemplateStore({ db, key: Buffer.alloc(32, 9), model: resolved.recognizerId, dim: D, metric: resolved.metric, l2Normalise: resolved.l2Normalise, now: () => now });
  const counted: string[] = [];
  const audit: Array<{ type: string; data: any }> = [];
  const enroller = new Enroller({
    store: () => store,
    inference: () => client,
    imaging,
    unavailable: () => opts.unavailable,
    limits: cfg.enrolment,
    dim: () => D,
    keepPhotos: opts.keepPhotos ?? false,
    count: (o) => counted.push(o),
    audit: (type, data) => audit.push({ type, data }),
  });
  return { store, enroller, counted, audit, db };
}

const obama1 = join(FACES(), 'obama', '1.jpg');
const jpeg = (s: ReturnType<typeof sharp>) => s.jpeg({ quality: 90 }).toBuffer();

t.test('each bad photo is rejected with its reason code; a good one is accepted', async (t) => {
  const { enroller, store, counted, audit } = rig();
  const meta = await sharp(obama1).metadata();
  const cases: Array<[string, Buffer]> = [
    ['no_face', await jpeg(sharp({ create: { width: 640, height: 480, channels: 3, background: { r: 128, g: 128, b: 128 } } }))],
    ['face_too_small', await jpeg(sharp({ create: { width: 640, height: 480, channels: 3, background: { r: 120, g: 120, b: 120 } } }).composite([{ input: await sharp(obama1).resize({ width: 110 }).toBuffer(), left: 260, top: 160 }]))],
    ['too_blurred', await jpeg(sharp(obama1).blur(12))],
    ['too_dark', await jpeg(sharp(obama1).linear(0.12, 0))],
    ['not_frontal', await jpeg(sharp(obama1).rotate(60, { background: { r: 128, g: 128, b: 128 } }))],
    ['several_faces', photo(join(MULTI(), 'two_people.jpg'))],
    ['not_an_image', Buffer.from('this is not an image, just bytes')],
    ['not_an_image', photo(obama1).subarray(0, 2000)],
    ['too_large', Buffer.alloc(cfg.enrolment.maxPhotoBytes + 1, 0xff)],
    [
      'too_large',
      await sharp({ create: { width: 6000, height: 6000, channels: 3, background: { r: 0, g: 0, b: 0 } } })
        .png({ compressionLevel: 9 })
        .toBuffer(),
    ],
  ];
  t.ok((meta.width ?? 0) > 0);
  // Two requests: at most maxPhotosPerRequest (10) photos each.
  const first = await enroller.enrol('p1', { photos: cases.slice(0, 5).map((c) => c[1]) });
  const r = await enroller.enrol('p1', { photos: [...cases.slice(5).map((c) => c[1]), photo(join(FACES(), 'obama', '2.jpg'))] });
  t.equal(first.accepted, 0);
  for (let i = 0; i < cases.length; i++) {
    const rej = (i < 5 ? first : r).rejected.find((x) => x.index === (i < 5 ? i : i - 5));
    t.equal(rej?.code, cases[i]![0], `photo ${i}: ${cases[i]![0]} (${rej?.message})`);
  }
  t.equal(r.accepted, 1, 'the good photo is accepted');
  t.equal(r.templates, 1);
  t.equal(store.count('p1'), 1);
  t.same(counted.filter((c) => c !== 'accepted').sort(), cases.map((c) => c[0]).sort(), 'every outcome counted');
  t.match(audit.at(-1), { type: 'face.enrolled', data: { personId: 'p1', accepted: 1, templates: 1 } });
  t.notOk(JSON.stringify(audit).includes('embedding'), 'no biometric data in the audit record');
});

t.test('ready-made embeddings: wrong length, non-finite and all-zero ones are bad_embedding', async (t) => {
  const { enroller, store } = rig();
  const good = Array.from({ length: D }, (_, i) => Math.sin(i) * 0.1);
  const r = await enroller.enrol('p2', { embeddings: [good, good.slice(0, D - 1), [...good.slice(0, D - 1), Number.NaN], new Array(D).fill(0), [...good, 0.1]] });
  t.equal(r.accepted, 1);
  t.same(
    r.rejected.map((x) => [x.index, x.code]),
    [
      [1, 'bad_embedding'],
      [2, 'bad_embedding'],
      [3, 'bad_embedding'],
      [4, 'bad_embedding'],
    ],
  );
  t.match(r.rejected[0]!.message, new RegExp(`${D - 1} values, expected ${D}`));
  t.equal(store.count('p2'), 1);
});

t.test('replace: a request whose photos are all rejected keeps the old templates; a good one replaces them', async (t) => {
  const { enroller, store } = rig();
  await enroller.enrol('p3', { photos: [photo(join(FACES(), 'obama', '2.jpg')), photo(join(FACES(), 'obama', '3.jpg'))] });
  t.equal(store.count('p3'), 2);
  const bad = await enroller.enrol('p3', { photos: [Buffer.from('nope')], replace: true });
  t.equal(bad.templates, 2, 'nothing usable: old templates kept (no lock-out by a bad photo)');
  const good = await enroller.enrol('p3', { photos: [photo(join(FACES(), 'obama', '1.jpg'))], replace: true });
  t.equal(good.templates, 1, `replaced (${JSON.stringify(good.rejected)})`);
  await t.rejects(enroller.enrol('p3', { photos: new Array(cfg.enrolment.maxPhotosPerRequest + 1).fill(Buffer.from('x')) }), EnrolError);
});

t.test('kept photos are sealed, removed with the person, and purged after the retention period', async (t) => {
  const { enroller, store, db } = rig({ keepPhotos: true });
  const src = photo(join(FACES(), 'rose_leslie', '1.jpg'));
  await enroller.enrol('p4', { photos: [src] });
  const kept = store.photos('p4');
  t.equal(kept.length, 1);
  t.equal((await sharp(kept[0]!).metadata()).format, 'jpeg', 'a re-encoded JPEG');
  const sealed = (db.prepare('SELECT sealed FROM photos').get() as { sealed: Buffer }).sealed;
  t.notOk(sealed.subarray(16, 40).equals(kept[0]!.subarray(0, 24)), 'stored sealed, not as JPEG');
  t.notOk(sealed.includes(Buffer.from('JFIF')), 'no JPEG marker at rest');
  now += 31 * 86400_000;
  t.equal(store.purgePhotosBefore(now - cfg.privacy.photoRetentionDays * 86400_000), 1, 'purged after 30 days');
  t.equal(store.count('p4'), 1, 'the template stays');
  await enroller.enrol('p4', { photos: [src] });
  t.equal(await enroller.remove('p4'), 3, 'two templates and one photo removed');
  t.equal(store.count('p4'), 0);
});

t.test('photos cannot be analysed while the models are unavailable: a clear code, embeddings still work', async (t) => {
  const { enroller } = rig({ unavailable: 'face models not usable: face_detection_yunet_2023mar.onnx missing' });
  const r = await enroller.enrol('p5', { photos: [photo(obama1)], embeddings: [Array.from({ length: D }, () => 0.05)] });
  t.equal(r.accepted, 1);
  t.match(r.rejected, [{ index: 0, code: 'models_unavailable', message: /yunet/ }]);
});
