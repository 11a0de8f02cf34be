// A real gateway with the console on a free loopback port, its config in a real YAML
// file (so config edits can be applied and rolled back), its log captured (the
// first-run setup token is read from it, as a technician reads it from journald), and
// an HTTP client that keeps the session cookie and sends the CSRF header.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Agent, request as httpRequest } from 'node:http';
import { stringify } from 'yaml';
import { createLogger } from '../../edge/log.js';
import { loadConfig } from '../../edge/config/load.js';
import { Gateway } from '../../edge/gateway.js';
import type { ModuleFactory } from '../../edge/module.js';
import type { Clock } from '../../edge/clock.js';
import { consoleModule, ConsoleModule } from '../../edge/console/module.js';
import { fleetModule } from '../../edge/fleet/module.js';
import type { RouteRule } from '../../edge/console/server.js';
import { tempDir } from '../helpers/gateway.js';
import { simulatedEstateConfig } from '../../edge/config/embedded.js';
import { REPO, UNIT_ENV, UNIT_NODE_FLAGS } from '../../scripts/lib/unit.js';

export interface ConsoleGateway {
  gateway: Gateway;
  base: string;
  dir: string;
  configPath: string;
  logLines: string[];
  restarts: string[];
  /** Every route the console registered, with its declared role (read from the running server). */
  routes(): RouteRule[];
  setupToken(): string;
  stop(): Promise<void>;
}

export function writeConfig(path: string, config: Record<string, unknown>): void {
  writeFileSync(path, `# written by the console tests\n${stringify(config)}`);
}

export function baseConfig(dir: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    site: { id: 't-site', name: 'Test estate' },
    gateway: { id: 't-gw', dataDir: join(dir, 'data') },
    log: { level: 'info' },
    http: { enabled: false },
    uplink: { url: 'mqtt://127.0.0.1:1', reconnectMinMs: 100, reconnectMaxMs: 1000 },
    console: { host: '127.0.0.1', port: 0, lockoutAttempts: 3, lockoutMin: 1 },
    ...extra,
  };
}

/** The first-run setup token, as a technician reads it from the service log. */
function setupTokenIn(logLines: string[]): string {
  for (const l of logLines) {
    const m = /"setupToken":"([^"]+)"/.exec(l);
    if (m) return m[1]!;
  }
  throw new Error('no setup token in the log');
}

/** Start (or restart, on the same dir) a gateway with the console from `dir/config.yaml`. */
/** Wall clock that a test can move forward (session expiry, lockout end) without sleeping. */
export class OffsetClock implements Clock {
  offsetMs = 0;
  now(): number {
    return Date.now() + this.offsetMs;
  }
  monotonic(): number {
    return performance.now() + this.offsetMs;
  }
  synced(): boolean {
    return true;
  }
}

export async function startConsoleGateway(opts: { dir?: string; config?: Record<string, unknown>; modules?: ModuleFactory[]; clock?: Clock } = {}): Promise<ConsoleGateway> {
  const dir = opts.dir ?? tempDir('ee-console-');
  const configPath = join(dir, 'config.yaml');
  if (opts.config || !opts.dir) writeConfig(configPath, opts.config ?? baseConfig(dir));
  const loaded = loadConfig({ path: configPath });
  const logLines: string[] = [];
  const log = createLogger(loaded.config.log.level, { write: (s: string) => void logLines.push(s) });
  const restarts: string[] = [];
  let console: ConsoleModule | undefined;
  const withHandle: ModuleFactory = (ctx) => {
    const m = consoleModule(ctx);
    if (m instanceof ConsoleModule) console = m;
    return m;
  };
  const gateway = new Gateway({ loaded, log, modules: [...(opts.modules ?? []), fleetModule, withHandle], onRestartRequested: (r) => void restarts.push(r), ...(opts.clock ? { clock: opts.clock } : {}) });
  await gateway.start();
  const url = (gateway.healthReport().console?.detail as { url?: string } | undefined)?.url;
  if (!url) throw new Error(`console did not start: ${JSON.stringify(gateway.healthReport().console)}`);
  return {
    gateway,
    base: url.replace(/\/$/, ''),
    dir,
    configPath,
    logLines,
    restarts,
    routes: () => console?.routes() ?? [],
    setupToken: () => setupTokenIn(logLines),
    stop: () => gateway.stop('test done'),
  };
}

