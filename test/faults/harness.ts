// The fault campaigns' shared harness (test/faults/sigterm-load, test/faults/outage and
// `npm run bench:faults`): the production bundle run as the unit runs it
// (scripts/bundle.ts into dist/…, ExecStart's Node flags, Environment=, `run --config`),
// meters that keep the outbox busy, a platform that sends a door.unlock every ~300 ms and
// tells the commands the broker handed over apart from those that found nobody, and the
// outbox read back from its database. No assertions here: the callers judge.
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import mqtt, { type MqttClient } from 'mqtt';
import Database from 'better-sqlite3';
import type { Platform } from '../helpers/subscriber.js';
import { REPO, UNIT_ENV, UNIT_NODE_FLAGS } from '../../scripts/lib/unit.js';

export const STREAMS = ['telemetry', 'event', 'result', 'access', 'alarm', 'audit'] as const;
export type Stream = (typeof STREAMS)[number];
const UNIT = readFileSync(join(REPO, 'systemd', 'estate-edge.service'), 'utf8');
/** The unit's TimeoutStopSec, seconds. */
export const TIMEOUT_STOP_S = Number(/^TimeoutStopSec=(\d+)s?$/m.exec(UNIT)?.[1]);
export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Meters that keep the outbox busy: every poll differs (no deadband), so every poll is a record (~35 records/s per bus). */
export function meterBuses(buses = 6) {
  return Array.from({ length: buses }, (_, i) => i + 1).map((b) => ({
    id: `bus${b}`,
    protocol: 'modbus',
    transport: 'simulated',
    baudRate: 115200,
    timeoutMs: 200,
    devices: [1, 2, 3, 4].map((d) => ({ id: `m${b}${d}`, profile: 'eastron-sdm120', address: d, pollIntervalMs: 100 })),
  }));
}

/** One door the platform (and the console) unlock, with a rate limit that never refuses the campaign's pace. */
export function campaignDoors() {
  return {
    gpio: { backend: 'simulated' },
    groups: [{ id: 'all', doors: ['gate'] }],
    doors: [{ id: 'gate', lock: { pin: 17 }, unlockMs: 200 }],
    rateLimit: { burst: 1000, perMinute: 6000 },
  };
}

/**
 * Highest seq per stream committed to the outbox. With the gateway stopped this is every
 * seq it ever made; with it running (`readonly`) a lower bound of what it has made.
 */
export function recordedSeqs(dbPath: string, opts: { readonly?: boolean } = {}): Record<Stream, number> {
  const db = new Database(dbPath, { fileMustExist: true, readonly: opts.readonly === true });
  try {
    const out = {} as Record<Stream, number>;
    for (const s of STREAMS) {
      const saved = (db.prepare('SELECT next_seq AS n FROM streams WHERE name = ?').get(s) as { n: number } | undefined)?.n ?? 1;
      const held = (db.prepare(`SELECT MAX(seq) AS m FROM rec_${s}`).get() as { m: number | null }).m ?? 0;
      out[s] = Math.max(saved - 1, held);
    }
    return out;
  } finally {
    db.close();
  }
}

export function integrity(dbPath: string): string {
  const db = new Database(dbPath, { fileMustExist: true });
  try {
    return (db.pragma('integrity_check') as Array<{ integrity_check: string }>).map((r) => r.integrity_check).join('; ');
  } finally {
    db.close();
  }
}

/** Build the production bundle into a fresh directory under dist/ (inside the checkout, so its external packages resolve from node_modules). */
export async function buildBundle(): Promise<{ main: string; remove: () => void }> {
  mkdirSync(join(REPO, 'dist'), { recursive: true });
  const build = mkdtempSync(join(REPO, 'dist', 'faults-bundle-'));
  const outdir = join(build, 'edge');
  const remove = () => rmSync(build, { recursive: true, force: true });
  try {
    await new Promise<void>((resolve, reject) => execFile(process.execPath, ['--import', 'tsx', join(REPO, 'scripts', 'bundle.ts'), outdir], { cwd: REPO }, (err, _o, stderr) => (err ? reject(new Error(`bundle failed: ${stderr || err.message}`)) : resolve())));
  } catch (err) {
    remove();
    throw err;
  }
  return { main: join(outdir, 'main.js'), remove };
}

