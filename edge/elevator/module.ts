// The elevator e-bike blocker at run time: per car a camera, the object detector (in an
// inference worker), the hold decision (decision.ts), the door-hold relay (relay.ts, safe
// state = released) and the voice prompt (audio.ts). Records upstream through the outbox:
// `elevator.ebike` (a hold starts; optional size-capped JPEG), `elevator.release` (a hold
// ends, with why), `elevator.override` (a technician's release: who, from where — the
// audit) and alarms `elevator.camera_lost` / `elevator.camera_restored`.
//
// Camera lost (stalled, frozen, failed): the car's relay is released at once (a blind
// blocker must not keep a car held) and the alarm raised; detection resumes with an
// empty window when frames come back.
import { createHash } from 'node:crypto';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Type } from '@sinclair/typebox';
import type { GatewayModule, ModuleContext, ModuleHealth } from '../module.js';
import { describeSource, type Camera, type CameraState, type Frame } from '../../drivers/camera/camera.js';
import { cameraFromSettings, cameraSource } from '../../drivers/camera/settings.js';
import { openGpioBackend, realTimers, type GpioBackend, type Timers } from '../../drivers/gpio/index.js';
import { SimulatedGpio } from '../../drivers/gpio/simulated.js';
import { CommandError } from '../commands/registry.js';
import { Ident } from '../config/types.js';
import { defaultModelsDir, getModel, loadManifest } from '../../models/manifest.js';
import type { CarConfig, ElevatorConfig } from './schema.js';
import { HoldDecision, type DecisionChange } from './decision.js';
import { HoldRelay } from './relay.js';
import { AplayPlayer, SimulatedPlayer, preparePrompt, type AudioPlayer, type PromptResult } from './audio.js';
import { findEbike, type Detection } from './detector.js';
import { ObjectClient } from './objects-client.js';
import { objectEngineOptions } from './objects-engine.js';
import { elevatorCapability } from './capability.js';
import { ExternalGarbageBound } from '../vision/gc.js';
import type { ElevatorReleaseResult, ElevatorSnapshot, ElevatorStatusResult } from '../console/api-types.js';
import type {} from './api.js';

export interface CarStatus {
  id: string;
  name?: string;
  state: 'clear' | 'holding' | 'blind';
  holdingSince?: number;
  overrideUntil?: number;
  camera: CameraState;
  relay: { pin: number; drive: string; energised: boolean };
  positives: number;
  lastDetections: Array<{ cls: string; score: number; box: Detection['box']; at: number }>;
  lastEbikeAt?: number;
  counters: CarCounters;
}
export interface CarCounters {
  frames: number;
  ebikeFrames: number;
  holds: number;
  releases: number;
  overrides: number;
  cameraLost: number;
  detectFailures: number;
  promptsPlayed: number;
}

declare module '../bus.js' {
  interface BusEvents {
    'elevator.state': { carId: string; state: CarStatus['state']; cause: string; at: number };
    'elevator.ebike': { carId: string; score: number; box: Detection['box']; at: number };
    'elevator.alarm': { carId: string; alarm: 'camera_lost'; active: boolean; at: number; reason?: string };
  }
}

export const ELEVATOR_COMMANDS = ['elevator.status', 'elevator.release'] as const;

class Car {
  readonly decision: HoldDecision;
  readonly relay: HoldRelay;
  camera: Camera | undefined;
  busy = false;
  blind = false;
  promptTimer: NodeJS.Timeout | undefined;
  lastDetections: CarStatus['lastDetections'] = [];
  lastEbikeAt: number | undefined;
  lastEbike: { det: Detection; frame?: Frame } | undefined;
  readonly counters: CarCounters = { frames: 0, ebikeFrames: 0, holds: 0, releases: 0, overrides: 0, cameraLost: 0, detectFailures: 0, promptsPlayed: 0 };
  constructor(
    readonly cfg: CarConfig,
    ecfg: ElevatorConfig,
    t: Timers,
  ) {
    this.decision = new HoldDecision({ k: ecfg.k, n: ecfg.n, releaseK: ecfg.releaseK, minHoldMs: ecfg.minHoldS * 1000, overrideMs: ecfg.overrideS * 1000 });
    this.relay = new HoldRelay({ pin: cfg.relay.pin, activeLow: cfg.relay.activeLow, drive: cfg.relay.drive, pulseMs: cfg.relay.pulseMs, label: `elevator ${cfg.id} door hold` }, t);
  }
}

