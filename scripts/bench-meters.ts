// npm run bench:meters — the bus scheduler on a simulated 9600-baud RS-485 line that
// holds every frame for its real wire time (drivers/serial/simwire.ts; ptys would carry
// bytes instantly and make cycle figures meaningless), with 32 meters: 16 SDM630-style
// Modbus meters (18 float points each) and 16 DL/T 645-2007 meters (4 points each),
// on one `mixed` line. Simulated meters answer after the 3.5-character silence.
//
// Every poll is asked faster than the line can carry (100 ms interval), so the line
// is saturated and the scheduler runs round-robin. Printed:
//   cycle       time to poll all 32 meters once, beside the wire-time bound: bytes
//               actually carried × 10 bits / 9600 + two 3.5-character silences per
//               transaction (before the request and before the reply); target ≤ 1.15×
//   coalescing  transactions per cycle with block reads vs one request per point
//   dead meter  healthy meters' reading rate with one SDM630 unplugged; target ≥ 90 %
//   staleness   longest gap between two readings of one meter vs the cycle (a value
//               is never older than one cycle: late polls are skipped, never queued)
//   cost        CPU per 1,000 point readings (whole process: scheduler, codecs, SQLite
//               outbox appends) and RSS
//   guard       cycle-time cost of the guard held after timeouts (replyGuardMs default
//               vs 0), on the clean line and with the dead meter; target ≤ 5 % clean
//   faults      wrong values published (any quality, and as good) while 10 % of the
//               replies are late (1.5 × timeout, in order), corrupted, dropped, truncated
//               or prefixed with noise, on 4 DDSU666 [import_energy, active_power]
//               (equal-length reads, the reported case) + 4 DL/T 645 meters whose
//               points each hold a value unique on the line; target 0. The same late replies
//               with the guard off are the control: they do publish wrong values.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { SystemClock } from '../edge/clock.js';
import { EventBus } from '../edge/bus.js';
import { Outbox } from '../edge/outbox/outbox.js';
import { openDatabase } from '../edge/store/sqlite.js';
import { finish } from '../edge/config/load.js';
import type { MetersConfig } from '../edge/meters/schema.js';
import { builtinProfilesDir, loadProfiles } from '../edge/meters/profiles.js';
import { MetersService } from '../edge/meters/service.js';
import { interFrameSilenceMs } from '../drivers/serial/line.js';
import { wireBoundMs, type WireEndpoint, type WireFault } from '../drivers/serial/simwire.js';
import type { PointSpec } from '../edge/meters/plan.js';

const BAUD = 9600;
const SERIAL = { baudRate: BAUD, parity: 'none', stopBits: 1 } as const;
const SILENCE_MS = interFrameSilenceMs(SERIAL);
const CYCLES = Number(process.env.BENCH_CYCLES ?? 3);
const TIMEOUT_MS = 200;

/**
 * A value unique on the line for every (meter, point), inside its kind's plausible
 * range and representable in its register (DL/T 645 voltage has one decimal): a value
 * published for the wrong point or meter is recognised.
 */
function uniqueValue(p: PointSpec, seed: number, index: number): number {
  const u = seed * 20 + index;
  switch (p.kind) {
    case 'voltage':
      return 200 + u * 0.1;
    case 'frequency':
      return 45 + u * 0.01;
    case 'power_factor':
      return 0.3 + u * 0.001;
    case 'energy':
      return 1000 + u * 10;
    default:
      return 1 + u * 0.01;
  }
}
/** Half the spacing of uniqueValue per kind: a published value within it is the right one. */
const TOLERANCE: Record<string, number> = { voltage: 0.05, frequency: 0.005, power_factor: 0.0005, energy: 5 };

type FaultKind = 'late' | 'corrupt' | 'drop' | 'truncate' | 'noise';

