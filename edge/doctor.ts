// `estate-edge doctor`: the first thing a technician runs on a box. Checks what the
// gateway needs from its surroundings — config, data directory and disk, clock, broker,
// serial ports, GPIO, camera, face models, the service itself — and prints one line per
// finding (OK / WARN / FAIL, Chinese and English labels). Exit status 1 when anything
// FAILs, so scripts (the installer, a support hotline's checklist) can use it too.
//
// It reads the config like the service does but starts nothing, opens no database and
// never takes a device away from the running service (a serial port is only stat'ed;
// the broker is reached with its own client id, so the live session is not kicked out).
import { accessSync, closeSync, constants, existsSync, fsyncSync, openSync, readdirSync, readFileSync, statSync, statfsSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { connect as tcpConnect } from 'node:net';
import { dirname, join, resolve } from 'node:path';
import type { IClientOptions } from 'mqtt';
import { requireCjs } from './cjs.js';
import { loadConfig, ConfigError, type LoadedConfig } from './config/load.js';
import { SystemClock, type Clock } from './clock.js';
import { defaultModelsDir, loadManifest } from '../models/manifest.js';
import { dataDirUsage, BUDGET_EVICT_AT, RESERVE_FILE } from './store/disk.js';
import { readSetupToken, setupTokenPath, setupUrl, consoleUrls } from './console/setup-token.js';

const mqtt = requireCjs('mqtt') as typeof import('mqtt');

export type Level = 'OK' | 'WARN' | 'FAIL' | 'SKIP';

export interface Finding {
  /** Stable id of the check (for --json consumers). */
  check: string;
  /** "中文 English" label. */
  label: string;
  level: Level;
  message: string;
  /** Figures behind the message, for --json consumers (bytes). */
  data?: Record<string, unknown>;
}

export interface DoctorOptions {
  /** An already loaded config (tests); otherwise it is loaded from configPath. */
  loaded?: LoadedConfig;
  /** Config file; default as the service: /etc/estate-edge/config.yaml if present, else the simulated estate. */
  configPath?: string;
  env?: NodeJS.ProcessEnv;
  clock?: Clock;
  /** Network checks give up after this long (ms). */
  timeoutMs?: number;
  /** Where device nodes are listed (/dev). */
  devDir?: string;
  /** The account the service runs as (its access to devices is what matters). */
  serviceUser?: string;
  /** Groups the unit adds (SupplementaryGroups=). */
  serviceGroups?: string[];
  /** /etc/passwd and /etc/group (tests point them elsewhere). */
  passwdFile?: string;
  groupFile?: string;
  /** Run `systemctl show` for the unit (default: when booted with systemd). */
  systemctl?: boolean;
  /** Show the console's setup token when it is not set up yet (default true; false in the support bundle). */
  showSetupToken?: boolean;
  /** Disk thresholds in MB. */
  diskFailMB?: number;
  diskWarnMB?: number;
}

const LABELS = {
  node: '运行环境 Node.js',
  config: '配置 config',
  datadir: '数据目录 data dir',
  disk: '磁盘 disk',
  budget: '磁盘配额 disk budget',
  clock: '时钟 clock',
  broker: '平台连接 broker',
  serial: '串口 serial',
  gpio: '门禁 GPIO',
  camera: '摄像头 camera',
  models: '人脸模型 models',
  service: '服务 service',
  console: '控制台 console',
} as const;

type CheckId = keyof typeof LABELS;

class Report {
  readonly findings: Finding[] = [];
  add(check: CheckId, level: Level, message: string, data?: Record<string, unknown>): void {
    this.findings.push({ check, label: LABELS[check], level, message, ...(data ? { data } : {}) });
  }
}

/** Hide user:password in URLs before they are printed. */
export function redactUrl(url: string): string {
  return url.replace(/\/\/([^/@]*)@/, '//***@');
}

function errText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (!e?.code) return String((err as Error)?.message ?? err);
  return e.message?.includes(e.code) ? e.message : `${e.code}${e.message ? `: ${e.message}` : ''}`;
}

