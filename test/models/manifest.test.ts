import t from 'tap';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadManifest, parseManifest, defaultModels, alignmentTemplateFor, acceptedHashes, inputSize, getModel, ManifestError, type ModelManifest } from '../../models/manifest.js';
import { sha256File } from '../../models/install.js';
import { sharedModels, tempDir } from './shared.js';

const manifest = loadManifest();
const clone = (): ModelManifest => structuredClone(manifest);
function problemsOf(raw: unknown): string[] {
  try {
    parseManifest(raw, 'test');
  } catch (e) {
    if (e instanceof ManifestError) return e.problems;
    throw e;
  }
  return [];
}

t.test('the shipped manifest is valid and names a model of each role', async (t) => {
  t.same(Object.keys(manifest.models).sort(), ['blazeface-back-256', 'blazeface-front-128', 'centernet-mbv3-256', 'centernet-mbv3-320', 'centernet-mbv3-512', 'dlib-resnet-v1', 'dlib-resnet-v1-u8w', 'faceplugin-mbf-512', 'minifasnet-v1se', 'minifasnet-v2', 'nanodet-g-320', 'nanodet-g-416', 'yunet-2023mar']);
  const d = defaultModels(manifest);
  t.equal(d.detector.role, 'detector');
  t.equal(d.closeUpDetector?.role, 'detector');
  t.equal(d.recognizer.role, 'recognizer');
  t.equal(d.liveness.length, 2);
  t.same(inputSize(d.detector), { width: 640, height: 640 });
  t.same(inputSize(getModel(manifest, 'blazeface-front-128', 'detector')), { width: 128, height: 128 });
  t.throws(() => getModel(manifest, 'yunet-2023mar', 'recognizer'), /is a detector, not a recognizer/);
  t.throws(() => getModel(manifest, 'nope', 'detector'), /no model "nope"/);
  // The elevator's object detector is a role of its own: never picked as a face detector.
  const cn = getModel(manifest, 'centernet-mbv3-320', 'object-detector').decoder;
  t.equal(cn.kind === 'centernet' && cn.stride, 4);
  // NanoDet: the licensable detector (Apache-2.0), BGR with upstream's normalisation.
  const nd = getModel(manifest, 'nanodet-g-320', 'object-detector');
  t.equal(nd.licence.spdx, 'Apache-2.0');
  t.same(nd.decoder.kind === 'nanodet' && nd.decoder.strides, [8, 16, 32]);
  t.equal(nd.input.colour, 'BGR');
  t.throws(() => getModel(manifest, 'centernet-mbv3-320', 'detector'), /is a object-detector, not a detector/);
});

t.test('the alignment template follows the detector’s landmarks', async (t) => {
  const rec = getModel(manifest, 'dlib-resnet-v1', 'recognizer');
  const yunet = alignmentTemplateFor(rec, getModel(manifest, 'yunet-2023mar', 'detector'));
  const blaze = alignmentTemplateFor(rec, getModel(manifest, 'blazeface-front-128', 'detector'));
  t.same(
    yunet?.points.map((p) => p.landmark),
    ['right_eye', 'left_eye', 'nose_tip', 'right_mouth_corner', 'left_mouth_corner'],
  );
  t.same(
    blaze?.points.map((p) => p.landmark),
    ['right_eye', 'left_eye', 'nose_tip', 'mouth_centre'],
  );
  // PROVENANCE.md values (dlib mean face, 150x150 chip, padding 0.25).
  t.same(yunet?.points[0], { landmark: 'right_eye', x: 47.5492, y: 46.599 });
  t.same(blaze?.points[3], { landmark: 'mouth_centre', x: 74.0127, y: 105.8573 });
});

t.test('file names, sizes and sha256 agree with the offline pack', async (t) => {
  const dir = sharedModels();
  for (const [id, e] of Object.entries(manifest.models)) {
    const path = join(dir, e.file);
    if (!existsSync(path)) {
      // Not in the pack (it cannot grow): such a model must come from the npm registry.
      t.ok(
        e.sources.some((s) => s.kind === 'npm' || s.kind === 'build'),
        `${id} is not in the offline pack and has an npm source`,
      );
      continue;
    }
    t.equal(statSync(path).size, e.size, `${id} size`);
    t.equal(await sha256File(path), e.sha256, `${id} sha256`);
  }
});

t.test('the built recognizers have their own pinned hash besides the reference', async (t) => {
  for (const id of ['dlib-resnet-v1', 'dlib-resnet-v1-u8w']) {
    const e = manifest.models[id]!;
    const hashes = acceptedHashes(e);
    t.equal(hashes.length, 2, id);
    t.equal(hashes[0], e.sha256);
    t.not(hashes[1], e.sha256);
  }
  t.same(acceptedHashes(manifest.models['yunet-2023mar']!), [manifest.models['yunet-2023mar']!.sha256]);
});

