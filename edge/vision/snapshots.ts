// JPEG snapshots of camera frames, encoded by the imaging helper process (imaging.ts):
// the small face crop sent with unknown-face and spoof events, and the whole frame the
// console's camera page shows (vision.snapshot) with the latest detections.
import type { Frame } from '../../drivers/camera/camera.js';
import type { VisionSnapshot } from './api.js';
import { cropImage } from './image.js';
import type { ImageHelper } from './imaging.js';
import type { AnalyzeResult } from './worker.js';

export type FaceBox = [number, number, number, number];

/** The detections of the most recently analysed frame (UTC ms of that frame). */
export interface LastAnalysis {
  faces: AnalyzeResult['faces'];
  at: number;
}

/** A small JPEG of the face (box widened by half, at most 160 px), quality lowered until it fits maxBytes. */
export function faceJpeg(imaging: Pick<ImageHelper, 'jpeg'>, f: Frame, box: FaceBox, maxBytes: number): Promise<Buffer | undefined> {
  const [x, y, w, h] = box;
  const left = Math.max(0, Math.floor(x - w / 4));
  const top = Math.max(0, Math.floor(y - h / 4));
  // A copy of the region, made before the first await: the camera recycles the frame's
  // buffer once analysis is over.
  const crop = cropImage({ data: f.data, width: f.width, height: f.height }, left, top, Math.ceil(w * 1.5), Math.ceil(h * 1.5)).image;
  return imaging.jpeg(crop, { maxSide: 160, qualities: [75, 60, 45, 30, 20], maxBytes });
}

/** The newest frame as JPEG with the faces of the latest analysis; undefined without a frame. */
export async function frameSnapshot(imaging: Pick<ImageHelper, 'jpeg'>, f: Frame | undefined, a: LastAnalysis | undefined): Promise<VisionSnapshot | undefined> {
  if (!f) return undefined;
  // A copy: the camera recycles the buffer when a newer frame replaces this one.
  const jpeg = await imaging.jpeg({ data: Buffer.from(f.data), width: f.width, height: f.height }, { qualities: [80] });
  if (!jpeg) throw new Error('snapshot could not be encoded');
  return { jpeg, width: f.width, height: f.height, at: f.at, faces: a?.faces.map((x) => ({ box: x.box.map((v) => Math.round(v)) as FaceBox, score: round(x.score) })) ?? [], ...(a ? { facesAt: a.at } : {}) };
}

export function round(v: number): number {
  return Math.round(v * 10000) / 10000;
}
