// Inference worker thread: owns the onnxruntime sessions (created once, at init) and
// runs the pixel work of the pipeline so camera frames and enrolment photos never block
// the gateway's event loop (doors, meters, uplink). Requests are served one at a time
// in arrival order; the main thread bounds how many it sends (inference.ts).
//
// The same entry file, started as a child process with IMAGING_ARG, is the image helper
// (imaging.ts): the production bundle has no other entry to start it from. So nothing
// heavy is imported here statically: the engine (onnxruntime) loads only in the worker
// thread, sharp only in the helper.
import { parentPort } from 'node:worker_threads';
import { ExternalGarbageBound } from './gc.js';
import { IMAGING_ARG } from './imaging.js';
import type { Engine, EngineOptions, Timings } from './engine.js';
import { chipProblem, geometryProblem, pose, significantFaces, type Pose, type QualityLimits } from './quality.js';
import type { Face } from './detect.js';
import type { ObjectEngine, ObjectEngineOptions, ObjectsResult } from '../elevator/objects-engine.js';

export interface AnalyzeRequest {
  op: 'analyze';
  id: number;
  image: { data: Uint8Array; width: number; height: number };
  /** frame: the largest face is the subject, others are ignored; photo: a second face of similar size is an error. */
  mode: 'frame' | 'photo';
  limits: QualityLimits;
  liveness: boolean;
}

export type AnalyzeCode = 'no_face' | 'several_faces' | 'face_too_small' | 'not_frontal' | 'too_blurred' | 'too_dark';

export interface AnalyzeResult {
  /** Every detected face (box, score), largest first. */
  faces: Array<{ box: Face['box']; score: number }>;
  subject?: {
    box: Face['box'];
    score: number;
    pose?: Pose;
    liveness?: number;
    sharpness?: number;
    brightness?: number;
    /** Present only when the face passed every quality gate. */
    embedding?: Float32Array;
  };
  problem?: { code: AnalyzeCode; message: string };
  timings: Timings & { total: number };
}

/** The elevator's object detector (edge/elevator): another model in this worker, loaded only on request. */
export interface ObjectsRequest {
  op: 'objects';
  id: number;
  image: { data: Uint8Array; width: number; height: number; pixelFormat: 'rgb24' | 'bgr24' };
}

export type WorkerRequest = { op: 'init'; options: EngineOptions } | { op: 'objects-init'; options: ObjectEngineOptions } | AnalyzeRequest | ObjectsRequest | { op: 'close' };
export type WorkerResponse = { op: 'loading' } | { op: 'ready'; liveness: boolean } | { op: 'init_failed'; message: string } | { op: 'result'; id: number; result: AnalyzeResult } | { op: 'objects-result'; id: number; result: ObjectsResult } | { op: 'failed'; id: number; message: string };

export async function analyze(engine: Engine, req: Omit<AnalyzeRequest, 'op' | 'id'>): Promise<AnalyzeResult> {
  const t0 = performance.now();
  const img = req.image;
  const timings: AnalyzeResult['timings'] = { total: 0 };
  const faces = await engine.detect(img);
  timings.detect = performance.now() - t0;
  const done = (r: Omit<AnalyzeResult, 'timings' | 'faces'>): AnalyzeResult => {
    timings.total = performance.now() - t0;
    return { faces: faces.map((f) => ({ box: f.box, score: f.score })), ...r, timings };
  };
  const face = faces[0];
  if (!face) return done({ problem: { code: 'no_face', message: 'no face found' } });
  const p = pose(face);
  const subject: NonNullable<AnalyzeResult['subject']> = { box: face.box, score: face.score, ...(p ? { pose: p } : {}) };
  if (req.mode === 'photo') {
    const n = significantFaces(faces).length;
    if (n > 1) return done({ subject, problem: { code: 'several_faces', message: `${n} faces of similar size: a photo must show one person` } });
  }
  const geo = geometryProblem(face, req.limits);
  if (geo) return done({ subject, problem: geo });
  if (req.liveness && engine.hasLiveness) {
    const t = performance.now();
    const live = await engine.livenessScore(img, face);
    timings.liveness = performance.now() - t;
    if (live !== undefined) subject.liveness = live;
  }
  const emb = await engine.embed(img, face, timings);
  subject.sharpness = emb.sharpness;
  subject.brightness = emb.brightness;
  const chip = chipProblem(emb, req.limits);
  if (chip) return done({ subject, problem: chip });
  subject.embedding = emb.embedding;
  return done({ subject });
}

if (parentPort) {
  const port = parentPort;
  let engine: Engine | undefined;
  let objects: ObjectEngine | undefined;
  let chain: Promise<void> = Promise.resolve();
  // onnxruntime's output copies (0.6 MB per YuNet run) outlive a scavenge: a full
  // collection of this small heap every 1 MB of them, i.e. every other frame (a few ms,
  // off the event loop; gc.ts; 3 MB before: ~2 MB more RSS, the same CPU).
  const garbage = new ExternalGarbageBound(1048576, 'major');
  port.on('message', (msg: WorkerRequest) => {
    chain = chain.then(async () => {
      if (msg.op === 'close') {
        // Release the native sessions before the thread goes: terminating a worker that
        // still holds onnxruntime sessions aborts the whole process at exit.
        await engine?.release();
        engine = undefined;
        await objects?.release();
        objects = undefined;
        port.close();
        return;
      }
      if (msg.op === 'init') {
        try {
          const { Engine } = await import('./engine.js');
          // From here on onnxruntime works on its own threads: the main thread must not
          // terminate this worker until it answers (inference.ts).
          port.postMessage({ op: 'loading' } satisfies WorkerResponse);
          engine = await Engine.create(msg.options);
          port.postMessage({ op: 'ready', liveness: engine.hasLiveness } satisfies WorkerResponse);
        } catch (err) {
          port.postMessage({ op: 'init_failed', message: (err as Error)?.message ?? String(err) } satisfies WorkerResponse);
        }
        return;
      }
      if (msg.op === 'objects-init') {
        try {
          const { ObjectEngine } = await import('../elevator/objects-engine.js');
          port.postMessage({ op: 'loading' } satisfies WorkerResponse);
          objects = await ObjectEngine.create(msg.options);
          port.postMessage({ op: 'ready', liveness: false } satisfies WorkerResponse);
        } catch (err) {
          port.postMessage({ op: 'init_failed', message: (err as Error)?.message ?? String(err) } satisfies WorkerResponse);
        }
        return;
      }
      if (msg.op === 'objects') {
        try {
          if (!objects) throw new Error('object detector not initialised');
          const result = await objects.detect(msg.image);
          garbage.check();
          port.postMessage({ op: 'objects-result', id: msg.id, result } satisfies WorkerResponse);
        } catch (err) {
          port.postMessage({ op: 'failed', id: msg.id, message: (err as Error)?.message ?? String(err) } satisfies WorkerResponse);
        }
        return;
      }
      try {
        if (!engine) throw new Error('inference engine not initialised');
        const result = await analyze(engine, msg);
        garbage.check();
        port.postMessage({ op: 'result', id: msg.id, result } satisfies WorkerResponse);
      } catch (err) {
        port.postMessage({ op: 'failed', id: msg.id, message: (err as Error)?.message ?? String(err) } satisfies WorkerResponse);
      }
    });
  });
} else if (process.argv.includes(IMAGING_ARG) && process.send) {
  void import('./imaging-child.js').then((m) => m.serve());
}