export interface UnitRun {
  child: ChildProcess;
  /** stdout and stderr lines, in arrival order. */
  log: string[];
  spawnedAt: number;
  /** Date.now() of "gateway started", once logged. */
  startedAt?: number;
  /** Addresses the gateway logged (console, health endpoint). */
  urls: { console?: string; health?: string };
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves at "gateway started"; rejects if the process exits first or after 60 s. */
  started: Promise<void>;
}

/** Start the bundle's main.js as ExecStart does (without a notify socket). */
export function spawnUnit(main: string, configFile: string): UnitRun {
  const env: Record<string, string | undefined> = { ...process.env, ...UNIT_ENV };
  delete env.NOTIFY_SOCKET;
  const child = spawn(process.execPath, [...UNIT_NODE_FLAGS, main, 'run', '--config', configFile], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const orphan = () => child.kill('SIGKILL');
  process.once('exit', orphan);
  const run: UnitRun = {
    child,
    log: [],
    spawnedAt: Date.now(),
    urls: {},
    exited: new Promise((r) => child.once('exit', (code, signal) => (process.off('exit', orphan), r({ code, signal })))),
    started: undefined as unknown as Promise<void>,
  };
  run.started = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not started within 60 s:\n${run.log.join('\n')}`)), 60_000);
    createInterface({ input: child.stderr! }).on('line', (l) => run.log.push(l));
    createInterface({ input: child.stdout! }).on('line', (l) => {
      run.log.push(l);
      if (!l.startsWith('{')) return;
      let rec: { msg?: string; url?: string } = {};
      try {
        rec = JSON.parse(l);
      } catch {
        return;
      }
      if (rec.msg === 'technician console listening' && rec.url) run.urls.console = rec.url.replace(/\/$/, '');
      if (rec.msg === 'health and metrics endpoint listening' && rec.url) run.urls.health = rec.url;
      if (rec.msg === 'gateway started') {
        run.startedAt = Date.now();
        clearTimeout(timer);
        resolve();
      }
    });
    void run.exited.then(({ code, signal }) => (clearTimeout(timer), reject(new Error(`exited (${code ?? signal}) before it started:\n${run.log.join('\n')}`))));
  });
  // A caller that stops the gateway during start-up handles the rejection itself.
  run.started.catch(() => {});
  return run;
}

/** SIGTERM and wait for the exit (SIGKILL after TimeoutStopSec + 5 s, as systemd would). */
export async function stopUnit(run: UnitRun): Promise<{ code: number | null; signal: NodeJS.Signals | null; ms: number }> {
  const t0 = performance.now();
  run.child.kill('SIGTERM');
  const hard = setTimeout(() => run.child.kill('SIGKILL'), (TIMEOUT_STOP_S + 5) * 1000);
  const out = await run.exited;
  clearTimeout(hard);
  return { ...out, ms: performance.now() - t0 };
}

/** What a run's log says about how it went. */
export function logFindings(run: UnitRun): { errors: string[]; stackTrace: boolean; stopped: boolean; afterStopped: string[]; startedAfterStopped: boolean } {
  const text = run.log.join('\n');
  const stoppedAt = run.log.findIndex((l) => /"msg":"gateway stopped"/.test(l));
  const afterStopped = stoppedAt < 0 ? [] : run.log.slice(stoppedAt + 1);
  return {
    // pino writes the level as a label here (edge/log.ts formatters), a number elsewhere.
    errors: run.log.filter((l) => /"level":("error"|"fatal"|50\b|60\b)/.test(l)),
    stackTrace: /\n\s+at .+:\d+:\d+/.test(text),
    stopped: stoppedAt >= 0,
    afterStopped,
    startedAfterStopped: afterStopped.some((l) => /"msg":"(gateway started|module started)"/.test(l)),
  };
}

export interface SentCommand {
  id: string;
  /** false: the broker answered PUBACK reason 16 (no matching subscribers), nobody got it. */
  matched: boolean;
  at: number;
}

/** The platform's command sender: a door.unlock every ~`everyMs` (±25 ms), gateway up or not. */
export class Commander {
  readonly sent: SentCommand[] = [];
  private running = false;
  private loop: Promise<void> | undefined;
  readonly errors: string[] = [];
  private constructor(
    private readonly client: MqttClient,
    private readonly pubackCode: Map<number, number>,
    private readonly base: string,
  ) {}

  static async connect(url: string, base: string): Promise<Commander> {
    const client = await mqtt.connectAsync(url, { clientId: `platform-cmd-${process.pid}-${Math.random().toString(16).slice(2, 8)}`, protocolVersion: 5, reconnectPeriod: 200 });
    // mqtt.js resolves a QoS 1 publish without the PUBACK's reason code: read it off the wire.
    const pubackCode = new Map<number, number>();
    client.on('packetreceive', (p) => {
      if (p.cmd === 'puback') pubackCode.set(p.messageId!, (p as { reasonCode?: number }).reasonCode ?? 0);
    });
    return new Commander(client, pubackCode, base);
  }

  start(everyMs = 300, prefix = 'unlock'): void {
    this.running = true;
    this.loop = (async () => {
      for (let k = 0; this.running; k++) {
        const id = `${prefix}-${k}`;
        const at = Date.now();
        try {
          const out = await this.client.publishAsync(`${this.base}/cmd`, JSON.stringify({ v: 1, id, name: 'door.unlock', args: { doorId: 'gate' }, ts: at }), { qos: 1 });
          this.sent.push({ id, matched: this.pubackCode.get(out!.messageId!) !== 16, at });
          this.pubackCode.delete(out!.messageId!);
        } catch (err) {
          this.errors.push(`publishing command ${id}: ${String(err)}`);
        }
        await sleep(everyMs - 25 + Math.floor(Math.random() * 50));
      }
    })();
  }

  async stop(): Promise<void> {
    this.running = false;
    await this.loop;
  }

  /** Send a command again with the same id (as the platform does when no result came): a repeated id is never executed twice. */
  async resend(id: string): Promise<boolean> {
    const out = await this.client.publishAsync(`${this.base}/cmd`, JSON.stringify({ v: 1, id, name: 'door.unlock', args: { doorId: 'gate' }, ts: Date.now() }), { qos: 1 });
    const matched = this.pubackCode.get(out!.messageId!) !== 16;
    this.pubackCode.delete(out!.messageId!);
    return matched;
  }

  close(): Promise<void> {
    return this.client.endAsync(true);
  }
}

/** Result record ids per command id, and the first arrival time of each command's result. */
export function resultsFor(platform: Platform): { ids: Map<string, Set<string>>; firstAt: Map<string, number>; first: Map<string, { ok: boolean; error?: { code: string } }> } {
  const ids = new Map<string, Set<string>>();
  const firstAt = new Map<string, number>();
  const first = new Map<string, { ok: boolean; error?: { code: string } }>();
  for (const r of platform.records('result')) {
    const id = r.data.commandId as string;
    ids.set(id, (ids.get(id) ?? new Set<string>()).add(r.id));
    if (!firstAt.has(id)) {
      firstAt.set(id, r.at);
      first.set(id, r.data);
    }
  }
  return { ids, firstAt, first };
}

/** Seqs 1…upTo[stream] not upstream, per stream. */
export function missingSeqs(platform: Platform, upTo: Record<Stream, number>): Record<Stream, number[]> {
  const out = {} as Record<Stream, number[]>;
  for (const s of STREAMS) {
    const got = new Set(platform.records(s).map((r) => r.seq));
    out[s] = [];
    for (let q = 1; q <= upTo[s]; q++) if (!got.has(q)) out[s].push(q);
  }
  return out;
}

export function percentile(values: number[], p: number): number {
  if (!values.length) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
