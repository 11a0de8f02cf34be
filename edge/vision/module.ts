// Face access module: camera → per-frame pipeline (pipeline.ts: inference worker, 1:N
// search, K-frame confirmation, door decision through the `access` service, cooldown).
// Also provides the `faces` (enrolment) and `vision` (status, snapshot) services and the
// vision.* / face.* commands (commands.ts). This file only wires: start-up, the model
// load (loader.ts), the camera, retention (retention.ts), metrics (metrics.ts), health.
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
// is retried with a back-off that never gives up (loader.ts).
import { join } from 'node:path';
import type { Static } from '@sinclair/typebox';
import type { GatewayModule, ModuleContext, ModuleHealth } from '../module.js';
import { openDatabase, type Db } from '../store/sqlite.js';
import { describeSource, type Camera, type CameraState } from '../../drivers/camera/camera.js';
import { cameraFromSettings, cameraSource } from '../../drivers/camera/settings.js';
import type { VisionSchema } from './schema.js';
import type { InferenceClient } from './inference.js';
import { resolveModels, type ResolvedModels } from './models.js';
import { KeyFileError, loadOrCreateKey } from './sealing.js';
import { TemplateStore } from './templates.js';
import { policyFor, thresholdFor } from './policy.js';
import { Enroller } from './enrol.js';
import { pace } from './pacing.js';
import type { CommandRegistrar } from '../commands/registry.js';
import { ExternalGarbageBound } from './gc.js';
import { ImageHelper } from './imaging.js';
import type { VisionApi, VisionSnapshot, VisionStatus } from './api.js';
import { createVisionMetrics, type VisionMetrics } from './metrics.js';
import { FacePipeline } from './pipeline.js';
import { Retention } from './retention.js';
import { facesService, registerVisionCommands } from './commands.js';
import { ModelLoader, seconds } from './loader.js';
import { faceJpeg, frameSnapshot, round } from './snapshots.js';
import { visionCapability } from './capability.js';

export type { VisionDecisionEvent } from './pipeline.js';

export type VisionConfig = Static<typeof VisionSchema>;

declare module '../bus.js' {
  interface BusEvents {
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

export class VisionModule implements GatewayModule {
  readonly name = 'vision';
  /** A permanent problem (config, key): face access stays off until the config is fixed. */
  private problem: string | undefined;
  private resolved: ResolvedModels | undefined;
  /** Embedding length of the selected recognizer (known from the manifest even when its file is bad). */
  private dim: number | undefined;
  private storeDb: Db | undefined;
  private unguard: (() => void) | undefined;
  private store: TemplateStore | undefined;
  private pipeline: FacePipeline | undefined;
  private loader: ModelLoader | undefined;
  private retention: Retention | undefined;
  private camera: Camera | undefined;
  private busy = false;
  private stopped = false;
  /** The last frame analysed (its seq) and the wait for a fresher one (pacing.ts). */
  private lastSeq = -1;
  private paceTimer: NodeJS.Timeout | undefined;
  /**
   * ffmpeg's pipe chunks (0.9 MB per frame) die young: a scavenge every 1 MB of them keeps
   * them from piling up (gc.ts). 1 MB rather than 2 MB (with the worker's bound at 1 MB
   * too): gateway RSS median −2 MB, no CPU or latency change measured (bench:vision part 4).
   */
  private readonly garbage = new ExternalGarbageBound(1048576, 'minor');
  /** sharp runs in a helper process started on demand (imaging.ts): libvips never loads into the gateway. */
  private readonly imaging: ImageHelper;
  private readonly m: VisionMetrics;
  private readonly log;
  private readonly commands: CommandRegistrar;

  constructor(
    private readonly ctx: ModuleContext,
    private readonly cfg: VisionConfig,
    private readonly testing: VisionTestOptions = {},
  ) {
    this.log = ctx.log.child({ mod: 'vision' });
    this.commands = ctx.commands.forCapability(visionCapability.name);
    this.imaging = new ImageHelper({ maxQueued: cfg.queue });
    this.m = createVisionMetrics(ctx.metrics, { available: () => this.health().ok, templates: () => this.store?.count() ?? 0, camera: () => this.camera });
  }

