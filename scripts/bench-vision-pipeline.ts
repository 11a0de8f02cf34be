// Part 4 of bench:vision, run as its own process so the RSS it reports is the gateway's
// with face access running — not the bench's in-process engine and test data. Imports only
// what the gateway itself loads. Prints one JSON line.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pino } from 'pino';
import { Value } from '@sinclair/typebox/value';
import { defaultModelsDir } from '../models/manifest.js';
import { resolveModels } from '../edge/vision/models.js';
import { modelsInstalled } from '../edge/vision/simulation.js';
import { VisionSchema } from '../edge/vision/schema.js';
import { Gateway } from '../edge/gateway.js';
import { finish } from '../edge/config/load.js';
import { createDoorsModule } from '../edge/doors/module.js';
import { createVisionModule, type VisionDecisionEvent } from '../edge/vision/module.js';
import { SimulatedGpio } from '../drivers/gpio/simulated.js';

const MEDIA = resolve('../shared/media');
const VIDEO = join(MEDIA, 'video', 'obama_portrait_zoom_640x480.mp4');
const modelsDir = (): string => (modelsInstalled() ? defaultModelsDir() : resolve('../shared/models'));

const resolved = resolveModels(Value.Default(VisionSchema, { enabled: true, doorId: 'gate', modelsDir: modelsDir() }) as never);
const faces = join(MEDIA, 'faces');
const dataDir = mkdtempSync(join(tmpdir(), 'ee-bench-vision-'));
const loaded = finish(
  {
    site: { id: 'bench' },
    gateway: { id: 'bench-gw', dataDir },
    log: { level: 'error' },
    http: { enabled: false },
    uplink: { enabled: false },
    doors: { gpio: { backend: 'simulated' }, groups: [{ id: 'res', doors: ['gate'] }], doors: [{ id: 'gate', lock: { pin: 17 } }] },
    vision: { enabled: true, doorId: 'gate', modelsDir: resolved.dir, camera: { source: { kind: 'file', path: VIDEO }, fps: 10 }, match: { cooldownS: 0 } },
  },
  'bench',
  process.env,
);
const gpio = new SimulatedGpio({});
const g = new Gateway({ loaded, log: pino({ level: 'silent' }), modules: [(ctx) => createDoorsModule(ctx, { backend: gpio }), createVisionModule] });
const rssBefore = process.memoryUsage.rss();
await g.start();
const up = await g.commands.execute(
  'person.upsert',
  { id: 'obama', kind: 'resident', doorGroups: ['res'], faces: { photos: [readFileSync(join(faces, 'obama', '2.jpg')).toString('base64')] } },
  { id: 'bench-1', source: 'local', receivedAt: Date.now() },
);
if (!up.result.ok) throw new Error(`enrolment failed: ${JSON.stringify(up.result)}`);
const decisions: VisionDecisionEvent[] = [];
g.bus.on('vision.decision', (d) => decisions.push(d));
const rss: number[] = [];
const ffmpegRss: number[] = [];
const end = Date.now() + 20_000;
while (Date.now() < end) {
  await new Promise((r) => setTimeout(r, 500));
  rss.push(process.memoryUsage.rss());
  try {
    const out = execFileSync('ps', ['--ppid', String(process.pid), '-o', 'rss=,comm=']).toString();
    ffmpegRss.push(out.split('\n').filter((l) => l.includes('ffmpeg')).reduce((s, l) => s + Number(l.trim().split(/\s+/)[0]) * 1024, 0));
  } catch {
    /* ps unavailable */
  }
}
const st = g.services.get('vision')!.status();
await g.stop();
const lat = decisions.map((d) => d.latencyMs);
const reasons: Record<string, number> = {};
for (const d of decisions) reasons[`${d.personId}:${d.reason}`] = (reasons[`${d.personId}:${d.reason}`] ?? 0) + 1;
process.stdout.write(JSON.stringify({ decisions: decisions.length, allGranted: decisions.every((d) => d.granted), reasons, lat, frames: st.camera?.frames, analysed: Object.values(st.counters).reduce((a, b) => a + b, 0), dropped: st.camera?.dropped, rssMax: Math.max(...rss), rssBefore, ffmpegRss: ffmpegRss.length ? Math.max(...ffmpegRss) : null }) + '\n');

