// `npm run bench:fleet [-- --boxes 20 --batch 5 --release-mb 8 --chunk-kb 256]` (issue 18
// part 5): a staged rollout over a fleet of real boxes (test/fleet-tool/fleet-harness.ts:
// gateway processes with simulated meters and a door, A/B release roots, a systemd-like
// restart loop, one Mosquitto), by the fleet tool run as its own process. Three rollouts,
// each canary then batches: a config patch, an upgrade downloaded over HTTPS, an upgrade
// sent in chunks over MQTT. Printed: the time of each (beside its target), per batch the
// upgrade's transfer time and what the upgrade adds over it, bytes on the wire per box, CPU
// of the broker, the boxes and the tool, the meter reading rate during each rollout against
// the rate before, and door commands sent during it and answered.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Fleet, runTool, SITE } from '../test/fleet-tool/fleet-harness.js';

const { values } = parseArgs({
  options: {
    boxes: { type: 'string', default: '20' },
    batch: { type: 'string', default: '5' },
    'release-mb': { type: 'string', default: '8' },
    'chunk-kb': { type: 'string', default: '256' },
    'baseline-s': { type: 'string', default: '20' },
  },
});
const N = Number(values.boxes);
const BATCH = Number(values.batch);
const RELEASE_BYTES = Math.round(Number(values['release-mb']) * 1024 * 1024);
const CLK = 100; // USER_HZ: /proc/<pid>/stat counts CPU in 1/100 s on Linux
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Simulated meters that record every poll (no deadband) and one door on the GPIO simulator. */
function extra(): string[] {
  const devices = [1, 2].map((a) => ({ id: `m${a}`, profile: 'eastron-sdm120', address: a, pollIntervalMs: 500 }));
  return [
    `meters: ${JSON.stringify({ buses: [{ id: 'bus1', protocol: 'modbus', transport: 'simulated', baudRate: 115200, timeoutMs: 200, devices }] })}`,
    `doors: ${JSON.stringify({ gpio: { backend: 'simulated' }, doors: [{ id: 'gate', lock: { pin: 17 }, unlockMs: 200 }], rateLimit: { burst: 1000, perMinute: 6000 } })}`,
  ];
}

/** CPU seconds by pid, sampled: a box's gateway process changes at every restart. */
class CpuSampler {
  private last = new Map<number, number>();
  private timer: NodeJS.Timeout | undefined;
  readonly total = new Map<string, number>();
  constructor(private readonly pids: () => Array<[string, number | undefined]>) {}
  private sample(): void {
    for (const [who, pid] of this.pids()) {
      if (!pid) continue;
      let ticks: number;
      try {
        const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
        ticks = Number(rest[11]) + Number(rest[12]);
      } catch {
        continue; // exited between listing and reading
      }
      const prev = this.last.get(pid) ?? ticks;
      this.last.set(pid, ticks);
      this.total.set(who, (this.total.get(who) ?? 0) + (ticks - prev) / CLK);
    }
  }
  start(): void {
    this.total.clear();
    this.last.clear();
    this.sample();
    this.timer = setInterval(() => this.sample(), 200);
  }
  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.sample();
  }
}

interface DoorProbe {
  sent: number;
  answered: number;
  /** Unanswered although the box's status said online when it was sent. */
  lostOnline: number;
  latencies: number[];
  stop(): Promise<void>;
}

/** A door.unlock every 500 ms to the next box in turn, answered or not within 10 s. */
function probeDoors(fleet: Fleet): DoorProbe {
  const p: DoorProbe = { sent: 0, answered: 0, lostOnline: 0, latencies: [], stop: async () => {} };
  const waiting = new Map<string, { at: number; online: boolean }>();
  // Its own listener: scanning the platform's whole record list per command would cost more than the boxes.
  const onMessage = (topic: string, payload: Buffer) => {
    if (!topic.endsWith('/up/result')) return;
    try {
      for (const r of (JSON.parse(payload.toString()) as { records: Array<{ data: { commandId?: string } }> }).records) {
        const w = r.data.commandId ? waiting.get(r.data.commandId) : undefined;
        if (w === undefined) continue;
        const at = w.at;
        waiting.delete(r.data.commandId!);
        if (Date.now() - at <= 10_000) {
          p.answered++;
          p.latencies.push(Date.now() - at);
        }
      }
    } catch {
      /* not a record batch */
    }
  };
  fleet.platform.client.on('message', onMessage);
  let i = 0;
  let on = true;
  const loop = (async () => {
    while (on) {
      const box = fleet.boxes[i++ % fleet.boxes.length]!;
      const id = `door-${Date.now()}-${i}`;
      const at = Date.now();
      p.sent++;
      waiting.set(id, { at, online: fleet.status(box.gateway)?.state === 'online' });
      await fleet.platform.client.publishAsync(`${box.base}/cmd`, JSON.stringify({ v: 1, id, name: 'door.unlock', args: { doorId: 'gate' }, ts: at, expiresAt: at + 10_000 }), { qos: 1 });
      await sleep(500);
    }
  })();
  p.stop = async () => {
    on = false;
    await loop;
    await sleep(10_000 - 500); // the last ones get their 10 s
    fleet.platform.client.off('message', onMessage);
    p.lostOnline = [...waiting.values()].filter((w) => w.online).length;
  };
  return p;
}

