// Real processes for the upgrade tests: small but real release tarballs, a box root laid
// out the way install.sh lays it out, a restart loop that does what systemd does with the
// unit (ExecStartPre boot check (as the unit runs it: by its path under current, no --root), then the release's own node on current's entry, restart
// on every exit), an HTTPS server with a self-signed CA, and the fleet key.
//
// The releases are small on purpose: a packed release is ~100 MB (its Node runtime and
// native modules) and unpacking a few per test would dominate the run. Each test release
// has the real layout (RELEASE.json, dist/bundle/edge/main.js, scripts/upgrade-boot-check.sh,
// node/bin/node — a symlink to this Node, a real ELF of this CPU) and its entry runs this
// checkout's gateway with its own version (ESTATE_EDGE_VERSION), so everything that
// happens after the switch is the real gateway's code. A "crashing" release exits at start.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { createReadStream, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { requireCjs } from '../../edge/cjs.js';

export const REPO = resolve(import.meta.dirname, '../..');

export function tmp(prefix = 'ee-upg-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export interface Manifest {
  version: string;
  commit: string;
  arch: string;
  sha256: string;
  size: number;
  signature: string;
  file: string;
}

export function keygen(dir: string): { pub: string; key: string } {
  const r = spawnSync(join(REPO, 'scripts/sign-release'), ['keygen', '--out', dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`sign-release keygen failed: ${r.stderr}`);
  return { pub: join(dir, 'fleet-signing.pub'), key: join(dir, 'fleet-signing.key') };
}

export function signTarball(tarball: string, key: string): Manifest {
  const r = spawnSync(join(REPO, 'scripts/sign-release'), ['sign', '--key', key, tarball], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`sign-release sign failed: ${r.stderr}`);
  return JSON.parse(readFileSync(`${tarball}.manifest.json`, 'utf8')) as Manifest;
}

/**
 * A release tarball named as pack.sh names it; `padBytes` of random data make the download
 * take several pieces. `bundle` (a main.js from scripts/bundle.ts) makes the entry run that
 * production bundle instead of this checkout's sources under tsx: it starts in a fraction of
 * the time, which matters when twenty boxes restart at once (test/fleet-tool).
 */
export function makeRelease(out: string, o: { version: string; commit?: string; arch?: string; crash?: boolean; padBytes?: number; bundle?: string }): string {
  const commit = o.commit ?? 'abc1234';
  const arch = o.arch ?? process.arch;
  const name = `estate-edge-${o.version}-${commit}-linux-${arch}`;
  const stage = tmp('ee-rel-');
  const top = join(stage, name);
  mkdirSync(join(top, 'dist/bundle/edge'), { recursive: true });
  mkdirSync(join(top, 'scripts'), { recursive: true });
  mkdirSync(join(top, 'node/bin'), { recursive: true });
  writeFileSync(join(top, 'RELEASE.json'), `${JSON.stringify({ release: `${o.version}-${commit}`, version: o.version, commit, arch, ...(o.crash ? { crashAtStart: true } : {}) })}\n`);
  writeFileSync(
    join(top, 'dist/bundle/edge/main.js'),
    `// Test release entry: runs the estate-edge checkout at ${REPO} as version ${o.version}.
import { readFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
const rel = JSON.parse(readFileSync(new URL('../../../RELEASE.json', import.meta.url), 'utf8'));
if (rel.crashAtStart) { process.stderr.write('release ' + rel.release + ' crashes at start\\n'); process.exit(70); }
process.env.ESTATE_EDGE_VERSION = rel.version;
${
  o.bundle
    ? `process.argv[1] = ${JSON.stringify(o.bundle)};
await import(pathToFileURL(process.argv[1]).href);
`
    : `const repo = ${JSON.stringify(REPO)};
const { register } = await import(pathToFileURL(repo + '/node_modules/tsx/dist/esm/api/index.mjs').href);
register();
process.argv[1] = repo + '/edge/main.ts';
await import(pathToFileURL(repo + '/edge/main.ts').href);
`
}`,
  );
  copyFileSync(join(REPO, 'scripts/upgrade-boot-check.sh'), join(top, 'scripts/upgrade-boot-check.sh'));
  symlinkSync(process.execPath, join(top, 'node/bin/node'));
  if (o.padBytes) writeFileSync(join(top, 'pad.bin'), randomFillSync(Buffer.alloc(o.padBytes)));
  const tarball = join(out, `${name}.tar.gz`);
  const r = spawnSync('tar', ['-C', stage, '-czf', tarball, name]);
  if (r.status !== 0) throw new Error(`tar failed: ${r.stderr}`);
  return tarball;
}

/** A box root as install.sh leaves it: the release unpacked, `current` on it, config written. */
export function makeBox(o: { tarball: string; pub: string; brokerUrl: string; ca?: string; commitTimeoutS?: number; site?: string; gateway?: string; extraYaml?: string[] }): { root: string; config: string; dataDir: string; app: string } {
  const root = tmp('ee-box-');
  const app = join(root, 'opt/estate-edge');
  mkdirSync(join(app, 'releases'), { recursive: true });
  const stage = tmp('ee-unpack-');
  spawnSync('tar', ['-C', stage, '-xzf', o.tarball]);
  const top = basename(o.tarball).replace(/\.tar\.gz$/, '');
  const rel = JSON.parse(readFileSync(join(stage, top, 'RELEASE.json'), 'utf8')) as { release: string };
  spawnSync('mv', [join(stage, top), join(app, 'releases', rel.release)]);
  symlinkSync(`releases/${rel.release}`, join(app, 'current'));
  const dataDir = join(root, 'var/lib/estate-edge');
  mkdirSync(dataDir, { recursive: true });
  mkdirSync(join(root, 'etc/estate-edge'), { recursive: true });
  copyFileSync(o.pub, join(root, 'etc/estate-edge/fleet-signing.pub'));
  const config = join(root, 'etc/estate-edge/config.yaml');
  writeFileSync(
    config,
    [
      `site: { id: ${o.site ?? 't-site'} }`,
      `gateway: { id: ${o.gateway ?? 't-gw'}, dataDir: ${JSON.stringify(dataDir)}, diskReserveMB: 0 }`,
      'log: { level: info }',
      'http: { enabled: false }',
      'console: { enabled: false }',
      `uplink: { url: ${JSON.stringify(o.brokerUrl)}, reconnectMinMs: 100, reconnectMaxMs: 1000 }`,
      `upgrade: { root: ${JSON.stringify(root)}, ${o.ca ? `caFile: ${JSON.stringify(o.ca)}, ` : ''}commitTimeoutS: ${o.commitTimeoutS ?? 30} }`,
      ...(o.extraYaml ?? []),
      '',
    ].join('\n'),
  );
  return { root, config, dataDir, app };
}

/** Gateways the restart loops run, killed if the test process exits first: one exit hook for all of them (twenty boxes would be twenty listeners). */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of live) c.kill('SIGKILL');
});