export interface Res {
  status: number;
  body: any;
  headers: Headers;
}

/** A browser-like API client: cookie jar, CSRF header on state-changing requests. */
export class Client {
  cookie = '';
  csrf = '';
  constructor(readonly base: string) {}

  async req(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Res> {
    const h: Record<string, string> = { ...headers };
    if (this.cookie) h.cookie = this.cookie;
    if (method !== 'GET' && this.csrf && !('x-csrf-token' in h)) h['x-csrf-token'] = this.csrf;
    let payload: string | Buffer | undefined;
    if (Buffer.isBuffer(body) || typeof body === 'string') payload = body as string | Buffer;
    else if (body !== undefined) {
      payload = JSON.stringify(body);
      h['content-type'] ??= 'application/json';
    }
    const res = await fetch(this.base + path, { method, headers: h, body: payload, redirect: 'manual' });
    const set = res.headers.getSetCookie();
    for (const c of set) {
      const [pair] = c.split(';');
      if (/=;|=$/.test(pair!) || /Max-Age=0|Expires=Thu, 01 Jan 1970/i.test(c)) this.cookie = '';
      else this.cookie = pair!;
    }
    const ct = res.headers.get('content-type') ?? '';
    const text = await res.text();
    const parsed = ct.includes('json') && text ? JSON.parse(text) : text;
    if (parsed && typeof parsed === 'object' && typeof parsed.csrf === 'string') this.csrf = parsed.csrf;
    return { status: res.status, body: parsed, headers: res.headers };
  }

  get(path: string) {
    return this.req('GET', path);
  }
  post(path: string, body?: unknown, headers?: Record<string, string>) {
    return this.req('POST', path, body ?? {}, headers);
  }

  async login(user: string, password: string): Promise<Res> {
    return this.post('/api/login', { user, password });
  }
}

export const PASSWORDS = { admin: 'correct horse battery', tech: 'field-work-pass-1', viewer: 'read-only-pass-12' };

/** Setup with the token, then a technician and a viewer; returns logged-in clients. */
export async function withAccounts(g: ConsoleGateway): Promise<{ admin: Client; tech: Client; viewer: Client; anon: Client }> {
  const admin = new Client(g.base);
  const r = await admin.post('/api/setup', { token: g.setupToken(), user: 'admin', password: PASSWORDS.admin });
  if (r.status !== 201) throw new Error(`setup failed: ${r.status} ${JSON.stringify(r.body)}`);
  for (const [user, role, password] of [
    ['tech', 'technician', PASSWORDS.tech],
    ['viewer', 'viewer', PASSWORDS.viewer],
  ] as const) {
    const c = await admin.post('/api/users', { user, role, password });
    if (c.status !== 201) throw new Error(`create ${user}: ${c.status} ${JSON.stringify(c.body)}`);
  }
  const tech = new Client(g.base);
  await tech.login('tech', PASSWORDS.tech);
  const viewer = new Client(g.base);
  await viewer.login('viewer', PASSWORDS.viewer);
  return { admin, tech, viewer, anon: new Client(g.base) };
}

export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

/** The simulated estate's doors and one fast-polled meter bus (values change every second). */
export function estateConfig(dir: string, brokerUrl: string): Record<string, unknown> & { console: Record<string, unknown> } {
  const sim = simulatedEstateConfig() as { meters: { buses: Array<Record<string, unknown> & { devices: Array<Record<string, unknown>> }> }; doors: unknown };
  const modbus = sim.meters.buses[0]!;
  return baseConfig(dir, {
    uplink: { url: brokerUrl },
    meters: { buses: [{ ...modbus, devices: modbus.devices.map((d) => ({ ...d, pollIntervalMs: 1000 })) }] },
    doors: sim.doors,
  }) as Record<string, unknown> & { console: Record<string, unknown> };
}

/** A gateway run from a production bundle, as the unit runs it; the console's address and setup token from its log. */
export interface BundledConsole {
  base: string;
  /** The bundle's output directory (main.js, console-web/). */
  outdir: string;
  logLines: string[];
  setupToken(): string;
  stop(): Promise<void>;
}

/**
 * Build the production bundle (scripts/bundle.ts: the server and the console's page) into a
 * fresh directory under dist/ — inside the checkout, so the packages it leaves external
 * resolve from node_modules — and run it on `config` with the unit's Node flags and
 * environment: the console as a box serves it. stop() ends the process and removes the build.
 */
export async function startBundledConsole(dir: string, config: Record<string, unknown>): Promise<BundledConsole> {
  mkdirSync(join(REPO, 'dist'), { recursive: true });
  const build = mkdtempSync(join(REPO, 'dist', 'console-bundle-'));
  const outdir = join(build, 'edge');
  const configPath = join(dir, 'config.yaml');
  writeConfig(configPath, config);
  let child: ChildProcess | undefined;
  const stop = async () => {
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 20_000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    rmSync(build, { recursive: true, force: true });
  };
  try {
    await new Promise<void>((resolve, reject) => execFile(process.execPath, ['--import', 'tsx', join(REPO, 'scripts', 'bundle.ts'), outdir], { cwd: REPO }, (err, _out, stderr) => (err ? reject(new Error(`bundle failed: ${stderr || err.message}`)) : resolve())));
    const env: Record<string, string | undefined> = { ...process.env, ...UNIT_ENV };
    delete env.NOTIFY_SOCKET;
    const proc = spawn(process.execPath, [...UNIT_NODE_FLAGS, join(outdir, 'main.js'), 'run', '--config', configPath], { cwd: REPO, stdio: ['ignore', 'pipe', 'inherit'], env });
    child = proc;
    // Not left running (nor its build left behind) if the test or benchmark dies first.
    const orphan = () => {
      proc.kill('SIGKILL');
      rmSync(build, { recursive: true, force: true });
    };
    process.once('exit', orphan);
    proc.once('exit', () => process.off('exit', orphan));
    const logLines: string[] = [];
    // Started once the gateway says so (after the console's address and setup token).
    const base = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`bundled gateway: not started within 60 s\n${logLines.join('\n')}`)), 60_000);
      proc.once('exit', (code) => reject(new Error(`bundled gateway exited (${code})\n${logLines.join('\n')}`)));
      let url = '';
      createInterface({ input: proc.stdout! }).on('line', (line) => {
        logLines.push(line);
        let rec: { msg?: string; url?: string } = {};
        try {
          rec = JSON.parse(line);
        } catch {
          /* not a log record */
        }
        if (rec.msg === 'technician console listening') url = rec.url ?? '';
        if (rec.msg === 'gateway started') {
          clearTimeout(timer);
          if (url) resolve(url.replace(/\/$/, ''));
          else reject(new Error(`bundled gateway started without the console\n${logLines.join('\n')}`));
        }
      });
    });
    return {
      base,
      outdir,
      logLines,
      setupToken: () => setupTokenIn(logLines),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

export interface RawRes {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

const rawAgent = new Agent({ keepAlive: true, maxSockets: 8 });

/**
 * One HTTP request with the request target sent exactly as given (fetch and URL
 * normalise `..`, `//` and case of the scheme; this does not): for spellings of a path.
 */
export function rawRequest(base: string, method: string, target: string, opts: { headers?: Record<string, string>; body?: string | Buffer; timeoutMs?: number; fresh?: boolean } = {}): Promise<RawRes> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    // A target the server's HTTP parser refuses (400, connection closed) is sent on a
    // connection of its own: it would otherwise take a pooled connection down with it.
    const fresh = opts.fresh || !(target.startsWith('/') || /^https?:\/\//.test(target));
    const req = httpRequest({ host: u.hostname, port: Number(u.port), method, path: target, agent: fresh ? false : rawAgent, headers: { ...(opts.body !== undefined ? { 'content-length': String(Buffer.byteLength(opts.body)) } : {}), ...opts.headers } }, (res) => {
      // HEAD: the answer is the status line and headers (a body after them, as Node's own
      // 400 for an unparseable target has, is not read as a response of its own).
      if (method === 'HEAD') {
        res.resume();
        return resolve({ status: res.statusCode ?? 0, headers: res.headers, body: '' });
      }
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.setTimeout(opts.timeoutMs ?? 10_000, () => req.destroy(new Error(`${method} ${target}: no answer within ${opts.timeoutMs ?? 10_000} ms`)));
    req.on('error', reject);
    req.end(opts.body);
  });
}