/** 10 % of the meters' replies get the fault (deterministic sequence). */
function faultHook(kind: FaultKind, meters: WireEndpoint): (from: WireEndpoint, bytes: Buffer) => WireFault | undefined {
  let x = 12345;
  const rnd = () => (x = (x * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
  return (from, bytes) => {
    if (from !== meters || rnd() >= 0.1) return undefined;
    faultsApplied++;
    switch (kind) {
      case 'late':
        return { delayMs: TIMEOUT_MS * 1.5 };
      case 'drop':
        return { drop: true };
      case 'truncate':
        return { bytes: bytes.subarray(0, Math.max(1, bytes.length - 3)) };
      case 'noise':
        return { bytes: Buffer.concat([Buffer.from([0x00, 0xff, 0x68, 0x13]), bytes]) };
      case 'corrupt': {
        const b = Buffer.from(bytes);
        const i = Math.floor(b.length / 2);
        b[i] = b[i]! ^ 0x5a;
        return { bytes: b };
      }
    }
  };
}
let faultsApplied = 0;

function metersConfig(opts: { n?: number; guard?: boolean; equalLength?: boolean } = {}): MetersConfig {
  const n = opts.n ?? 16;
  const devices: Array<Record<string, unknown>> = [];
  // equalLength: the reported case, DDSU666 [import_energy, active_power]: two reads
  // whose replies have the same length, so only the wire timing tells them apart.
  for (let i = 1; i <= n; i++) devices.push(opts.equalLength ? { id: `sdm-${i}`, profile: 'chint-ddsu666', address: i, pollIntervalMs: 100, points: ['import_energy', 'active_power'] } : { id: `sdm-${i}`, profile: 'eastron-sdm630', address: i, pollIntervalMs: 100 });
  for (let i = 1; i <= n; i++) devices.push({ id: `dlt-${i}`, profile: 'dlt645-2007-single', address: String(100 + i), pollIntervalMs: 100, points: ['import_energy', 'voltage', 'current', 'active_power'] });
  const raw = {
    timeSyncIntervalH: 0,
    fullReportIntervalS: 0,
    buses: [
      {
        id: 'line',
        protocol: 'mixed',
        transport: 'simulated',
        baudRate: BAUD,
        timeoutMs: TIMEOUT_MS,
        // Fault phases measure wrong values, not availability: faults do not take meters offline.
        offlineAfter: opts.equalLength ? 20 : 2,
        backoffBaseMs: 5000,
        backoffMaxMs: 300000,
        ...(opts.guard === false ? { replyGuardMs: 0 } : {}),
        devices,
      },
    ],
  };
  // Through the real config loader: defaults, validation and cross-field checks.
  return finish({ site: { id: 'bench' }, gateway: { id: 'gw' }, meters: raw }, 'bench').config.meters;
}

interface PhaseResult {
  guards: number;
  guardMs: number;
  lateReplies: number;
  wrongAny: number;
  wrongGood: number;
  suspect: number;
  faults: number;
  cycleMs: number;
  boundMs: number;
  txPerCycle: number;
  readingsPerSecHealthy: number;
  maxGapMs: number;
  skipped: number;
  pointReadings: number;
  cpuMs: number;
  elapsedMs: number;
}

async function phase(label: string, opts: { coalesce: boolean; dead?: string; cycles: number; guard?: boolean; fault?: FaultKind; n?: number }): Promise<PhaseResult> {
  const dir = mkdtempSync(join(tmpdir(), 'ee-bench-meters-'));
  const log = pino({ level: 'silent' });
  const clock = new SystemClock();
  const { db } = openDatabase(join(dir, 'outbox.db'), { synchronous: 'normal', log });
  const outbox = new Outbox({ db, clock, log, quotaBytes: 512 * 1048576 });
  const bus = new EventBus();
  const profiles = loadProfiles([builtinProfilesDir()]);
  const unique = opts.fault !== undefined;
  const svc = new MetersService({
    config: metersConfig({ ...(opts.n ? { n: opts.n } : {}), ...(opts.guard === false ? { guard: false } : {}), equalLength: unique }),
    profiles,
    clock,
    log,
    bus,
    outbox,
    coalesce: opts.coalesce,
    ...(unique ? { simulatedValues: (p: PointSpec, seed: number, index: number) => uniqueValue(p, seed, index) } : {}),
  });
  const runner = svc.runners.get('line')!;
  const sim = svc.simulated.get('line')!;
  if (opts.dead) sim.setOnline(opts.dead, false);
  // The meters' end of the wire is the endpoint that is not the gateway's.
  const expected = new Map<string, number>();
  runner.devices.forEach((d, i) => {
    const all = d.profile.points.map((p) => p.name);
    for (const p of d.points) expected.set(`${d.id}/${p.name}`, uniqueValue(p, i + 1, all.indexOf(p.name)));
  });
  let wrongAny = 0;
  let wrongGood = 0;
  let suspect = 0;

  const lastAt = new Map<string, number>();
  let measuring = false;
  let maxGap = 0;
  let healthyReadings = 0;
  let pointReadings = 0;
  bus.on('meter.reading', (e) => {
    const now = performance.now();
    if (unique)
      for (const v of e.values) {
        if (v.quality === 'suspect') suspect++;
        const want = expected.get(`${e.device}/${v.name}`)!;
        if (v.value !== null && Math.abs(v.value - want) <= (TOLERANCE[v.kind] ?? 0.005)) continue;
        wrongAny++;
        if (v.quality === 'good') wrongGood++;
      }
    if (measuring) {
      const prev = lastAt.get(e.device);
      if (prev !== undefined) maxGap = Math.max(maxGap, now - prev);
      if (e.device !== opts.dead) healthyReadings++;
      pointReadings += e.values.length;
    }
    lastAt.set(e.device, now);
  });
  faultsApplied = 0;
  if (opts.fault) {
    // Faults on the simulators' replies: every write that is not the gateway's.
    const gw = sim.endpoint;
    let hook: ReturnType<typeof faultHook> | undefined;
    sim.wire.faults = (from, bytes) => {
      if (from === gw) return undefined;
      hook ??= faultHook(opts.fault!, from);
      return hook(from, bytes);
    };
  }
  svc.start();
  // Warm-up: every meter read once (and the dead one gone through its first timeouts).
  const healthy = runner.devices.filter((d) => d.id !== opts.dead).map((d) => d.id);
  while (!healthy.every((id) => lastAt.has(id))) await new Promise((r) => setTimeout(r, 50));

  const polls0 = new Map(runner.devices.map((d) => [d.id, d.counters.polls]));
  const tx0 = runner.stats.transactions;
  const skipped0 = runner.stats.skipped;
  const wire0 = { ...sim.wire.stats };
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  measuring = true;
  // Run until the healthy meters have each been polled `cycles` more times.
  const target = () => Math.min(...healthy.map((id) => runner.device(id)!.counters.polls - polls0.get(id)!));
  while (target() < opts.cycles) await new Promise((r) => setTimeout(r, 20));
  const elapsed = performance.now() - t0;
  measuring = false;
  const cpu = process.cpuUsage(cpu0);
  const cycles = healthy.reduce((n, id) => n + runner.device(id)!.counters.polls - polls0.get(id)!, 0) / healthy.length;
  const tx = runner.stats.transactions - tx0;
  const bytes = sim.wire.stats.bytes - wire0.bytes;
  const boundMs = wireBoundMs(bytes, tx, SERIAL, SILENCE_MS) / cycles;
  const txs = runner.protocol.transactor.stats;
  const lateReplies = runner.devices.reduce((n, d) => n + d.counters.lateReplies, 0);
  await svc.stop();
  outbox.close();
  db.close();
  rmSync(dir, { recursive: true, force: true });
  const r: PhaseResult = {
    guards: txs.guards,
    guardMs: txs.guardMs,
    lateReplies,
    wrongAny,
    wrongGood,
    suspect,
    faults: faultsApplied,
    cycleMs: elapsed / cycles,
    boundMs,
    txPerCycle: tx / cycles,
    readingsPerSecHealthy: (healthyReadings / elapsed) * 1000,
    maxGapMs: maxGap,
    skipped: runner.stats.skipped - skipped0,
    pointReadings,
    cpuMs: (cpu.user + cpu.system) / 1000,
    elapsedMs: elapsed,
  };
  console.log(`  [${label}] ${cycles.toFixed(1)} cycles in ${(elapsed / 1000).toFixed(1)} s`);
  return r;
}

const f = (n: number, d = 0) => n.toFixed(d);

/** CPU the process burns doing nothing (runtime threads, GC, the tsx loader) per second: the floor the figures sit on. */
async function idleCpuMsPerS(ms = 5000): Promise<number> {
  const keepAlive = setInterval(() => {}, 1000);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await new Promise((r) => setTimeout(r, ms));
  const c = process.cpuUsage(c0);
  clearInterval(keepAlive);
  return (c.user + c.system) / 1000 / ((performance.now() - t0) / 1000);
}

async function main(): Promise<void> {
  const idle = await idleCpuMsPerS();
  console.log(`bench:meters — 32 meters (16 SDM630 Modbus × 18 points, 16 DL/T 645-2007 × 4 points) on one simulated ${BAUD} baud 8N1 line, polls asked every 100 ms`);
  const a = await phase('coalesced', { coalesce: true, cycles: CYCLES });
  const a0 = await phase('coalesced, guard off', { coalesce: true, cycles: CYCLES, guard: false });
  const b = await phase('one request per point', { coalesce: false, cycles: Math.max(1, CYCLES - 1) });
  const c = await phase('coalesced, sdm-5 dead', { coalesce: true, dead: 'sdm-5', cycles: CYCLES });
  const c0 = await phase('coalesced, sdm-5 dead, guard off', { coalesce: true, dead: 'sdm-5', cycles: CYCLES, guard: false });
  const faults: Array<[string, PhaseResult]> = [];
  const faultCycles = Number(process.env.BENCH_FAULT_CYCLES ?? 10);
  for (const kind of ['late', 'corrupt', 'drop', 'truncate', 'noise'] as const) faults.push([kind, await phase(`4 DDSU666 + 4 DL/T 645, 10 % ${kind}`, { coalesce: true, cycles: faultCycles, fault: kind, n: 4 })]);
  const control = await phase('4 DDSU666 + 4 DL/T 645, 10 % late, guard off (control)', { coalesce: true, cycles: faultCycles, fault: 'late', n: 4, guard: false });
  const rss = process.memoryUsage().rss;

  console.log('');
  console.log(`cycle time (coalesced)         ${f(a.cycleMs)} ms   wire-time bound ${f(a.boundMs)} ms   ratio ${(a.cycleMs / a.boundMs).toFixed(3)}   (target ≤ 1.15; the wire cannot beat its bound: ratio ≥ 1)`);
  console.log(`transactions per cycle         coalesced ${f(a.txPerCycle, 1)}   one per point ${f(b.txPerCycle, 1)}   (cycle ${f(b.cycleMs)} ms, bound ${f(b.boundMs)} ms, ratio ${(b.cycleMs / b.boundMs).toFixed(3)})`);
  const drop = 1 - c.readingsPerSecHealthy / a.readingsPerSecHealthy;
  console.log(`one dead meter                 healthy readings/s ${a.readingsPerSecHealthy.toFixed(2)} → ${c.readingsPerSecHealthy.toFixed(2)}   drop ${(drop * 100).toFixed(1)} %   (target ≤ 10 %; cycle ${f(c.cycleMs)} ms)`);
  console.log(`staleness (asked 100 ms)       longest gap between readings of one meter ${f(a.maxGapMs)} ms vs cycle ${f(a.cycleMs)} ms (${(a.maxGapMs / a.cycleMs).toFixed(2)} cycles); late polls skipped: ${a.skipped}`);
  const netCpu = Math.max(0, a.cpuMs - (idle * a.elapsedMs) / 1000);
  console.log(`CPU per 1,000 point readings   ${((netCpu / a.pointReadings) * 1000).toFixed(1)} ms above the idle process (${((a.cpuMs / a.pointReadings) * 1000).toFixed(1)} ms gross; idle process ${idle.toFixed(1)} ms CPU/s; ${a.pointReadings} point readings incl. simulated meters and SQLite outbox)`);
  const cleanCost = a.cycleMs / a0.cycleMs - 1;
  const deadCost = c.cycleMs / c0.cycleMs - 1;
  console.log(`guard after timeouts           clean line: cycle ${f(a.cycleMs)} ms vs ${f(a0.cycleMs)} ms without guard, cost ${(cleanCost * 100).toFixed(1)} % (${a.guards} guards)   (target ≤ 5 %)`);
  console.log(`                               sdm-5 dead: cycle ${f(c.cycleMs)} ms vs ${f(c0.cycleMs)} ms without guard, cost ${(deadCost * 100).toFixed(1)} % (${c.guards} guards, ${f(c.guardMs)} ms)`);
  console.log('wrong values published         fault (10 % of replies)   points   faults   wrong (any)   wrong as good   late replies counted   suspect   (target 0 wrong)');
  for (const [kind, r] of [...faults, ['late, guard off', control] as [string, PhaseResult]])
    console.log(`                               ${kind.padEnd(24)}  ${String(r.pointReadings).padStart(6)}   ${String(r.faults).padStart(6)}   ${String(r.wrongAny).padStart(11)}   ${String(r.wrongGood).padStart(13)}   ${String(r.lateReplies).padStart(20)}   ${String(r.suspect).padStart(7)}`);
  console.log(`RSS                            ${(rss / 1048576).toFixed(1)} MB`);
  const wrong = faults.reduce((n, [, r]) => n + r.wrongAny, 0);
  const ok = a.cycleMs / a.boundMs <= 1.15 && a.cycleMs >= a.boundMs && drop <= 0.1 && a.maxGapMs <= a.cycleMs * 1.15 && cleanCost <= 0.05 && wrong === 0;
  console.log(ok ? '\nall targets met' : '\nTARGET MISSED (see above)');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
