// The face-access module's metrics (names and help texts are part of the /metrics
// contract: docs and dashboards use them) and its per-outcome frame counters (the
// `counters` of vision.status).
import type { Metrics } from '../observability/metrics.js';
import type { Camera } from '../../drivers/camera/camera.js';

/** What the gauges read when /metrics is scraped. */
export interface VisionGaugeSources {
  /** Face access working (the module's health). */
  available(): boolean;
  templates(): number;
  camera(): Camera | undefined;
}

export function createVisionMetrics(reg: Metrics, src: VisionGaugeSources) {
  const m = {
    frames: reg.counter({ name: 'estate_vision_frames_total', help: 'Camera frames analysed, by outcome (match, unknown, spoof, no_face, quality codes, error)', labelNames: ['outcome'] }),
    stage: reg.histogram({
      name: 'estate_vision_stage_seconds',
      help: 'Pipeline stage latency (detect, liveness, align, embed, search, total)',
      labelNames: ['stage'],
      buckets: [0.002, 0.005, 0.01, 0.02, 0.04, 0.08, 0.15, 0.3, 0.6, 1.2],
    }),
    decisions: reg.counter({ name: 'estate_vision_decisions_total', help: 'Door decisions requested by face access', labelNames: ['granted', 'reason'] }),
    learned: reg.counter({ name: 'estate_vision_learned_total', help: 'Granted approaches considered for learning from gate captures, by outcome (learned, no_consent, not_confident, ambiguous, anchor, similar, too_soon, no_liveness, disabled, failed)', labelNames: ['outcome'] }),
    latency: reg.histogram({
      name: 'estate_vision_frame_to_decision_seconds',
      help: 'Frame arrival to door decision (K-frame confirmation excluded)',
      buckets: [0.02, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2],
    }),
    enrol: reg.counter({ name: 'estate_faces_enrol_total', help: 'Enrolment photos/embeddings by outcome (accepted or rejection code)', labelNames: ['outcome'] }),
    events: reg.counter({ name: 'estate_vision_events_total', help: 'Unknown-face and spoof events, sent or suppressed by the rate limit', labelNames: ['kind', 'sent'] }),
    loadFailures: reg.counter({
      name: 'estate_vision_model_load_failures_total',
      help: 'Face model loads that failed or overran vision.modelLoadTimeoutS, by reason (files: missing or wrong hash; load: onnxruntime or the worker failed; timeout)',
      labelNames: ['reason'],
    }),
  };
  reg.gauge({
    name: 'estate_vision_available',
    help: '1 when face access is working (models loaded, worker running, camera streaming)',
    collect() {
      this.set(src.available() ? 1 : 0);
    },
  });
  reg.gauge({
    name: 'estate_vision_templates',
    help: 'Face templates loaded',
    collect() {
      this.set(src.templates());
    },
  });
  reg.gauge({
    name: 'estate_camera_streaming',
    help: '1 when the camera delivers frames',
    collect() {
      this.set(src.camera()?.state().state === 'streaming' ? 1 : 0);
    },
  });
  for (const [name, key, help] of [
    ['estate_camera_frames', 'frames', 'Frames decoded from the camera (since start)'],
    ['estate_camera_dropped_frames', 'dropped', 'Frames replaced by a newer one before analysis (since start)'],
    ['estate_camera_restarts', 'restarts', 'Camera stream restarts (stall, freeze, ffmpeg exit)'],
    ['estate_camera_decode_errors', 'decodeErrors', 'ffmpeg error lines (corrupt frames, network errors)'],
  ] as const) {
    reg.gauge({
      name,
      help,
      collect() {
        this.set(src.camera()?.stats()[key] ?? 0);
      },
    });
  }
  const counters: Record<string, number> = {};
  return {
    ...m,
    /** One analysed frame's outcome: the frames counter and vision.status' counters. */
    count(outcome: string): void {
      counters[outcome] = (counters[outcome] ?? 0) + 1;
      m.frames.inc({ outcome });
    },
    /** A copy of the per-outcome counts since start. */
    counters(): Record<string, number> {
      return { ...counters };
    },
  };
}

export type VisionMetrics = ReturnType<typeof createVisionMetrics>;
