// npm run bench:soak — does the gateway grow? The simulated estate with face access, run
// the way systemd runs it (the unit's entry, V8 flags and environment), at an accelerated
// rate for a long time:
//   - every simulated meter polled every BENCH_SOAK_POLL_MS (default 500 ms);
//   - a door event every second (door.unlock over MQTT: command, result, access and
//     door-state records);
//   - an enrolment every minute (person.upsert with a photo over MQTT, alternating two
//     photos of the same resident: the template is replaced, the work is real);
//   - the camera on the demo video throughout (face decisions at the gate);
//   - the broker taken away for 30 s every 5 minutes and brought back (records buffer in
//     the outbox, then drain).
// Every minute it prints RSS, PSS and USS (smaps_rollup), the V8 heap (/metrics), open
// file descriptors, the SQLite files' sizes and the outbox depth. At the end: growth from
// minute 5 (warm-up over) to the end of the run; target ≤ 2 MB.
//
// Environment: BENCH_SOAK_MIN (default 30), BENCH_SOAK_POLL_MS (500).
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { stringify } from 'yaml';
import { Broker } from '../test/helpers/broker.js';
import { freePort } from '../test/helpers/ports.js';
import { FakeNotifySocket } from './lib/notify-socket.js';
import { REPO, UNIT_ENV, UNIT_MAIN, UNIT_NODE_FLAGS, procMemFigures, type MemFigures } from './lib/unit.js';
import { simulatedEstateConfig } from '../edge/config/embedded.js';

const MINUTES = Number(process.env.BENCH_SOAK_MIN ?? 30);
const POLL_MS = Number(process.env.BENCH_SOAK_POLL_MS ?? 500);
const WARMUP_MIN = Math.min(5, Math.max(1, Math.floor(MINUTES / 3)));
const TARGET_GROWTH_MB = 2;
const MEDIA = join(REPO, '..', 'shared', 'media');
const VIDEO = join(MEDIA, 'video', 'obama_portrait_zoom_640x480.mp4');
const PHOTOS = [join(MEDIA, 'faces', 'obama', '1.jpg'), join(MEDIA, 'faces', 'obama', '2.jpg')];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Sample {
  min: number;
  mem: MemFigures;
  heapMB: number;
  fds: number;
  dbMB: Record<string, number>;
  outbox: number;
  decisions: number;
  doorOk: number;
  enrolOk: number;
}

async function metrics(port: number): Promise<{ heapMB: number; outbox: number; decisions: number }> {
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, { signal: AbortSignal.timeout(5000) })).text();
    const sum = (name: string) => [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'gm'))].reduce((s, m) => s + Number(m[1]), 0);
    return { heapMB: sum('estate_process_nodejs_heap_size_used_bytes') / 1048576, outbox: sum('estate_outbox_records'), decisions: sum('estate_vision_decisions_total') };
  } catch {
    return { heapMB: NaN, outbox: NaN, decisions: NaN };
  }
}

function dbSizes(dir: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const f of readdirSync(dir)) if (/\.db(-wal)?$/.test(f)) out[f] = statSync(join(dir, f)).size / 1048576;
  return out;
}

