// Signed A/B upgrades: gateway.upgrade → fetch (HTTPS, resumable) or receive chunks over
// MQTT (resumable) → verify SHA-256, size and the fleet signature → unpack beside the
// running release → switch `current` (keeping `previous`) → restart. The new version
// commits itself only after READY, the uplink and its self-test; else it switches back.
//
// Every step is a phase recorded in <dataDir>/upgrade/job.json before it starts, so a
// power cut at any point resumes (download, chunks) or redoes (verify, unpack, switch)
// that step at the next start; the switch itself is one rename of a symlink, and a new
// version that never commits is switched back by the boot check (the unit's
// ExecStartPre, scripts/upgrade-boot-check.sh) at its next start. The table of what a
// power cut does at each step is in docs/deploy.md, "Signed upgrades".
import { Type } from '@sinclair/typebox';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { KeyObject } from 'node:crypto';
import type { GatewayModule, ModuleContext, ModuleFactory, ModuleHealth } from '../module.js';
import { CommandError } from '../commands/registry.js';
import type { StreamName } from '../outbox/streams.js';
import { fileDigest, publicKeyOf, signatureValid } from './signature.js';
import { fetchOnce, FetchError } from './fetch.js';
import { clearMarkers, compareVersions, hostArch, layout, linkedRelease, pointAt, pruneReleases, readMarker, ReleaseError, removeIncoming, unpackRelease, writeDurable, writeMarker, type Layout, type PendingMarker } from './release.js';

export type Phase = 'receiving' | 'downloading' | 'verifying' | 'unpacking' | 'switching' | 'restarting' | 'committed' | 'rolled_back' | 'failed';
/** A chunked job without a chunk for this long yields to a new gateway.upgrade. */
const ABANDONED_MS = 24 * 3600_000;
const ACTIVE: readonly Phase[] = ['receiving', 'downloading', 'verifying', 'unpacking', 'switching', 'restarting'];

export interface Job {
  jobId: string;
  version: string;
  sha256: string;
  size: number;
  signature: string;
  url?: string;
  chunked: boolean;
  phase: Phase;
  /** Chunk count, known from the first chunk. */
  total?: number;
  /** The unpacked release's directory name. */
  release?: string;
  from: string;
  fromVersion: string;
  createdAt: number;
  updatedAt: number;
  code?: string;
  reason?: string;
}

/**
 * Fault injection for the kill-at-each-step test (test/upgrade/kill.test.ts): the process
 * SIGKILLs itself at the named step, as a power cut would stop it. Same family as
 * ESTATE_EDGE_DEBUG_BLOCK_LOOP_MS (edge/systemd/notify.ts); unset on a box.
 */
function killPoint(step: string): void {
  if (process.env.ESTATE_EDGE_DEBUG_UPGRADE_KILL_AT === step) process.kill(process.pid, 'SIGKILL');
}

const SEMVER = '^\\d+\\.\\d+\\.\\d+(?:-[0-9A-Za-z.]+)?$';
const UpgradeArgs = Type.Object(
  {
    url: Type.Optional(Type.String({ minLength: 9, maxLength: 2048 })),
    chunked: Type.Optional(Type.Boolean()),
    version: Type.String({ pattern: SEMVER, maxLength: 64 }),
    sha256: Type.String({ pattern: '^[0-9a-fA-F]{64}$' }),
    size: Type.Integer({ minimum: 1, maximum: 2 ** 48 }),
    signature: Type.String({ minLength: 1, maxLength: 200 }),
    allowDowngrade: Type.Optional(Type.Boolean()),
    /** From the signed manifest: refused before any transfer when it is not this box's CPU (RELEASE.json is checked again after unpacking). */
    arch: Type.Optional(Type.String({ maxLength: 16 })),
  },
  { additionalProperties: false },
);
const ChunkArgs = Type.Object(
  {
    jobId: Type.String({ minLength: 1, maxLength: 128 }),
    index: Type.Integer({ minimum: 0 }),
    total: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    data: Type.String({ minLength: 1 }),
  },
  { additionalProperties: false },
);

