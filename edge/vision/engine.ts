// The face engine: onnxruntime sessions (created once) and the per-image steps of the
// pipeline — detect (with the close-up passes), liveness, align, embed. Everything it
// knows about a model (tensor names, layout, colour order, scaling, decoding, alignment
// template) comes from the model manifest entry. It runs inside the inference worker
// (worker.ts); nothing here touches the gateway's event loop.
import type * as Ort from 'onnxruntime-node';
import { join } from 'node:path';
import { requireCjs } from '../cjs.js';
import { alignFace, chipQuality, imageTensor, letterboxTensor, warpAffine, type Point, type RgbImage } from './image.js';
import { decodeBlazeface, decodeYunet, nms, weightedNms, type Face } from './detect.js';
import { inputSize } from '../../models/shape.js';
import type { DetectorModel, LivenessModel, RecognizerModel } from '../../models/manifest.js';

// require(), not import: see edge/cjs.ts (onnxruntime-node re-exports onnxruntime-common,
// which Node's ESM loader would lex file by file in the worker).
const ort = requireCjs('onnxruntime-node') as typeof Ort;

export interface EngineModels {
  detector: DetectorModel;
  /** Tried when the detector (full frame and downscaled passes) finds nothing. */
  closeUpDetector?: DetectorModel;
  recognizer: RecognizerModel;
  /** Ensemble, softmax averaged like upstream; empty = no liveness. */
  liveness: LivenessModel[];
}

export interface EngineOptions {
  models: EngineModels;
  /** Directory holding the installed model files. */
  dir: string;
  /** intra-op threads per session. */
  threads: number;
  /** Detection score threshold; default: the detector's manifest value. */
  detectThreshold?: number;
}

export interface Timings {
  detect?: number;
  liveness?: number;
  align?: number;
  embed?: number;
}

export interface EmbedResult {
  embedding: Float32Array;
  /** Laplacian variance of the 64 px chip (focus measure). */
  sharpness: number;
  /** Mean luma of the chip centre, 0–255. */
  brightness: number;
}

class Detector {
  readonly size: number;
  /** The input tensor's buffer, reused for every pass (5 MB at 640²: no garbage per frame). */
  private readonly input: Float32Array;
  constructor(
    readonly model: DetectorModel,
    readonly session: Ort.InferenceSession,
    readonly threshold: number,
  ) {
    this.size = inputSize(model).width;
    this.input = new Float32Array(this.size * this.size * 3);
  }

  /** One pass: the image scaled by `scale` at `pad` in the square input. */
  async run(img: RgbImage, scale: number, pad: Point): Promise<Face[]> {
    const m = this.model;
    const data = letterboxTensor(img, this.size, scale, pad, m.input, m.resize.padValue, this.input);
    const dims = m.input.layout === 'NCHW' ? [1, 3, this.size, this.size] : [1, this.size, this.size, 3];
    const out = await this.session.run({ [m.input.name]: new ort.Tensor('float32', data, dims) });
    const map = { scale, pad };
    const faces = m.decoder.kind === 'yunet' ? decodeYunet(out, m.decoder, this.size, m.landmarks, this.threshold, map) : decodeBlazeface(out, m.decoder, this.size, m.landmarks, this.threshold, map);
    return m.nms.kind === 'hard' ? nms(faces, m.nms.iou) : weightedNms(faces, m.nms.iou);
  }

  /** Scale of the plain letterbox pass. */
  baseScale(img: RgbImage): number {
    const s = this.size / Math.max(img.width, img.height);
    return this.model.resize.allowUpscale ? s : Math.min(1, s);
  }

  /** Pad that puts the scaled image where the manifest says (top-left or centred). */
  pad(img: RgbImage, scale: number, centre = this.model.resize.placement === 'centre'): Point {
    if (!centre) return [0, 0];
    return [Math.max(0, Math.floor((this.size - img.width * scale) / 2)), Math.max(0, Math.floor((this.size - img.height * scale) / 2))];
  }
}

