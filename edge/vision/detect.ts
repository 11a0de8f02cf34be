// Output decoding of the face detectors the model manifest can describe ("yunet",
// "blazeface"), plus non-maximum suppression. Pure functions over the raw output
// tensors, driven by the manifest's decoder section, so they are unit-testable and the
// same for camera frames and enrolment photos.
import type { Point } from './image.js';
import type { BlazeFaceDecoder, LandmarkName, YuNetDecoder } from '../../models/manifest.js';

export interface Face {
  /** x, y, w, h in source-image pixels. */
  box: [number, number, number, number];
  score: number;
  /** Landmarks in source-image pixels, in the detector's order (`landmarkNames`). */
  landmarks: Point[];
  landmarkNames: readonly LandmarkName[];
}

export type OutputMap = Record<string, { data: unknown }>;

/** Maps detector-input coordinates back to the source image: src = (v - pad) / scale. */
export interface InputMapping {
  scale: number;
  pad: Point;
}

function unmap(m: InputMapping, x: number, y: number): Point {
  return [(x - m.pad[0]) / m.scale, (y - m.pad[1]) / m.scale];
}

function tensor(out: OutputMap, name: string): Float32Array {
  const t = out[name]?.data;
  if (!(t instanceof Float32Array)) throw new Error(`detector output "${name}" missing or not float32`);
  return t;
}

/** YuNet (OpenCV FaceDetectorYN) decoding over a square input. */
export function decodeYunet(out: OutputMap, dec: YuNetDecoder, inputSize: number, names: readonly LandmarkName[], threshold: number, m: InputMapping): Face[] {
  const faces: Face[] = [];
  const K = names.length;
  for (const head of dec.heads) {
    const s = head.stride;
    const cls = tensor(out, head.cls);
    const obj = tensor(out, head.obj);
    const bbox = tensor(out, head.bbox);
    const kps = tensor(out, head.kps);
    const cols = Math.floor(inputSize / s);
    const n = Math.min(cols * cols, cls.length, obj.length);
    for (let i = 0; i < n; i++) {
      const score = Math.sqrt(clamp01(cls[i]!) * clamp01(obj[i]!));
      if (!(score >= threshold)) continue;
      const r = Math.floor(i / cols);
      const c = i % cols;
      const cx = (c + bbox[i * 4]!) * s;
      const cy = (r + bbox[i * 4 + 1]!) * s;
      const w = Math.exp(bbox[i * 4 + 2]!) * s;
      const h = Math.exp(bbox[i * 4 + 3]!) * s;
      const [x0, y0] = unmap(m, cx - w / 2, cy - h / 2);
      const landmarks: Point[] = [];
      for (let k = 0; k < K; k++) landmarks.push(unmap(m, (c + kps[i * 2 * K + 2 * k]!) * s, (r + kps[i * 2 * K + 2 * k + 1]!) * s));
      faces.push({ box: [x0, y0, w / m.scale, h / m.scale], score, landmarks, landmarkNames: names });
    }
  }
  return faces;
}

/**
 * MediaPipe BlazeFace decoding: per head a cells×cells grid with `anchorsPerCell`
 * consecutive anchors at the cell centre; regressors (box centre offset, size, then the
 * keypoints) are in input pixels relative to the anchor.
 */
export function decodeBlazeface(out: OutputMap, dec: BlazeFaceDecoder, inputSize: number, names: readonly LandmarkName[], threshold: number, m: InputMapping): Face[] {
  const faces: Face[] = [];
  const K = names.length;
  for (const head of dec.heads) {
    const sc = tensor(out, head.scores);
    const rg = tensor(out, head.regressors);
    const stride = rg.length / sc.length;
    if (!Number.isInteger(stride) || stride < 4 + 2 * K) throw new Error(`detector output "${head.regressors}" has ${stride} values per anchor, need ${4 + 2 * K}`);
    let i = 0;
    for (let cy = 0; cy < head.cells; cy++) {
      for (let cx = 0; cx < head.cells; cx++) {
        const ax = ((cx + 0.5) / head.cells) * inputSize;
        const ay = ((cy + 0.5) / head.cells) * inputSize;
        for (let a = 0; a < head.anchorsPerCell; a++, i++) {
          const logit = Math.max(-dec.scoreClip, Math.min(dec.scoreClip, sc[i]!));
          const score = 1 / (1 + Math.exp(-logit));
          if (!(score >= threshold)) continue;
          const r = i * stride;
          const w = rg[r + 2]!;
          const h = rg[r + 3]!;
          const [x0, y0] = unmap(m, ax + rg[r]! - w / 2, ay + rg[r + 1]! - h / 2);
          const landmarks: Point[] = [];
          for (let k = 0; k < K; k++) landmarks.push(unmap(m, ax + rg[r + 4 + 2 * k]!, ay + rg[r + 5 + 2 * k]!));
          faces.push({ box: [x0, y0, w / m.scale, h / m.scale], score, landmarks, landmarkNames: names });
        }
      }
    }
  }
  return faces;
}

function clamp01(v: number): number {
  return Math.min(Math.max(v, 0), 1);
}

export function iou(a: Face['box'], b: Face['box']): number {
  const x0 = Math.max(a[0], b[0]);
  const y0 = Math.max(a[1], b[1]);
  const x1 = Math.min(a[0] + a[2], b[0] + b[2]);
  const y1 = Math.min(a[1] + a[3], b[1] + b[3]);
  const inter = Math.max(0, x1 - x0) * Math.max(0, y1 - y0);
  const union = a[2] * a[3] + b[2] * b[3] - inter;
  return union > 0 ? inter / union : 0;
}

/** Greedy NMS: keep the best-scoring box, drop every box overlapping it by more than `threshold`. */
export function nms(faces: Face[], threshold: number): Face[] {
  const sorted = [...faces].sort((a, b) => b.score - a.score);
  const kept: Face[] = [];
  for (const f of sorted) if (kept.every((k) => iou(k.box, f.box) <= threshold)) kept.push(f);
  return kept;
}

/** MediaPipe-style weighted NMS: overlapping boxes are blended by score instead of dropped. */
export function weightedNms(faces: Face[], threshold: number): Face[] {
  const rest = [...faces].sort((a, b) => b.score - a.score);
  const kept: Face[] = [];
  while (rest.length) {
    const top = rest[0]!;
    const group = rest.filter((f) => iou(top.box, f.box) >= threshold);
    const others = rest.filter((f) => iou(top.box, f.box) < threshold);
    const total = group.reduce((s, f) => s + f.score, 0);
    const blend = (get: (f: Face) => number) => group.reduce((s, f) => s + get(f) * f.score, 0) / total;
    kept.push({
      box: [blend((f) => f.box[0]), blend((f) => f.box[1]), blend((f) => f.box[2]), blend((f) => f.box[3])],
      score: top.score,
      landmarks: top.landmarks.map((_, k) => [blend((f) => f.landmarks[k]![0]), blend((f) => f.landmarks[k]![1])] as Point),
      landmarkNames: top.landmarkNames,
    });
    rest.splice(0, rest.length, ...others);
  }
  return kept;
}