class UpgradeModule implements GatewayModule {
  readonly name = 'upgrade';
  private readonly l: Layout;
  private readonly dir: string;
  private readonly jobFile: string;
  private job: Job | undefined;
  private driving: Promise<void> | undefined;
  private commitTimer: NodeJS.Timeout | undefined;
  private ready = false;
  private lastPct = new Map<string, number>();
  private stopped = false;

  constructor(private readonly ctx: ModuleContext) {
    const c = ctx.config.upgrade;
    this.l = layout(c.root);
    this.dir = join(ctx.dataDir, 'upgrade');
    this.jobFile = join(this.dir, 'job.json');
  }

  private get installed(): boolean {
    return linkedRelease(this.l.current) !== undefined;
  }

  start(): void {
    mkdirSync(this.dir, { recursive: true });
    this.job = this.loadJob();
    const reg = this.ctx.commands.forCapability('upgrade');
    reg.register({ name: 'gateway.upgrade', description: 'Install a signed release (A/B, committed only when healthy, else rolled back)', role: 'admin', args: UpgradeArgs, handler: (a, meta) => this.upgrade(a, meta.id) });
    reg.register({ name: 'gateway.upgrade.chunk', description: 'One base64 chunk of a release sent over MQTT (gateway.upgrade with chunked: true)', role: 'admin', args: ChunkArgs, handler: (a) => this.chunk(a) });
    this.ctx.bus.on('gateway.ready', () => (this.ready = true));
    if (!this.installed) return;
    removeIncoming(this.l);
    const m = readMarker(this.l);
    const cur = linkedRelease(this.l.current);
    if (m) {
      if (cur === m.to && !existsSync(this.l.rollback)) return this.watchCommit(m);
      const job = this.job;
      if (cur === m.from && job?.jobId === m.jobId && job.phase === 'switching' && !existsSync(this.l.rollback) && !existsSync(this.l.tried)) {
        // Cut between writing the marker and the swap: the swap is redone.
        this.drive(job);
        return;
      }
      return this.reportRolledBack(m);
    }
    const job = this.job;
    if (job && (job.phase === 'downloading' || job.phase === 'verifying' || job.phase === 'unpacking' || job.phase === 'switching')) {
      this.ctx.log.warn({ jobId: job.jobId, phase: job.phase }, 'upgrade interrupted (restart or power cut): resuming');
      this.drive(job);
    } else if (job && job.phase === 'restarting') {
      // Switched and restarted, but no marker: it was cleared by a commit whose job update
      // did not reach the disk (the commit writes the job first, so this is a marker lost otherwise).
      this.finish(job, 'failed', 'lost_marker', 'the upgrade lost its pending marker after the switch', 'alarm', 'upgrade.failed');
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.commitTimer) clearInterval(this.commitTimer);
  }

  health(): ModuleHealth {
    const j = this.job;
    return { ok: true, ...(this.installed ? {} : { message: `no A/B install under ${this.l.app}: upgrades refused` }), detail: j ? { jobId: j.jobId, version: j.version, phase: j.phase, ...(j.reason ? { reason: j.reason } : {}) } : {} };
  }

  // --- commands ----------------------------------------------------------------------