export class Engine {
  private constructor(
    readonly opts: EngineOptions,
    private readonly detector: Detector,
    private readonly closeUp: Detector | undefined,
    private readonly recognizer: Ort.InferenceSession,
    private readonly liveness: Array<{ model: LivenessModel; session: Ort.InferenceSession; input?: Float32Array }>,
  ) {}

  /** Input tensors reused from run to run (no per-frame garbage; one request at a time). */
  private recInput: Float32Array | undefined;

  static async create(opts: EngineOptions): Promise<Engine> {
    const so: Ort.InferenceSession.SessionOptions = {
      intraOpNumThreads: opts.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      // No memory pattern: with it each session pre-plans one block for all its
      // activations at once (YuNet at 640²: +47 MB in the arena instead of +30 MB, at the
      // same speed; measured by npm run bench:vision's predecessors, see docs/face-access.md).
      enableMemPattern: false,
      // The CPU memory arena (see `open` below): without it every activation ≥ 1 MiB is a
      // fresh mmap (the unit's MALLOC_MMAP_THRESHOLD_) and YuNet at 640² measured 4–9 times
      // slower (detect ≈ 70–170 instead of 8–18 ms CPU) for about 15 MB less RSS.
      // Warnings such as "Removing initializer …" are about the graph, not the box: keep stderr for errors.
      logSeverityLevel: 3,
      // No busy-waiting threads between runs: on a 2-core box the cores belong to ffmpeg,
      // the doors and the meters as much as to inference.
      extra: { session: { intra_op: { allow_spinning: '0' }, inter_op: { allow_spinning: '0' } } },
    };
    const m = opts.models;
    // The arena only for the main detector: YuNet's activations at 640² are 1–7 MB each,
    // which malloc would mmap (and the kernel zero) afresh on every run. The other models'
    // activations are small and come from malloc's free lists just as fast, while an arena
    // per session would keep each one's peak for good (measured: −8 MB for the recognizer,
    // liveness and close-up sessions together).
    const open = (file: string, arena = false) => ort.InferenceSession.create(join(opts.dir, file), { ...so, enableCpuMemArena: arena });
    const settled = await Promise.allSettled([open(m.detector.file, true), open(m.recognizer.file), m.closeUpDetector ? open(m.closeUpDetector.file) : Promise.resolve(undefined), ...m.liveness.map((l) => open(l.file))]);
    const failed = settled.find((x): x is PromiseRejectedResult => x.status === 'rejected');
    if (failed) {
      // The sessions that did load must go before the thread ends: a worker ending with
      // live onnxruntime sessions aborts the process at exit.
      for (const x of settled) if (x.status === 'fulfilled') await x.value?.release().catch(() => {});
      throw failed.reason instanceof Error ? failed.reason : new Error(String(failed.reason));
    }
    const [det, rec, close, ...live] = settled.map((x) => (x as PromiseFulfilledResult<Ort.InferenceSession | undefined>).value);
    const detector = new Detector(m.detector, det!, opts.detectThreshold ?? m.detector.scoreThreshold);
    const closeUp = close && m.closeUpDetector ? new Detector(m.closeUpDetector, close, m.closeUpDetector.scoreThreshold) : undefined;
    return new Engine(
      opts,
      detector,
      closeUp,
      rec!,
      live.map((session, i) => ({ model: m.liveness[i]!, session: session! })),
    );
  }

  get hasLiveness(): boolean {
    return this.liveness.length > 0;
  }

  async release(): Promise<void> {
    const all = [this.detector.session, this.closeUp?.session, this.recognizer, ...this.liveness.map((l) => l.session)];
    for (const s of all) await s?.release().catch(() => {});
  }

