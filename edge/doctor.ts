// `estate-edge doctor`: the first thing a technician runs on a box. Checks what the
// gateway needs from its surroundings — config, data directory and disk, clock, broker,
// the service itself, then each capability's own checks from its descriptor (serial
// ports, GPIO, camera, face models, console: edge/<area>/doctor.ts) — and prints one line per
// finding (OK / WARN / FAIL, Chinese and English labels). Exit status 1 when anything
// FAILs, so scripts (the installer, a support hotline's checklist) can use it too.
//
// It reads the config like the service does but starts nothing, opens no database and
// never takes a device away from the running service (a serial port is only stat'ed;
// the broker is reached with its own client id, so the live session is not kicked out).
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, statSync, statfsSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import type { IClientOptions } from 'mqtt';
import { requireCjs } from './cjs.js';
import { loadConfig, ConfigError, type LoadedConfig } from './config/load.js';
import { SystemClock, type Clock } from './clock.js';
import { dataDirUsage, BUDGET_EVICT_AT, RESERVE_FILE } from './store/disk.js';
import type { CapabilityDescriptor } from './capability.js';
import { CAPABILITIES } from './capabilities.js';
import { checkDevice, errText, listDevices, redactUrl, type Account, type DoctorContext, type Finding, type Level } from './doctor-kit.js';

export { redactUrl, type Finding, type Level };

const mqtt = requireCjs('mqtt') as typeof import('mqtt');

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
  /** The capabilities whose doctor checks run after the core's (default: the descriptor list). */
  capabilities?: readonly CapabilityDescriptor[];
}

const LABELS = {
  node: '运行环境 Node.js',
  config: '配置 config',
  datadir: '数据目录 data dir',
  disk: '磁盘 disk',
  budget: '磁盘配额 disk budget',
  clock: '时钟 clock',
  broker: '平台连接 broker',
  service: '服务 service',
} as const;

type CheckId = keyof typeof LABELS;

class Report {
  readonly findings: Finding[] = [];
  add(check: CheckId, level: Level, message: string, data?: Record<string, unknown>): void {
    this.addAs(check, LABELS[check], level, message, data);
  }
  addAs(check: string, label: string, level: Level, message: string, data?: Record<string, unknown>): void {
    this.findings.push({ check, label, level, message, ...(data ? { data } : {}) });
  }
}

// ---------------------------------------------------------------------------------
// Accounts: the doctor usually runs as root, but what matters is whether the service
// account can open a device. Judged from owner/group/mode against the account's groups.

function readDb(file: string): string[][] {
  try {
    return readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split(':'));
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
  const dbText = [...dbs]
    .sort((a, b) => b[1].bytes - a[1].bytes)
    .map(
      ([n, d]) =>
        `${n} ${MB(d.bytes)}${
          Object.keys(d.files).length > 1
            ? ` (with ${Object.keys(d.files)
                .filter((f) => f !== n)
                .map((f) => f.slice(n.length))
                .sort((a, b) => SIDE_FILES.indexOf(a) - SIDE_FILES.indexOf(b))
                .join('/')})`
            : ''
        }`,
    );
  const biggest = otherNames
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([n, b]) => `${n} ${MB(b)}`);
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

function checkService(r: Report): void {
  const res = spawnSync('systemctl', ['show', '-p', 'LoadState,ActiveState,SubState,NRestarts,StatusText', 'estate-edge.service'], { encoding: 'utf8', timeout: 5000 });
  if (res.error || res.status !== 0) {
    r.add('service', 'WARN', `systemctl show failed: ${res.error ? errText(res.error) : res.stderr.trim()}`);
    return;
  }
  const p = Object.fromEntries(
    res.stdout
      .split('\n')
      .filter((l) => l.includes('='))
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  );
  if (p.LoadState !== 'loaded') r.add('service', 'WARN', `estate-edge.service is ${p.LoadState ?? 'unknown'} (not installed? run scripts/install.sh)`);
  else if (p.ActiveState === 'active') r.add('service', Number(p.NRestarts) > 5 ? 'WARN' : 'OK', `active (${p.SubState}), ${p.NRestarts ?? 0} restart(s)${p.StatusText ? `: ${p.StatusText}` : ''}`);
  else r.add('service', 'FAIL', `estate-edge.service is ${p.ActiveState}/${p.SubState} (journalctl -u estate-edge -n 50)`);
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
    checkDataDir(r, loaded.config.gateway.dataDir, loaded.config.outbox.quotaMB, o);
    checkDiskBudget(r, loaded);
    checkClock(r, o.clock ?? new SystemClock());
    await checkBroker(r, loaded, timeoutMs);
    // Then each capability's own checks, in list order (each says SKIP when it is not configured).
    for (const cap of o.capabilities ?? CAPABILITIES) {
      for (const check of (await cap.doctor?.()) ?? []) {
        const add: DoctorContext['add'] = (level, message, data) => r.addAs(check.id, check.label, level, message, data);
        await check.run({
          config: loaded.config,
          secrets: loaded.secrets,
          devDir,
          timeoutMs,
          showSetupToken: o.showSetupToken !== false,
          add,
          device: (where, dev, available) => checkDevice(add, where, dev, acct, who, available),
          listDevices: (re) => listDevices(devDir, re),
        });
      }
    }
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
