// Face access module: camera → inference worker (detect, quality, liveness, align,
// embed) → 1:N search → K-frame confirmation → door decision through the `access`
// service → per-person cooldown. Also provides the `faces` (enrolment) and `vision`
// (status, snapshot) services and the vision.* / face.* commands.
//
// Failure policy: a missing or corrupt model file, an unusable key file or a dead
// inference worker makes face access unavailable — loudly (health not ok with the
// reason, an alarm record, an error log) — while the module, and with it the gateway's
// doors and meters, keeps running.
//
// The models load in the background: start() waits for them only briefly, so on a box
// where the load takes minutes (a Pi's cold SD card, arm64 under qemu) the console, the
// health endpoint and the platform's commands are not held back behind it. Until the
// models are loaded no frame is analysed, so no face is granted. A load slower than
// vision.modelLoadTimeoutS is reported (and still used when it ends); a load that fails
// (a file missing or corrupt, onnxruntime refusing it, the worker dying) is retried with
// a back-off that never gives up, so the technician's fixed file is picked up without a
// restart.
import { join } from 'node:path';
import type { Static } from '@sinclair/typebox';
import { Type } from '@sinclair/typebox';
import type { GatewayModule, ModuleContext, ModuleHealth } from '../module.js';
import { openDatabase, type Db } from '../store/sqlite.js';
import { CommandError } from '../commands/registry.js';
import { Camera, describeSource, type CameraSource, type CameraState, type Frame } from '../../drivers/camera/camera.js';
import type { VisionSchema } from './schema.js';
import { InferenceClient } from './inference.js';
import { ModelsUnavailable, resolveModels, verifyModelFiles, type ResolvedModels } from './models.js';
import { KeyFileError, loadOrCreateKey, TemplateStore, type Match } from './templates.js';
import { Confirmer, Cooldown, RateLimit } from './decision.js';
import { EvidenceStreak, judge, marginFor, policyFor, thresholdFor, type PolicyOptions } from './policy.js';
import { learnFromGate } from './learn.js';
import { Enroller, EnrolError } from './enrol.js';
import { ExternalGarbageBound } from './gc.js';
import { ImageHelper } from './imaging.js';
import { cropImage } from './image.js';
import type { AnalyzeResult } from './worker.js';
import type { VisionApi, VisionSnapshot, VisionStatus } from './api.js';
import { backoffDelay } from '../backoff.js';
import { visionCapability } from './capability.js';

export type VisionConfig = Static<typeof VisionSchema>;

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
    'vision.camera': CameraState;
  }
}

/** Longest start() waits for the models before the rest of the gateway starts regardless. */
const START_WAIT_MS = 10_000;

/** Knobs the config does not offer (tests: a load timeout far shorter than a real load, quick retries). */
export interface VisionTestOptions {
  loadTimeoutMs?: number;
  retryMinMs?: number;
  retryMaxMs?: number;
}

type LoadState = NonNullable<VisionStatus['modelLoad']>;

const UNKNOWN = '\u0000unknown';
const ALLOWED_REFRESH_MS = 2000;
const SPOOF = '\u0000spoof';

export function cameraSource(c: VisionConfig['camera']['source']): CameraSource {
  if (c.kind === 'rtsp') return { kind: 'rtsp', url: c.url ?? '', transport: c.transport };
  if (c.kind === 'v4l2') return { kind: 'v4l2', device: c.device ?? '/dev/video0' };
  return { kind: 'file', path: c.path ?? '' };
}