export interface ElevatorDeps {
  /** A GPIO backend to use instead of the configured one (tests: a simulator they observe). */
  gpio?: GpioBackend;
  player?: AudioPlayer;
  timers?: Timers;
}

export class ElevatorModule implements GatewayModule {
  readonly name = 'elevator';
  private readonly cfg: ElevatorConfig;
  private readonly cars = new Map<string, Car>();
  private backend: GpioBackend | undefined;
  private detector: ObjectClient | undefined;
  private player: AudioPlayer | undefined;
  private prompt: PromptResult | undefined;
  private problem: string | undefined;
  private stopped = false;
  private readonly garbage = new ExternalGarbageBound(1048576, 'minor');
  private readonly t: Timers;
  private readonly log;

  constructor(
    private readonly ctx: ModuleContext,
    private readonly deps: ElevatorDeps = {},
  ) {
    this.cfg = ctx.config.elevator;
    this.t = deps.timers ?? realTimers;
    this.log = ctx.log.child({ module: 'elevator' });
    for (const c of this.cfg.cars) this.cars.set(c.id, new Car(c, this.cfg, this.t));
  }

  private now(): number {
    return this.ctx.clock.now();
  }

  private record(stream: 'event' | 'alarm', type: string, data: Record<string, unknown>): void {
    this.ctx.outbox.append({ stream, type, data, ts: this.now() }).catch((err) => this.log.error({ err: String(err), type }, 'could not store elevator record'));
  }

  async start(): Promise<void> {
    // Relays first, released: whatever else fails, no car is held by a half-started gateway.
    this.backend = this.deps.gpio ?? openGpioBackend(this.cfg.gpio, { timers: this.t, info: (m) => this.log.info(m), warn: (m, d) => this.log.warn(d ?? {}, m) });
    for (const car of this.cars.values()) await car.relay.open(this.backend);
    this.player = this.deps.player ?? (this.cfg.prompt.player === 'simulated' ? new SimulatedPlayer(this.cfg.prompt.device) : new AplayPlayer(this.cfg.prompt.device));
    try {
      this.prompt = preparePrompt({ file: this.cfg.prompt.file, text: this.cfg.prompt.text, voice: this.cfg.prompt.voice, dir: join(this.ctx.dataDir, 'elevator') });
      if (this.prompt.note) this.log.warn(this.prompt.note);
    } catch (err) {
      this.log.error({ err: String(err) }, 'elevator prompt unavailable: cars are still held, silently');
    }
    registerElevatorCommands(this);
    this.ctx.services.provide('elevator', { status: () => this.status(), snapshot: (carId) => this.snapshot(carId) });
    try {
      const manifest = loadManifest(join(defaultModelsDir(), 'manifest.json'));
      const m = getModel(manifest, this.cfg.model, 'object-detector');
      const file = join(this.cfg.modelsDir ?? defaultModelsDir(), m.file);
      if (!existsSync(file)) throw new Error(`object detector ${m.file} is not installed in ${this.cfg.modelsDir ?? defaultModelsDir()}: run npm run models -- --only ${this.cfg.model}`);
      const sha = createHash('sha256').update(readFileSync(file)).digest('hex');
      if (sha !== m.sha256) throw new Error(`object detector ${file}: sha256 ${sha} differs from the manifest (${m.sha256}); reinstall with npm run models`);
      this.detector = new ObjectClient(objectEngineOptions(m, file, this.cfg.threads, Math.min(0.2, this.cfg.minScore)));
      await this.detector.start();
    } catch (err) {
      // Without a detector nothing can be held: the relays stay released (safe), health says why.
      this.problem = (err as Error).message;
      this.log.error({ err: this.problem }, 'elevator e-bike blocker not running');
      return;
    }
    for (const car of this.cars.values()) this.startCamera(car);
    this.log.info({ cars: [...this.cars.keys()], model: this.cfg.model }, 'elevator e-bike blocker running');
  }

  private startCamera(car: Car): void {
    const c = car.cfg.camera;
    const cam = cameraFromSettings(c, () => this.now());
    cam.on('state', (s: CameraState) => this.onCamera(car, s));
    cam.on('frame', () => {
      // The camera's pipe chunks die young but are freed only by a collection: bounded here
      // as in face access (edge/vision/gc.ts; a minor collection, ~1 ms).
      this.garbage.check();
      this.pump(car);
    });
    car.camera = cam;
    cam.start();
    this.log.info({ car: car.cfg.id, camera: describeSource(cameraSource(c.source)) }, 'elevator camera started');
  }