// ---------------------------------------------------------------------------------
// Accounts: the doctor usually runs as root, but what matters is whether the service
// account can open a device. Judged from owner/group/mode against the account's groups.

interface Account {
  uid: number;
  gids: Set<number>;
}

function readDb(file: string): string[][] {
  try {
    return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((l) => l.split(':'));
  } catch {
    return [];
  }
}

function serviceAccount(o: Required<Pick<DoctorOptions, 'serviceUser' | 'serviceGroups' | 'passwdFile' | 'groupFile'>>): Account | undefined {
  const pw = readDb(o.passwdFile).find((f) => f[0] === o.serviceUser);
  if (!pw) return undefined;
  const gids = new Set<number>([Number(pw[3])]);
  for (const g of readDb(o.groupFile)) {
    const members = (g[3] ?? '').split(',');
    if (o.serviceGroups.includes(g[0]!) || members.includes(o.serviceUser)) gids.add(Number(g[2]));
  }
  return { uid: Number(pw[2]), gids };
}

function modeAllows(st: Stats, acct: Account, write: boolean): boolean {
  const want = write ? 0o6 : 0o4;
  const bits = st.uid === acct.uid ? (st.mode >> 6) & 7 : acct.gids.has(st.gid) ? (st.mode >> 3) & 7 : st.mode & 7;
  return (bits & want) === want;
}

/** Can the service open PATH (read+write)? Returns a reason when not. */
function accessFor(path: string, st: Stats, acct: Account | undefined, who: string): string | undefined {
  const root = process.getuid?.() === 0;
  if (root && acct) return modeAllows(st, acct, true) ? undefined : `${who} cannot open it (owner ${st.uid}:${st.gid}, mode ${(st.mode & 0o777).toString(8)})`;
  try {
    accessSync(path, constants.R_OK | constants.W_OK);
    return undefined;
  } catch (err) {
    return `not accessible: ${errText(err)}`;
  }
}

// ---------------------------------------------------------------------------------
// Config walking: the capability sections are owned by other modules and change; the
// doctor finds device paths generically (every string value under /dev/).

function devicePaths(node: unknown, path: string, out: Array<{ path: string; dev: string }>): void {
  if (typeof node === 'string') {
    if (node.startsWith('/dev/')) out.push({ path, dev: node });
    return;
  }
  if (node === null || typeof node !== 'object') return;
  if (Array.isArray(node)) node.forEach((v, i) => devicePaths(v, `${path}[${i}]`, out));
  else for (const [k, v] of Object.entries(node)) devicePaths(v, path ? `${path}.${k}` : k, out);
}

function get(obj: unknown, ...keys: string[]): unknown {
  let cur = obj;
  for (const k of keys) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[k];
  }
  return cur;
}

/** Device paths in the config that are not cameras or GPIO chips are serial ports (meter buses). */
const isSerial = (dev: string) => !/^\/dev\/(video|gpiochip|media|dma_heap|vchiq)/.test(dev);

// ---------------------------------------------------------------------------------

function checkNode(r: Report): void {
  const major = Number(process.versions.node.split('.')[0]);
  r.add('node', major >= 20 ? 'OK' : 'FAIL', `v${process.versions.node}${major >= 20 ? '' : ' (needs ≥ 20)'}`);
}

function checkConfig(r: Report, o: DoctorOptions): LoadedConfig | undefined {
  try {
    const loaded = loadConfig({ ...(o.configPath !== undefined ? { path: o.configPath } : {}), ...(o.env ? { env: o.env } : {}) });
    if (loaded.source === 'embedded') r.add('config', 'WARN', 'no config file: the built-in simulated estate would run (write /etc/estate-edge/config.yaml)');
    else r.add('config', 'OK', `${loaded.source} valid (site ${loaded.config.site.id}, gateway ${loaded.config.gateway.id}, revision ${loaded.revision})`);
    return loaded;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const p of err.problems) r.add('config', 'FAIL', `${err.source}: ${p}`);
    return undefined;
  }
}

