// The A/B layout install.sh made, as the running gateway sees it:
//   <root>/opt/estate-edge/releases/<version>-<commit>   one directory per release
//   <root>/opt/estate-edge/current → releases/…          what systemd starts (atomic swap)
//   <root>/opt/estate-edge/previous → releases/…         the release to go back to
//   <root>/opt/estate-edge/upgrade-pending.json          a switch not yet committed
//   <root>/opt/estate-edge/upgrade-tried                 the new version has been started once
//   <root>/opt/estate-edge/upgrade-rollback              why it is being rolled back
// The marker files sit beside `current` (not in the data dir) because the boot check
// (scripts/upgrade-boot-check.sh, the unit's ExecStartPre) reads them without a config.
import { execFile } from 'node:child_process';
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, readSync, readdirSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Layout {
  app: string;
  releases: string;
  current: string;
  previous: string;
  pending: string;
  tried: string;
  rollback: string;
}

export function layout(root: string): Layout {
  const app = join(root, 'opt/estate-edge');
  return { app, releases: join(app, 'releases'), current: join(app, 'current'), previous: join(app, 'previous'), pending: join(app, 'upgrade-pending.json'), tried: join(app, 'upgrade-tried'), rollback: join(app, 'upgrade-rollback') };
}

/** The release a link points at (its directory name), or undefined. */
export function linkedRelease(link: string): string | undefined {
  try {
    return basename(readlinkSync(link));
  } catch {
    return undefined;
  }
}