  private onCamera(car: Car, s: CameraState): void {
    const lost = s.state === 'stalled' || s.state === 'frozen' || s.state === 'failed';
    if (lost && !car.blind) {
      car.blind = true;
      car.counters.cameraLost++;
      const change = car.decision.reset(s.since, 'camera_lost');
      this.apply(car, change);
      this.ctx.bus.emit('elevator.alarm', { carId: car.cfg.id, alarm: 'camera_lost', active: true, at: s.since, ...(s.reason ? { reason: s.reason } : {}) });
      this.ctx.bus.emit('elevator.state', { carId: car.cfg.id, state: 'blind', cause: 'camera_lost', at: s.since });
      this.record('alarm', 'elevator.camera_lost', { carId: car.cfg.id, state: s.state, ...(s.reason ? { reason: s.reason } : {}), released: change !== undefined });
      this.log.warn({ car: car.cfg.id, state: s.state, reason: s.reason }, 'elevator camera lost: relay released');
    } else if (s.state === 'streaming' && car.blind) {
      car.blind = false;
      this.ctx.bus.emit('elevator.alarm', { carId: car.cfg.id, alarm: 'camera_lost', active: false, at: s.since });
      this.ctx.bus.emit('elevator.state', { carId: car.cfg.id, state: 'clear', cause: 'camera_restored', at: s.since });
      this.record('alarm', 'elevator.camera_restored', { carId: car.cfg.id });
    }
  }

  /** Analyse the newest frame of a car whenever the detector is free (one frame in flight for all cars). */
  private pump(car: Car): void {
    if (this.stopped || car.busy || !this.detector || this.detector.busy || !car.camera) return;
    const f = car.camera.take();
    if (!f) return;
    car.busy = true;
    this.detector
      .detect(f)
      .then((r) => {
        if (this.stopped || car.blind) return;
        car.counters.frames++;
        car.lastDetections = r.detections.slice(0, 8).map((d) => ({ cls: d.cls, score: Math.round(d.score * 1000) / 1000, box: d.box, at: f.at }));
        const ebike = findEbike(r.detections, { minScore: this.cfg.minScore, minAreaFraction: this.cfg.minAreaFraction }, f);
        if (ebike) {
          car.counters.ebikeFrames++;
          car.lastEbikeAt = f.at;
          // The frame is copied (the camera recycles its buffers) only for the snapshot, which is off by default.
          car.lastEbike = { det: ebike, ...(this.cfg.snapshot.enabled ? { frame: { ...f, data: Buffer.from(f.data) } } : {}) };
        }
        this.apply(car, car.decision.frame(ebike !== undefined, f.at));
      })
      .catch((err) => {
        car.counters.detectFailures++;
        this.log.warn({ car: car.cfg.id, err: String(err) }, 'object detection failed on a frame');
      })
      .finally(() => {
        car.camera?.release(f);
        car.busy = false;
        // Give the other cars their turn at the detector, then this one again: the car after
        // this one is offered the free detector first. (Offering in config order let the first
        // car take every free slot when the detector was saturated: measured 27 against 8
        // frames for two cars at load average 9.)
        if (!this.stopped) {
          const cars = [...this.cars.values()];
          const i = cars.indexOf(car);
          for (const c of [...cars.slice(i + 1), ...cars.slice(0, i + 1)]) setImmediate(() => this.pump(c));
        }
      });
  }