t.test('a broken manifest is rejected with every problem and its path', async (t) => {
  const m = clone() as unknown as Record<string, any>;
  m.models['yunet-2023mar'].input.layout = 'NWHC';
  m.models['yunet-2023mar'].sha256 = 'abc';
  m.models['dlib-resnet-v1'].matching.metric = 'manhattan';
  m.models['minifasnet-v2'].role = 'spoof';
  m.models['blazeface-back-256'].colour = 'RGB';
  delete m.models['dlib-resnet-v1-u8w'].licence;
  const p = problemsOf(m).join('\n');
  t.match(p, /models\.yunet-2023mar\.input\.layout: must be one of "NCHW", "NHWC"/);
  t.match(p, /models\.yunet-2023mar\.sha256: /);
  t.match(p, /models\.dlib-resnet-v1\.matching\.metric: must be one of "euclidean", "cosine"/);
  t.match(p, /models\.minifasnet-v2\.role: unknown role "spoof"/);
  t.match(p, /models\.blazeface-back-256\.colour: Unexpected property/);
  t.match(p, /models\.dlib-resnet-v1-u8w\.licence: /);
});

t.test('cross-field rules: defaults, tensor names, sizes, duplicate files', async (t) => {
  const m = clone() as unknown as Record<string, any>;
  m.defaults.recognizer = 'minifasnet-v2';
  m.defaults.detector = 'missing-model';
  m.models['yunet-2023mar'].decoder.heads[1].bbox = 'bbox_17';
  m.models['blazeface-front-128'].decoder.heads[0].scores = 'Identity:9';
  m.models['dlib-resnet-v1-u8w'].alignment.size = 112;
  m.models['dlib-resnet-v1-u8w'].embedding.dim = 512;
  m.models['minifasnet-v1se'].classifier.realClass = 3;
  m.models['minifasnet-v1se'].file = m.models['minifasnet-v2'].file;
  m.models['nanodet-g-320'].decoder.strides = [8, 16, 48];
  m.models['nanodet-g-416'].decoder.regMax = 7;
  m.models['nanodet-g-416'].decoder.scores = 'cls';
  const p = problemsOf(m).join('\n');
  t.match(p, /defaults\.recognizer: "minifasnet-v2" is a liveness, not a recognizer/);
  t.match(p, /defaults\.detector: unknown model "missing-model"/);
  t.match(p, /models\.yunet-2023mar\.decoder\.heads\[1\]\.bbox: "bbox_17" is not among the declared outputs/);
  t.match(p, /models\.blazeface-front-128\.decoder\.heads\[0\]\.scores: "Identity:9"/);
  t.match(p, /models\.dlib-resnet-v1-u8w\.alignment\.size: differs from the input size 150x150/);
  t.match(p, /models\.dlib-resnet-v1-u8w\.embedding\.dim: differs from the output shape/);
  t.match(p, /models\.minifasnet-v1se\.classifier\.realClass: must be below classes/);
  t.match(p, /models\.minifasnet-v1se\.file: same file as models\.minifasnet-v2/);
  t.match(p, /models\.nanodet-g-320\.decoder\.strides\[2\]: does not divide the input size 320/);
  t.match(p, /models\.nanodet-g-320\.outputs: "scores" must have [\d.]+ cells for the strides/);
  t.match(p, /models\.nanodet-g-416\.decoder\.regMax: "boxes" must have 32 values per cell/);
  t.match(p, /models\.nanodet-g-416\.decoder\.scores: "cls" is not among the declared outputs/);
});

t.test('a recognizer whose templates the default detector cannot fit is refused', async (t) => {
  const m = clone() as unknown as Record<string, any>;
  m.defaults.recognizer = 'dlib-resnet-v1';
  m.models['dlib-resnet-v1'].alignment.templates = [m.models['dlib-resnet-v1'].alignment.templates[1]];
  t.match(problemsOf(m).join('\n'), /no alignment template of "dlib-resnet-v1" can be fitted from the landmarks of "yunet-2023mar"/);
  m.defaults.detector = 'blazeface-front-128';
  t.same(problemsOf(m), []);
});

t.test('a file that is not JSON, or not a manifest, gives a clear error', async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, 'bad.json'), '{ "version": 1, ');
  t.throws(() => loadManifest(join(dir, 'bad.json')), /invalid model manifest .*bad\.json:\n  cannot read: /);
  t.throws(() => loadManifest(join(dir, 'absent.json')), /cannot read: ENOENT/);
  t.match(problemsOf([]).join('\n'), /\(root\): /);
  t.match(problemsOf({ version: 2, models: {}, defaults: { detector: 'a', recognizer: 'b', liveness: [] } }).join('\n'), /version: /);
});
