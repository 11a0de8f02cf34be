// The per-frame pipeline of face access: one camera frame → the inference worker's
// analysis (detect, quality, liveness, align, embed) → 1:N search among the persons the
// door lets in now → the match policy's verdict → K distinct frames agreeing within the
// window → a door decision through the `access` service → per-person cooldown; unknown
// faces and suspected spoofs become rate-limited events with a small snapshot.
//
// Everything it needs comes in through PipelineDeps, the inference client included (only
// its analyzeFrame), so tests drive it frame by frame against a scripted fake
// (test/vision/pipeline.test.ts). Time: the frames' own `mono` for the K-frame window,
// the clock's monotonic ms for cooldowns and the event rate limit.
import type { Logger } from 'pino';
import type { EventBus } from '../bus.js';
import type { Clock } from '../clock.js';
import type { ServiceRegistry } from '../module.js';
import type { Outbox } from '../outbox/outbox.js';
import type { Frame } from '../../drivers/camera/camera.js';
import type { Static } from '@sinclair/typebox';
import type { VisionSchema } from './schema.js';
import type { RgbImage } from './image.js';
import type { QualityLimits } from './quality.js';
import type { AnalyzeResult } from './worker.js';
import type { Match } from './gallery.js';
import type { TemplateStore } from './templates.js';
import type { VisionMetrics } from './metrics.js';
import { Confirmer, Cooldown, RateLimit } from './decision.js';
import { EvidenceStreak, judge, marginFor, thresholdFor, type PolicyOptions } from './policy.js';
import { learnFromGate } from './learn.js';
import { round, type FaceBox, type LastAnalysis } from './snapshots.js';

export interface VisionDecisionEvent {
  doorId: string;
  personId: string;
  granted: boolean;
  reason: string;
  /** Distance (euclidean) or similarity (cosine) of the confirming frame. */
  distance: number;
  liveness?: number;
  /** Frame arrival to door decision, ms (K-frame confirmation excluded). */
  latencyMs: number;
  at: number;
}

declare module '../bus.js' {
  interface BusEvents {
    'vision.decision': VisionDecisionEvent;
  }
}

type VisionConfig = Static<typeof VisionSchema>;

/** The part of the inference client the pipeline uses (InferenceClient in production). */
export interface FrameAnalyzer {
  analyzeFrame(img: RgbImage, limits: QualityLimits, liveness: boolean): Promise<AnalyzeResult>;
}

export interface PipelineDeps {
  cfg: Pick<VisionConfig, 'doorId' | 'match' | 'liveness' | 'quality' | 'events' | 'enrolment'>;
  inference: FrameAnalyzer;
  store: TemplateStore;
  policy: PolicyOptions;
  /** Of the selected models (ResolvedModels). */
  models: { metric: 'euclidean' | 'cosine'; livenessThreshold: number };
  clock: Clock;
  services: Pick<ServiceRegistry, 'get'>;
  bus: Pick<EventBus, 'emit'>;
  outbox: Pick<Outbox, 'append'>;
  log: Logger;
  metrics: Pick<VisionMetrics, 'count' | 'stage' | 'decisions' | 'latency' | 'learned' | 'events'>;
  /** The face's JPEG for an event (snapshots.ts faceJpeg). */
  faceJpeg(f: Frame, box: FaceBox): Promise<Buffer | undefined>;
}

const UNKNOWN = '\u0000unknown';
const SPOOF = '\u0000spoof';
/** How long the set of persons the door lets in is reused before it is asked again. */
export const ALLOWED_REFRESH_MS = 2000;

export class FacePipeline {
  private readonly confirmer: Confirmer;
  /** K distinct frames agreeing on one person (policy.ts). */
  private readonly evidence: EvidenceStreak;
  private readonly cooldown: Cooldown;
  private readonly limiter: RateLimit;
  /** Persons the door lets in now (refreshed every ALLOWED_REFRESH_MS); undefined: every enrolled person. */
  private allowed: { set: ReadonlySet<string> | undefined; at: number } | undefined;
  private last: LastAnalysis | undefined;

  constructor(private readonly d: PipelineDeps) {
    const m = d.cfg.match;
    this.confirmer = new Confirmer(m.confirmFrames, m.windowMs);
    this.evidence = new EvidenceStreak(m.confirmFrames, m.windowMs, m.minFrameGapMs, m.maxRepeatSimilarity);
    this.cooldown = new Cooldown(m.cooldownS * 1000);
    const ev = d.cfg.events;
    this.limiter = new RateLimit((kind) => (kind === 'spoof' ? ev.spoofIntervalS : ev.unknownIntervalS) * 1000);
  }