export interface Start {
  release: string;
  code: number | null;
  signal: NodeJS.Signals | null;
}

/**
 * What systemd does with estate-edge.service (Restart=always): before each start the
 * ExecStartPre boot check (as the unit runs it: by its path under current, no --root), then <current>/node/bin/node <current>/dist/bundle/edge/main.js
 * run, and a restart after every exit. `killAt` is the fault-injection step, given to the
 * starts until one of them is killed by it (a power cut happens once).
 */
export class Supervisor {
  readonly starts: Start[] = [];
  readonly log: string[] = [];
  private child: ChildProcess | undefined;
  private stopped = false;
  private killAt: string | undefined;
  /** systemd's RestartSec: 200 ms by default to keep tests short; benchmarks use the unit's. */
  private readonly restartDelayMs: number;
  private loop: Promise<void>;

  constructor(
    private readonly box: { root: string; config: string; app: string },
    o: { killAt?: string; maxStarts?: number; restartDelayMs?: number } = {},
  ) {
    this.killAt = o.killAt;
    this.restartDelayMs = o.restartDelayMs ?? 200;
    this.loop = this.run(o.maxStarts ?? 8);
  }

  current(): string {
    return basename(readlinkSync(join(this.box.app, 'current')));
  }

  /** The running gateway's pid (for CPU sampling), if one runs. */
  pid(): number | undefined {
    return this.running() ? this.child?.pid : undefined;
  }