  private get inference(): InferenceClient | undefined {
    return this.loader?.inference;
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
      unavailable: () => this.problem ?? (this.inference?.ready ? undefined : (this.loader?.problem ?? 'face analysis is not running')),
      limits: this.cfg.enrolment,
      dim: () => this.dim,
      keepPhotos: this.cfg.privacy.keepPhotos,
      count: (outcome) => this.m.enrol.inc({ outcome }),
      audit: (type, data) => void this.ctx.outbox.append({ stream: 'audit', type, data }).catch(() => {}),
      room: (bytes) => this.ctx.storage?.roomFor?.(bytes),
      matchThreshold: () => {
        const thr = this.pipeline?.currentThreshold();
        return thr !== undefined && this.resolved ? { metric: this.resolved.metric, threshold: thr } : undefined;
      },
    });
    // A decoded enrolment photo (up to 1600 px, 7.7 MB) outlives the scavenges of its
    // request and would wait for V8's next full collection: collect once per enrolment
    // (rare; a few ms on this thread).
    this.ctx.services.provide(
      'faces',
      facesService(enroller, () => this.garbage.collect('major')),
    );
    this.ctx.services.provide('vision', this.api());
    registerVisionCommands(this.commands, { status: () => this.status(), snapshot: () => this.snapshot(), problem: () => this.problem, enroller });

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
    let store: TemplateStore;
    try {
      const keyFile = this.cfg.privacy.keyFile ?? join(this.ctx.dataDir, 'keys', 'faces.key');
      const key = loadOrCreateKey(keyFile, (msg) => this.log.warn(msg));
      const storePath = join(this.ctx.dataDir, this.cfg.privacy.templatesFile);
      this.storeDb = openDatabase(storePath, { synchronous: 'full', log: this.log }).db;
      // Inside the one disk budget: WAL bounded and checked like the gateway's own databases.
      this.unguard = this.ctx.storage?.guard?.('faces', this.storeDb, storePath);
      store = this.store = new TemplateStore({
        db: this.storeDb,
        key,
        model: r.recognizerId,
        dim: r.models.recognizer.embedding.dim,
        metric: r.metric,
        l2Normalise: r.l2Normalise,
        now: () => this.ctx.clock.now(),
      });
      if (!store.keyMatches()) return this.fail(`template key ${keyFile} is not the key the stored templates were sealed with: restore the key file or re-enrol`);
      if (store.unreadable) this.log.error({ unreadable: store.unreadable }, 'face templates that cannot be decrypted were skipped');
    } catch (err) {
      return this.fail(err instanceof KeyFileError ? err.message : `template store: ${(err as Error).message}`);
    }
    this.retention = new Retention({ store, privacy: this.cfg.privacy, clock: this.ctx.clock, services: this.ctx.services, outbox: this.ctx.outbox, log: this.log });
    this.retention.start();
    try {
      const policy = policyFor(r.models.recognizer, this.cfg.match);
      this.pipeline = new FacePipeline({
        cfg: this.cfg,
        // The client of the load in force (a failed load is retried with a new one).
        inference: { analyzeFrame: (...a) => this.inference!.analyzeFrame(...a) },
        store,
        policy,
        models: r,
        clock: this.ctx.clock,
        services: this.ctx.services,
        bus: this.ctx.bus,
        outbox: this.ctx.outbox,
        log: this.log,
        metrics: this.m,
        faceJpeg: (f, box) => faceJpeg(this.imaging, f, box, this.cfg.events.snapshotMaxBytes),
      });
      thresholdFor(policy, 1, 1);
    } catch (err) {
      return this.fail(`match policy: ${(err as Error).message}`);
    }
    this.resolved = r;
    const loader = (this.loader = new ModelLoader({
      models: r,
      threads: this.cfg.threads,
      maxQueuedPhotos: this.cfg.queue,
      requestTimeoutMs: this.cfg.requestTimeoutS * 1000,
      timeoutMs: this.testing.loadTimeoutMs ?? this.cfg.modelLoadTimeoutS * 1000,
      retryMinMs: this.testing.retryMinMs ?? 5_000,
      retryMaxMs: this.testing.retryMaxMs ?? 300_000,
      clock: this.ctx.clock,
      log: this.log,
      metrics: this.m,
      report: (message, attempt) => this.fail(message, attempt),
      loaded: (client, recovered) => this.loaded(client, r, recovered),
    }));
    // Whichever comes first: the models loaded, a load failed or overran its timeout, or
    // START_WAIT_MS. A normal box reports face access running when the gateway has started.
    let waited: NodeJS.Timeout | undefined;
    loader.start();
    await Promise.race([loader.firstOutcome, new Promise<void>((resolve) => (waited = setTimeout(resolve, START_WAIT_MS)))]);
    clearTimeout(waited);
  }