function checkDataDir(r: Report, dataDir: string, quotaMB: number, o: DoctorOptions): void {
  let st: Stats | undefined;
  try {
    st = statSync(dataDir);
  } catch (err) {
    r.add('datadir', 'FAIL', `${dataDir}: ${errText(err)} (the service creates it at start: StateDirectory=estate-edge)`);
  }
  if (st && !st.isDirectory()) r.add('datadir', 'FAIL', `${dataDir} is not a directory`);
  else if (st) {
    // A real write with fsync: a read-only remount (SD card errors) shows up here.
    const probe = join(dataDir, `.doctor-${process.pid}`);
    try {
      const fd = openSync(probe, 'w', 0o600);
      try {
        writeSync(fd, 'ok');
        fsyncSync(fd);
      } finally {
        closeSync(fd);
        unlinkSync(probe);
      }
      r.add('datadir', 'OK', `${dataDir} writable`);
    } catch (err) {
      r.add('datadir', 'FAIL', `${dataDir} not writable: ${errText(err)}`);
    }
  }
  // Disk space where the data lives (the nearest existing parent if it does not yet).
  let at = resolve(dataDir);
  while (!existsSync(at) && dirname(at) !== at) at = dirname(at);
  try {
    const s = statfsSync(at);
    const freeMB = Math.floor((s.bavail * s.bsize) / 1048576);
    const totalMB = Math.floor((s.blocks * s.bsize) / 1048576);
    const failMB = o.diskFailMB ?? 200;
    const warnMB = o.diskWarnMB ?? 1024;
    const text = `${freeMB} MB free of ${totalMB} MB at ${at}`;
    if (freeMB < failMB) r.add('disk', 'FAIL', `${text} (needs ≥ ${failMB} MB)`);
    else if (freeMB < warnMB || freeMB < totalMB * 0.1) r.add('disk', 'WARN', `${text} (low)`);
    else r.add('disk', 'OK', text);
    if (quotaMB > freeMB) r.add('disk', 'WARN', `outbox.quotaMB ${quotaMB} MB is more than the free space: a long outage fills the disk before the quota evicts`);
  } catch (err) {
    r.add('disk', 'WARN', `cannot read free space at ${at}: ${errText(err)}`);
  }
}

const SIDE_FILES = ['-wal', '-shm', '-journal'];
const MB = (b: number) => `${(b / 1048576).toFixed(1)} MB`;

/**
 * The data directory against gateway.diskBudgetMB and diskReserveMB, counted the way the
 * running gateway's disk guard counts it (edge/store/disk.ts), so a technician sees the
 * figure the guard acts on: every database with its -wal/-shm, the other files, the
 * reserve file, and the filesystem's free space.
 */