const pct = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))]! : Number.NaN;
};

/** Telemetry records (one per meter poll) whose reading time falls in [from, to), per second. */
function meterRate(fleet: Fleet, from: number, to: number): number {
  const n = fleet.platform.records('telemetry').filter((r) => r.ts >= from && r.ts < to).length;
  return n / ((to - from) / 1000);
}

/** Bytes the boxes published (all streams but telemetry, and status) between two times. */
function upBytes(fleet: Fleet, from: number, to: number): number {
  return fleet.platform.raw.filter((m) => m.at >= from && m.at < to && !m.topic.endsWith('/cmd') && !m.topic.endsWith('/up/telemetry')).reduce((s, m) => s + m.payload.length + m.topic.length, 0);
}

async function main(): Promise<void> {
  console.log(`bench:fleet — ${N} boxes, canary + batches of ${BATCH}, release ${(RELEASE_BYTES / 1048576).toFixed(1)} MB, chunks ${values['chunk-kb']} KB`);
  const t0 = Date.now();
  const fleet = await Fleet.start(N, { extra, commitTimeoutS: 120, onlineTimeoutMs: 240_000 });
  try {
    console.log(`fleet up in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const cpu = new CpuSampler(() => [['broker', fleet.broker.pid], ...fleet.boxes.map((b) => [b.gateway, b.sup.pid()] as [string, number | undefined])]);
    const baseFrom = Date.now() + 3000;
    await sleep(3000 + Number(values['baseline-s']) * 1000);
    const baseTo = Date.now();
    await sleep(2000); // the last baseline records arrive
    const base = meterRate(fleet, baseFrom, baseTo);
    console.log(`meter readings before: ${base.toFixed(1)} records/s over ${((baseTo - baseFrom) / 1000).toFixed(0)} s (${N} boxes × 2 meters every 500 ms)`);

    const run = async (label: string, args: string[], target: string) => {
      const doors = probeDoors(fleet);
      cpu.start();
      const from = Date.now();
      const r = await runTool([...args, '--broker', fleet.broker.url, '--site', SITE, '--batch', String(BATCH), '--json'], { timeoutMs: 1_200_000 });
      const to = Date.now();
      cpu.stop();
      await doors.stop();
      await sleep(3000); // records buffered during restarts drain
      let rep: { halted: boolean; seconds: number; rows: Array<{ gateway: string; state: string; batch: number; commandId: string; detail?: string }>; wire: Record<string, { sent: number; received: number }> };
      try {
        rep = JSON.parse(r.stdout.trim().split('\n').at(-1) ?? '');
      } catch {
        throw new Error(`${label}: the tool printed no report (exit ${r.code}): ${r.stderr}`);
      }
      const states = new Map<string, number>();
      for (const row of rep.rows) states.set(row.state, (states.get(row.state) ?? 0) + 1);
      const boxCpu = fleet.boxes.map((b) => cpu.total.get(b.gateway) ?? 0);
      const wire = Object.values(rep.wire);
      const rate = meterRate(fleet, from, to);
      console.log(`\n## ${label}`);
      console.log(`rollout: ${rep.seconds.toFixed(1)} s (${target}); ${[...states].map(([k, v]) => `${v} ${k}`).join(', ')}${rep.halted ? ' — HALTED' : ''}`);
      console.log(
        `tool ↔ broker per box: sent ${fmtBytes(
          pct(
            wire.map((w) => w.sent),
            0.5,
          ),
        )} median, received ${fmtBytes(
          pct(
            wire.map((w) => w.received),
            0.5,
          ),
        )} median; box → broker (results, events, status; no telemetry) ${fmtBytes(upBytes(fleet, from, to + 3000) / N)} per box`,
      );
      const secs = (to - from) / 1000;
      console.log(
        `CPU over ${secs.toFixed(1)} s: broker ${(cpu.total.get('broker') ?? 0).toFixed(2)} s (${(((cpu.total.get('broker') ?? 0) / secs) * 100).toFixed(1)} %), boxes median ${pct(boxCpu, 0.5).toFixed(2)} s / max ${Math.max(...boxCpu).toFixed(2)} s each, all boxes ${boxCpu.reduce((a, b) => a + b, 0).toFixed(1)} s (${((boxCpu.reduce((a, b) => a + b, 0) / secs) * 100).toFixed(0)} % of one core)`,
      );
      console.log(`meter readings during it: ${rate.toFixed(1)} records/s = ${((rate / base) * 100).toFixed(1)} % of before (target ≥ 90 %)`);
      console.log(
        `door commands during it: ${doors.answered} of ${doors.sent} answered (p50 ${pct(doors.latencies, 0.5)} ms, max ${Math.max(...doors.latencies, 0)} ms); of the ${doors.sent - doors.answered} unanswered, ${doors.lostOnline} went to a box whose status said online (the rest to a box restarting: offline, nobody to answer)`,
      );
      return rep;
    };

    await run('config patch (status.intervalS 30 → 45)', ['config', '--patch', '{"status":{"intervalS":45}}', '--confirm-within-s', '60', '--reason', 'bench'], 'target ≤ 30 s');

    for (const [label, version, transport] of [
      ['upgrade over HTTPS', '0.2.0', ['--url', fleet.https.url]],
      ['upgrade over MQTT chunks', '0.3.0', ['--chunked', '--chunk-kb', String(values['chunk-kb'])]],
    ] as const) {
      const { tarball, manifest } = fleet.release(version, { padBytes: RELEASE_BYTES });
      const served0 = fleet.https.served.bytes;
      const rep = await run(`${label} (${(manifest.size / 1048576).toFixed(1)} MB)`, ['upgrade', '--tarball', tarball, ...transport], 'target: ≤ 15 s per batch over the transfer');
      if (transport[0] === '--url') console.log(`HTTPS served ${fmtBytes((fleet.https.served.bytes - served0) / N)} per box`);
      // Per batch, from the boxes' own progress records (their UTC ms): transfer = command →
      // first phase after downloading/receiving; the upgrade's own cost = that → committed.
      const prog = fleet.platform.records('event').filter((e) => e.type === 'upgrade.progress' || e.type === 'upgrade.committed');
      const sentAt = (g: string, id: string) => fleet.commandsTo(g).find((c) => c.id === id)?.at;
      const batches = new Map<number, Array<{ transfer: number; rest: number; total: number }>>();
      for (const row of rep.rows) {
        const mine = prog.filter((e) => e.data.jobId === row.commandId);
        const sent = sentAt(row.gateway, row.commandId);
        const moved = mine.find((e) => e.type === 'upgrade.progress' && !['downloading', 'receiving'].includes(e.data.phase))?.ts;
        const done = mine.find((e) => e.type === 'upgrade.committed')?.ts;
        if (!sent || !moved || !done) continue;
        batches.set(row.batch, [...(batches.get(row.batch) ?? []), { transfer: moved - sent, rest: done - moved, total: done - sent }]);
      }
      for (const [b, xs] of [...batches].sort((x, y) => x[0] - y[0])) {
        const worst = (k: 'transfer' | 'rest' | 'total') => (Math.max(...xs.map((x) => x[k])) / 1000).toFixed(1);
        console.log(`  ${b === 0 ? 'canary ' : `batch ${b}`}: ${xs.length} boxes, slowest transfer ${worst('transfer')} s, then verify/unpack/switch/restart/commit ${worst('rest')} s (target ≤ 15 s), command → committed ${worst('total')} s`);
      }
    }
  } finally {
    await fleet.stop();
  }
}

function fmtBytes(n: number): string {
  return n >= 1048576 ? `${(n / 1048576).toFixed(2)} MB` : `${(n / 1024).toFixed(1)} KB`;
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`bench:fleet: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    process.exit(1);
  },
);