async function main(): Promise<void> {
  for (const f of [UNIT_MAIN, VIDEO, ...PHOTOS]) if (!existsSync(f)) throw new Error(`${f} missing (npm run bench:soak builds the app; media come from ../shared/media)`);
  const work = mkdtempSync(join(tmpdir(), 'ee-soak-'));
  const broker = await Broker.start();
  const httpPort = await freePort();
  const site = 'soak';
  const gw = 'gw';
  const base = `estate/${site}/${gw}`;
  const dataDir = join(work, 'data');
  const estate = simulatedEstateConfig() as Record<string, any>;
  if (!estate.vision) throw new Error('face access is not in the simulated estate: install the models (npm run models -- --from ../shared/models)');
  for (const bus of estate.meters.buses) for (const d of bus.devices) d.pollIntervalMs = POLL_MS;
  const config = {
    ...estate,
    site: { id: site },
    gateway: { id: gw, dataDir },
    log: { level: 'warn' },
    http: { host: '127.0.0.1', port: httpPort },
    console: { enabled: false },
    uplink: { url: broker.url, reconnectMinMs: 500, reconnectMaxMs: 5000 },
    status: { intervalS: 60 },
    vision: { ...estate.vision, camera: { ...estate.vision.camera, source: { kind: 'file', path: VIDEO } } },
  };
  const file = join(work, 'config.yaml');
  writeFileSync(file, stringify(config));
  const main = UNIT_MAIN;
  const sock = new FakeNotifySocket();
  await sock.start();
  const child = spawn(process.execPath, [...UNIT_NODE_FLAGS, main, 'run', '--config', file], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, ...UNIT_ENV, NOTIFY_SOCKET: sock.path, WATCHDOG_USEC: '30000000' },
  });
  const pid = child.pid!;
  process.once('exit', () => void child.kill('SIGKILL'));
  // Interrupted (Ctrl-C, kill): the gateway goes with the benchmark.
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => process.exit(130));
  let decisions = 0;
  child.stdout!.resume();
  const stopAll = async () => {
    child.kill('SIGTERM');
    await Promise.race([new Promise((r) => child.once('exit', r)), sleep(20_000)]);
    if (child.exitCode === null) child.kill('SIGKILL');
    await sock.close();
    await broker.stop();
  };
  try {
    await sock.waitFor('READY', 180_000);
    // The platform side: commands out, their results in (nothing else is kept).
    const client = await mqtt.connectAsync(broker.url, { protocolVersion: 5, reconnectPeriod: 500, connectTimeout: 10_000 });
    const pending = new Map<string, (ok: boolean) => void>();
    client.on('message', (_t, payload) => {
      try {
        const batch = JSON.parse(payload.toString()) as { records: Array<{ data: { commandId?: string; ok?: boolean } }> };
        for (const r of batch.records) {
          const done = r.data.commandId ? pending.get(r.data.commandId) : undefined;
          if (done) {
            pending.delete(r.data.commandId!);
            done(r.data.ok === true);
          }
        }
      } catch {
        /* not a batch */
      }
    });
    await client.subscribeAsync(`${base}/up/result`, { qos: 1 });
    let seq = 0;
    const command = (name: string, args: Record<string, unknown>, timeoutMs: number): Promise<boolean> => {
      const id = `soak-${++seq}`;
      return new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          pending.delete(id);
          resolve(false);
        }, timeoutMs);
        pending.set(id, (ok) => {
          clearTimeout(timer);
          resolve(ok);
        });
        // Published while the broker is away it is lost, as on a real platform: counted as not ok.
        client.publishAsync(`${base}/cmd`, JSON.stringify({ v: 1, id, name, args, ts: Date.now() }), { qos: 1 }).catch(() => undefined);
      });
    };
    const doorId = (estate.vision.doorId as string) ?? 'gate';
    const groups = ((estate.doors?.groups ?? []) as Array<{ id: string; doors: string[] }>).filter((g) => g.doors.includes(doorId)).map((g) => g.id);
    const photos = PHOTOS.map((p) => readFileSync(p).toString('base64'));

    let doorOk = 0;
    let enrolOk = 0;
    let running = true;
    const doors = (async () => {
      while (running) {
        const t0 = Date.now();
        void command('door.unlock', { doorId, durationMs: 500 }, 30_000).then((ok) => ok && doorOk++);
        await sleep(Math.max(0, 1000 - (Date.now() - t0)));
      }
    })();
    let enrolments = 0;
    const enrol = async () => {
      const ok = await command('person.upsert', { id: 'soak-resident', kind: 'resident', doorGroups: groups, faces: { photos: [photos[enrolments++ % photos.length]] } }, 60_000);
      if (ok) enrolOk++;
    };
    await enrol();

    console.log(`estate-edge soak (${process.arch}, Node ${process.version}, ${MINUTES} min, meters every ${POLL_MS} ms, a door event every second, an enrolment a minute, broker away 30 s every 5 min; unit flags ${UNIT_NODE_FLAGS.join(' ')}; load average ${loadavg()[0]!.toFixed(1)})`);
    console.log('min  RSS MB  PSS MB  USS MB  heap MB  fds  outbox  SQLite MB (db+wal)                         decisions doors enrol');
    const samples: Sample[] = [];
    const t0 = Date.now();
    for (let min = 1; min <= MINUTES; min++) {
      const minuteStart = t0 + (min - 1) * 60_000;
      if (min > 1) void enrol();
      if (min % 5 === 0) {
        // Broker away for 30 s, in the middle of the minute.
        await sleep(Math.max(0, minuteStart + 15_000 - Date.now()));
        await broker.stop();
        await sleep(30_000);
        await broker.start();
      }
      await sleep(Math.max(0, minuteStart + 60_000 - Date.now()));
      if (child.exitCode !== null) throw new Error(`the gateway exited (${child.exitCode}) in minute ${min}`);
      const m = await metrics(httpPort);
      if (Number.isFinite(m.decisions)) decisions = m.decisions;
      const s: Sample = { min, mem: procMemFigures(pid), heapMB: m.heapMB, fds: readdirSync(`/proc/${pid}/fd`).length, dbMB: dbSizes(dataDir), outbox: m.outbox, decisions, doorOk, enrolOk };
      samples.push(s);
      const db = Object.entries(s.dbMB)
        .map(([k, v]) => `${k.replace('.db', '')} ${v.toFixed(2)}`)
        .join(', ');
      console.log(
        `${String(min).padStart(3)}  ${s.mem.rss.toFixed(1).padStart(6)}  ${s.mem.pss.toFixed(1).padStart(6)}  ${s.mem.uss.toFixed(1).padStart(6)}  ${s.heapMB.toFixed(1).padStart(7)}  ${String(s.fds).padStart(3)}  ${String(s.outbox).padStart(6)}  ${db.padEnd(42)} ${String(decisions).padStart(9)} ${String(doorOk).padStart(5)} ${String(enrolOk).padStart(5)}`,
      );
    }
    running = false;
    await doors;
    await client.endAsync(true);

    const w = samples.find((s) => s.min === WARMUP_MIN)!;
    const last = samples.at(-1)!;
    const grow = (f: (s: Sample) => number) => f(last) - f(w);
    const maxAfter = (f: (s: Sample) => number) => Math.max(...samples.filter((s) => s.min >= WARMUP_MIN).map(f)) - f(w);
    const ok = (v: number) => (v <= TARGET_GROWTH_MB ? 'ok' : 'OVER');
    console.log(`\ngrowth from minute ${WARMUP_MIN} to minute ${last.min} (target ≤ ${TARGET_GROWTH_MB} MB):`);
    console.log(`  RSS ${grow((s) => s.mem.rss).toFixed(1)} MB (${ok(grow((s) => s.mem.rss))}; highest above minute ${WARMUP_MIN}: ${maxAfter((s) => s.mem.rss).toFixed(1)} MB)`);
    console.log(`  USS ${grow((s) => s.mem.uss).toFixed(1)} MB (${ok(grow((s) => s.mem.uss))}; highest above minute ${WARMUP_MIN}: ${maxAfter((s) => s.mem.uss).toFixed(1)} MB)`);
    console.log(`  PSS ${grow((s) => s.mem.pss).toFixed(1)} MB, V8 heap ${grow((s) => s.heapMB).toFixed(1)} MB, open fds ${grow((s) => s.fds)}, outbox depth ${w.outbox} → ${last.outbox}`);
    const dbw = Object.values(w.dbMB).reduce((a, b) => a + b, 0);
    const dbl = Object.values(last.dbMB).reduce((a, b) => a + b, 0);
    console.log(`  SQLite files ${dbw.toFixed(2)} → ${dbl.toFixed(2)} MB (records are kept until acknowledged, then pruned)`);
    console.log(`  work done: ${decisions} face decisions, ${doorOk} door commands answered ok, ${enrolOk}/${enrolments} enrolments ok`);
  } finally {
    await stopAll();
    rmSync(work, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    process.stderr.write(`bench:soak failed: ${String((err as Error)?.stack ?? err)}\n`);
    process.exit(1);
  },
);