function checkDiskBudget(r: Report, loaded: LoadedConfig): void {
  const g = loaded.config.gateway;
  const dataDir = resolve(g.dataDir);
  const budget = Math.floor(g.diskBudgetMB * 1048576);
  const reserve = Math.floor(g.diskReserveMB * 1048576);
  if (!existsSync(dataDir)) {
    r.add('budget', 'SKIP', `${dataDir} does not exist yet (budget ${g.diskBudgetMB} MB, reserve ${g.diskReserveMB} MB)`);
    return;
  }
  const { total, entries } = dataDirUsage(dataDir);
  // Each database with its WAL and shared-memory file: the WAL is where a backlog grows.
  const dbs = new Map<string, { bytes: number; files: Record<string, number> }>();
  let other = 0;
  const otherNames: Array<[string, number]> = [];
  for (const [name, bytes] of entries) {
    const m = /^(.*\.db)(-wal|-shm|-journal)?$/.exec(name);
    if (m) {
      const d = dbs.get(m[1]!) ?? { bytes: 0, files: {} };
      d.bytes += bytes;
      d.files[name] = bytes;
      dbs.set(m[1]!, d);
    } else if (name !== RESERVE_FILE) {
      other += bytes;
      otherNames.push([name, bytes]);
    }
  }
  const reserveHeld = entries.get(RESERVE_FILE) ?? 0;
  let free: number | undefined;
  try {
    const s = statfsSync(dataDir);
    free = s.bavail * s.bsize;
  } catch {
    /* reported below as unknown */
  }
  const dbText = [...dbs].sort((a, b) => b[1].bytes - a[1].bytes).map(([n, d]) => `${n} ${MB(d.bytes)}${Object.keys(d.files).length > 1 ? ` (with ${Object.keys(d.files).filter((f) => f !== n).map((f) => f.slice(n.length)).sort((a, b) => SIDE_FILES.indexOf(a) - SIDE_FILES.indexOf(b)).join('/')})` : ''}`);
  const biggest = otherNames.sort((a, b) => b[1] - a[1]).slice(0, 3).map(([n, b]) => `${n} ${MB(b)}`);
  const pct = budget > 0 ? (100 * total) / budget : 0;
  const text =
    `${MB(total)} of ${g.diskBudgetMB} MB budget used (${pct.toFixed(1)} %) in ${dataDir}: ${dbText.length ? dbText.join(', ') : 'no databases'}` +
    `${other ? `, other files ${MB(other)}` : ''}, ${reserve ? `reserve ${reserveHeld ? MB(reserveHeld) : 'not in place'} of ${g.diskReserveMB} MB` : 'no reserve'}; ` +
    `filesystem ${free === undefined ? 'free space unknown' : `${MB(free)} free`}`;
  const data = {
    dataDir,
    budgetBytes: budget,
    reserveBytes: reserve,
    usedBytes: total,
    databases: Object.fromEntries([...dbs].map(([n, d]) => [n, { bytes: d.bytes, files: d.files }])),
    otherBytes: other,
    reserveFileBytes: reserveHeld,
    fsFreeBytes: free ?? null,
  };
  const problems: Array<{ level: Level; text: string }> = [];
  if (total > budget) {
    // Telemetry is all the guard can evict: files that are not its databases stay, so name them.
    const foreign = biggest.length ? `; not the gateway's databases (the guard cannot evict them): ${biggest.join(', ')}${other >= total - budget ? ' — moving them out of the data dir is enough' : ''}` : '';
    problems.push({ level: 'FAIL', text: `over the disk budget by ${MB(total - budget)}: the gateway evicts the oldest telemetry (reported upstream as outbox.evicted) to get back under it${foreign}; raise gateway.diskBudgetMB if the disk has room` });
  } else if (total > budget * BUDGET_EVICT_AT) {
    problems.push({ level: 'WARN', text: `above ${BUDGET_EVICT_AT * 100} % of the budget: the oldest telemetry is being evicted (an outage backlog?); raise gateway.diskBudgetMB if the disk has room` });
  }
  if (free !== undefined && reserve > 0 && free < reserve) {
    problems.push({ level: 'FAIL', text: `the filesystem has less free space than gateway.diskReserveMB (${g.diskReserveMB} MB): the reserve cannot be kept and writes soon fail with SQLITE_FULL; free space on the filesystem of ${dataDir} (journalctl --vacuum-size, old files) or give the data dir its own partition` });
  } else if (free !== undefined && total + free < budget) {
    problems.push({ level: 'WARN', text: `the budget is more than this filesystem can give (${MB(total + free)} used + free): a long outage fills the disk before the budget evicts; set gateway.diskBudgetMB to at most ${Math.floor((total + free - reserve) / 1048576)}` });
  }
  if (!problems.length) r.add('budget', 'OK', text, data);
  else {
    const level: Level = problems.some((p) => p.level === 'FAIL') ? 'FAIL' : 'WARN';
    r.add('budget', level, `${text} — ${problems.map((p) => p.text).join('; ')}`, data);
  }
}

