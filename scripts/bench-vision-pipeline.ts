// Part 4 of bench:vision: the gateway as systemd runs it — the unit's ExecStart= entry
// file (compiled) in its own process, with the node flags of systemd/estate-edge.service's ExecStart= and
// its Environment= lines — running face access at the gate on the shared video through
// the system ffmpeg (the camera driver's file twin), the real doors module (simulated
// GPIO) and an uplink to a local Mosquitto. The resident is enrolled the way the platform
// does it (person.upsert over MQTT, with a photo). Measured from outside the process:
//
//   gateway RSS   VmRSS of the gateway process (/proc/<pid>/status), sampled every 250 ms
//                 over the window; it includes every thread of the process — the main
//                 thread, the inference worker thread (worker_threads are in-process) and
//                 onnxruntime's threads. Peak and median, RssAnon/RssFile split at the
//                 peak, and VmHWM (lifetime peak, start-up and enrolment included).
//   ffmpeg RSS    VmRSS of the gateway's ffmpeg child process(es), separately.
//   image helper  VmRSS of the short-lived sharp process the gateway starts to decode the
//                 enrolment photo (edge/vision/imaging.ts), sampled every 50 ms from the
//                 enrolment until it exits or the window ends; and whether libvips is
//                 mapped in the gateway (it must not be).
//   sum           the largest per-sample sum of the two.
//   latency       frame-to-decision per door decision (the gateway's "face decision" log
//                 line: frame off the ffmpeg pipe → access.decide done, K-frame
//                 confirmation excluded).
//
// BENCH_MAIN=path overrides the entry file (default: the unit's ExecStart= entry in this
// checkout); BENCH_WINDOW_S the window (30 s); BENCH_SERIES=1 prints every RSS sample (MB)
// to stderr; BENCH_EXTRA_FLAGS="--max-semi-space-size=1 …" appends node flags after the
// unit's (the last one wins) and BENCH_EXTRA_ENV="MALLOC_ARENA_MAX=1 …" overrides its
// Environment=, to measure a change to the unit without making it — the figures are then
// not the unit's, and the output says so.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { Broker } from '../test/helpers/broker.js';
import { REPO, UNIT_ENV, UNIT_MAIN, UNIT_NODE_FLAGS, procMemFigures, type MemFigures } from './lib/unit.js';
import { Platform } from '../test/helpers/subscriber.js';
import { IMAGING_ARG } from '../edge/vision/imaging.js';

/** The unit's entry (BENCH_MAIN overrides it), node flags and environment. */
export const MAIN: string = process.env.BENCH_MAIN ? resolve(process.env.BENCH_MAIN) : UNIT_MAIN;
export const EXTRA_FLAGS: string[] = (process.env.BENCH_EXTRA_FLAGS ?? '').split(/\s+/).filter(Boolean);
export const NODE_FLAGS = [...UNIT_NODE_FLAGS, ...EXTRA_FLAGS];
export const EXTRA_ENV: Record<string, string> = Object.fromEntries(
  (process.env.BENCH_EXTRA_ENV ?? '')
    .split(/\s+/)
    .filter(Boolean)
    .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)]),
);
export { UNIT_ENV, REPO };

export interface GatewayRun {
  decisions: Array<{ person: string; granted: boolean; reason: string; distance: number; liveness?: number; latencyMs: number }>;
  samples: number;
  windowS: number;
  gateway: { peakMB: number; medianMB: number; anonAtPeakMB: number; fileAtPeakMB: number; hwmMB: number; threads: number; cpuPct: number; mem: { peak: MemFigures; last: MemFigures } };
  ffmpeg: { peakMB: number; medianMB: number; processes: number; cpuPct: number } | null;
  /** The image helper (null: never seen): peak RSS and how long it was seen running; libvips in the gateway's maps at the end. */
  imaging: { peakMB: number; anonAtPeakMB: number; aliveS: number } | null;
  libvipsInGateway: boolean;
  sumPeakMB: number;
  status: { frames?: number; dropped?: number; counters: Record<string, number> };
  load: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const kb = (text: string, field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(text)?.[1] ?? NaN);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
function cpuTicks(pid: number): number {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]);
  } catch {
    return 0;
  }
}
/** Direct children of pid (from /proc/<n>/stat). */
function children(pid: number): Array<{ pid: number; comm: string }> {
  const out: Array<{ pid: number; comm: string }> = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const s = readFileSync(`/proc/${d}/stat`, 'utf8');
      const comm = s.slice(s.indexOf('(') + 1, s.lastIndexOf(')'));
      const ppid = Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid) out.push({ pid: Number(d), comm });
    } catch {
      /* gone */
    }
  }
  return out;
}