  private async upgrade(a: typeof UpgradeArgs.static, jobId: string): Promise<unknown> {
    const sha = a.sha256.toLowerCase();
    // A chunked transfer the platform gave up on must not block upgrades for ever.
    const idle = this.job ? this.ctx.clock.now() - this.job.updatedAt : 0;
    if (this.job?.phase === 'receiving' && idle > ABANDONED_MS && this.job.sha256 !== sha) {
      this.finish(this.job, 'failed', 'abandoned', `no chunk for ${Math.round(idle / 3600_000)} h`, 'alarm', 'upgrade.failed');
    }
    const cur = this.job;
    if (cur && ACTIVE.includes(cur.phase)) {
      // The same release again (a resend after a lost reply, or to resume): the job's state.
      if (cur.sha256 === sha && cur.version === a.version) return this.jobStatus(cur);
      throw new CommandError('upgrade_running', `upgrade ${cur.jobId} to ${cur.version} is ${cur.phase}`, { jobId: cur.jobId, phase: cur.phase });
    }
    if (!this.installed) throw new CommandError('not_installed', `no A/B install under ${this.l.app} (scripts/install.sh makes it)`);
    if (!a.url === !a.chunked) throw new CommandError('bad_args', 'give either url (HTTPS download) or chunked: true (gateway.upgrade.chunk over MQTT)');
    if (a.url && !a.url.startsWith('https://')) throw new CommandError('bad_url', 'only https:// downloads');
    const key = this.publicKey();
    if (!signatureValid({ version: a.version, sha256: sha, size: a.size }, a.signature, key)) throw new CommandError('bad_signature', 'the signature does not match version, sha256 and size for the fleet signing key');
    if (a.arch !== undefined && a.arch !== hostArch()) throw new CommandError('wrong_arch', `the release is for ${a.arch}, this box is ${hostArch()}`);
    const running = this.ctx.version;
    const cmp = compareVersions(a.version, running);
    if (cmp < 0 && !a.allowDowngrade) throw new CommandError('downgrade', `${a.version} is older than the running ${running} (allowDowngrade: true to install it anyway)`);
    if (cmp === 0 && !a.allowDowngrade) throw new CommandError('same_version', `${a.version} is the running version (allowDowngrade: true to reinstall it)`);
    // The tarball, its unpacked copy and the release being replaced: 3× its size.
    const need = a.size * 3;
    for (const dir of [this.dir, this.l.releases]) {
      const free = freeBytes(dir);
      if (free < need) throw new CommandError('no_disk', `${dir} has ${Math.floor(free / 1048576)} MB free, the upgrade needs ${Math.ceil(need / 1048576)} MB (3× the release)`, { free, need });
    }
    const now = this.ctx.clock.now();
    const job: Job = {
      jobId,
      version: a.version,
      sha256: sha,
      size: a.size,
      signature: a.signature,
      ...(a.url ? { url: a.url } : {}),
      chunked: a.chunked === true,
      phase: a.chunked ? 'receiving' : 'downloading',
      from: linkedRelease(this.l.current)!,
      fromVersion: running,
      createdAt: now,
      updatedAt: now,
    };
    this.cleanFiles(job);
    this.save(job);
    this.progress(job, 0, true);
    if (!job.chunked) this.drive(job);
    return this.jobStatus(job);
  }