function checkClock(r: Report, clock: Clock): void {
  const now = new Date(clock.now()).toISOString();
  if (clock.synced()) r.add('clock', 'OK', `synchronised, ${now}`);
  else r.add('clock', 'WARN', `not synchronised (${now}): records are flagged clockUnsynced until NTP syncs (check network and systemd-timesyncd)`);
}

async function checkBroker(r: Report, loaded: LoadedConfig, timeoutMs: number): Promise<void> {
  const u = loaded.config.uplink;
  if (!u.enabled) {
    r.add('broker', 'WARN', 'uplink disabled in config: records stay on the box');
    return;
  }
  const opts: IClientOptions = {
    protocolVersion: u.protocolVersion,
    // Never the gateway's own client id: the broker would disconnect the live session.
    clientId: `${u.clientId ?? `${loaded.config.site.id}-${loaded.config.gateway.id}`}-doctor-${process.pid}`,
    connectTimeout: timeoutMs,
    reconnectPeriod: 0,
    clean: true,
    rejectUnauthorized: u.tls.rejectUnauthorized,
  };
  if (u.username !== undefined) opts.username = u.username;
  const pw = loaded.secrets.get('uplink.password');
  if (pw) opts.password = pw.reveal();
  try {
    if (u.tls.ca) opts.ca = readFileSync(u.tls.ca);
    if (u.tls.cert) opts.cert = readFileSync(u.tls.cert);
    if (u.tls.key) opts.key = readFileSync(u.tls.key);
  } catch (err) {
    r.add('broker', 'FAIL', `TLS file unreadable: ${errText(err)}`);
    return;
  }
  const pass = loaded.secrets.get('uplink.tls.keyPassphrase');
  if (pass) (opts as Record<string, unknown>).passphrase = pass.reveal();
  if (u.tls.servername) (opts as Record<string, unknown>).servername = u.tls.servername;
  const started = performance.now();
  const url = redactUrl(u.url);
  await new Promise<void>((done) => {
    const client = mqtt.connect(u.url, opts);
    const finish = (level: Level, msg: string) => {
      clearTimeout(timer);
      client.removeAllListeners();
      client.on('error', () => {});
      client.end(true);
      r.add('broker', level, msg);
      done();
    };
    const timer = setTimeout(() => finish('FAIL', `${url}: no answer within ${timeoutMs} ms`), timeoutMs + 500);
    client.once('connect', () => finish('OK', `${url}: MQTT connect accepted in ${Math.round(performance.now() - started)} ms`));
    client.once('error', (err) => finish('FAIL', `${url}: ${errText(err)}`));
    client.once('close', () => finish('FAIL', `${url}: connection closed before CONNACK`));
  });
}

function listDevices(devDir: string, re: RegExp): string[] {
  try {
    return readdirSync(devDir)
      .filter((n) => re.test(n))
      .map((n) => join(devDir, n))
      .sort();
  } catch {
    return [];
  }
}

function checkDevice(r: Report, check: CheckId, where: string, dev: string, acct: Account | undefined, who: string, available: () => string[]): void {
  let st: Stats;
  try {
    st = statSync(dev);
  } catch (err) {
    const alt = available();
    r.add(check, 'FAIL', `${where} ${dev}: ${errText(err).startsWith('ENOENT') ? 'missing' : errText(err)}${alt.length ? ` (present: ${alt.join(', ')})` : ''}`);
    return;
  }
  if (!st.isCharacterDevice()) {
    r.add(check, 'FAIL', `${where} ${dev}: not a character device`);
    return;
  }
  const denied = accessFor(dev, st, acct, who);
  r.add(check, denied ? 'FAIL' : 'OK', `${where} ${dev}${denied ? `: ${denied}` : ' present and accessible'}`);
}