function fsyncDir(dir: string): void {
  try {
    const fd = openSync(dir, 'r');
    try {
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
  } catch {
    /* some file systems refuse fsync on a directory: the rename is still atomic */
  }
}

/** Write a file so that a power cut leaves the old content or the new one, never a mix. */
export function writeDurable(path: string, content: string | Buffer): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', 0o640);
  try {
    writeFileSync(fd, content);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  fsyncDir(dirname(path));
}

/** Point `link` at releases/<release> atomically (a new symlink renamed over the old one). */
export function pointAt(link: string, release: string): void {
  const tmp = `${link}.new`;
  rmSync(tmp, { force: true });
  symlinkSync(`releases/${release}`, tmp);
  renameSync(tmp, link);
  fsyncDir(dirname(link));
}

export interface PendingMarker {
  jobId: string;
  version: string;
  from: string;
  fromVersion: string;
  to: string;
  /** UTC ms of the switch: the commit deadline counts from the new version's start. */
  switchedAt: number;
}

export function readMarker(l: Layout): PendingMarker | undefined {
  try {
    return JSON.parse(readFileSync(l.pending, 'utf8')) as PendingMarker;
  } catch {
    return undefined;
  }
}

/** Flat JSON (one line) so the boot check can read it with sed, without a Node. */
export function writeMarker(l: Layout, m: PendingMarker): void {
  writeDurable(l.pending, `${JSON.stringify(m)}\n`);
}

export function clearMarkers(l: Layout): void {
  for (const f of [l.pending, l.tried, l.rollback]) rmSync(f, { force: true });
  fsyncDir(l.app);
}

export type Arch = 'x64' | 'arm64';

export function hostArch(): string {
  return process.arch;
}

/** The CPU an ELF executable is for (e_machine), as Node names it; undefined if not ELF. */
export function elfArch(path: string): string | undefined {
  const fd = openSync(path, 'r');
  try {
    const b = Buffer.alloc(20);
    if (readSync(fd, b, 0, 20, 0) < 20 || b.readUInt32BE(0) !== 0x7f454c46) return undefined;
    const machine = b[5] === 2 ? b.readUInt16BE(18) : b.readUInt16LE(18);
    return machine === 62 ? 'x64' : machine === 183 ? 'arm64' : `elf-machine-${machine}`;
  } finally {
    closeSync(fd);
  }
}

export class ReleaseError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const ENTRY = 'dist/bundle/edge/main.js';

/**
 * Unpack a verified tarball beside the running release, into releases/.incoming.<job>
 * first (a power cut leaves only that, removed at the next start), checked there, then
 * renamed into place. Returns the release's directory name.
 */
export async function unpackRelease(l: Layout, tarball: string, jobId: string, expect: { version: string }, beforeRename?: () => void): Promise<string> {
  const stage = join(l.releases, `.incoming.${jobId.replace(/[^A-Za-z0-9_-]/g, '_')}`);
  rmSync(stage, { recursive: true, force: true });
  const { mkdirSync } = await import('node:fs');
  mkdirSync(stage, { recursive: true });
  const fail = (code: string, msg: string): never => {
    rmSync(stage, { recursive: true, force: true });
    throw new ReleaseError(code, msg);
  };
  try {
    await run('tar', ['-C', stage, '-xzf', tarball, '--no-same-owner']);
  } catch (err) {
    fail(
      'bad_release',
      `cannot unpack: ${
        String((err as { stderr?: string }).stderr ?? err)
          .trim()
          .split('\n')[0]
      }`,
    );
  }
  const tops = readdirSync(stage).filter((n) => statSync(join(stage, n)).isDirectory());
  const top = tops.length === 1 ? join(stage, tops[0]!) : undefined;
  if (!top || !existsSync(join(top, 'RELEASE.json')) || !existsSync(join(top, ENTRY))) fail('bad_release', `not an estate-edge release (no RELEASE.json / ${ENTRY})`);
  let rel: { release?: string; version?: string; arch?: string };
  try {
    rel = JSON.parse(readFileSync(join(top!, 'RELEASE.json'), 'utf8'));
  } catch {
    return fail('bad_release', 'RELEASE.json is not JSON');
  }
  const name = rel.release ?? '';
  if (!/^[0-9A-Za-z][0-9A-Za-z.+_-]*$/.test(name)) fail('bad_release', `bad release name "${name}"`);
  if (rel.version !== expect.version) fail('version_mismatch', `the tarball is version ${rel.version}, the signed command says ${expect.version}`);
  if (rel.arch !== hostArch()) fail('wrong_arch', `release ${name} is for ${rel.arch}, this box is ${hostArch()}`);
  // As install.sh: the release's own runtime must run on this CPU (a mislabelled pack).
  const node = join(top!, 'node/bin/node');
  if (existsSync(node)) {
    const a = elfArch(node);
    if (a !== hostArch()) fail('wrong_arch', `release ${name}'s node runtime is ${a ?? 'not an ELF executable'}, this box is ${hostArch()}`);
  }
  const target = join(l.releases, name);
  if (linkedRelease(l.current) === name) fail('same_release', `release ${name} is the one running`);
  beforeRename?.();
  rmSync(target, { recursive: true, force: true });
  renameSync(top!, target);
  rmSync(stage, { recursive: true, force: true });
  fsyncDir(l.releases);
  return name;
}

/** Leftovers of an unpack a power cut interrupted. */
export function removeIncoming(l: Layout): void {
  let names: string[] = [];
  try {
    names = readdirSync(l.releases);
  } catch {
    return;
  }
  for (const n of names) if (n.startsWith('.incoming.')) rmSync(join(l.releases, n), { recursive: true, force: true });
}

/** Keep current and previous; the rest goes (a box's SD card holds two releases, not ten). */
export function pruneReleases(l: Layout): string[] {
  const keep = new Set([linkedRelease(l.current), linkedRelease(l.previous)]);
  const removed: string[] = [];
  for (const n of readdirSync(l.releases)) {
    if (keep.has(n) || n.startsWith('.')) continue;
    try {
      rmSync(join(l.releases, n), { recursive: true, force: true });
      removed.push(n);
    } catch {
      /* a release install.sh put there as root: the next install.sh prunes it */
    }
  }
  return removed;
}

/** Semver order of x.y.z[-pre]: negative when a < b. */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string) => {
    const [core, pre] = v.split(/[-+]/, 2) as [string, string | undefined];
    return { n: core.split('.').map((x) => Number.parseInt(x, 10) || 0), pre };
  };
  const x = parse(a);
  const y = parse(b);
  for (let i = 0; i < 3; i++) if ((x.n[i] ?? 0) !== (y.n[i] ?? 0)) return (x.n[i] ?? 0) - (y.n[i] ?? 0);
  if (x.pre === y.pre) return 0;
  if (x.pre === undefined) return 1;
  if (y.pre === undefined) return -1;
  return x.pre < y.pre ? -1 : 1;
}
