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

const BAUD = 9600;
const SERIAL = { baudRate: BAUD, parity: 'none', stopBits: 1 } as const;
const BITS = 10;
const SILENCE_MS = interFrameSilenceMs(SERIAL);
const CYCLES = Number(process.env.BENCH_CYCLES ?? 3);

function metersConfig(): MetersConfig {
  const devices: Array<Record<string, unknown>> = [];
  for (let i = 1; i <= 16; i++) devices.push({ id: `sdm-${i}`, profile: 'eastron-sdm630', address: i, pollIntervalMs: 100 });
  for (let i = 1; i <= 16; i++) devices.push({ id: `dlt-${i}`, profile: 'dlt645-2007-single', address: String(100 + i), pollIntervalMs: 100, points: ['import_energy', 'voltage', 'current', 'active_power'] });
  const raw = { timeSyncIntervalH: 0, fullReportIntervalS: 0, buses: [{ id: 'line', protocol: 'mixed', transport: 'simulated', baudRate: BAUD, timeoutMs: 200, offlineAfter: 2, backoffBaseMs: 5000, backoffMaxMs: 300000, devices }] };
  // Through the real config loader: defaults, validation and cross-field checks.
  return finish({ site: { id: 'bench' }, gateway: { id: 'gw' }, meters: raw }, 'bench').config.meters;
}

interface PhaseResult {
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

async function phase(label: string, opts: { coalesce: boolean; dead?: string; cycles: number }): Promise<PhaseResult> {
  const dir = mkdtempSync(join(tmpdir(), 'ee-bench-meters-'));
  const log = pino({ level: 'silent' });
  const clock = new SystemClock();
  const { db } = openDatabase(join(dir, 'outbox.db'), { synchronous: 'normal', log });
  const outbox = new Outbox({ db, clock, log, quotaBytes: 512 * 1048576 });
  const bus = new EventBus();
  const profiles = loadProfiles([builtinProfilesDir()]);
  const svc = new MetersService({ config: metersConfig(), profiles, clock, log, bus, outbox, coalesce: opts.coalesce });
  const runner = svc.runners.get('line')!;
  const sim = svc.simulated.get('line')!;
  if (opts.dead) sim.setOnline(opts.dead, false);

  const lastAt = new Map<string, number>();
  let measuring = false;
  let maxGap = 0;
  let healthyReadings = 0;
  let pointReadings = 0;
  bus.on('meter.reading', (e) => {
    const now = performance.now();
    if (measuring) {
      const prev = lastAt.get(e.device);
      if (prev !== undefined) maxGap = Math.max(maxGap, now - prev);
      if (e.device !== opts.dead) healthyReadings++;
      pointReadings += e.values.length;
    }
    lastAt.set(e.device, now);
  });
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
  const boundMs = ((bytes * BITS * 1000) / BAUD + 2 * SILENCE_MS * tx) / cycles;
  await svc.stop();
  outbox.close();
  db.close();
  rmSync(dir, { recursive: true, force: true });
  const r: PhaseResult = {
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
  const b = await phase('one request per point', { coalesce: false, cycles: Math.max(1, CYCLES - 1) });
  const c = await phase('coalesced, sdm-5 dead', { coalesce: true, dead: 'sdm-5', cycles: CYCLES });
  const rss = process.memoryUsage().rss;

  console.log('');
  console.log(`cycle time (coalesced)         ${f(a.cycleMs)} ms   wire-time bound ${f(a.boundMs)} ms   ratio ${(a.cycleMs / a.boundMs).toFixed(3)}   (target ≤ 1.15)`);
  console.log(`transactions per cycle         coalesced ${f(a.txPerCycle, 1)}   one per point ${f(b.txPerCycle, 1)}   (cycle ${f(b.cycleMs)} ms, bound ${f(b.boundMs)} ms, ratio ${(b.cycleMs / b.boundMs).toFixed(3)})`);
  const drop = 1 - c.readingsPerSecHealthy / a.readingsPerSecHealthy;
  console.log(`one dead meter                 healthy readings/s ${a.readingsPerSecHealthy.toFixed(2)} → ${c.readingsPerSecHealthy.toFixed(2)}   drop ${(drop * 100).toFixed(1)} %   (target ≤ 10 %; cycle ${f(c.cycleMs)} ms)`);
  console.log(`staleness (asked 100 ms)       longest gap between readings of one meter ${f(a.maxGapMs)} ms vs cycle ${f(a.cycleMs)} ms (${(a.maxGapMs / a.cycleMs).toFixed(2)} cycles); late polls skipped: ${a.skipped}`);
  const netCpu = Math.max(0, a.cpuMs - (idle * a.elapsedMs) / 1000);
  console.log(`CPU per 1,000 point readings   ${((netCpu / a.pointReadings) * 1000).toFixed(1)} ms above the idle process (${((a.cpuMs / a.pointReadings) * 1000).toFixed(1)} ms gross; idle process ${idle.toFixed(1)} ms CPU/s; ${a.pointReadings} point readings incl. simulated meters and SQLite outbox)`);
  console.log(`RSS                            ${(rss / 1048576).toFixed(1)} MB`);
  const ok = a.cycleMs / a.boundMs <= 1.15 && drop <= 0.1 && a.maxGapMs <= a.cycleMs * 1.15;
  console.log(ok ? '\nall targets met' : '\nTARGET MISSED (see above)');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