function checkSerial(r: Report, config: unknown, acct: Account | undefined, who: string, devDir: string): void {
  const found: Array<{ path: string; dev: string }> = [];
  devicePaths(config, '', found);
  // The camera's own device is checked under "camera".
  const ports = found.filter((f) => isSerial(f.dev) && f.path !== 'vision.camera.source.device');
  const available = () => [...listDevices(devDir, /^rs485-/), ...listDevices(devDir, /^tty(USB|ACM)\d+$/)];
  if (!ports.length) {
    const a = available();
    r.add('serial', 'SKIP', `no serial port in the config${a.length ? ` (present: ${a.join(', ')})` : ''}`);
    return;
  }
  for (const p of ports) checkDevice(r, 'serial', p.path, p.dev, acct, who, available);
}

function checkGpio(r: Report, config: unknown, acct: Account | undefined, who: string, devDir: string): void {
  const doors = get(config, 'doors', 'doors');
  const backend = String(get(config, 'doors', 'gpio', 'backend') ?? 'auto');
  if (!Array.isArray(doors) || doors.length === 0) {
    r.add('gpio', 'SKIP', 'no doors configured');
    return;
  }
  if (backend === 'simulated') {
    r.add('gpio', 'WARN', `${doors.length} door(s) on simulated GPIO: no real lock is driven`);
    return;
  }
  const sysfs = String(get(config, 'doors', 'gpio', 'sysfsRoot') ?? '/sys/class/gpio');
  const chips = listDevices(devDir, /^gpiochip\d+$/);
  const sysfsOk = (() => {
    try {
      accessSync(join(sysfs, 'export'), constants.W_OK);
      return true;
    } catch {
      return false;
    }
  })();
  if (backend === 'sysfs' || (backend === 'auto' && sysfsOk)) {
    r.add('gpio', sysfsOk ? 'OK' : 'FAIL', `sysfs ${join(sysfs, 'export')} ${sysfsOk ? 'writable' : 'missing or not writable'} (${doors.length} door(s))`);
    if (backend === 'sysfs' || sysfsOk) return;
  }
  if (!chips.length) {
    r.add('gpio', 'FAIL', `no GPIO character device (${devDir}/gpiochip*) and no sysfs GPIO: doors cannot work`);
    return;
  }
  for (const chip of chips) checkDevice(r, 'gpio', 'gpio', chip, acct, who, () => chips);
}

async function tcpReachable(host: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolveReach) => {
    const s = tcpConnect({ host, port });
    const done = (err?: string) => {
      clearTimeout(timer);
      s.destroy();
      resolveReach(err);
    };
    const timer = setTimeout(() => done(`no answer within ${timeoutMs} ms`), timeoutMs);
    s.once('connect', () => done());
    s.once('error', (err) => done(errText(err)));
  });
}

async function checkCamera(r: Report, config: unknown, acct: Account | undefined, who: string, devDir: string, timeoutMs: number): Promise<void> {
  if (get(config, 'vision', 'enabled') !== true) {
    r.add('camera', 'SKIP', 'face access (vision) not enabled');
    return;
  }
  const src = (get(config, 'vision', 'camera', 'source') ?? {}) as { kind?: string; url?: string; device?: string; path?: string };
  if (src.kind === 'v4l2') {
    if (!src.device) r.add('camera', 'FAIL', 'vision.camera.source.device: not set');
    else checkDevice(r, 'camera', 'vision.camera.source.device', src.device, acct, who, () => listDevices(devDir, /^video\d+$/));
  } else if (src.kind === 'file') {
    r.add('camera', src.path && existsSync(src.path) ? 'WARN' : 'FAIL', `simulated camera: video file ${src.path ?? '(not set)'}${src.path && existsSync(src.path) ? '' : ' missing'}`);
  } else {
    if (!src.url) {
      r.add('camera', 'FAIL', 'vision.camera.source.url: not set');
      return;
    }
    let u: URL;
    try {
      u = new URL(src.url);
    } catch {
      r.add('camera', 'FAIL', `vision.camera.source.url ${redactUrl(src.url)}: not a URL`);
      return;
    }
    const port = Number(u.port || (u.protocol === 'rtsps:' ? 322 : 554));
    const err = await tcpReachable(u.hostname, port, timeoutMs);
    r.add('camera', err ? 'FAIL' : 'OK', `${redactUrl(src.url)}: ${err ?? `TCP ${u.hostname}:${port} reachable`}`);
  }
}