  /** The detections of the most recently analysed frame (the console's snapshot). */
  get lastAnalysis(): LastAnalysis | undefined {
    return this.last;
  }

  /**
   * Analyse one frame and act on it. Never rejects: a failed or timed-out analysis is
   * counted as `error` and the frame dropped. The caller may recycle the frame's buffer
   * once this resolves (an event's snapshot copies its crop before the first await).
   */
  async analyse(f: Frame): Promise<void> {
    const { cfg, metrics } = this.d;
    let r: AnalyzeResult;
    try {
      r = await this.d.inference.analyzeFrame({ data: new Uint8Array(f.data.buffer, f.data.byteOffset, f.data.length), width: f.width, height: f.height }, cfg.quality, cfg.liveness.enabled);
    } catch (err) {
      metrics.count('error');
      this.d.log.debug({ err: String(err) }, 'frame analysis failed');
      return;
    }
    this.last = { faces: r.faces, at: f.at };
    for (const stage of ['detect', 'liveness', 'align', 'embed', 'total'] as const) {
      const v = r.timings[stage];
      if (v !== undefined) metrics.stage.observe({ stage }, v / 1000);
    }
    if (r.problem) return metrics.count(r.problem.code);
    const s = r.subject!;
    const lt = this.d.models.livenessThreshold;
    if (cfg.liveness.enabled && s.liveness !== undefined && s.liveness < lt) {
      metrics.count('spoof');
      if (this.confirmer.observe(SPOOF, f.mono) === SPOOF) void this.event('spoof', f, s.box, { liveness: round(s.liveness), threshold: lt });
      return;
    }
    if (!s.embedding) return metrics.count('error');
    const t = performance.now();
    const allowed = this.allowedNow(f.mono);
    const match = this.d.store.search(s.embedding, allowed);
    const size = this.d.store.gallerySize(allowed);
    metrics.stage.observe({ stage: 'search' }, (performance.now() - t) / 1000);
    let v;
    try {
      v = judge(this.d.policy, match, size.persons, size.templates);
    } catch (err) {
      // Fail closed: no decision without a valid threshold.
      metrics.count('error');
      this.d.log.error({ err: String(err) }, 'match policy failed: no decision');
      return;
    }
    if (v.kind === 'match') {
      this.confirmer.reset();
      const step = this.evidence.observe(v.personId, f.mono, s.embedding);
      metrics.count(step === 'repeat' ? 'repeat' : 'match');
      if (step === 'confirmed') this.decide(match!, s.liveness, f, v.threshold, size.persons, s.embedding);
      return;
    }
    this.evidence.reset();
    metrics.count(v.kind === 'ambiguous' ? 'ambiguous' : 'unknown');
    if (this.confirmer.observe(UNKNOWN, f.mono) === UNKNOWN) void this.event('unknown', f, s.box, { nearest: match ? round(match.score) : null, threshold: round(v.threshold), searched: size.persons, ...(v.kind === 'ambiguous' ? { ambiguous: true, margin: round(v.margin), requiredMargin: v.required } : {}) });
  }

  /**
   * The persons the door would let in now (the doors module's rules), refreshed every few
   * seconds: the search and the threshold's N cover only them. Without the access service's
   * `mayEnter` every enrolled person is searched.
   */
  private allowedNow(mono: number): ReadonlySet<string> | undefined {
    if (this.allowed && mono - this.allowed.at < ALLOWED_REFRESH_MS) return this.allowed.set;
    const access = this.d.services.get('access');
    let set: Set<string> | undefined;
    if (access?.mayEnter) {
      set = new Set();
      for (const p of this.d.store.persons()) if (access.mayEnter(this.d.cfg.doorId!, p)) set.add(p);
    }
    this.allowed = { set, at: mono };
    return set;
  }

  /** The threshold in force for the door's current gallery (enrolment's close-match check, vision.status). */
  currentThreshold(): number {
    const size = this.d.store.gallerySize(this.allowed?.set);
    return thresholdFor(this.d.policy, size.persons, size.templates);
  }

