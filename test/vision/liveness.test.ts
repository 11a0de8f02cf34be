// Liveness (MiniFASNet V2 + V1SE, softmax averaged, p(real) < threshold = suspected spoof)
// with the real models.
//
// The shared media has no presentation-attack images, so attacks are made at test time
// from the shared photos with sharp, the way a photo held up to a door camera looks:
//   print         the photo, 55 % of the frame high, with a white paper border, on a grey
//                 background, a warm colour cast, a faint halftone ripple (±5 %), blurred
//                 (σ 1.2), JPEG q45.
// Two controls show what the model reacts to (scores reported, not asserted):
//   frame-only    the same framed photo without cast, ripple, blur or recompression,
//   degrade-only  cast, ripple, blur and recompression on a full-frame crop (no border).
// Measured (p(real), threshold 0.5): print 0.014–0.310 for four of the five photos,
// biden/1.jpg 0.507 — NOT flagged (reported, not asserted); frame-only 0.003–0.536, four of
// five flagged; degrade-only 0.81–0.99 (never flagged) where a face is found. So on these
// synthetic attacks the model reacts to the photo's frame and surroundings, not to the
// image degradation; one attack in five gets through on its own, which is why K frames
// and the other door credentials still matter. These are not real prints or screens:
// calibrate on the real camera with real ones (docs/face-access.md).
import t from 'tap';
import sharp from 'sharp';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { Value } from '@sinclair/typebox/value';
import { Engine } from '../../edge/vision/engine.js';
import { analyze } from '../../edge/vision/worker.js';
import { resolveModels } from '../../edge/vision/models.js';
import { VisionSchema } from '../../edge/vision/schema.js';
import type { RgbImage } from '../../edge/vision/image.js';
import { tempDir } from '../helpers/gateway.js';
import type { VisionDecisionEvent } from '../../edge/vision/module.js';
import { FACES, faceRig, identities, modelsDir, photo, rgb, waitFor } from './helpers.js';

const cfg = Value.Default(VisionSchema, { enabled: true, modelsDir: modelsDir() }) as any;
const resolved = resolveModels(cfg);
const threshold = resolved.livenessThreshold;
const engine = await Engine.create({ models: resolved.models, dir: resolved.dir, threads: 2, detectThreshold: resolved.detectThreshold });
t.teardown(() => engine.release());

type Variant = 'print' | 'frame-only' | 'degrade-only';

/** A 640×480 JPEG of a presentation attack (or a control) made from a shared photo. */
async function attack(file: string, variant: Variant): Promise<Buffer> {
  const src = await sharp(file).rotate().resize(1280, 1280, { fit: 'inside', withoutEnlargement: true }).removeAlpha().toBuffer();
  let frame: Buffer;
  if (variant === 'degrade-only') {
    frame = await sharp(src).resize(640, 480, { fit: 'cover' }).raw().toBuffer();
  } else {
    const inner = await sharp(src)
      .resize({ height: Math.round(480 * 0.55) })
      .extend({ top: 18, bottom: 18, left: 18, right: 18, background: { r: 245, g: 245, b: 240 } })
      .toBuffer({ resolveWithObject: true });
    frame = await sharp({ create: { width: 640, height: 480, channels: 3, background: { r: 90, g: 85, b: 80 } } })
      .composite([{ input: inner.data, left: Math.round((640 - inner.info.width) / 2), top: Math.round((480 - inner.info.height) / 2) }])
      .raw()
      .toBuffer();
  }
  if (variant === 'frame-only')
    return sharp(frame, { raw: { width: 640, height: 480, channels: 3 } })
      .jpeg({ quality: 95 })
      .toBuffer();
  const cast = [1.08, 1.0, 0.85];
  for (let i = 0; i < frame.length; i += 3) {
    const x = (i / 3) % 640;
    const y = Math.floor(i / 3 / 640);
    const ripple = 1 + 0.05 * Math.sin((x + y) * 0.9);
    for (let c = 0; c < 3; c++) frame[i + c] = Math.max(0, Math.min(255, Math.round(frame[i + c]! * cast[c]! * ripple)));
  }
  return sharp(frame, { raw: { width: 640, height: 480, channels: 3 } })
    .blur(1.2)
    .jpeg({ quality: 45 })
    .toBuffer();
}

async function raw(jpeg: Buffer): Promise<RgbImage> {
  const { data, info } = await sharp(jpeg).raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}

/** p(real) of the largest face through the camera path (frame mode, liveness on), or undefined without a face. */
async function liveness(img: RgbImage): Promise<number | undefined> {
  // Geometry gates relaxed (the LFW thumbnails' faces are under the camera's 60 px): liveness is the subject here.
  const r = await analyze(engine, { image: img, mode: 'frame', limits: { ...cfg.quality, minFacePx: 20, minSharpness: 0 }, liveness: true });
  return r.subject?.liveness;
}

