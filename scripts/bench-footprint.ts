// npm run bench:footprint — what the gateway costs a Raspberry-Pi-class box, printed
// beside the targets of issue 7 and beside floors measured in the same run (this
// machine is shared and noisy: compare within a run).
//
//   start    process start → READY=1 on a notify socket (the compiled gateway, as
//            systemd runs it), first boot (empty data dir) and restart; floor: bare
//            `node` sending READY through the same systemd-notify helper
//   memory   RSS, PSS and USS (private) of the gateway idle (core only) and running the
//            simulated estate (meters, doors, console; no vision), peak and last over the
//            window, beside the budgets (x86-64, Node 24: RSS ≤ 90 MB, USS ≤ 40 MB); floor: bare node
//   writes   at idle (core only, uplink connected to a local Mosquitto so records are
//            published and acknowledged as on a real box): fsync/fdatasync and pwrite
//            calls per second (strace -c, when strace is installed) and bytes sent to
//            the storage layer (/proc/<pid>/io write_bytes)
//
// Without face models on purpose: vision is measured by the vision benchmarks.
// Environment: BENCH_WINDOW_S (default 60) for the idle and load windows, BENCH_STARTS (3).
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeNotifySocket, monoMs } from './lib/notify-socket.js';
import { UNIT_ENV, UNIT_MAIN, UNIT_NODE_FLAGS, startUnitGateway, procCpuS, procMemMB, procMemFigures, peakMemFigures, memLine, unitChildren, type MemFigures } from './lib/unit.js';
import { Broker } from '../test/helpers/broker.js';
import { simulatedEstateConfig } from '../edge/config/embedded.js';

const WINDOW_S = Number(process.env.BENCH_WINDOW_S ?? 60);
const STARTS = Number(process.env.BENCH_STARTS ?? 3);
const TARGET = { startS: 3, writesPerS: 1 };
// Memory budgets on x86-64, Node 24 (issue 15): the simulated estate without vision.
const BUDGET = { rss: 90, uss: 40 };

const work = mkdtempSync(join(tmpdir(), 'ee-footprint-'));
/** Children to end if the bench is interrupted (Ctrl-C), so no gateway or broker is left behind. */
const cleanups = new Set<() => void>();
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    for (const c of cleanups) c();
    for (const child of unitChildren) child.kill('SIGKILL');
    rmSync(work, { recursive: true, force: true });
    process.exit(130);
  });
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const fmt = (n: number, d = 2) => n.toFixed(d);

function coreConfig(dataDir: string, brokerUrl: string): Record<string, unknown> {
  return {
    site: { id: 'bench' },
    gateway: { id: 'gw', dataDir },
    log: { level: 'warn' },
    http: { port: 0 },
    console: { enabled: false },
    uplink: { url: brokerUrl },
  };
}

function estateConfig(dataDir: string, brokerUrl: string): Record<string, unknown> {
  const c = simulatedEstateConfig();
  delete c.vision;
  return { ...c, gateway: { id: 'sim-gw', dataDir }, log: { level: 'warn' }, http: { port: 0 }, console: { port: 0, host: '127.0.0.1' }, uplink: { url: brokerUrl } };
}

async function bareNodeFloor(): Promise<{ readyS: number; cpuS: number; mem: MemFigures }> {
  const sock = new FakeNotifySocket();
  await sock.start();
  const t0 = monoMs();
  const child = spawn(process.execPath, ['-e', "require('child_process').spawnSync('systemd-notify', ['--pid=' + process.pid, 'READY=1']); setInterval(() => {}, 1000)"], { stdio: 'ignore', env: { ...process.env, NOTIFY_SOCKET: sock.path } });
  const ready = await sock.waitFor('READY', 30_000);
  const cpuS = procCpuS(child.pid!);
  await sleep(1000);
  const mem = procMemFigures(child.pid!);
  child.kill();
  await sock.close();
  return { readyS: (ready.t - t0) / 1000, cpuS, mem };
}

/** RSS split: private memory (heap, JIT code) vs file pages (mostly the node binary's text, shared and reclaimable). */
function rssSplit(pid: number): string {
  return `private (RssAnon) ${fmt(procMemMB(pid, 'RssAnon'), 1)} MB + file-backed (RssFile, node binary and libraries) ${fmt(procMemMB(pid, 'RssFile'), 1)} MB`;
}

function io(pid: number): { writeBytes: number; syscw: number } {
  const text = readFileSync(`/proc/${pid}/io`, 'utf8');
  const get = (k: string) => Number(new RegExp(`${k}: (\\d+)`).exec(text)?.[1] ?? NaN);
  return { writeBytes: get('write_bytes'), syscw: get('syscw') };
}

/** Count write-side syscalls of every thread of pid for `seconds` (needs strace and ptrace rights). */
async function straceCounts(pid: number, seconds: number): Promise<Record<string, number> | undefined> {
  if (spawnSync('sh', ['-c', 'command -v strace']).status !== 0) return undefined;
  const out = join(work, `strace-${pid}.txt`);
  const st = spawn('strace', ['-f', '-c', '-e', 'trace=fsync,fdatasync,pwrite64,write,pwritev,pwritev2', '-o', out, '-p', String(pid)], { stdio: 'ignore' });
  await sleep(seconds * 1000);
  st.kill('SIGINT');
  await new Promise((r) => st.once('exit', r));
  if (!existsSync(out)) return undefined;
  const counts: Record<string, number> = {};
  for (const line of readFileSync(out, 'utf8').split('\n')) {
    const m = /^\s*[\d.]+\s+[\d.]+\s+\d+\s+(\d+)\s+(?:\d+\s+)?(\w+)\s*$/.exec(line);
    if (m) counts[m[2]!] = Number(m[1]);
  }
  return counts;
}