  private decide(match: Match, liveness: number | undefined, f: Frame, threshold: number, searched: number, embedding: Float32Array): void {
    const { cfg, metrics, log } = this.d;
    const doorId = cfg.doorId!;
    const now = this.d.clock.monotonic();
    if (this.cooldown.active(match.personId, now)) return metrics.count('cooldown');
    this.cooldown.start(match.personId, now);
    const access = this.d.services.get('access');
    if (!access) {
      metrics.count('no_access_service');
      log.error({ personId: match.personId }, 'face recognised but no access service (doors module) to decide');
      return;
    }
    const { metric } = this.d.models;
    const evidence: Record<string, unknown> = {
      metric,
      distance: round(match.score),
      threshold: round(threshold),
      searched,
      frames: cfg.match.confirmFrames,
      ...(match.runnerUp ? { margin: round(Math.abs(match.runnerUp.score - match.score)) } : {}),
      ...(liveness !== undefined ? { liveness: round(liveness) } : {}),
    };
    let d;
    try {
      // The contract's score is "higher = more similar": 1 - distance for a distance metric.
      d = access.decide({ doorId, credential: 'face', personId: match.personId, score: round(metric === 'euclidean' ? 1 - match.score : match.score), requestedBy: 'camera', evidence });
    } catch (err) {
      metrics.count('decide_failed');
      log.error({ err: String(err), personId: match.personId }, 'access decision failed');
      return;
    }
    const latencyMs = performance.now() - f.mono;
    metrics.latency.observe(latencyMs / 1000);
    metrics.decisions.inc({ granted: String(d.granted), reason: d.reason });
    // pending: the door asks this person for the PIN (face_and_pin, needsSecondFactor); the
    // doors module records the decision once the PIN is entered or the wait ends.
    log.info({ door: doorId, person: match.personId, granted: d.granted, reason: d.reason, ...(d.pending ? { pending: true } : {}), distance: round(match.score), ...(liveness !== undefined ? { liveness: round(liveness) } : {}), latencyMs: Math.round(latencyMs) }, 'face decision');
    this.d.bus.emit('vision.decision', { doorId, personId: match.personId, granted: d.granted, reason: d.reason, distance: match.score, ...(liveness !== undefined ? { liveness } : {}), latencyMs, at: this.d.clock.now() });
    if (d.granted) this.learn(match, embedding, liveness, threshold);
  }

  /** A granted approach of a consenting resident may improve their record (learn.ts says when). */
  private learn(match: Match, embedding: Float32Array, liveness: number | undefined, threshold: number): void {
    const { store, cfg, metrics, log } = this.d;
    let r;
    try {
      r = learnFromGate(store, cfg.enrolment.gateUpdates, {
        match,
        embedding,
        metric: this.d.models.metric,
        threshold,
        requiredMargin: marginFor(this.d.policy),
        liveness: cfg.liveness.enabled ? liveness : undefined,
        livenessThreshold: this.d.models.livenessThreshold,
        now: this.d.clock.now(),
      });
    } catch (err) {
      // A failed write (full disk…) loses an improvement, never a decision: the door was already decided.
      metrics.learned.inc({ outcome: 'failed' });
      log.warn({ err: String(err), personId: match.personId }, 'learning from the gate capture failed');
      return;
    }
    metrics.learned.inc({ outcome: r.outcome });
    if (r.outcome !== 'learned') return;
    log.info({ person: match.personId, templates: r.templates }, 'face record updated from a gate capture (resident consented)');
    void this.d.outbox.append({ stream: 'audit', type: 'face.learned', data: { personId: match.personId, doorId: cfg.doorId, templates: r.templates, learned: store.learned(match.personId).count, score: round(r.score!) } }).catch((err) => log.error({ err: String(err) }, 'face.learned audit not stored'));
  }

  private async event(kind: 'unknown' | 'spoof', f: Frame, box: FaceBox, data: Record<string, unknown>): Promise<void> {
    const { cfg, log } = this.d;
    const allowed = this.limiter.allow(kind, this.d.clock.monotonic());
    this.d.metrics.events.inc({ kind, sent: String(allowed) });
    if (!allowed) return;
    const body: Record<string, unknown> = { doorId: cfg.doorId, ...data, suppressed: this.limiter.takeSuppressed(kind) };
    if (cfg.events.snapshot) {
      try {
        body.snapshot = (await this.d.faceJpeg(f, box))?.toString('base64') ?? null;
      } catch (err) {
        log.warn({ err: String(err) }, 'event snapshot failed');
      }
    }
    await this.d.outbox.append({ stream: 'event', type: kind === 'unknown' ? 'face.unknown' : 'face.spoof', ts: f.at, data: body }).catch((err) => log.error({ err: String(err) }, 'event not stored'));
  }
}