  private async chunk(a: typeof ChunkArgs.static): Promise<unknown> {
    const job = this.job;
    if (!job || job.jobId !== a.jobId) throw new CommandError('unknown_job', `no upgrade job ${a.jobId}`);
    if (!job.chunked) throw new CommandError('not_chunked', `job ${a.jobId} downloads over HTTPS`);
    if (job.phase !== 'receiving') return this.jobStatus(job);
    if (job.total === undefined) {
      job.total = a.total;
      this.save(job);
    } else if (job.total !== a.total) throw new CommandError('bad_chunk', `job ${a.jobId} has ${job.total} chunks, this one says ${a.total}`);
    if (a.index >= a.total) throw new CommandError('bad_chunk', `index ${a.index} is not below total ${a.total}`);
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(a.data)) throw new CommandError('bad_chunk', 'data is not base64');
    const bytes = Buffer.from(a.data, 'base64');
    const dir = this.chunkDir(job);
    mkdirSync(dir, { recursive: true });
    const have = readdirSync(dir).filter((n) => /^\d+$/.test(n) && Number(n) !== a.index);
    const stored = have.reduce((s, n) => s + statSync(join(dir, n)).size, 0);
    if (stored + bytes.length > job.size) throw new CommandError('bad_chunk', `the chunks exceed the signed size of ${job.size} bytes`);
    // Each chunk in its own file, written whole or not at all: after a power cut the job
    // still knows exactly which chunks it has.
    writeDurable(join(dir, String(a.index)), bytes);
    job.updatedAt = this.ctx.clock.now();
    this.save(job);
    const missing = this.missing(job);
    this.progress(job, Math.floor(((job.total - missing.length) / job.total) * 100));
    if (missing.length === 0) {
      await this.assemble(job);
      this.setPhase(job, 'verifying');
      this.drive(job);
    }
    return this.jobStatus(job);
  }

  private jobStatus(job: Job): { jobId: string; status: 'accepted' | 'waiting_chunks'; missing?: number[]; phase: Phase } {
    if (job.phase === 'receiving') return { jobId: job.jobId, status: 'waiting_chunks', missing: this.missing(job), phase: job.phase };
    return { jobId: job.jobId, status: 'accepted', phase: job.phase };
  }

  /** Chunk indexes still needed ([] before the first chunk: the total is not known yet). */
  private missing(job: Job): number[] {
    if (job.total === undefined) return [];
    const dir = this.chunkDir(job);
    const have = new Set(existsSync(dir) ? readdirSync(dir).filter((n) => /^\d+$/.test(n)) : []);
    const out: number[] = [];
    for (let i = 0; i < job.total; i++) if (!have.has(String(i))) out.push(i);
    return out;
  }

  private async assemble(job: Job): Promise<void> {
    const dir = this.chunkDir(job);
    const part = this.partFile(job);
    const out = createWriteStream(part);
    for (let i = 0; i < job.total!; i++) await pipeline(createReadStream(join(dir, String(i))), out, { end: false });
    await new Promise<void>((r, j) => out.end((err?: Error | null) => (err ? j(err) : r())));
    rmSync(dir, { recursive: true, force: true });
  }

  // --- the steps ---------------------------------------------------------------------

  private drive(job: Job): void {
    if (this.driving) return;
    this.driving = this.steps(job)
      .catch((err) => {
        const code = err instanceof ReleaseError ? err.code : err instanceof CommandError ? err.code : err instanceof FetchError ? 'download_failed' : 'upgrade_error';
        this.finish(job, 'failed', code, (err as Error).message, 'alarm', 'upgrade.failed');
      })
      .finally(() => (this.driving = undefined));
  }

  private async steps(job: Job): Promise<void> {
    if (job.phase === 'downloading') {
      await this.download(job);
      this.setPhase(job, 'verifying');
    }
    if (job.phase === 'verifying') {
      killPoint('verify');
      const d = await fileDigest(this.partFile(job));
      if (d.size !== job.size || d.sha256 !== job.sha256) {
        rmSync(this.partFile(job), { force: true });
        throw new CommandError('bad_checksum', `received ${d.size} bytes with sha256 ${d.sha256}, the signed release is ${job.size} bytes with ${job.sha256}`);
      }
      // Checked again now: the key may have been replaced since the command came.
      if (!signatureValid(job, job.signature, this.publicKey())) throw new CommandError('bad_signature', 'the signature no longer matches the fleet signing key');
      this.setPhase(job, 'unpacking');
    }
    if (job.phase === 'unpacking') {
      this.progress(job, 0, true);
      job.release = await unpackRelease(this.l, this.partFile(job), job.jobId, { version: job.version }, () => killPoint('unpack'));
      rmSync(this.partFile(job), { force: true });
      this.setPhase(job, 'switching');
    }
    if (job.phase === 'switching') this.switchTo(job);
  }

  private async download(job: Job): Promise<void> {
    const ca = this.ca();
    let attempt = 0;
    for (;;) {
      if (this.stopped) throw new FetchError('stopped');
      try {
        await fetchOnce({
          url: job.url!,
          part: this.partFile(job),
          size: job.size,
          ...(ca ? { ca } : {}),
          onBytes: (have) => this.progress(job, Math.floor((have / job.size) * 100)),
          afterWrite: () => killPoint('download'),
        });
        return;
      } catch (err) {
        attempt++;
        if ((err instanceof FetchError && err.permanent) || attempt >= 6) throw err;
        this.ctx.log.warn({ jobId: job.jobId, attempt, err: (err as Error).message }, 'upgrade download failed: retrying where it stopped');
        await new Promise((r) => setTimeout(r, Math.min(30_000, 1000 * 2 ** attempt)).unref());
      }
    }
  }

  private switchTo(job: Job): void {
    const m: PendingMarker = { jobId: job.jobId, version: job.version, from: job.from, fromVersion: job.fromVersion, to: job.release!, switchedAt: this.ctx.clock.now() };
    for (const f of [this.l.tried, this.l.rollback]) rmSync(f, { force: true });
    // `previous` first: whatever happens next, it names the release that is known good.
    pointAt(this.l.previous, job.from);
    writeMarker(this.l, m);
    killPoint('switch');
    pointAt(this.l.current, job.release!);
    this.setPhase(job, 'restarting');
    this.ctx.log.warn({ jobId: job.jobId, from: job.from, to: job.release }, 'upgrade switched: restarting into the new release');
    this.ctx.requestRestart(`upgrade to ${job.version}`);
  }

  // --- after the switch: commit or roll back ----------------------------------------

  private watchCommit(m: PendingMarker): void {
    killPoint('start');
    const deadline = this.ctx.clock.monotonic() + this.ctx.config.upgrade.commitTimeoutS * 1000;
    this.ctx.log.warn({ jobId: m.jobId, version: m.version }, 'new release started: committing once READY, the uplink and the self-test pass');
    this.commitTimer = setInterval(() => {
      const problem = this.commitProblem();
      if (!problem) {
        clearInterval(this.commitTimer);
        return this.commit(m);
      }
      if (this.ctx.clock.monotonic() > deadline) {
        clearInterval(this.commitTimer);
        this.rollBack(m, `not healthy within ${this.ctx.config.upgrade.commitTimeoutS} s: ${problem}`);
      }
    }, 250);
    this.commitTimer.unref();
  }

  /** Why the new version may not commit yet: undefined when READY, online and self-tested. */
  private commitProblem(): string | undefined {
    if (!this.ready) return 'not READY';
    const health = this.ctx.healthReport();
    const u = health.uplink?.detail as { connected?: boolean } | undefined;
    if (this.ctx.config.uplink.enabled && !u?.connected) return `uplink: ${health.uplink?.message ?? 'not connected'}`;
    // The self-test: the doctor's runtime subset — every capability started, storage
    // healthy, the state database answers, the data dir takes a durable write.
    const broken = Object.entries(health).filter(([name, h]) => name !== 'uplink' && name !== 'upgrade' && !h.ok && (name === 'storage' || (h.message ?? '').startsWith('failed to start')));
    if (broken.length) return broken.map(([n, h]) => `${n}: ${h.message ?? 'not ok'}`).join('; ');
    try {
      this.ctx.stateDb.prepare('SELECT 1').get();
      writeDurable(join(this.dir, 'self-test'), String(this.ctx.clock.now()));
    } catch (err) {
      return `self-test: ${(err as Error).message}`;
    }
    return undefined;
  }

  private commit(m: PendingMarker): void {
    killPoint('commit');
    const job = this.loadJob();
    if (job && job.jobId === m.jobId) {
      job.phase = 'committed';
      job.updatedAt = this.ctx.clock.now();
      this.save(job);
    }
    clearMarkers(this.l);
    const removed = pruneReleases(this.l);
    this.ctx.log.warn({ jobId: m.jobId, version: m.version, from: m.fromVersion, removed }, 'upgrade committed');
    this.report('event', 'upgrade.progress', { jobId: m.jobId, phase: 'committed', pct: 100 });
    this.report('event', 'upgrade.committed', { jobId: m.jobId, version: m.version, from: m.fromVersion });
  }

  private rollBack(m: PendingMarker, reason: string): void {
    this.ctx.log.error({ jobId: m.jobId, version: m.version, reason }, 'upgrade not healthy: switching back to the previous release');
    writeDurable(this.l.rollback, `${reason}\n`);
    pointAt(this.l.current, m.from);
    this.ctx.requestRestart(`upgrade to ${m.version} rolled back`);
  }

  /** Running the previous release again (rolled back by us or by the boot check): say so once. */
  private reportRolledBack(m: PendingMarker): void {
    let reason = 'the new release did not start';
    try {
      reason = readFileSync(this.l.rollback, 'utf8').trim() || reason;
    } catch {
      /* the boot check found it uncommitted without a reason file */
    }
    const job = this.loadJob();
    const base: Job = job && job.jobId === m.jobId ? job : { jobId: m.jobId, version: m.version, sha256: '', size: 0, signature: '', chunked: false, phase: 'restarting', from: m.from, fromVersion: m.fromVersion, createdAt: m.switchedAt, updatedAt: m.switchedAt };
    clearMarkers(this.l);
    // The failed release goes; `previous` is the release before this one again, if kept.
    this.finish(base, 'rolled_back', 'rolled_back', reason, 'alarm', 'upgrade.rolled_back', m.fromVersion);
    if (m.to && m.to !== linkedRelease(this.l.current)) rmSync(join(this.l.releases, m.to), { recursive: true, force: true });
  }

  private finish(job: Job, phase: Phase, code: string, reason: string, stream: StreamName, type: string, from = job.fromVersion): void {
    job.phase = phase;
    job.code = code;
    job.reason = reason;
    job.updatedAt = this.ctx.clock.now();
    this.save(job);
    this.cleanFiles(job);
    this.ctx.log.error({ jobId: job.jobId, version: job.version, code, reason }, `upgrade ${phase}`);
    this.report('event', 'upgrade.progress', { jobId: job.jobId, phase, pct: 100 });
    this.report(stream, type, { jobId: job.jobId, version: job.version, from, reason, code });
  }

  // --- helpers -----------------------------------------------------------------------

  private progress(job: Job, pct: number, force = false): void {
    const key = `${job.jobId}:${job.phase}`;
    const last = this.lastPct.get(key);
    // Every 10 %: a 40 MB download must not put thousands of records in the outbox.
    if (!force && last !== undefined && Math.floor(pct / 10) === Math.floor(last / 10)) return;
    this.lastPct.set(key, pct);
    this.report('event', 'upgrade.progress', { jobId: job.jobId, phase: job.phase, pct });
  }

  private report(stream: StreamName, type: string, data: Record<string, unknown>): void {
    void this.ctx.outbox.append({ stream, type, data }).catch((err) => this.ctx.log.error({ err, type }, 'upgrade event not stored'));
  }

  private setPhase(job: Job, phase: Phase): void {
    job.phase = phase;
    job.updatedAt = this.ctx.clock.now();
    this.save(job);
    this.progress(job, 0, true);
  }

  private save(job: Job): void {
    this.job = job;
    writeDurable(this.jobFile, `${JSON.stringify(job)}\n`);
  }

  private loadJob(): Job | undefined {
    try {
      return JSON.parse(readFileSync(this.jobFile, 'utf8')) as Job;
    } catch {
      return undefined;
    }
  }

  private safeId(job: Job): string {
    return job.jobId.replace(/[^A-Za-z0-9_-]/g, '_');
  }

  private partFile(job: Job): string {
    return join(this.dir, `${this.safeId(job)}.part`);
  }

  private chunkDir(job: Job): string {
    return join(this.dir, `${this.safeId(job)}.chunks`);
  }

  private cleanFiles(job: Job): void {
    rmSync(this.partFile(job), { force: true });
    rmSync(this.chunkDir(job), { recursive: true, force: true });
  }

  private publicKey(): KeyObject {
    const c = this.ctx.config.upgrade;
    const file = c.publicKeyFile ?? join(c.root, 'etc/estate-edge/fleet-signing.pub');
    try {
      return publicKeyOf(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new CommandError('no_signing_key', `fleet signing key ${file}: ${(err as Error).message.split('\n')[0]}`);
    }
  }

  private ca(): string | undefined {
    const file = this.ctx.config.upgrade.caFile ?? this.ctx.config.uplink.tls?.ca;
    return file ? readFileSync(file, 'utf8') : undefined;
  }
}

function freeBytes(dir: string): number {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
}

export const createUpgradeModule: ModuleFactory = (ctx) => new UpgradeModule(ctx);