export class VisionModule implements GatewayModule {
  readonly name = 'vision';
  private problem: string | undefined;
  private resolved: ResolvedModels | undefined;
  /** Embedding length of the selected recognizer (known from the manifest even when its file is bad). */
  private dim: number | undefined;
  private storeDb: Db | undefined;
  private unguard: (() => void) | undefined;
  private store: TemplateStore | undefined;
  private inference: InferenceClient | undefined;
  private camera: Camera | undefined;
  private busy = false;
  private stopped = false;
  private sweepTimer: NodeJS.Timeout | undefined;
  private lastAnalysis: { faces: AnalyzeResult['faces']; at: number } | undefined;
  private readonly confirmer: Confirmer;
  /** K distinct frames agreeing on one person (policy.ts). */
  private readonly evidence: EvidenceStreak;
  private policy: PolicyOptions | undefined;
  /** Persons the door lets in now (refreshed every ALLOWED_REFRESH_MS); undefined: every enrolled person. */
  private allowed: { set: ReadonlySet<string> | undefined; at: number } | undefined;
  private readonly cooldown: Cooldown;
  private readonly limiter: RateLimit;
  private readonly counters: Record<string, number> = {};
  /**
   * ffmpeg's pipe chunks (0.9 MB per frame) die young: a scavenge every 1 MB of them keeps
   * them from piling up (gc.ts). 1 MB rather than 2 MB (with the worker's bound at 1 MB
   * too): gateway RSS median −2 MB, no CPU or latency change measured (bench:vision part 4).
   */
  private readonly garbage = new ExternalGarbageBound(1048576, 'minor');
  /** sharp runs in a helper process started on demand (imaging.ts): libvips never loads into the gateway. */
  private readonly imaging: ImageHelper;
  private readonly m;
  private readonly log;
  private load: LoadState = { state: 'loading', attempts: 0, failures: 0, since: 0 };
  /** Why the models are not loaded (slow or failed load); cleared once they are. */
  private loadProblem: string | undefined;
  /** The last load problem logged and raised as an alarm: a retry failing the same way stays quiet. */
  private reported: string | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private slowTimer: NodeJS.Timeout | undefined;
  private firstOutcome: (() => void) | undefined;

  constructor(
    private readonly ctx: ModuleContext,
    private readonly cfg: VisionConfig,
    private readonly testing: VisionTestOptions = {},
  ) {
    this.log = ctx.log.child({ mod: 'vision' });
    this.confirmer = new Confirmer(cfg.match.confirmFrames, cfg.match.windowMs);
    this.evidence = new EvidenceStreak(cfg.match.confirmFrames, cfg.match.windowMs, cfg.match.minFrameGapMs, cfg.match.maxRepeatSimilarity);
    this.cooldown = new Cooldown(cfg.match.cooldownS * 1000);
    this.limiter = new RateLimit((kind) => (kind === 'spoof' ? cfg.events.spoofIntervalS : cfg.events.unknownIntervalS) * 1000);
    this.imaging = new ImageHelper({ maxQueued: cfg.queue });
    const reg = ctx.metrics;
    this.m = {
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
    const self = this;
    reg.gauge({
      name: 'estate_vision_available',
      help: '1 when face access is working (models loaded, worker running, camera streaming)',
      collect() {
        this.set(self.health().ok ? 1 : 0);
      },
    });
    reg.gauge({
      name: 'estate_vision_templates',
      help: 'Face templates loaded',
      collect() {
        this.set(self.store?.count() ?? 0);
      },
    });
    reg.gauge({
      name: 'estate_camera_streaming',
      help: '1 when the camera delivers frames',
      collect() {
        this.set(self.camera?.state().state === 'streaming' ? 1 : 0);
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
          this.set(self.camera?.stats()[key] ?? 0);
        },
      });
    }
  }

  private count(outcome: string): void {
    this.counters[outcome] = (this.counters[outcome] ?? 0) + 1;
    this.m.frames.inc({ outcome });
  }

  /** Permanent problems (config, key) set `problem`; a load problem passes `attempt` and is retried. */
  private fail(message: string, attempt?: number): void {
    if (attempt === undefined) this.problem = message;
    this.log.error({ problem: message, ...(attempt !== undefined ? { attempt } : {}) }, 'FACE ACCESS UNAVAILABLE: the gateway runs on without it');
    void this.ctx.outbox.append({ stream: 'alarm', type: 'vision.unavailable', data: { message, doorId: this.cfg.doorId } }).catch(() => {});
  }