  running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  private async run(maxStarts: number): Promise<void> {
    while (!this.stopped && this.starts.length < maxStarts) {
      const pre = spawnSync('/bin/sh', [join(this.box.app, 'current/scripts/upgrade-boot-check.sh')], { encoding: 'utf8' });
      if (pre.stderr) this.log.push(`[boot-check] ${pre.stderr.trim()}`);
      const release = this.current();
      const cur = join(this.box.app, 'current');
      const env: NodeJS.ProcessEnv = { ...process.env };
      delete env.NOTIFY_SOCKET;
      delete env.ESTATE_EDGE_VERSION;
      if (this.killAt) env.ESTATE_EDGE_DEBUG_UPGRADE_KILL_AT = this.killAt;
      const child = spawn(join(cur, 'node/bin/node'), [join(cur, 'dist/bundle/edge/main.js'), 'run', '--config', this.box.config], { env, stdio: ['ignore', 'pipe', 'pipe'] });
      this.child = child;
      const onLine = (d: Buffer) => {
        for (const l of d.toString().split('\n')) if (l.trim()) this.log.push(`[${release}] ${l}`);
      };
      child.stdout!.on('data', onLine);
      child.stderr!.on('data', onLine);
      live.add(child);
      const end = await new Promise<Start>((r) => child.once('exit', (code, signal) => r({ release, code, signal })));
      live.delete(child);
      this.starts.push(end);
      if (end.signal === 'SIGKILL' && !this.stopped) this.killAt = undefined;
      if (!this.stopped) await new Promise((r) => setTimeout(r, this.restartDelayMs));
    }
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const c = this.child;
    if (c && c.exitCode === null && c.signalCode === null) {
      c.kill('SIGTERM');
      const t = setTimeout(() => c.kill('SIGKILL'), 15_000);
      await new Promise((r) => c.once('exit', r));
      clearTimeout(t);
    }
    await this.loop;
  }
}

/** An HTTPS server on 127.0.0.1 serving files, with Range, its certificate self-signed (the CA). */
export async function httpsServer(files: string): Promise<{ url: string; ca: string; caFile: string; ranges: string[]; served: { bytes: number }; server: Server; close(): Promise<void> }> {
  const { generate } = requireCjs('selfsigned') as typeof import('selfsigned');
  const pems = await generate([{ name: 'commonName', value: '127.0.0.1' }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    extensions: [
      { name: 'basicConstraints', cA: true },
      { name: 'keyUsage', digitalSignature: true, keyCertSign: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] },
    ],
  } as Parameters<typeof generate>[1]);
  const ranges: string[] = [];
  const served = { bytes: 0 };
  const server = createServer({ key: pems.private, cert: pems.cert }, (req, res) => {
    const file = join(files, basename(decodeURIComponent(new URL(req.url ?? '/', 'https://x').pathname)));
    let size: number;
    try {
      size = statSync(file).size;
    } catch {
      res.writeHead(404).end();
      return;
    }
    const m = /^bytes=(\d+)-$/.exec(String(req.headers.range ?? ''));
    ranges.push(String(req.headers.range ?? 'none'));
    const start = m ? Number(m[1]) : 0;
    if (start >= size) {
      res.writeHead(416).end();
      return;
    }
    res.writeHead(m ? 206 : 200, { 'content-length': size - start, ...(m ? { 'content-range': `bytes ${start}-${size - 1}/${size}` } : {}) });
    res.once('finish', () => (served.bytes += size - start));
    createReadStream(file, { start, highWaterMark: 64 * 1024 }).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const caFile = join(tmp('ee-ca-'), 'ca.pem');
  writeFileSync(caFile, pems.cert);
  return { url: `https://127.0.0.1:${port}`, ca: pems.cert, caFile, ranges, served, server, close: () => new Promise((r) => server.close(() => r())) };
}

export function otherArch(): string {
  return process.arch === 'arm64' ? 'x64' : 'arm64';
}