/** Photos attacked, and whether the model flags the print attack (measured; the miss is reported, not asserted). */
const ATTACKED: Array<[string, 'flagged' | 'missed']> = [
  ['obama/2.jpg', 'flagged'],
  ['biden/1.jpg', 'missed'],
  ['kit_harington/1.jpg', 'flagged'],
  ['rose_leslie/1.jpg', 'flagged'],
  ['alex_lacamoire/1.jpg', 'flagged'],
];

t.test(`live faces: every shared photo scores p(real) ≥ ${threshold}`, async (t) => {
  const scores: Array<[string, number]> = [];
  for (const [, photos] of identities()) {
    for (const p of photos) {
      const name = p.split('/').slice(-2).join('/');
      const s = await liveness(await rgb(p));
      t.ok(s !== undefined && s >= threshold, `${name}: p(real) ${s?.toFixed(3)}`);
      if (s !== undefined) scores.push([name, s]);
    }
  }
  scores.sort((a, b) => a[1] - b[1]);
  t.comment(
    `live p(real), ${scores.length} photos: min ${scores[0]![1].toFixed(3)} (${scores[0]![0]}), median ${scores[Math.floor(scores.length / 2)]![1].toFixed(3)}, lowest five ${scores
      .slice(0, 5)
      .map(([n, s]) => `${n} ${s.toFixed(3)}`)
      .join(', ')}`,
  );
});

t.test('synthetic photo attacks (a framed photo, halftone, blurred, recompressed): four of five score as spoofs; controls reported', async (t) => {
  for (const [p, expected] of ATTACKED) {
    const file = join(FACES(), p);
    const s = await liveness(await raw(await attack(file, 'print')));
    if (expected === 'flagged') t.ok(s !== undefined && s < threshold, `${p} print attack: p(real) ${s?.toFixed(3)} < ${threshold}`);
    else t.comment(`${p} print attack: p(real) ${s?.toFixed(3) ?? 'no face'} — NOT flagged at ${threshold} (a known miss of the model)`);
    const frameOnly = await liveness(await raw(await attack(file, 'frame-only')));
    const degradeOnly = await liveness(await raw(await attack(file, 'degrade-only')));
    t.comment(`${p} controls: frame-only ${frameOnly?.toFixed(3) ?? 'no face'}, degrade-only ${degradeOnly?.toFixed(3) ?? 'no face'}`);
  }
});

t.test('at the gate: a printed photo of an enrolled resident gives a rate-limited face.spoof event and never opens the door', async (t) => {
  // The print attack of obama/2.jpg as the camera: a still encoded to H.264, played in a loop through ffmpeg.
  const dir = tempDir('ee-spoof-');
  const still = join(dir, 'print.jpg');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(still, await attack(join(FACES(), 'obama/2.jpg'), 'print'));
  const video = join(dir, 'print.mp4');
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-loop', '1', '-i', still, '-t', '3', '-r', '10', '-c:v', 'libx264', '-crf', '20', '-pix_fmt', 'yuv420p', video]);
  const r = await faceRig({ camera: { source: { kind: 'file', path: video }, fps: 10 }, events: { spoofIntervalS: 60, snapshot: true } });
  t.teardown(() => r.stop());
  const decisions: VisionDecisionEvent[] = [];
  r.g.bus.on('vision.decision', (d) => decisions.push(d));
  // Enrolled from another photo, so the attack would be recognised if liveness let it through.
  const up = await r.cmd('person.upsert', { id: 'obama', kind: 'resident', doorGroups: ['residents'], faces: { photos: [photo(join(FACES(), 'obama', '1.jpg')).toString('base64')] } });
  t.equal(up.result?.faces?.accepted, 1, 'resident enrolled');
  const counters = () => JSON.stringify(r.g.services.get('vision')!.status().counters);
  await waitFor(() => r.records('event').some((e) => e.type === 'face.spoof'), 60000, 'a face.spoof event').catch((err) => {
    throw new Error(`${(err as Error).message}; frames by outcome ${counters()}`);
  });
  const spoofs = () => r.g.services.get('vision')!.status().counters.spoof ?? 0;
  const before = spoofs();
  await waitFor(() => spoofs() >= before + 6, 60000, 'six more frames judged spoof');
  const events = r.records('event').filter((e) => e.type === 'face.spoof');
  t.equal(events.length, 1, 'one face.spoof event: the rest are rate-limited');
  t.ok(events[0]!.data.liveness < threshold, `event carries p(real) ${events[0]!.data.liveness} < threshold ${events[0]!.data.threshold}`);
  t.equal(events[0]!.data.doorId, 'gate', 'for the gate');
  const snap = Buffer.from(events[0]!.data.snapshot, 'base64');
  t.equal(snap.subarray(0, 2).toString('hex'), 'ffd8', `with a JPEG snapshot of the face (${snap.length} B)`);
  t.notOk(r.g.services.get('vision')!.status().counters.match, `no frame reached recognition (${counters()})`);
  t.same(decisions, [], 'no door decision');
  t.notOk(
    r.records('access').some((a) => a.data.credential === 'face'),
    'no face access record',
  );
  t.equal(r.gpio.history(17).filter((h) => h.value === true).length, 0, 'the gate never opened');
});