  /**
   * Faces in the image, largest first. Pass 1 letterboxes the whole image. When it finds
   * nothing and a face could be larger than the detector was trained for (YuNet: about
   * 300 px in its input), passes 2 and 3 shrink the image into a zero-padded, centred
   * canvas so a close-up face falls back into range; then the manifest's close-up
   * detector, if any, gets a try. `closeUpPasses: false` runs pass 1 only.
   */
  async detect(img: RgbImage, opts: { closeUpPasses?: boolean } = {}): Promise<Face[]> {
    const d = this.detector;
    const base = d.baseScale(img);
    let faces = await d.run(img, base, d.pad(img, base));
    // Without the close-up passes: the plain full-frame pass only (diagnostics and tests).
    if (opts.closeUpPasses === false) return faces.sort((a, b) => b.box[2] * b.box[3] - a.box[2] * a.box[3]);
    const longest = Math.max(img.width, img.height) * base;
    // A weak face near or above the detector's trained size is often a too-small box on a
    // face that fills the frame (measured: a 640-px face found as a 312-px box, score
    // 0.745): the ½ pass gets a try too, and the better-scoring pass wins. Confident
    // detections (the usual door frame) cost no second pass.
    const largest = faces.reduce((m, f) => Math.max(m, f.box[2] * base, f.box[3] * base), 0);
    if (largest > NEAR_MAX_SIZE * d.model.faceSize.maxPx && topScore(faces) < WEAK_SCORE && longest * 0.5 * 2 > d.model.faceSize.maxPx) {
      const s = base * 0.5;
      const shrunk = await d.run(img, s, d.pad(img, s, true));
      if (topScore(shrunk) > topScore(faces)) faces = shrunk;
    }
    for (const shrink of [0.5, 0.25]) {
      if (faces.length > 0 || longest * shrink * 2 <= d.model.faceSize.maxPx) break;
      const s = base * shrink;
      faces = await d.run(img, s, d.pad(img, s, true));
    }
    if (faces.length === 0 && this.closeUp) {
      const s = this.closeUp.baseScale(img);
      faces = await this.closeUp.run(img, s, this.closeUp.pad(img, s));
    }
    return faces.sort((a, b) => b.box[2] * b.box[3] - a.box[2] * a.box[3]);
  }

  /** p(real) of a face, averaged over the liveness ensemble; undefined without models. */
  async livenessScore(img: RgbImage, face: Face): Promise<number | undefined> {
    if (!this.liveness.length) return undefined;
    let sum = 0;
    for (const l of this.liveness) {
      const { model, session } = l;
      const size = inputSize(model).width;
      const crop = livenessCrop(img, face.box, model.crop.scale, size);
      l.input ??= new Float32Array(3 * size * size);
      const out = await session.run({ [model.input.name]: new ort.Tensor('float32', imageTensor(crop, model.input, l.input), [1, 3, size, size]) });
      const logits = out[model.classifier.output]?.data;
      if (!(logits instanceof Float32Array)) throw new Error(`liveness output "${model.classifier.output}" missing`);
      sum += softmax(logits)[model.classifier.realClass]!;
    }
    return sum / this.liveness.length;
  }

  /** Align the face to the recognizer's template and embed it; also reports chip sharpness and brightness. */
  async embed(img: RgbImage, face: Face, timings?: Timings): Promise<EmbedResult> {
    const r = this.opts.models.recognizer;
    const names = new Set(face.landmarkNames);
    const template = r.alignment.templates.find((t) => t.points.every((p) => names.has(p.landmark)));
    if (!template) throw new Error(`recognizer "${r.title}" has no alignment template for landmarks ${face.landmarkNames.join(',')}`);
    const src = template.points.map((p) => face.landmarks[face.landmarkNames.indexOf(p.landmark)]!);
    const dst = template.points.map((p) => [p.x, p.y] as Point);
    let t = performance.now();
    const size = r.alignment.size;
    const chip = alignFace(img, src, dst, size, r.alignment.prefilterAbove);
    const q = chipQuality(qualityChip(img, face) ?? chip);
    if (timings) timings.align = performance.now() - t;
    t = performance.now();
    this.recInput ??= new Float32Array(3 * size * size);
    const out = await this.recognizer.run({ [r.input.name]: new ort.Tensor('float32', imageTensor(chip, r.input, this.recInput), [1, 3, size, size]) });
    if (timings) timings.embed = performance.now() - t;
    const raw = out[r.embedding.output]?.data;
    if (!(raw instanceof Float32Array) || raw.length !== r.embedding.dim) throw new Error(`recognizer output "${r.embedding.output}" is not ${r.embedding.dim} floats`);
    return { embedding: Float32Array.from(raw), sharpness: q.sharpness, brightness: q.brightness };
  }
}