function sha256File(path: string): string {
  // Models are a few MB: a synchronous read keeps the doctor simple.
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

function checkModels(r: Report, config: unknown): void {
  const vision = get(config, 'vision') as { enabled?: boolean; modelsDir?: string; models?: { detector?: string; recognizer?: string; liveness?: string[] }; liveness?: { enabled?: boolean } } | undefined;
  const dir = vision?.modelsDir ?? defaultModelsDir();
  const manifestPath = join(dir, 'manifest.json');
  if (!existsSync(manifestPath)) {
    r.add('models', vision?.enabled ? 'FAIL' : 'SKIP', `no model manifest at ${manifestPath}`);
    return;
  }
  let manifest;
  try {
    manifest = loadManifest(manifestPath);
  } catch (err) {
    r.add('models', 'FAIL', String((err as Error).message).split('\n').slice(0, 3).join('; '));
    return;
  }
  const needed = new Set<string>();
  if (vision?.enabled) {
    needed.add(vision.models?.detector ?? manifest.defaults.detector);
    needed.add(vision.models?.recognizer ?? manifest.defaults.recognizer);
    if (vision.liveness?.enabled !== false) for (const id of vision.models?.liveness ?? manifest.defaults.liveness) needed.add(id);
  }
  let present = 0;
  for (const [id, m] of Object.entries(manifest.models)) {
    const file = join(dir, m.file);
    if (!existsSync(file)) {
      if (needed.has(id)) r.add('models', 'FAIL', `${id} (${m.file}): not installed, and vision needs it (npm run models, or the offline pack)`);
      continue;
    }
    present++;
    const sha = sha256File(file);
    if (sha !== m.sha256) r.add('models', 'FAIL', `${id} (${m.file}): sha256 ${sha.slice(0, 12)}… does not match the manifest's ${m.sha256.slice(0, 12)}… (corrupt or wrong file)`);
    else r.add('models', 'OK', `${id} (${m.file}) sha256 matches`);
  }
  for (const id of needed) if (!manifest.models[id]) r.add('models', 'FAIL', `${id}: named in the config but not in ${manifestPath}`);
  if (!present && !vision?.enabled) r.add('models', 'SKIP', `no models installed in ${dir} (vision disabled)`);
}

function checkService(r: Report): void {
  const res = spawnSync('systemctl', ['show', '-p', 'LoadState,ActiveState,SubState,NRestarts,StatusText', 'estate-edge.service'], { encoding: 'utf8', timeout: 5000 });
  if (res.error || res.status !== 0) {
    r.add('service', 'WARN', `systemctl show failed: ${res.error ? errText(res.error) : res.stderr.trim()}`);
    return;
  }
  const p = Object.fromEntries(res.stdout.split('\n').filter((l) => l.includes('=')).map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
  if (p.LoadState !== 'loaded') r.add('service', 'WARN', `estate-edge.service is ${p.LoadState ?? 'unknown'} (not installed? run scripts/install.sh)`);
  else if (p.ActiveState === 'active') r.add('service', Number(p.NRestarts) > 5 ? 'WARN' : 'OK', `active (${p.SubState}), ${p.NRestarts ?? 0} restart(s)${p.StatusText ? `: ${p.StatusText}` : ''}`);
  else r.add('service', 'FAIL', `estate-edge.service is ${p.ActiveState}/${p.SubState} (journalctl -u estate-edge -n 50)`);
}

// Console first access: set up, or the setup token to use (read only; the service or
// `estate-edge setup-token` makes it), so a technician at the box's screen or serial
// console gets in without SSH.
function checkConsole(r: Report, loaded: LoadedConfig, show: boolean): void {
  const c = loaded.config.console;
  if (!c.enabled) return r.add('console', 'SKIP', 'console disabled (console.enabled: false)');
  const s = readSetupToken(setupTokenPath(resolve(loaded.config.gateway.dataDir)));
  const urls = consoleUrls(c);
  if (s?.state === 'done') return r.add('console', 'OK', `set up (first admin created ${new Date(s.at).toISOString()}); ${urls[0] ?? ''}`);
  if (!s) return r.add('console', 'WARN', 'not set up, no setup token yet (the service makes one at start): run `estate-edge setup-token`');
  if (s.expiresAt <= Date.now()) return r.add('console', 'WARN', `not set up; the setup token expired ${new Date(s.expiresAt).toISOString()}: run \`estate-edge setup-token\` for a new one`);
  r.add('console', 'WARN', show ? `not set up yet: setup token ${s.token} (one-time, valid until ${new Date(s.expiresAt).toISOString()}) at ${setupUrl(urls[0] ?? 'http://<box>:8080', s.token)}` : `not set up yet (a setup token is pending, valid until ${new Date(s.expiresAt).toISOString()})`);
}

export async function runDoctor(o: DoctorOptions = {}): Promise<Finding[]> {
  const r = new Report();
  const timeoutMs = o.timeoutMs ?? 5000;
  const devDir = o.devDir ?? '/dev';
  const who = o.serviceUser ?? 'estate-edge';
  const acct = serviceAccount({
    serviceUser: who,
    serviceGroups: o.serviceGroups ?? ['dialout', 'gpio', 'video'],
    passwdFile: o.passwdFile ?? '/etc/passwd',
    groupFile: o.groupFile ?? '/etc/group',
  });
  checkNode(r);
  const noAccount = () => r.add('service', 'WARN', `user ${who} does not exist (service not installed?): device access is checked for the current user`);
  const loaded = o.loaded ?? checkConfig(r, o);
  if (loaded) {
    const config: unknown = loaded.config;
    checkDataDir(r, loaded.config.gateway.dataDir, loaded.config.outbox.quotaMB, o);
    checkDiskBudget(r, loaded);
    checkClock(r, o.clock ?? new SystemClock());
    await checkBroker(r, loaded, timeoutMs);
    checkSerial(r, config, acct, who, devDir);
    checkGpio(r, config, acct, who, devDir);
    await checkCamera(r, config, acct, who, devDir, timeoutMs);
    checkModels(r, config);
    checkConsole(r, loaded, o.showSetupToken !== false);
  } else {
    checkClock(r, o.clock ?? new SystemClock());
  }
  if (!acct) noAccount();
  if (o.systemctl ?? existsSync('/run/systemd/system')) checkService(r);
  return r.findings;
}

export function doctorExitCode(findings: readonly Finding[]): number {
  return findings.some((f) => f.level === 'FAIL') ? 1 : 0;
}

export function formatReport(findings: readonly Finding[], header = ''): string {
  const width = Math.max(...findings.map((f) => displayWidth(f.label)), 8);
  const lines = findings.map((f) => `[${f.level === 'OK' ? ' OK ' : f.level === 'SKIP' ? ' -- ' : f.level}] ${f.label}${' '.repeat(width - displayWidth(f.label))}  ${f.message}`);
  const n = (l: Level) => findings.filter((f) => f.level === l).length;
  const verdict = n('FAIL') ? `有问题 NOT READY: ${n('FAIL')} FAIL, ${n('WARN')} WARN` : n('WARN') ? `可运行 READY with ${n('WARN')} warning(s)` : '正常 ALL OK';
  return `${header ? `${header}\n` : ''}${lines.join('\n')}\n\n结论 Result: ${verdict}\n`;
}

/** Columns a string takes in a terminal (CJK characters are two wide). */
function displayWidth(s: string): number {
  let w = 0;
  for (const ch of s) w += /[\u1100-\u115f\u2e80-\ua4cf\uac00-\ud7a3\uf900-\ufaff\ufe30-\ufe4f\uff00-\uff60\uffe0-\uffe6]/.test(ch) ? 2 : 1;
  return w;
}
