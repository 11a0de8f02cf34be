// `npm run bench:ebike -- [--model ID] [--frames N] [--threads N]`: the elevator blocker's
// object detector on this machine — per-frame latency p50/p99 at the model's input size
// (inside the inference worker: resize + onnxruntime + decoding; and end to end through
// the worker's message port), frames/s sustained back to back, and the memory the worker
// and its session add to the process (RSS, PSS, private; /proc/self/smaps_rollup).
// Frames: a 640×480 frame scaled from a shared photo (the cost does not depend on content).
// Prints figures; asserts nothing (speed is not a test).
import { parseArgs } from 'node:util';
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { defaultModelsDir, getModel, loadManifest } from '../models/manifest.js';
import { ObjectClient } from '../edge/elevator/objects-client.js';
import { objectEngineOptions } from '../edge/elevator/objects-engine.js';

const { values: a } = parseArgs({ options: { model: { type: 'string', default: 'nanodet-g-320' }, frames: { type: 'string', default: '60' }, threads: { type: 'string', default: '1' } } });
const frames = Math.max(5, Math.min(1000, Number(a.frames)));
const m = getModel(loadManifest(join(defaultModelsDir(), 'manifest.json')), a.model!, 'object-detector');
const file = join(defaultModelsDir(), m.file);
if (!existsSync(file)) {
  console.error(`bench:ebike: ${file} missing — run npm run models -- --only ${a.model}`);
  process.exit(1);
}

function mem(): { rss: number; pss: number; priv: number } {
  const t = readFileSync('/proc/self/smaps_rollup', 'utf8');
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(t)?.[1] ?? NaN);
  return { rss: kb('Rss') / 1024, pss: kb('Pss') / 1024, priv: (kb('Private_Clean') + kb('Private_Dirty')) / 1024 };
}
const q = (xs: number[], p: number) => [...xs].sort((x, y) => x - y)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;
const f1 = (x: number) => x.toFixed(1);

const photo = join(defaultModelsDir(), '..', '..', 'shared', 'media', 'multi', 'two_people.jpg');
const src = existsSync(photo) ? sharp(photo) : sharp({ create: { width: 640, height: 480, channels: 3, background: { r: 90, g: 110, b: 130 } } });
const { data, info } = await src.resize(640, 480, { fit: 'fill' }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
const frame = { data: new Uint8Array(data), width: info.width, height: info.height, pixelFormat: 'rgb24' as const };

const before = mem();
const client = new ObjectClient(objectEngineOptions(m, file, Number(a.threads), 0.2), 60_000);
const t0 = performance.now();
await client.start();
const loadMs = performance.now() - t0;
for (let i = 0; i < 3; i++) await client.detect(frame); // warm-up (arena, JIT)
const run: number[] = [];
const inWorker: number[] = [];
const e2e: number[] = [];
const start = performance.now();
for (let i = 0; i < frames; i++) {
  const s = performance.now();
  const r = await client.detect(frame);
  e2e.push(performance.now() - s);
  run.push(r.timings.run);
  inWorker.push(r.timings.prepare + r.timings.run + r.timings.decode);
}
const wall = (performance.now() - start) / 1000;
const after = mem();
await client.stop();
console.log(`bench:ebike ${a.model} (${m.input.shape[2]}×${m.input.shape[3]}, ${a.threads} thread(s)), ${frames} frames of 640×480, load ${f1(loadMs)} ms`);
console.log(`  onnxruntime run      p50 ${f1(q(run, 0.5))} ms  p99 ${f1(q(run, 0.99))} ms`);
console.log(`  per frame in worker  p50 ${f1(q(inWorker, 0.5))} ms  p99 ${f1(q(inWorker, 0.99))} ms  (resize + run + decode; target p50 ≤ 60 ms)`);
console.log(`  end to end           p50 ${f1(q(e2e, 0.5))} ms  p99 ${f1(q(e2e, 0.99))} ms  (through the worker port)`);
console.log(`  sustained            ${f1(frames / wall)} frames/s back to back`);
console.log(`  memory added         RSS +${f1(after.rss - before.rss)} MB  PSS +${f1(after.pss - before.pss)} MB  private +${f1(after.priv - before.priv)} MB  (target RSS ≤ 60 MB; process now RSS ${f1(after.rss)} MB)`);
console.log(`  load average         ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')} on ${(await import('node:os')).cpus().length} cores (shared machine: figures are upper bounds)`);