/**
 * The focus and brightness limits (vision.quality, enrolment.quality) were calibrated on the
 * dlib recognizer's chip (150 px, padding 0.25, reduced to 64 px). Recognizers crop the face
 * differently (ArcFace's 112 px chip is much tighter), which changes the Laplacian variance
 * of the same photo, so quality is measured on that reference geometry whatever the
 * recognizer: one 64 px warp, well under a millisecond.
 */
const QUALITY_TEMPLATE: Record<string, Point> = {
  right_eye: [47.5492, 46.599],
  left_eye: [100.4761, 46.599],
  nose_tip: [74.0127, 76.5625],
  right_mouth_corner: [50.4149, 103.0233],
  left_mouth_corner: [97.6104, 103.0233],
  mouth_centre: [74.0127, 105.8573],
};
const QUALITY_SIZE = 64;
function qualityChip(img: RgbImage, face: Face): RgbImage | undefined {
  const src: Point[] = [];
  const dst: Point[] = [];
  face.landmarkNames.forEach((name, i) => {
    const t = QUALITY_TEMPLATE[name];
    if (!t) return;
    src.push(face.landmarks[i]!);
    dst.push([(t[0] * QUALITY_SIZE) / 150, (t[1] * QUALITY_SIZE) / 150]);
  });
  return src.length >= 3 ? alignFace(img, src, dst, QUALITY_SIZE, 2) : undefined;
}

/** Weak faces larger than this share of the detector's trained maximum also get the ½ pass. */
const NEAR_MAX_SIZE = 0.8;
/** "Weak": YuNet scored every in-range face of the shared photos ≥ 0.899, close-ups 0.70–0.87. */
const WEAK_SCORE = 0.88;

function topScore(faces: Face[]): number {
  return faces.reduce((m, f) => Math.max(m, f.score), 0);
}

function softmax(v: Float32Array): number[] {
  let max = -Infinity;
  for (const x of v) max = Math.max(max, x);
  const e = Array.from(v, (x) => Math.exp(x - max));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

/**
 * The liveness models' crop (upstream Silent-Face `CropImage`): the detector box scaled
 * about its centre, the scale clamped so the crop fits the image, the crop shifted
 * inside the image, then resized (bilinear) to the model's input.
 */
export function livenessCrop(img: RgbImage, box: Face['box'], cropScale: number, size: number): RgbImage {
  const [x, y, bw, bh] = box;
  const W = img.width;
  const H = img.height;
  const scale = Math.min((H - 1) / bh, (W - 1) / bw, cropScale);
  const nw = bw * scale;
  const nh = bh * scale;
  const cx = x + bw / 2;
  const cy = y + bh / 2;
  let x0 = cx - nw / 2;
  let y0 = cy - nh / 2;
  let x1 = cx + nw / 2;
  let y1 = cy + nh / 2;
  if (x0 < 0) {
    x1 -= x0;
    x0 = 0;
  }
  if (y0 < 0) {
    y1 -= y0;
    y0 = 0;
  }
  if (x1 > W - 1) {
    x0 -= x1 - W + 1;
    x1 = W - 1;
  }
  if (y1 > H - 1) {
    y0 -= y1 - H + 1;
    y1 = H - 1;
  }
  x0 = Math.floor(x0);
  y0 = Math.floor(y0);
  x1 = Math.floor(x1);
  y1 = Math.floor(y1);
  const sx = (x1 - x0 + 1) / size;
  const sy = (y1 - y0 + 1) / size;
  return warpAffine(img, [sx, 0, x0 + 0.5 * sx - 0.5, 0, sy, y0 + 0.5 * sy - 0.5], size, size);
}