  private apply(car: Car, change: DecisionChange | undefined): void {
    if (!change) return;
    const id = car.cfg.id;
    if (change.kind === 'hold') {
      car.relay.hold();
      car.counters.holds++;
      this.playPrompt(car);
      car.promptTimer = setInterval(() => this.playPrompt(car), this.cfg.prompt.repeatS * 1000);
      car.promptTimer.unref();
      const e = car.lastEbike;
      const score = e ? Math.round(e.det.score * 1000) / 1000 : 0;
      const box = e?.det.box ?? { x: 0, y: 0, w: 0, h: 0 };
      this.ctx.bus.emit('elevator.ebike', { carId: id, score, box, at: change.at });
      this.ctx.bus.emit('elevator.state', { carId: id, state: 'holding', cause: 'ebike', at: change.at });
      this.log.warn({ car: id, score }, 'e-bike in the elevator: car held');
      void this.ebikeRecord(car, score, box, change.at);
      return;
    }
    car.relay.release();
    clearInterval(car.promptTimer);
    car.promptTimer = undefined;
    car.counters.releases++;
    this.ctx.bus.emit('elevator.state', { carId: id, state: car.blind ? 'blind' : 'clear', cause: change.reason, at: change.at });
    if (change.reason !== 'stopped') this.record('event', 'elevator.release', { carId: id, reason: change.reason });
    this.log.info({ car: id, reason: change.reason }, 'elevator car released');
  }

  private async ebikeRecord(car: Car, score: number, box: Detection['box'], at: number): Promise<void> {
    const data: Record<string, unknown> = { carId: car.cfg.id, score, box: roundBox(box), detectedAt: at, model: this.cfg.model };
    const frame = car.lastEbike?.frame;
    if (this.cfg.snapshot.enabled && frame) {
      const jpeg = await cappedJpeg(frame, this.cfg.snapshot.maxBytes).catch(() => undefined);
      if (jpeg) data.jpeg = jpeg.toString('base64');
      else data.snapshot = `no JPEG of at most ${this.cfg.snapshot.maxBytes} bytes could be made`;
    }
    this.record('event', 'elevator.ebike', data);
  }

  private playPrompt(car: Car): void {
    if (!this.prompt || !this.player) return;
    this.player.play(this.prompt.file, this.now());
    car.counters.promptsPlayed++;
  }

  // ---- commands ----
  statusOf(car: Car): CarStatus {
    return {
      id: car.cfg.id,
      ...(car.cfg.name ? { name: car.cfg.name } : {}),
      state: car.blind ? 'blind' : car.decision.holding ? 'holding' : 'clear',
      ...(car.decision.since !== undefined ? { holdingSince: car.decision.since } : {}),
      ...(car.decision.overrideActiveUntil !== undefined && car.decision.overrideActiveUntil > this.now() ? { overrideUntil: car.decision.overrideActiveUntil } : {}),
      camera: car.camera?.state() ?? { state: 'idle', since: 0 },
      relay: { pin: car.cfg.relay.pin, drive: car.cfg.relay.drive, energised: car.relay.holding },
      positives: car.decision.positives,
      lastDetections: car.lastDetections,
      ...(car.lastEbikeAt !== undefined ? { lastEbikeAt: car.lastEbikeAt } : {}),
      counters: { ...car.counters },
    };
  }

  status(): { available: boolean; problem?: string; model: string; prompt?: { kind: string; player: string; played: number; failures: number; lastError?: string }; cars: CarStatus[] } {
    return {
      available: this.problem === undefined && this.detector !== undefined,
      ...(this.problem ? { problem: this.problem } : {}),
      model: this.cfg.model,
      ...(this.prompt && this.player ? { prompt: { kind: this.prompt.kind, player: this.player.kind, played: this.player.played.length, failures: this.player.failures, ...(this.player.lastError ? { lastError: this.player.lastError } : {}) } } : {}),
      cars: [...this.cars.values()].map((c) => this.statusOf(c)),
    };
  }

  /** The console's camera view: the newest frame, copied at once (the camera recycles its buffers), as a size-capped JPEG. */
  async snapshot(carId: string): Promise<ElevatorSnapshot | undefined> {
    const car = this.cars.get(carId);
    if (!car) throw new CommandError('unknown_car', `no elevator car "${carId}" (cars: ${[...this.cars.keys()].join(', ') || 'none'})`);
    const f = car.camera?.peek();
    if (!f) return undefined;
    const copy: Frame = { ...f, data: Buffer.from(f.data) };
    const jpeg = await cappedJpeg(copy, this.cfg.snapshot.maxBytes);
    if (!jpeg) return undefined;
    return { carId, mime: 'image/jpeg', image: jpeg.toString('base64'), width: copy.width, height: copy.height, at: copy.at };
  }