async function main(): Promise<void> {
  if (!existsSync(UNIT_MAIN)) throw new Error(`${UNIT_MAIN} missing: run \`npm run build\` first (npm run bench:footprint does)`);
  const broker = await Broker.start();
  const stopBroker = () => void broker.stop();
  cleanups.add(stopBroker);
  const lines: string[] = [];
  const out = (s: string) => {
    lines.push(s);
    process.stdout.write(`${s}\n`);
  };
  try {
    out(`estate-edge footprint (${process.arch}, Node ${process.version}, window ${WINDOW_S} s, node flags and environment from the unit: ${[...UNIT_NODE_FLAGS, ...Object.entries(UNIT_ENV).map(([k, v]) => `${k}=${v}`)].join(' ')}, load average ${loadavg()[0]!.toFixed(1)} on ${cpus().length} CPUs)`);
    const floor = await bareNodeFloor();

    // Start to READY: first boot on an empty data dir, then restarts on the same one.
    for (const [label, make] of [
      ['core', coreConfig],
      ['simulated estate', estateConfig],
    ] as const) {
      const dataDir = mkdtempSync(join(work, 'data-'));
      const times: number[] = [];
      const cpus: number[] = [];
      for (let i = 0; i < STARTS; i++) {
        const g = await startUnitGateway(make(dataDir, broker.url), work, `start-${label.replace(' ', '-')}-${i}`);
        times.push(g.readyS);
        cpus.push(g.cpuS);
        await g.stop();
      }
      const rest = (xs: number[]) => median(xs.length > 1 ? xs.slice(1) : xs);
      out(`start → READY (${label}): first boot ${fmt(times[0]!)} s, restart median ${fmt(rest(times))} s (CPU ${fmt(rest(cpus))} s)   target ≤ ${TARGET.startS} s   floor (bare node + systemd-notify) ${fmt(floor.readyS)} s (CPU ${fmt(floor.cpuS)} s)`);
    }

    // Idle: core only, publishing its status to the broker.
    {
      const g = await startUnitGateway(coreConfig(mkdtempSync(join(work, 'data-')), broker.url), work, 'idle');
      await sleep(5000); // let start-up writes settle
      const pid = g.child.pid!;
      const before = io(pid);
      const [counts, mem] = await Promise.all([straceCounts(pid, WINDOW_S), peakMemFigures(pid, WINDOW_S)]);
      const after = io(pid);
      const syncs = counts ? (counts.fsync ?? 0) + (counts.fdatasync ?? 0) : NaN;
      const pwrites = counts ? (counts.pwrite64 ?? 0) + (counts.pwritev ?? 0) + (counts.pwritev2 ?? 0) : NaN;
      out(`memory idle (core): peak ${memLine(mem.peak)}; last ${memLine(mem.last)}; ${rssSplit(pid)}   floor (bare node) ${memLine(floor.mem)}`);
      if (counts) {
        out(`disk writes idle: ${fmt(syncs / WINDOW_S, 3)} fsync/s (${syncs} in ${WINDOW_S} s), ${fmt(pwrites / WINDOW_S, 3)} pwrite/s   target ≤ ${TARGET.writesPerS}/s`);
      } else {
        out(`disk writes idle: strace not available: fsync count not measured (write syscalls incl. logs: ${fmt((after.syscw - before.syscw) / WINDOW_S, 3)}/s)`);
      }
      out(`bytes to storage idle: ${fmt((after.writeBytes - before.writeBytes) / 1024 / (WINDOW_S / 60), 1)} KiB/min (/proc/<pid>/io write_bytes)`);
      await g.stop();
    }

    // Simulated estate: meters polled, doors simulated, console up.
    {
      const g = await startUnitGateway(estateConfig(mkdtempSync(join(work, 'data-')), broker.url), work, 'estate');
      const pid = g.child.pid!;
      const before = io(pid);
      const [counts, mem] = await Promise.all([straceCounts(pid, WINDOW_S), peakMemFigures(pid, WINDOW_S)]);
      const after = io(pid);
      out(`memory simulated estate (no vision): peak ${memLine(mem.peak, BUDGET)}; last ${memLine(mem.last, BUDGET)}; ${rssSplit(pid)}   floor (bare node) ${memLine(floor.mem)}`);
      if (counts) out(`disk writes simulated estate: ${fmt(((counts.fsync ?? 0) + (counts.fdatasync ?? 0)) / WINDOW_S, 3)} fsync/s, ${fmt((counts.pwrite64 ?? 0) / WINDOW_S, 3)} pwrite/s (not idle: meter telemetry)`);
      out(`bytes to storage simulated estate: ${fmt((after.writeBytes - before.writeBytes) / 1024 / (WINDOW_S / 60), 1)} KiB/min`);
      await g.stop();
    }
  } finally {
    await broker.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench:footprint failed: ${String((err as Error)?.stack ?? err)}\n`);
    process.exit(1);
  },
);