export async function runGateway(opts: { video: string; photo: string; modelsDir: string; windowS: number; vision?: Record<string, unknown>; inspect?: (pid: number) => void }): Promise<GatewayRun> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} (the unit's ExecStart entry) missing: run \`npm run build\` first (npm run bench:vision does)`);
  const work = mkdtempSync(join(tmpdir(), 'ee-bench-vision-'));
  const broker = await Broker.start();
  const site = 'bench';
  const gw = 'gw';
  const config = {
    site: { id: site },
    gateway: { id: gw, dataDir: join(work, 'data') },
    log: { level: 'info' },
    http: { port: 0 },
    console: { enabled: false },
    uplink: { url: broker.url },
    doors: { gpio: { backend: 'simulated' }, groups: [{ id: 'res', doors: ['gate'] }], doors: [{ id: 'gate', lock: { pin: 17 } }] },
    vision: { enabled: true, doorId: 'gate', modelsDir: opts.modelsDir, camera: { source: { kind: 'file', path: opts.video }, fps: 10 }, match: { cooldownS: 0 }, ...opts.vision },
  };
  const file = join(work, 'config.yaml');
  writeFileSync(file, stringify(config));
  const child = spawn(process.execPath, [...NODE_FLAGS, MAIN, 'run', '--config', file], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...UNIT_ENV, ...EXTRA_ENV } });
  const pid = child.pid!;
  const kill = () => void child.kill('SIGKILL');
  process.once('exit', kill);
  const decisions: GatewayRun['decisions'] = [];
  let logged = '';
  let running = false;
  let unavailable: string | undefined;
  child.stdout!.on('data', (d: Buffer) => {
    logged += d.toString();
    let nl;
    while ((nl = logged.indexOf('\n')) >= 0) {
      const line = logged.slice(0, nl);
      logged = logged.slice(nl + 1);
      try {
        const j = JSON.parse(line) as Record<string, any>;
        if (j.msg === 'face decision') decisions.push({ person: j.person, granted: j.granted, reason: j.reason, distance: j.distance, ...(j.liveness !== undefined ? { liveness: j.liveness } : {}), latencyMs: j.latencyMs });
        if (j.msg === 'face access running') running = true;
        if (typeof j.msg === 'string' && j.msg.startsWith('FACE ACCESS UNAVAILABLE')) unavailable = String(j.problem);
        if (j.level >= 50) process.stderr.write(`gateway: ${line}\n`);
      } catch {
        /* not JSON */
      }
    }
  });
  const platform = await Platform.connect(broker.url, `estate/${site}/${gw}/#`);
  const base = `estate/${site}/${gw}`;
  let sampling = true;
  try {
    const end0 = Date.now() + 120_000;
    while (!running) {
      if (child.exitCode !== null) throw new Error(`gateway exited (${child.exitCode})`);
      if (unavailable) throw new Error(`face access unavailable in ${MAIN}: ${unavailable}`);
      if (Date.now() > end0) throw new Error('face access did not start within 120 s');
      await sleep(100);
    }
    // The image helper, sampled from the enrolment until it exits (idle) or the window ends.
    const helper = (async () => {
      let peak = 0;
      let anon = 0;
      let first = 0;
      let last = 0;
      while (sampling) {
        for (const k of children(pid)) {
          try {
            if (!readFileSync(`/proc/${k.pid}/cmdline`, 'utf8').includes(IMAGING_ARG)) continue;
            const st = readFileSync(`/proc/${k.pid}/status`, 'utf8');
            if (kb(st, 'VmRSS') / 1024 > peak) [peak, anon] = [kb(st, 'VmRSS') / 1024, kb(st, 'RssAnon') / 1024];
            last = Date.now();
            first ||= last;
          } catch {
            /* gone */
          }
        }
        await sleep(50);
      }
      return peak ? { peakMB: peak, anonAtPeakMB: anon, aliveS: (last - first) / 1000 } : null;
    })();
    const up = await platform.command(base, 'person.upsert', { id: 'obama', kind: 'resident', doorGroups: ['res'], faces: { photos: [readFileSync(opts.photo).toString('base64')] } });
    if (!up.ok || up.result?.faces?.accepted !== 1) throw new Error(`enrolment failed: ${JSON.stringify(up)}`);
    // Warm-up: until the first decision (every session has run, the arena has grown).
    const end1 = Date.now() + 60_000;
    while (!decisions.length && Date.now() < end1) await sleep(100);
    decisions.length = 0;
    const gwRss: number[] = [];
    const ffRss: number[] = [];
    const sums: number[] = [];
    let peak = { rss: 0, anon: 0, file: 0 };
    // RSS/PSS/USS from smaps_rollup, each its own peak over the window.
    const memPeak: MemFigures = { rss: 0, pss: 0, uss: 0 };
    let memLast: MemFigures = { rss: NaN, pss: NaN, uss: NaN };
    let ffProcs = 0;
    const ff0 = new Map<number, number>();
    const g0 = cpuTicks(pid);
    const t0 = Date.now();
    while (Date.now() - t0 < opts.windowS * 1000) {
      await sleep(250);
      const st = readFileSync(`/proc/${pid}/status`, 'utf8');
      const rss = kb(st, 'VmRSS') / 1024;
      gwRss.push(rss);
      if (process.env.BENCH_SERIES) process.stderr.write(`${rss.toFixed(0)} `);
      if (rss > peak.rss) peak = { rss, anon: kb(st, 'RssAnon') / 1024, file: kb(st, 'RssFile') / 1024 };
      memLast = procMemFigures(pid);
      for (const k of ['rss', 'pss', 'uss'] as const) memPeak[k] = Math.max(memPeak[k], memLast[k]);
      let ff = 0;
      const kids = children(pid).filter((c) => c.comm.includes('ffmpeg'));
      ffProcs = Math.max(ffProcs, kids.length);
      for (const k of kids) {
        try {
          ff += kb(readFileSync(`/proc/${k.pid}/status`, 'utf8'), 'VmRSS') / 1024;
          if (!ff0.has(k.pid)) ff0.set(k.pid, cpuTicks(k.pid));
        } catch {
          /* restarted meanwhile */
        }
      }
      ffRss.push(ff);
      sums.push(rss + ff);
    }
    const elapsed = (Date.now() - t0) / 1000;
    sampling = false;
    const imaging = await helper;
    opts.inspect?.(pid);
    const st = readFileSync(`/proc/${pid}/status`, 'utf8');
    const ffCpu = [...ff0].reduce((s, [p, c]) => s + cpuTicks(p) - c, 0);
    const vs = await platform.command(base, 'vision.status');
    const result: GatewayRun = {
      decisions: [...decisions],
      samples: gwRss.length,
      windowS: elapsed,
      gateway: {
        peakMB: peak.rss,
        medianMB: median(gwRss),
        anonAtPeakMB: peak.anon,
        fileAtPeakMB: peak.file,
        hwmMB: kb(st, 'VmHWM') / 1024,
        threads: Number(/Threads:\s+(\d+)/.exec(st)?.[1] ?? NaN),
        cpuPct: (cpuTicks(pid) - g0) / elapsed,
        mem: { peak: memPeak, last: memLast },
      },
      ffmpeg: ffProcs ? { peakMB: Math.max(...ffRss), medianMB: median(ffRss), processes: ffProcs, cpuPct: ffCpu / elapsed } : null,
      imaging,
      libvipsInGateway: readFileSync(`/proc/${pid}/maps`, 'utf8').includes('libvips'),
      sumPeakMB: Math.max(...sums),
      status: { frames: vs.result?.camera?.frames, dropped: vs.result?.camera?.dropped, counters: vs.result?.counters ?? {} },
      load: readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' '),
    };
    return result;
  } finally {
    sampling = false;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(20_000)]);
    if (child.exitCode === null) kill();
    process.removeListener('exit', kill);
    await platform.client.endAsync().catch(() => {});
    await broker.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

// Standalone: `node dist/scripts/bench-vision-pipeline.js` prints the run as JSON (for quick A/B runs).
if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const media = resolve(REPO, '..', 'shared', 'media');
  const models = existsSync(join(REPO, 'models', 'face_detection_yunet_2023mar.onnx')) ? join(REPO, 'models') : resolve(REPO, '..', 'shared', 'models');
  const r = await runGateway({
    video: join(media, 'video', 'obama_portrait_zoom_640x480.mp4'),
    photo: join(media, 'faces', 'obama', '2.jpg'),
    modelsDir: models,
    windowS: Number(process.env.BENCH_WINDOW_S ?? 30),
    ...(process.env.BENCH_VISION ? { vision: JSON.parse(process.env.BENCH_VISION) as Record<string, unknown> } : {}),
  });
  process.stdout.write(JSON.stringify(r) + '\n');
}
