// Shared pieces of the face-access tests: where the models are (installed models/ when
// `npm run models` has run, else the offline pack ../shared/models directly), photos as
// RGB, and a gateway with the real doors module (simulated GPIO) plus face access.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { sharedMedia, sharedModels, REPO } from '../models/shared.js';
import { defaultModelsDir, loadManifest, defaultModels } from '../../models/manifest.js';
import { startGateway } from '../helpers/gateway.js';
import { createDoorsModule } from '../../edge/doors/module.js';
import { createVisionModule } from '../../edge/vision/module.js';
import { modelsInstalled } from '../../edge/vision/simulation.js';
import { SimulatedGpio } from '../../drivers/gpio/simulated.js';
import type { Gateway } from '../../edge/gateway.js';
import type { ModuleFactory } from '../../edge/module.js';
import type { RgbImage } from '../../edge/vision/image.js';
import type { EngineModels } from '../../edge/vision/engine.js';

export { REPO, sharedMedia };

/** models/ when every default model is installed there, else ../shared/models. */
export function modelsDir(): string {
  return modelsInstalled() ? defaultModelsDir() : sharedModels();
}

export function manifestModels(): EngineModels {
  return defaultModels(loadManifest(join(defaultModelsDir(), 'manifest.json')));
}

export const FACES = (): string => join(sharedMedia(), 'faces');
export const MULTI = (): string => join(sharedMedia(), 'multi');
export const VIDEO = (): string => join(sharedMedia(), 'video', 'obama_portrait_zoom_640x480.mp4');

/** identity → photo paths, sorted. */
export function identities(): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const id of readdirSync(FACES()).sort())
    out.set(
      id,
      readdirSync(join(FACES(), id))
        .sort()
        .map((f) => join(FACES(), id, f)),
    );
  return out;
}

/** A photo as RGB, long side at most 1280 (like a camera frame; keeps the tests quick). */
export async function rgb(pathOrBuf: string | Buffer): Promise<RgbImage> {
  const { data, info } = await sharp(pathOrBuf).rotate().resize({ width: 1280, height: 1280, fit: 'inside', withoutEnlargement: true }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}

export const photo = (p: string): Buffer => readFileSync(p);

export interface FaceRig {
  g: Gateway;
  gpio: SimulatedGpio;
  cmd(name: string, args?: Record<string, unknown>): Promise<{ ok: boolean; result?: any; error?: { code: string; message: string } }>;
  records(stream: 'event' | 'alarm' | 'access' | 'audit'): Array<{ type: string; ts: number; data: any }>;
  stop(): Promise<void>;
}

let cmdSeq = 0;

/** A gateway with the real doors module (simulated GPIO, real time) and face access on `vision` overrides. */
export async function faceRig(vision: Record<string, unknown>, extra: Record<string, unknown> = {}, visionModule: ModuleFactory = createVisionModule): Promise<FaceRig> {
  const gpio = new SimulatedGpio({});
  const g = await startGateway(
    {
      uplink: { enabled: false },
      doors: { gpio: { backend: 'simulated' }, groups: [{ id: 'residents', doors: ['gate'] }], doors: [{ id: 'gate', lock: { pin: 17 }, unlockMs: 3000 }] },
      vision: { enabled: true, doorId: 'gate', modelsDir: modelsDir(), ...vision },
      ...extra,
    },
    { modules: [(ctx) => createDoorsModule(ctx, { backend: gpio }), visionModule] },
  );
  return {
    g,
    gpio,
    async cmd(name, args = {}) {
      const out = await g.commands.execute(name, args, { id: `t-${process.pid}-${++cmdSeq}`, source: 'local', receivedAt: Date.now() });
      return out.result as any;
    },
    records(stream) {
      g.outbox.flush();
      return g.outbox.read(stream, 0, Number.MAX_SAFE_INTEGER, 100000, 1e12).map((r) => JSON.parse(r.body));
    },
    stop: () => g.stop(),
  };
}

/** Resolve when `pred` holds, polling every 50 ms; reject after `ms`. */
export async function waitFor(pred: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