  private loaded(client: InferenceClient, r: ResolvedModels, recovered: boolean): void {
    client.on('crash', (err: Error) => this.log.error({ err: String(err) }, 'inference worker crashed; restarting'));
    client.on('timeout', () => this.log.error('inference request timed out: the worker is slow or stuck; its answer is awaited and the next frame waits for it'));
    client.on('restarted', () => this.log.warn('inference worker restarted'));
    if (this.cfg.liveness.enabled && !client.livenessAvailable) this.log.warn('liveness enabled but no liveness model is loaded');
    if (recovered) {
      const load = this.loader!.state;
      this.log.warn({ attempts: load.attempts, failures: load.failures }, 'face models loaded: face access available again');
      void this.ctx.outbox.append({ stream: 'alarm', type: 'vision.available', data: { doorId: this.cfg.doorId, attempts: load.attempts } }).catch(() => {});
    }
    this.startCamera();
    this.log.info({ door: this.cfg.doorId, camera: describeSource(cameraSource(this.cfg.camera.source)), templates: this.store!.count(), threshold: r.matchThreshold, metric: r.metric }, 'face access running');
  }

  private startCamera(): void {
    const c = this.cfg.camera;
    const cam = cameraFromSettings(c, () => this.ctx.clock.now());
    cam.on('state', (s) => {
      this.ctx.bus.emit('vision.camera', s);
      const level = s.state === 'streaming' || s.state === 'connecting' || s.state === 'stopped' ? 'info' : 'warn';
      this.log[level]({ state: s.state, reason: s.reason }, 'camera state');
      if (s.state !== 'connecting' && s.state !== 'stopped') void this.ctx.outbox.append({ stream: 'event', type: 'camera.state', data: { doorId: this.cfg.doorId, state: s.state, ...(s.reason ? { reason: s.reason } : {}) } }).catch(() => {});
    });
    cam.on('frame', () => {
      this.garbage.check();
      this.pump();
    });
    this.camera = cam;
    cam.start();
  }

  /**
   * Analyse the newest frame whenever the worker is free; older frames are dropped by the
   * camera. A newest frame older than half an interval waits for the next one (pacing.ts);
   * `force` (no newer frame came within an interval) analyses it anyway.
   */
  private pump(force = false): void {
    if (this.busy || this.stopped || !this.inference?.ready || !this.camera || !this.pipeline) return;
    const newest = this.camera.peek();
    if (!newest || newest.seq === this.lastSeq) return;
    if (!force) {
      const p = pace(performance.now() - newest.mono, this.cfg.camera.fps);
      if (!p.take) {
        this.paceTimer ??= setTimeout(() => {
          this.paceTimer = undefined;
          this.pump(true);
        }, p.waitMs);
        return;
      }
    }
    if (this.paceTimer) clearTimeout(this.paceTimer);
    this.paceTimer = undefined;
    const f = this.camera.take();
    if (!f) return;
    this.lastSeq = f.seq;
    this.busy = true;
    void this.pipeline.analyse(f).finally(() => {
      this.camera?.release(f);
      this.busy = false;
      if (!this.stopped) setImmediate(() => this.pump());
    });
  }

  /** The threshold in force for the door's current gallery. */
  private currentThreshold(): number | undefined {
    return this.pipeline?.currentThreshold();
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
      counters: this.m.counters(),
      ...(this.resolved && this.loader ? { modelLoad: { ...this.loader.state } } : {}),
    };
  }

  snapshot(): Promise<VisionSnapshot | undefined> {
    return frameSnapshot(this.imaging, this.camera?.peek(), this.pipeline?.lastAnalysis);
  }

  health(): ModuleHealth {
    if (this.problem) return { ok: false, message: `face access unavailable: ${this.problem}` };
    if (!this.resolved || !this.store || !this.loader) return { ok: false, message: 'face access starting' };
    if (this.loader.problem) return { ok: false, message: `face access unavailable: ${this.loader.problem}` };
    const load = this.loader.state;
    if (load.state === 'loading') return { ok: false, message: `face access: loading the face models (${seconds(this.ctx.clock.now() - load.since)} s so far)` };
    if (!this.inference?.ready) return { ok: false, message: 'face access: inference worker not running (restarting)' };
    const cam = this.camera?.stats();
    if (cam?.state !== 'streaming') return { ok: false, message: `camera ${describeSource(cameraSource(this.cfg.camera.source))} ${cam?.state ?? 'not started'}${cam?.reason ? `: ${cam.reason}` : ''}` };
    return { ok: true, detail: { doorId: this.cfg.doorId, templates: this.store.count(), camera: cam } };
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.paceTimer) clearTimeout(this.paceTimer);
    this.commands.unregisterAll();
    this.retention?.stop();
    this.loader?.stop();
    this.camera?.stop();
    await Promise.all([this.inference?.stop(), this.imaging.stop()]);
    this.unguard?.();
    this.storeDb?.close();
  }
}

export function createVisionModule(ctx: ModuleContext): GatewayModule | undefined {
  const cfg = ctx.config.vision;
  if (!cfg.enabled) return undefined;
  return new VisionModule(ctx, cfg);
}