  async start(): Promise<void> {
    const enroller = new Enroller({
      store: () => this.store,
      inference: () => (this.inference?.ready ? this.inference : undefined),
      imaging: this.imaging,
      unavailable: () => this.problem ?? (this.inference?.ready ? undefined : (this.loadProblem ?? 'face analysis is not running')),
      limits: this.cfg.enrolment,
      dim: () => this.dim,
      keepPhotos: this.cfg.privacy.keepPhotos,
      count: (outcome) => this.m.enrol.inc({ outcome }),
      audit: (type, data) => void this.ctx.outbox.append({ stream: 'audit', type, data }).catch(() => {}),
      room: (bytes) => this.ctx.storage?.roomFor?.(bytes),
      matchThreshold: () => {
        const thr = this.currentThreshold();
        return thr !== undefined && this.resolved ? { metric: this.resolved.metric, threshold: thr } : undefined;
      },
    });
    // A decoded enrolment photo (up to 1600 px, 7.7 MB) outlives the scavenges of its
    // request and would wait for V8's next full collection: collect once per enrolment
    // (rare; a few ms on this thread).
    this.ctx.services.provide('faces', {
      enrol: (personId, input) =>
        enroller.enrol(personId, input).finally(() => {
          if (!input.photos?.length) return;
          this.garbage.collect('major');
        }),
      remove: (personId) => enroller.remove(personId),
      count: (personId) => enroller.count(personId),
      setGateUpdates: (personId, consent) => enroller.setGateUpdates(personId, consent),
      gateUpdates: (personId) => enroller.gateUpdates(personId),
    });
    this.ctx.services.provide('vision', this.api());
    this.registerCommands(enroller);

    if (!this.cfg.doorId) return this.fail('vision.doorId is not set');
    let r: ResolvedModels;
    try {
      r = resolveModels(this.cfg);
    } catch (err) {
      return this.fail((err as Error).message);
    }
    // The template store opens even when the model files are bad: deleting a person's
    // biometric data, and enrolling ready-made embeddings, must keep working.
    this.dim = r.models.recognizer.embedding.dim;
    try {
      const keyFile = this.cfg.privacy.keyFile ?? join(this.ctx.dataDir, 'keys', 'faces.key');
      const key = loadOrCreateKey(keyFile, (msg) => this.log.warn(msg));
      const storePath = join(this.ctx.dataDir, this.cfg.privacy.templatesFile);
      this.storeDb = openDatabase(storePath, { synchronous: 'full', log: this.log }).db;
      // Inside the one disk budget: WAL bounded and checked like the gateway's own databases.
      this.unguard = this.ctx.storage?.guard?.('faces', this.storeDb, storePath);
      this.store = new TemplateStore({
        db: this.storeDb,
        key,
        model: r.recognizerId,
        dim: r.models.recognizer.embedding.dim,
        metric: r.metric,
        l2Normalise: r.l2Normalise,
        now: () => this.ctx.clock.now(),
      });
      if (!this.store.keyMatches()) return this.fail(`template key ${keyFile} is not the key the stored templates were sealed with: restore the key file or re-enrol`);
      if (this.store.unreadable) this.log.error({ unreadable: this.store.unreadable }, 'face templates that cannot be decrypted were skipped');
    } catch (err) {
      return this.fail(err instanceof KeyFileError ? err.message : `template store: ${(err as Error).message}`);
    }
    this.sweep();
    this.sweepTimer = setInterval(() => this.sweep(), 3600_000).unref();
    try {
      this.policy = policyFor(r.models.recognizer, this.cfg.match);
      thresholdFor(this.policy, 1, 1);
    } catch (err) {
      return this.fail(`match policy: ${(err as Error).message}`);
    }
    this.resolved = r;
    // Whichever comes first: the models loaded, a load failed or overran its timeout, or
    // START_WAIT_MS. A normal box reports face access running when the gateway has started.
    const first = new Promise<void>((resolve) => (this.firstOutcome = resolve));
    let waited: NodeJS.Timeout | undefined;
    this.runLoad(r);
    await Promise.race([first, new Promise<void>((resolve) => (waited = setTimeout(resolve, START_WAIT_MS)))]);
    clearTimeout(waited);
    this.firstOutcome = undefined;
  }

  private loadTimeoutMs(): number {
    return this.testing.loadTimeoutMs ?? this.cfg.modelLoadTimeoutS * 1000;
  }

  private runLoad(r: ResolvedModels): void {
    this.attemptLoad(r).catch((err) => this.log.error({ err: String(err) }, 'face model load: unexpected failure'));
  }

