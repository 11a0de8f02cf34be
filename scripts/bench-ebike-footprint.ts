// `npm run bench:ebike-footprint -- [--model ID] [--window S] [--no-vision]`: the memory the
// elevator e-bike blocker adds to the gateway as systemd runs it — the production bundle
// (dist/bundle/edge/main.js; the npm script builds it), the unit's node flags and
// environment — measured from outside the process (/proc/<pid>/smaps_rollup: RSS, PSS and
// USS = Private_Clean + Private_Dirty), every thread of the process counted.
//
// Pairs of runs, each without and then with one elevator car (a looped video at 5 fps,
// simulated GPIO and player, the detector analysing every frame it can):
//   core       the gateway alone (no face access): the detector's own inference worker;
//   vision     face access at the gate on the shared video (the face inference worker
//              running): the blocker beside it, i.e. the figure of issue 19.
// Each run: start, wait until the capabilities say they are running, 15 s warm-up, then
// the peak and the last of `window` one-second samples. --idle: the car's camera has no
// video, so the detector is loaded but analyses nothing (what loading alone costs). Figures are printed; nothing is
// asserted (memory depends on the machine's load only a little, but it is one run).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { loadavg, cpus, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import { REPO, UNIT_ENV, UNIT_MAIN, UNIT_NODE_FLAGS, peakMemFigures, type MemFigures } from './lib/unit.js';

const { values: a } = parseArgs({ options: { model: { type: 'string', default: 'nanodet-g-320' }, window: { type: 'string', default: '20' }, 'no-vision': { type: 'boolean', default: false }, idle: { type: 'boolean', default: false } } });
const WINDOW_S = Math.max(5, Number(a.window));
const MEDIA = resolve(REPO, '..', 'shared', 'media');
const VIDEO = join(MEDIA, 'video', 'obama_portrait_zoom_640x480.mp4');
const EBIKE_VIDEO = join(MEDIA, 'ebike', 'ebike-skimage-motorcycle-enter.mp4');
const MODELS = join(REPO, 'models');
if (!existsSync(UNIT_MAIN)) {
  console.error(`${UNIT_MAIN} missing: npm run build (npm run bench:ebike-footprint does)`);
  process.exit(2);
}
if (!existsSync(VIDEO)) {
  console.error(`bench:ebike-footprint needs ${MEDIA} (the shared media) next to the repository`);
  process.exit(2);
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const work = mkdtempSync(join(tmpdir(), 'ee-ebike-footprint-'));
process.once('exit', () => rmSync(work, { recursive: true, force: true }));

function config(name: string, vision: boolean, elevator: boolean): Record<string, unknown> {
  return {
    site: { id: 'bench' },
    gateway: { id: 'gw', dataDir: join(work, name) },
    log: { level: 'info' },
    http: { port: 0 },
    console: { enabled: false },
    ...(vision
      ? {
          doors: { gpio: { backend: 'simulated' }, groups: [{ id: 'res', doors: ['gate'] }], doors: [{ id: 'gate', lock: { pin: 17 } }] },
          vision: { enabled: true, doorId: 'gate', modelsDir: MODELS, camera: { source: { kind: 'file', path: VIDEO }, fps: 10 } },
        }
      : {}),
    ...(elevator
      ? {
          elevator: {
            model: a.model,
            modelsDir: MODELS,
            gpio: { backend: 'simulated' },
            prompt: { player: 'simulated' },
            cars: [{ id: 'A', camera: { source: { kind: 'file', path: a.idle ? join(work, 'no-such-video.mp4') : existsSync(EBIKE_VIDEO) ? EBIKE_VIDEO : VIDEO }, width: 640, height: 480, fps: 5 }, relay: { pin: 20 } }],
          },
        }
      : {}),
  };
}

interface Run {
  peak: MemFigures;
  last: MemFigures;
  threads: number;
  /** At the last sample: private anonymous memory, and file pages (node, libonnxruntime…). */
  anon: number;
  file: number;
}

async function run(name: string, vision: boolean, elevator: boolean): Promise<Run> {
  const file = join(work, `${name}.yaml`);
  writeFileSync(file, stringify(config(name, vision, elevator)));
  const child = spawn(process.execPath, [...UNIT_NODE_FLAGS, UNIT_MAIN, 'run', '--config', file], { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, ...UNIT_ENV } });
  const kill = () => void child.kill('SIGKILL');
  process.once('exit', kill);
  const want = new Set([...(vision ? ['face access running'] : []), ...(elevator ? ['elevator e-bike blocker running'] : [])]);
  let failure: string | undefined;
  let buf = '';
  child.stdout!.on('data', (d: Buffer) => {
    buf += d.toString();
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl);
      buf = buf.slice(nl + 1);
      try {
        const j = JSON.parse(line) as { msg?: string; level?: number; err?: string };
        if (j.msg) want.delete(j.msg);
        if (j.msg === 'elevator e-bike blocker not running' || j.msg?.startsWith('FACE ACCESS UNAVAILABLE')) failure = `${j.msg}: ${j.err ?? line}`;
        if ((j.level ?? 0) >= 50) process.stderr.write(`gateway: ${line}\n`);
      } catch {
        /* not JSON */
      }
    }
  });
  try {
    const until = Date.now() + 120_000;
    while (want.size > 0) {
      if (failure) throw new Error(failure);
      if (child.exitCode !== null) throw new Error(`gateway exited (${child.exitCode})`);
      if (Date.now() > until) throw new Error(`not running within 120 s: ${[...want].join(', ')}`);
      await sleep(100);
    }
    await sleep(15_000);
    const m = await peakMemFigures(child.pid!, WINDOW_S);
    const st = readFileSync(`/proc/${child.pid}/status`, 'utf8');
    const field = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(st)?.[1] ?? NaN);
    return { ...m, threads: field('Threads'), anon: field('RssAnon') / 1024, file: field('RssFile') / 1024 };
  } finally {
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await Promise.race([exited, sleep(20_000)]);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    process.removeListener('exit', kill);
  }
}

