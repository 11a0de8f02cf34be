// Face quality gates shared by the camera path and enrolment: size, pose (from the
// landmarks), focus and exposure (from the aligned chip). Each failure is a reason code
// (the enrolment contract's codes) with a message a technician or resident can act on.
import type { Face } from './detect.js';
import type { Point } from './image.js';

export interface QualityLimits {
  minFacePx: number;
  maxYaw: number;
  maxRollDeg: number;
  minSharpness: number;
  minBrightness: number;
}

export interface QualityProblem {
  code: 'face_too_small' | 'not_frontal' | 'too_blurred' | 'too_dark';
  message: string;
}

export interface Pose {
  /** |nose offset from the eye midpoint| / eye distance, signed (+ = nose towards image-right). */
  yaw: number;
  /** Eye-line angle in degrees. */
  rollDeg: number;
}

/** Head pose proxies from the eyes and nose; undefined when the detector gives no such landmarks. */
export function pose(face: Face): Pose | undefined {
  const at = (name: 'right_eye' | 'left_eye' | 'nose_tip'): Point | undefined => {
    const i = face.landmarkNames.indexOf(name);
    return i >= 0 ? face.landmarks[i] : undefined;
  };
  const re = at('right_eye');
  const le = at('left_eye');
  const nose = at('nose_tip');
  if (!re || !le || !nose) return undefined;
  const dx = le[0] - re[0];
  const dy = le[1] - re[1];
  const iod = Math.hypot(dx, dy);
  if (iod < 1e-6) return { yaw: 1, rollDeg: 0 };
  // Project the nose onto the eye line: the along-line offset from the midpoint is the turn.
  const mx = (re[0] + le[0]) / 2;
  const my = (re[1] + le[1]) / 2;
  const along = ((nose[0] - mx) * dx + (nose[1] - my) * dy) / iod;
  return { yaw: along / iod, rollDeg: (Math.atan2(dy, dx) * 180) / Math.PI };
}

export function faceSizePx(face: Face): number {
  return Math.min(face.box[2], face.box[3]);
}

/** Checks that need only the detection (run before spending time on liveness and embedding). */
export function geometryProblem(face: Face, l: QualityLimits): QualityProblem | undefined {
  const size = faceSizePx(face);
  if (size < l.minFacePx) return { code: 'face_too_small', message: `face is ${Math.round(size)} px, at least ${l.minFacePx} px needed` };
  const p = pose(face);
  if (p && Math.abs(p.yaw) > l.maxYaw) return { code: 'not_frontal', message: `head turned (yaw ${p.yaw.toFixed(2)}, at most ${l.maxYaw})` };
  if (p && Math.abs(p.rollDeg) > l.maxRollDeg) return { code: 'not_frontal', message: `head tilted ${Math.round(Math.abs(p.rollDeg))}°, at most ${l.maxRollDeg}°` };
  return undefined;
}

/** Checks on the aligned chip. */
export function chipProblem(q: { sharpness: number; brightness: number }, l: QualityLimits): QualityProblem | undefined {
  if (q.brightness < l.minBrightness) return { code: 'too_dark', message: `face too dark (brightness ${Math.round(q.brightness)}, at least ${l.minBrightness})` };
  if (q.sharpness < l.minSharpness) return { code: 'too_blurred', message: `face too blurred (sharpness ${Math.round(q.sharpness)}, at least ${l.minSharpness})` };
  return undefined;
}

/**
 * Faces that count as "another person in the picture" for enrolment: detected faces at
 * least half the size of the largest one. Small faces in the background (a crowd behind
 * the subject) do not make a photo ambiguous.
 */
export function significantFaces(faces: Face[]): Face[] {
  if (faces.length === 0) return [];
  const largest = Math.max(...faces.map(faceSizePx));
  return faces.filter((f) => faceSizePx(f) >= largest * 0.5);
}