  /**
   * One load of the models: check the files, then start a worker and wait for its sessions.
   * Never rejects: a failure is reported and the next attempt scheduled.
   */
  private async attemptLoad(r: ResolvedModels): Promise<void> {
    if (this.stopped) return;
    this.load = { ...this.load, state: this.loadProblem ? this.load.state : 'loading', attempts: this.load.attempts + 1, since: this.ctx.clock.now() };
    const timeoutMs = this.loadTimeoutMs();
    let client: InferenceClient | undefined;
    // From the first byte read: on a cold SD card the hash check is part of the slowness.
    // Reported, not abandoned: stopping a worker in the middle of its load would abort the
    // process (inference.ts), and on a slow box the next attempt would be just as slow.
    this.slowTimer = setTimeout(() => this.loadFailed('timeout', `face models not loaded within ${timeoutMs / 1000} s (vision.modelLoadTimeoutS); still loading`, false), timeoutMs);
    this.slowTimer.unref();
    try {
      await verifyModelFiles(r);
      if (this.stopped) return;
      client = InferenceClient.create({
        engine: { models: r.models, dir: r.dir, threads: this.cfg.threads, detectThreshold: r.detectThreshold },
        maxQueuedPhotos: this.cfg.queue,
        requestTimeoutMs: this.cfg.requestTimeoutS * 1000,
      });
      this.inference = client;
      await client.load();
    } catch (err) {
      clearTimeout(this.slowTimer);
      if (this.inference === client) this.inference = undefined;
      if (this.stopped) return;
      const files = err instanceof ModelsUnavailable;
      this.loadFailed(files ? 'files' : 'load', files ? (err as Error).message : `inference worker: ${(err as Error)?.message ?? String(err)}`, true);
      this.scheduleRetry(r);
      return;
    }
    clearTimeout(this.slowTimer);
    if (this.stopped) return;
    this.loaded(client, r);
  }

  private loadFailed(reason: 'files' | 'load' | 'timeout', message: string, retry: boolean): void {
    this.loadProblem = message;
    this.load = { ...this.load, state: reason === 'timeout' ? 'slow' : 'failed', failures: this.load.failures + 1, lastError: message };
    this.m.loadFailures.inc({ reason });
    if (message !== this.reported) {
      this.reported = message;
      this.fail(message, this.load.attempts);
    } else this.log.debug({ problem: message, attempts: this.load.attempts }, 'face model load failed again');
    if (retry) this.log.info({ inS: seconds(this.retryDelayMs()) }, 'face models: retrying the load');
    this.firstOutcome?.();
  }

  private retryDelayMs(): number {
    const min = this.testing.retryMinMs ?? 5_000;
    const max = this.testing.retryMaxMs ?? 300_000;
    return backoffDelay(this.load.failures - 1, { minMs: min, maxMs: max });
  }