const f1 = (x: number) => x.toFixed(1);
const line = (label: string, r: Run) => `  ${label.padEnd(34)} peak RSS ${f1(r.peak.rss)} / PSS ${f1(r.peak.pss)} / USS ${f1(r.peak.uss)} MB   last ${f1(r.last.rss)} / ${f1(r.last.pss)} / ${f1(r.last.uss)} MB   RssAnon ${f1(r.anon)} + RssFile ${f1(r.file)} MB, ${r.threads} threads`;
const diff = (x: Run, y: Run) =>
  `  ${'added by the blocker'.padEnd(34)} peak RSS +${f1(y.peak.rss - x.peak.rss)} / PSS +${f1(y.peak.pss - x.peak.pss)} / USS +${f1(y.peak.uss - x.peak.uss)} MB   last +${f1(y.last.rss - x.last.rss)} / +${f1(y.last.pss - x.last.pss)} / +${f1(y.last.uss - x.last.uss)} MB   RssAnon +${f1(y.anon - x.anon)} RssFile +${f1(y.file - x.file)} MB   (target RSS ≤ 60 MB)`;

console.log(
  `bench:ebike-footprint ${a.model}, ${UNIT_MAIN.replace(`${REPO}/`, '')} ${UNIT_NODE_FLAGS.join(' ')}, window ${WINDOW_S} s; load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')} on ${cpus().length} cores`,
);
for (const vision of a['no-vision'] ? [false] : [false, true]) {
  const tag = vision ? 'face access' : 'core';
  const base = await run(`${tag}-base`, vision, false);
  const withE = await run(`${tag}-elevator`, vision, true);
  console.log(`${vision ? 'beside face access (vision enabled at the gate)' : 'core gateway (no vision)'}:`);
  console.log(line(tag, base));
  console.log(line(`${tag} + elevator`, withE));
  console.log(diff(base, withE));
}
console.log(
  `  load average at the end ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