  release(carId: string, by: { user?: string; source: string; reason?: string }): { carId: string; released: boolean; ignoreUntil: number } {
    const car = this.cars.get(carId);
    if (!car) throw new CommandError('unknown_car', `no elevator car "${carId}" (cars: ${[...this.cars.keys()].join(', ') || 'none'})`);
    const at = this.now();
    const change = car.decision.override(at);
    car.counters.overrides++;
    if (!change) car.relay.release(); // belt and braces: the line is released whatever the state was
    this.apply(car, change);
    // The audit: who released which car, from where, why.
    this.record('event', 'elevator.override', { carId, wasHolding: change !== undefined, by: by.user ?? null, source: by.source, ...(by.reason ? { reason: by.reason } : {}), ignoreUntil: at + this.cfg.overrideS * 1000 });
    this.log.warn({ car: carId, user: by.user, source: by.source, reason: by.reason }, 'elevator hold released by a technician');
    return { carId, released: change !== undefined, ignoreUntil: at + this.cfg.overrideS * 1000 };
  }

  get commandsTarget(): ModuleContext['commands'] {
    return this.ctx.commands;
  }

  health(): ModuleHealth {
    if (this.problem) return { ok: false, message: this.problem };
    const blind = [...this.cars.values()].filter((c) => c.blind).map((c) => c.cfg.id);
    if (blind.length) return { ok: false, message: `camera lost in car(s) ${blind.join(', ')}: those cars are not watched`, detail: { blind } };
    return { ok: true, detail: { holding: [...this.cars.values()].filter((c) => c.decision.holding).map((c) => c.cfg.id) } };
  }

  emergencyStop(): void {
    for (const car of this.cars.values()) car.relay.release();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const car of this.cars.values()) {
      this.apply(car, car.decision.reset(this.now(), 'stopped'));
      car.relay.close();
      car.camera?.stop();
      clearInterval(car.promptTimer);
    }
    this.player?.stop();
    for (const n of ELEVATOR_COMMANDS) this.ctx.commands.unregister(n);
    await this.detector?.stop();
    if (!this.deps.gpio) this.backend?.close();
  }
}

function roundBox(b: Detection['box']): Detection['box'] {
  return { x: Math.round(b.x), y: Math.round(b.y), w: Math.round(b.w), h: Math.round(b.h) };
}

/** A JPEG of the frame no larger than maxBytes (quality, then size lowered), or undefined. */
async function cappedJpeg(f: Frame, maxBytes: number): Promise<Buffer | undefined> {
  const sharp = (await import('sharp')).default;
  let width = f.width;
  for (let i = 0; i < 6; i++) {
    for (const quality of [70, 50, 35]) {
      let img = sharp(f.data, { raw: { width: f.width, height: f.height, channels: 3 } });
      if (f.pixelFormat === 'bgr24')
        img = img.recomb([
          [0, 0, 1],
          [0, 1, 0],
          [1, 0, 0],
        ]);
      const out = await img.resize({ width }).jpeg({ quality }).toBuffer();
      if (out.length <= maxBytes) return out;
    }
    width = Math.round(width * 0.7);
    if (width < 64) break;
  }
  return undefined;
}

function registerElevatorCommands(m: ElevatorModule): void {
  const reg = m.commandsTarget.forCapability(elevatorCapability.name);
  reg.register({
    name: 'elevator.status',
    role: 'viewer',
    description: 'State of every elevator car: held or clear, camera, relay, last detections, counters.',
    args: Type.Object({}, { additionalProperties: false }),
    handler: () => m.status() satisfies ElevatorStatusResult,
  });
  reg.register({
    name: 'elevator.release',
    role: 'technician',
    description: 'Release a held car now (technician override, audited); detections are ignored for elevator.overrideS afterwards.',
    args: Type.Object({ car: Ident({ description: 'Car id.' }), reason: Type.Optional(Type.String({ maxLength: 200 })) }, { additionalProperties: false }),
    handler: (a, meta) => m.release(a.car, { ...(meta.user ? { user: meta.user } : {}), source: meta.source, ...(a.reason ? { reason: a.reason } : {}) }) satisfies ElevatorReleaseResult,
  });
}

export function createElevatorModule(ctx: ModuleContext, deps: ElevatorDeps = {}): GatewayModule | undefined {
  if (ctx.config.elevator.cars.length === 0) return undefined;
  if (!deps.gpio && ctx.config.elevator.gpio.backend === 'simulated') deps = { ...deps, gpio: new SimulatedGpio({ async: true }) };
  return new ElevatorModule(ctx, deps);
}