  private scheduleRetry(r: ResolvedModels): void {
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.runLoad(r);
    }, this.retryDelayMs());
    this.retryTimer.unref();
  }

  private loaded(client: InferenceClient, r: ResolvedModels): void {
    const recovered = this.loadProblem !== undefined;
    this.loadProblem = undefined;
    this.reported = undefined;
    this.load = { ...this.load, state: 'ready', since: this.ctx.clock.now() };
    client.on('crash', (err: Error) => this.log.error({ err: String(err) }, 'inference worker crashed; restarting'));
    client.on('timeout', () => this.log.error('inference request timed out: the worker is slow or stuck; its answer is awaited and the next frame waits for it'));
    client.on('restarted', () => this.log.warn('inference worker restarted'));
    if (this.cfg.liveness.enabled && !client.livenessAvailable) this.log.warn('liveness enabled but no liveness model is loaded');
    if (recovered) {
      this.log.warn({ attempts: this.load.attempts, failures: this.load.failures }, 'face models loaded: face access available again');
      void this.ctx.outbox.append({ stream: 'alarm', type: 'vision.available', data: { doorId: this.cfg.doorId, attempts: this.load.attempts } }).catch(() => {});
    }
    this.startCamera();
    this.log.info({ door: this.cfg.doorId, camera: describeSource(cameraSource(this.cfg.camera.source)), templates: this.store!.count(), threshold: r.matchThreshold, metric: r.metric }, 'face access running');
    this.firstOutcome?.();
  }

  private startCamera(): void {
    const c = this.cfg.camera;
    const cam = new Camera({
      source: cameraSource(c.source),
      width: c.width,
      height: c.height,
      fps: c.fps,
      staleMs: c.staleS * 1000,
      frozenMs: c.frozenS * 1000,
      reconnectMinMs: c.reconnectMinMs,
      reconnectMaxMs: c.reconnectMaxMs,
      now: () => this.ctx.clock.now(),
    });
    cam.on('state', (s) => {
      this.ctx.bus.emit('vision.camera', s);
      const level = s.state === 'streaming' || s.state === 'connecting' || s.state === 'stopped' ? 'info' : 'warn';
      this.log[level]({ state: s.state, reason: s.reason }, 'camera state');
      if (s.state !== 'connecting' && s.state !== 'stopped')
        void this.ctx.outbox.append({ stream: 'event', type: 'camera.state', data: { doorId: this.cfg.doorId, state: s.state, ...(s.reason ? { reason: s.reason } : {}) } }).catch(() => {});
    });
    cam.on('frame', () => {
      this.garbage.check();
      this.pump();
    });
    this.camera = cam;
    cam.start();
  }

  /** Analyse the newest frame whenever the worker is free; older frames are dropped by the camera. */
  private pump(): void {
    if (this.busy || this.stopped || !this.inference?.ready || !this.camera) return;
    const f = this.camera.take();
    if (!f) return;
    this.busy = true;
    void this.analyse(f).finally(() => {
      this.camera?.release(f);
      this.busy = false;
      if (!this.stopped) setImmediate(() => this.pump());
    });
  }

  private async analyse(f: Frame): Promise<void> {
    let r: AnalyzeResult;
    try {
      r = await this.inference!.analyzeFrame({ data: new Uint8Array(f.data.buffer, f.data.byteOffset, f.data.length), width: f.width, height: f.height }, this.cfg.quality, this.cfg.liveness.enabled);
    } catch (err) {
      this.count('error');
      this.log.debug({ err: String(err) }, 'frame analysis failed');
      return;
    }
    this.lastAnalysis = { faces: r.faces, at: f.at };
    for (const stage of ['detect', 'liveness', 'align', 'embed', 'total'] as const) {
      const v = r.timings[stage];
      if (v !== undefined) this.m.stage.observe({ stage }, v / 1000);
    }
    if (r.problem) return this.count(r.problem.code);
    const s = r.subject!;
    const lt = this.resolved!.livenessThreshold;
    if (this.cfg.liveness.enabled && s.liveness !== undefined && s.liveness < lt) {
      this.count('spoof');
      if (this.confirmer.observe(SPOOF, f.mono) === SPOOF) void this.event('spoof', f, s.box, { liveness: round(s.liveness), threshold: lt });
      return;
    }
    if (!s.embedding) return this.count('error');
    const t = performance.now();
    const allowed = this.allowedNow(f.mono);
    const match = this.store!.search(s.embedding, allowed);
    const size = this.store!.gallerySize(allowed);
    this.m.stage.observe({ stage: 'search' }, (performance.now() - t) / 1000);
    let v;
    try {
      v = judge(this.policy!, match, size.persons, size.templates);
    } catch (err) {
      // Fail closed: no decision without a valid threshold.
      this.count('error');
      this.log.error({ err: String(err) }, 'match policy failed: no decision');
      return;
    }
    if (v.kind === 'match') {
      this.confirmer.reset();
      const step = this.evidence.observe(v.personId, f.mono, s.embedding);
      this.count(step === 'repeat' ? 'repeat' : 'match');
      if (step === 'confirmed') this.decide(match!, s.liveness, f, v.threshold, size.persons, s.embedding);
      return;
    }
    this.evidence.reset();
    this.count(v.kind === 'ambiguous' ? 'ambiguous' : 'unknown');
    if (this.confirmer.observe(UNKNOWN, f.mono) === UNKNOWN)
      void this.event('unknown', f, s.box, { nearest: match ? round(match.score) : null, threshold: round(v.threshold), searched: size.persons, ...(v.kind === 'ambiguous' ? { ambiguous: true, margin: round(v.margin), requiredMargin: v.required } : {}) });
  }

  /**
   * The persons the door would let in now (the doors module's rules), refreshed every few
   * seconds: the search and the threshold's N cover only them. Without the access service's
   * `mayEnter` every enrolled person is searched.
   */
  private allowedNow(mono: number): ReadonlySet<string> | undefined {
    if (this.allowed && mono - this.allowed.at < ALLOWED_REFRESH_MS) return this.allowed.set;
    const access = this.ctx.services.get('access');
    let set: Set<string> | undefined;
    if (access?.mayEnter) {
      set = new Set();
      for (const p of this.store!.persons()) if (access.mayEnter(this.cfg.doorId!, p)) set.add(p);
    }
    this.allowed = { set, at: mono };
    return set;
  }

  /** The threshold in force for the door's current gallery. */
  private currentThreshold(): number | undefined {
    if (!this.policy || !this.store) return undefined;
    const size = this.store.gallerySize(this.allowed?.set);
    return thresholdFor(this.policy, size.persons, size.templates);
  }

  private decide(match: Match, liveness: number | undefined, f: Frame, threshold: number, searched: number, embedding: Float32Array): void {
    const doorId = this.cfg.doorId!;
    const now = this.ctx.clock.monotonic();
    if (this.cooldown.active(match.personId, now)) return this.count('cooldown');
    this.cooldown.start(match.personId, now);
    const access = this.ctx.services.get('access');
    if (!access) {
      this.count('no_access_service');
      this.log.error({ personId: match.personId }, 'face recognised but no access service (doors module) to decide');
      return;
    }
    const { metric } = this.resolved!;
    const evidence: Record<string, unknown> = {
      metric,
      distance: round(match.score),
      threshold: round(threshold),
      searched,
      frames: this.cfg.match.confirmFrames,
      ...(match.runnerUp ? { margin: round(Math.abs(match.runnerUp.score - match.score)) } : {}),
      ...(liveness !== undefined ? { liveness: round(liveness) } : {}),
    };
    let d;
    try {
      // The contract's score is "higher = more similar": 1 - distance for a distance metric.
      d = access.decide({ doorId, credential: 'face', personId: match.personId, score: round(metric === 'euclidean' ? 1 - match.score : match.score), requestedBy: 'camera', evidence });
    } catch (err) {
      this.count('decide_failed');
      this.log.error({ err: String(err), personId: match.personId }, 'access decision failed');
      return;
    }
    const latencyMs = performance.now() - f.mono;
    this.m.latency.observe(latencyMs / 1000);
    this.m.decisions.inc({ granted: String(d.granted), reason: d.reason });
    // pending: the door asks this person for the PIN (face_and_pin, needsSecondFactor); the
    // doors module records the decision once the PIN is entered or the wait ends.
    this.log.info({ door: doorId, person: match.personId, granted: d.granted, reason: d.reason, ...(d.pending ? { pending: true } : {}), distance: round(match.score), ...(liveness !== undefined ? { liveness: round(liveness) } : {}), latencyMs: Math.round(latencyMs) }, 'face decision');
    this.ctx.bus.emit('vision.decision', { doorId, personId: match.personId, granted: d.granted, reason: d.reason, distance: match.score, ...(liveness !== undefined ? { liveness } : {}), latencyMs, at: this.ctx.clock.now() });
    if (d.granted) this.learn(match, embedding, liveness, threshold);
  }

  /** A granted approach of a consenting resident may improve their record (learn.ts says when). */
  private learn(match: Match, embedding: Float32Array, liveness: number | undefined, threshold: number): void {
    const store = this.store;
    if (!store) return;
    let r;
    try {
      r = learnFromGate(store, this.cfg.enrolment.gateUpdates, {
        match,
        embedding,
        metric: this.resolved!.metric,
        threshold,
        requiredMargin: marginFor(this.policy!),
        liveness: this.cfg.liveness.enabled ? liveness : undefined,
        livenessThreshold: this.resolved!.livenessThreshold,
        now: this.ctx.clock.now(),
      });
    } catch (err) {
      // A failed write (full disk…) loses an improvement, never a decision: the door was already decided.
      this.m.learned.inc({ outcome: 'failed' });
      this.log.warn({ err: String(err), personId: match.personId }, 'learning from the gate capture failed');
      return;
    }
    this.m.learned.inc({ outcome: r.outcome });
    if (r.outcome !== 'learned') return;
    this.log.info({ person: match.personId, templates: r.templates }, 'face record updated from a gate capture (resident consented)');
    void this.ctx.outbox
      .append({ stream: 'audit', type: 'face.learned', data: { personId: match.personId, doorId: this.cfg.doorId, templates: r.templates, learned: store.learned(match.personId).count, score: round(r.score!) } })
      .catch((err) => this.log.error({ err: String(err) }, 'face.learned audit not stored'));
  }

  private async event(kind: 'unknown' | 'spoof', f: Frame, box: [number, number, number, number], data: Record<string, unknown>): Promise<void> {
    const allowed = this.limiter.allow(kind, this.ctx.clock.monotonic());
    this.m.events.inc({ kind, sent: String(allowed) });
    if (!allowed) return;
    const body: Record<string, unknown> = { doorId: this.cfg.doorId, ...data, suppressed: this.limiter.takeSuppressed(kind) };
    if (this.cfg.events.snapshot) {
      try {
        body.snapshot = (await this.faceJpeg(f, box))?.toString('base64') ?? null;
      } catch (err) {
        this.log.warn({ err: String(err) }, 'event snapshot failed');
      }
    }
    await this.ctx.outbox.append({ stream: 'event', type: kind === 'unknown' ? 'face.unknown' : 'face.spoof', ts: f.at, data: body }).catch((err) => this.log.error({ err: String(err) }, 'event not stored'));
  }

  /** A small JPEG of the face (box widened by half, at most 160 px), quality lowered until it fits snapshotMaxBytes. */
  private faceJpeg(f: Frame, box: [number, number, number, number]): Promise<Buffer | undefined> {
    const [x, y, w, h] = box;
    const left = Math.max(0, Math.floor(x - w / 4));
    const top = Math.max(0, Math.floor(y - h / 4));
    // A copy of the region, made before the first await: the camera recycles the frame's
    // buffer once analysis is over.
    const crop = cropImage({ data: f.data, width: f.width, height: f.height }, left, top, Math.ceil(w * 1.5), Math.ceil(h * 1.5)).image;
    return this.imaging.jpeg(crop, { maxSide: 160, qualities: [75, 60, 45, 30, 20], maxBytes: this.cfg.events.snapshotMaxBytes });
  }

  /** Retention: kept photos past their days, templates of people whose validity ended long ago. */
  private sweep(): void {
    const store = this.store;
    if (!store) return;
    const now = this.ctx.clock.now();
    const p = this.cfg.privacy;
    const photos = store.purgePhotosBefore(now - p.photoRetentionDays * 86400_000);
    const access = this.ctx.services.get('access');
    let expired = 0;
    if (access) {
      for (const id of store.persons()) {
        const until = access.person(id)?.validUntil;
        if (until !== undefined && until + p.expiredGraceDays * 86400_000 < now) {
          store.remove(id);
          expired++;
          void this.ctx.outbox.append({ stream: 'audit', type: 'face.expired', data: { personId: id, validUntil: until } }).catch(() => {});
        }
      }
    }
    if (photos || expired) this.log.info({ photos, expired }, 'face data retention sweep');
  }

  private api(): VisionApi {
    return { status: () => this.status(), snapshot: () => this.snapshot() };
  }

  status(): VisionStatus {
    const r = this.resolved;
    const cam = this.camera?.stats();
    const h = this.health();
    const problem = this.problem ?? (h.ok ? undefined : h.message);
    return {
      available: h.ok,
      ...(problem ? { problem } : {}),
      ...(this.cfg.doorId ? { doorId: this.cfg.doorId } : {}),
      ...(cam ? { camera: { state: cam.state, ...(cam.reason ? { reason: cam.reason } : {}), fps: cam.fps, frames: cam.frames, dropped: cam.dropped, restarts: cam.restarts, decodeErrors: cam.decodeErrors, lastFrameAt: cam.lastFrameAt } } : {}),
      templates: this.store?.count() ?? 0,
      ...(r
        ? {
            models: {
              detector: r.models.detector.title,
              recognizer: r.models.recognizer.title,
              liveness: r.models.liveness.map((l) => l.title),
              matchThreshold: round(this.currentThreshold() ?? r.matchThreshold),
              metric: r.metric,
              ...(this.cfg.liveness.enabled ? { livenessThreshold: r.livenessThreshold } : {}),
            },
          }
        : {}),
      counters: { ...this.counters },
      ...(this.resolved ? { modelLoad: { ...this.load } } : {}),
    };
  }

  async snapshot(): Promise<VisionSnapshot | undefined> {
    const f = this.camera?.peek();
    if (!f) return undefined;
    // A copy: the camera recycles the buffer when a newer frame replaces this one.
    const jpeg = await this.imaging.jpeg({ data: Buffer.from(f.data), width: f.width, height: f.height }, { qualities: [80] });
    if (!jpeg) throw new Error('snapshot could not be encoded');
    const a = this.lastAnalysis;
    return { jpeg, width: f.width, height: f.height, at: f.at, faces: a?.faces.map((x) => ({ box: x.box.map((v) => Math.round(v)) as [number, number, number, number], score: round(x.score) })) ?? [], ...(a ? { facesAt: a.at } : {}) };
  }

  private registerCommands(enroller: Enroller): void {
    const none = Type.Object({}, { additionalProperties: false });
    // Status and snapshot show on both face access pages; face.remove on the faces page.
    const commands = this.ctx.commands.forCapability(visionCapability.name);
    commands.register({ name: 'vision.status', role: 'viewer', pages: ['faces', 'camera'], description: 'Face access state: models, camera, templates, counters, and why it is unavailable if it is.', args: none, handler: () => this.status() });
    commands.register({
      name: 'vision.snapshot',
      role: 'technician',
      pages: ['faces', 'camera'],
      description: 'The newest camera frame as a base64 JPEG with the faces detected in the latest analysed frame (boxes and scores).',
      args: none,
      handler: async () => {
        const s = await this.snapshot();
        if (!s) throw new CommandError('no_frame', this.problem ?? 'no camera frame yet');
        return { ...s, jpeg: s.jpeg.toString('base64') };
      },
    });
    commands.register({
      name: 'face.remove',
      role: 'technician',
      description: 'Delete every face template and kept photo of a person (the person record itself stays).',
      args: Type.Object({ personId: Type.String({ minLength: 1, maxLength: 128 }) }, { additionalProperties: false }),
      handler: async (args) => {
        try {
          return { removed: await enroller.remove(args.personId) };
        } catch (err) {
          if (err instanceof EnrolError) throw new CommandError(err.code, err.message);
          throw err;
        }
      },
    });
  }

  health(): ModuleHealth {
    if (this.problem) return { ok: false, message: `face access unavailable: ${this.problem}` };
    if (!this.resolved || !this.store) return { ok: false, message: 'face access starting' };
    if (this.loadProblem) return { ok: false, message: `face access unavailable: ${this.loadProblem}` };
    if (this.load.state === 'loading') return { ok: false, message: `face access: loading the face models (${seconds(this.ctx.clock.now() - this.load.since)} s so far)` };
    if (!this.inference?.ready) return { ok: false, message: 'face access: inference worker not running (restarting)' };
    const cam = this.camera?.stats();
    if (!cam || cam.state !== 'streaming') return { ok: false, message: `camera ${describeSource(cameraSource(this.cfg.camera.source))} ${cam?.state ?? 'not started'}${cam?.reason ? `: ${cam.reason}` : ''}` };
    return { ok: true, detail: { doorId: this.cfg.doorId, templates: this.store.count(), camera: cam } };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.sweepTimer) clearInterval(this.sweepTimer);
    clearTimeout(this.retryTimer);
    clearTimeout(this.slowTimer);
    this.camera?.stop();
    await Promise.all([this.inference?.stop(), this.imaging.stop()]);
    this.unguard?.();
    this.storeDb?.close();
  }
}

function seconds(ms: number): number {
  return Math.round(ms / 100) / 10;
}

function round(v: number): number {
  return Math.round(v * 10000) / 10000;
}

export function createVisionModule(ctx: ModuleContext): GatewayModule | undefined {
  const cfg = ctx.config.vision;
  if (!cfg.enabled) return undefined;
  return new VisionModule(ctx, cfg);
}
