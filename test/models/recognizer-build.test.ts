import t from 'tap';
import { readdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join, dirname } from 'node:path';
import { createRequire } from 'node:module';
import ort from 'onnxruntime-node';
import sharp from 'sharp';
import { loadManifest, getModel } from '../../models/manifest.js';
import { buildRecognizerOnnx, readFaceApiWeights, type RecognizerVariant } from '../../models/recognizer-build.js';
import { faceApiDescriptors } from './faceapi-reference.js';
import { sharedMedia, sharedModels, tempDir } from './shared.js';

const TOLERANCE = 1e-4;
const manifest = loadManifest();
const faceApiDir = dirname(createRequire(import.meta.url).resolve('@vladmandic/face-api/package.json'));
const weights = readFaceApiWeights(faceApiDir);

/** Deterministic pseudo-random 150x150 RGB image (HWC). */
function noise(seed: number): Uint8Array {
  const out = new Uint8Array(150 * 150 * 3);
  let s = seed >>> 0;
  for (let i = 0; i < out.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s >>> 24;
  }
  return out;
}

/** A real photo from ../shared/media/faces, centre face region, resized to 150x150 RGB. */
async function photo(person: string): Promise<Uint8Array> {
  const dir = join(sharedMedia(), 'faces', person);
  const file = join(dir, readdirSync(dir).sort()[0]!);
  const { data } = await sharp(file).removeAlpha().resize(150, 150, { fit: 'cover', position: 'attention' }).raw().toBuffer({ resolveWithObject: true });
  return new Uint8Array(data);
}

function hwcToNchw(rgb: Uint8Array): Float32Array {
  const out = new Float32Array(3 * 150 * 150);
  for (let p = 0; p < 150 * 150; p++) for (let c = 0; c < 3; c++) out[c * 150 * 150 + p] = rgb[p * 3 + c]!;
  return out;
}

/** Each variant is built once and shared by the tests below. */
const built = { fp32: buildRecognizerOnnx(weights, 'fp32'), u8w: buildRecognizerOnnx(weights, 'u8w') };

const maxAbsDiff = (a: Float32Array, b: Float32Array) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

t.test('the build is deterministic and matches the sha256 pinned in the manifest', async (t) => {
  for (const [id, variant] of [
    ['dlib-resnet-v1', 'fp32'],
    ['dlib-resnet-v1-u8w', 'u8w'],
  ] as [string, RecognizerVariant][]) {
    const e = getModel(manifest, id, 'recognizer');
    const src = e.sources.find((s) => s.kind === 'build');
    t.ok(src && src.kind === 'build' && src.variant === variant, `${id} has a ${variant} build source`);
    const bytes = built[variant];
    t.same(buildRecognizerOnnx(weights, variant), bytes, `${id}: a second build gives the same bytes`);
    const sha = createHash('sha256').update(bytes).digest('hex');
    t.equal(sha, src?.kind === 'build' ? src.sha256 : undefined, `${id} build sha256`);
    t.equal(bytes.length, src?.kind === 'build' ? src.size : undefined, `${id} build size`);
  }
});

t.test('damaged face-api weights are refused with a reason', async (t) => {
  const w = new Map(weights);
  w.delete('conv128_1/conv2/scale/biases');
  t.throws(() => buildRecognizerOnnx(w, 'fp32'), /missing tensor conv128_1\/conv2\/scale\/biases/);
  const w2 = new Map(weights);
  w2.set('fc', { ...weights.get('fc')!, shape: [128, 128] });
  t.throws(() => buildRecognizerOnnx(w2, 'u8w'), /face-api weight fc: shape 128x128, expected 32768 values/);
});

t.test('the built ONNX reproduces face-api’s own descriptors (tfjs cpu) within 1e-4', async (t) => {
  const inputs: [string, Uint8Array][] = [
    ['noise 1', noise(1)],
    ['noise 2', noise(20261127)],
    ['photo obama', await photo('obama')],
    ['photo lfw_kofi_annan', await photo('lfw_kofi_annan')],
  ];
  const reference = await faceApiDescriptors(
    faceApiDir,
    inputs.map(([, rgb]) => rgb),
    tempDir(t),
  );
  t.comment(`reference: @vladmandic/face-api faceRecognitionNet on @tensorflow/tfjs-core ${reference.tfjs}, cpu backend`);
  const expected = reference.descriptors;
  t.equal(expected.length, inputs.length);
  // One batched run per model: also exercises the symbolic batch dimension.
  const batch = new Float32Array(inputs.length * 3 * 150 * 150);
  inputs.forEach(([, rgb], i) => batch.set(hwcToNchw(rgb), i * 3 * 150 * 150));
  const models: [string, Uint8Array | string][] = [
    ['built fp32', built.fp32],
    ['built u8w', built.u8w],
    ['pack fp32 (../shared/models)', join(sharedModels(), manifest.models['dlib-resnet-v1']!.file)],
  ];
  for (const [label, model] of models) {
    const session = typeof model === 'string' ? await ort.InferenceSession.create(model) : await ort.InferenceSession.create(model);
    const out = await session.run({ input: new ort.Tensor('float32', batch, [inputs.length, 3, 150, 150]) });
    const emb = out.embedding!;
    t.same(emb.dims, [inputs.length, 128], `${label}: output shape`);
    const data = emb.data as Float32Array;
    inputs.forEach(([name], i) => {
      const got = data.subarray(i * 128, (i + 1) * 128);
      const d = maxAbsDiff(got, expected[i]!);
      t.ok(d < TOLERANCE, `${label}, ${name}: max |Δ| = ${d.toExponential(2)} < ${TOLERANCE}`);
    });
    await session.release();
  }
  // The descriptors are not degenerate: different images give clearly different vectors.
  t.ok(maxAbsDiff(expected[2]!, expected[3]!) > 0.05, 'two people differ');
});
