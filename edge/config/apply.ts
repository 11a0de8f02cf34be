// Editing the configuration file from the console, safely.
//
//   edit    → the file's text is the unit of concurrency: each view carries the SHA-256
//             of the text it was made from (`revision`); an apply made from a stale view
//             is refused (409) instead of silently overwriting another technician's change.
//   apply   → validate exactly like the service will at start (schema, cross-field checks,
//             secret references); write `<file>.bak` (the running text) and a marker
//             `<file>.apply.json`, then replace the file atomically (tmp + fsync + rename),
//             then ask for a service restart.
//   confirm → on the next start the guard (ApplyGuard) sees the marker: if the modules that
//             were healthy before the change are healthy again within the grace period, the
//             change is confirmed (marker removed). If not, or if the service keeps
//             restarting (boot count), the backup is put back and the service restarted:
//             the box falls back to the config that worked.
import { createHash } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute } from 'node:path';
import { isMap, isScalar, parseDocument, type Document } from 'yaml';
import { parseConfig, ConfigError } from './load.js';
import { maskSecrets, restoreMasked, secretEdits } from './redact.js';
import type { GatewayConfig } from './core.js';

export const sha256 = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 16);

export interface ApplyMarker {
  status: 'pending' | 'rolled_back' | 'confirmed';
  /** Revision (effective config hash) the new file must produce at start. */
  newRevision: string;
  previousRevision: string;
  user: string;
  at: number;
  /** Modules that were healthy when the change was applied: they must be healthy again. */
  healthyBefore: string[];
  boots: number;
  reason?: string;
  /**
   * The rollback reason as a code and its values, for the console to say it in the
   * page's language ("restarts" {n}; "unhealthy" {s, modules}; "did_not_load" {why}).
   */
  reasonCode?: 'restarts' | 'unhealthy' | 'did_not_load';
  reasonArgs?: Record<string, string | number>;
  decidedAt?: number;
  /** The rollback alarm has been sent upstream. */
  reported?: boolean;
  /** Where the change came from: the console (default, older markers) or the platform over MQTT. */
  source?: 'console' | 'mqtt';
  /** The MQTT command that applied it (config.apply / config.rollback). */
  commandId?: string;
  /** Why it was applied, as the sender said it. */
  why?: string;
  /** Seconds the new config has to become healthy (default: console.applyHealthGraceS). */
  confirmWithinS?: number;
}

export interface EditResult {
  ok: boolean;
  problems: string[];
  /** The resulting file text (when it parses). */
  yaml?: string;
  config?: GatewayConfig;
  diff?: DiffEntry[];
}

export interface DiffEntry {
  path: string;
  from?: unknown;
  to?: unknown;
  /** The value is a secret that changed (both sides masked alike). */
  secretChanged?: boolean;
}

/** Write a file so that a power cut leaves either the old or the new content, never half. */
export function writeAtomic(path: string, text: string, mode = 0o640): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', mode);
  try {
    writeFileSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  try {
    const dfd = openSync(dirname(path), 'r');
    fsyncSync(dfd);
    closeSync(dfd);
  } catch {
    /* directory fsync is not supported everywhere; the rename is still atomic */
  }
}

type PathKey = Array<string | number>;

/** Deep differences between two effective configs, every value masked as config.get masks it (redact.ts). */
export function diffConfigs(a: unknown, b: unknown, path: string[] = []): DiffEntry[] {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  const isObj = (x: unknown) => x !== null && typeof x === 'object' && !Array.isArray(x);
  if (isObj(a) && isObj(b)) {
    const out: DiffEntry[] = [];
    const ao = a as Record<string, unknown>;
    const bo = b as Record<string, unknown>;
    for (const k of [...new Set([...Object.keys(ao), ...Object.keys(bo)])].sort()) out.push(...diffConfigs(ao[k], bo[k], [...path, k]));
    return out;
  }
  const from = maskSecrets(a, path);
  const to = maskSecrets(b, path);
  // A secret whose masked form is the same on both sides changed all the same: say so
  // without showing either value.
  const same = JSON.stringify(from) === JSON.stringify(to);
  return [{ path: path.join('.') || '(root)', ...(a !== undefined ? { from } : {}), ...(b !== undefined ? { to } : {}), ...(same ? { secretChanged: true } : {}) }];
}

export class ConfigFile {
  readonly backupPath: string;
  readonly markerPath: string;

  constructor(
    readonly path: string,
    private readonly env: NodeJS.ProcessEnv = process.env,
  ) {
    this.backupPath = `${path}.bak`;
    this.markerPath = `${path}.apply.json`;
  }

  text(): string {
    return readFileSync(this.path, 'utf8');
  }

  revision(): string {
    return sha256(this.text());
  }

  /** The file as shown to technicians: inline secret values replaced by "***". */
  masked(): { yaml: string; revision: string } {
    const text = this.text();
    const doc = parseDocument(text);
    for (const e of secretEdits(doc.toJS())) doc.setIn(e.path, e.value);
    return { yaml: doc.toString(), revision: sha256(text) };
  }

  /**
   * Build the candidate file text from either a whole YAML text (YAML view, upload) or a
   * list of field changes (form: `value: null` removes the key so its default applies),
   * and validate it. Masked secrets ("***") are restored from the current file.
   */
  candidate(input: { yaml?: string; changes?: Array<{ path: PathKey; value: unknown }> }, running: GatewayConfig): EditResult {
    const current = this.text();
    let doc: Document;
    if (typeof input.yaml === 'string') {
      doc = parseDocument(input.yaml, { prettyErrors: true, uniqueKeys: true });
      if (doc.errors.length) return { ok: false, problems: doc.errors.map((e) => `YAML: ${e.message.split('\n')[0]}`) };
    } else if (Array.isArray(input.changes)) {
      doc = parseDocument(current);
      for (const ch of input.changes) {
        if (!Array.isArray(ch.path) || ch.path.length === 0 || !ch.path.every((k) => typeof k === 'string' || (Number.isInteger(k) && (k as number) >= 0))) return { ok: false, problems: ['(request): each change needs a non-empty path of keys'] };
        if (ch.value === null || ch.value === undefined) doc.deleteIn(ch.path);
        else ensureMaps(doc, ch.path), doc.setIn(ch.path, ch.value);
      }
    } else {
      return { ok: false, problems: ['(request): give either yaml or changes'] };
    }
    const currentJs = parseDocument(current).toJS() as unknown;
    const masked = restoreMasked(doc.toJS(), currentJs, (p, v) => doc.setIn(p, v));
    if (masked.length) return { ok: false, problems: masked };
    const yaml = doc.toString();
    try {
      const loaded = parseConfig(yaml, this.path, this.env);
      return { ok: true, problems: [], yaml, config: loaded.config, diff: diffConfigs(running, loaded.config) };
    } catch (err) {
      if (err instanceof ConfigError) return { ok: false, problems: err.problems, yaml };
      throw err;
    }
  }

  marker(): ApplyMarker | undefined {
    if (!existsSync(this.markerPath)) return undefined;
    try {
      return JSON.parse(readFileSync(this.markerPath, 'utf8')) as ApplyMarker;
    } catch {
      return undefined;
    }
  }

  writeMarker(m: ApplyMarker): void {
    writeAtomic(this.markerPath, `${JSON.stringify(m, null, 2)}\n`, 0o600);
  }

  clearMarker(): void {
    rmSync(this.markerPath, { force: true });
  }

  /** Replace the file with a validated candidate, keeping the running text as the backup. */
  write(yaml: string, marker: Omit<ApplyMarker, 'status' | 'boots'>): void {
    writeAtomic(this.backupPath, this.text());
    // Marker before the new file: a crash in between leaves the old file and a marker
    // whose revision does not match, which the guard simply discards.
    this.writeMarker({ ...marker, status: 'pending', boots: 0 });
    writeAtomic(this.path, yaml);
  }

  restoreBackup(): void {
    writeAtomic(this.path, readFileSync(this.backupPath, 'utf8'));
  }
}

/** setIn on a path whose parents are missing or scalars: create the intermediate maps. */
function ensureMaps(doc: Document, path: PathKey): void {
  for (let i = 1; i < path.length; i++) {
    const parent = path.slice(0, i);
    const node = doc.getIn(parent, true);
    if (node === undefined || node === null || (isScalar(node) && (node.value === null || node.value === undefined))) doc.setIn(parent, doc.createNode({}));
    else if (!isMap(node) && typeof path[i] === 'string' && !Array.isArray(doc.getIn(parent))) doc.setIn(parent, doc.createNode({}));
  }
}

export interface GuardOptions {
  file: ConfigFile;
  runningRevision: string;
  health: () => Record<string, { ok: boolean; message?: string }>;
  now: () => number;
  graceMs: number;
  checkEveryMs?: number;
  /** Starts with this config that fail before confirming, before the backup is restored. */
  maxBoots?: number;
  onConfirmed: (m: ApplyMarker) => void;
  onRolledBack: (m: ApplyMarker, reason: string) => void;
  /** A check that failed (file system error): logged by the owner, never thrown out of the timer. */
  onError?: (err: unknown) => void;
}

/** Watches the first start after an apply and confirms it or restores the backup. */
export class ApplyGuard {
  private timer: NodeJS.Timeout | undefined;
  private deadline = 0;

  constructor(private readonly o: GuardOptions) {}

  /** Run at console start. Returns what it found: nothing, a watch, or an immediate rollback. */
  start(): 'none' | 'watching' | 'rolled_back' | 'stale' {
    const m = this.o.file.marker();
    if (m?.status !== 'pending') return 'none';
    if (m.newRevision !== this.o.runningRevision) {
      // The running config is not the one applied (hand edit, or crash before the rename).
      this.o.file.clearMarker();
      return 'stale';
    }
    m.boots += 1;
    this.o.file.writeMarker(m);
    if (m.boots > (this.o.maxBoots ?? 3)) {
      this.rollback(m, `the service restarted ${m.boots - 1} times without becoming healthy`, 'restarts', { n: m.boots - 1 });
      return 'rolled_back';
    }
    this.deadline = this.o.now() + this.o.graceMs;
    this.timer = setInterval(() => {
      try {
        this.check();
      } catch (err) {
        this.o.onError?.(err);
      }
    }, this.o.checkEveryMs ?? 2000);
    this.timer.unref();
    this.check();
    return 'watching';
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private unhealthy(m: ApplyMarker): string[] {
    const report = this.o.health();
    return m.healthyBefore.filter((name) => !report[name]?.ok).map((name) => `${name}: ${report[name]?.message ?? 'not running'}`);
  }

  check(): void {
    const m = this.o.file.marker();
    if (m?.status !== 'pending') return this.stop();
    const bad = this.unhealthy(m);
    if (bad.length === 0) {
      this.stop();
      const done: ApplyMarker = { ...m, status: 'confirmed', decidedAt: this.o.now() };
      // Kept (status confirmed) so the console page says the change was confirmed; only a
      // pending marker is acted on at start.
      this.o.file.writeMarker(done);
      this.o.onConfirmed(done);
      return;
    }
    if (this.o.now() >= this.deadline) {
      this.stop();
      this.rollback(m, `not healthy within ${Math.round(this.o.graceMs / 1000)} s: ${bad.join('; ')}`, 'unhealthy', { s: Math.round(this.o.graceMs / 1000), modules: bad.map((b) => b.slice(0, b.indexOf(':'))).join(', ') });
    }
  }

  private rollback(m: ApplyMarker, reason: string, reasonCode: NonNullable<ApplyMarker['reasonCode']>, reasonArgs: Record<string, string | number>): void {
    this.o.file.restoreBackup();
    const done: ApplyMarker = { ...m, status: 'rolled_back', reason, reasonCode, reasonArgs, decidedAt: this.o.now(), reported: true };
    this.o.file.writeMarker(done);
    this.o.onRolledBack(done, reason);
  }
}

/**
 * At service start, before anything runs: a config applied from the console that does
 * not even load (the console never gets to watch it) is replaced by its backup at once.
 * Returns true when it restored one; the console reports it upstream once it is up.
 */
export function rollbackUnloadableApply(path: string, why: string, now = Date.now()): boolean {
  if (!isAbsolute(path) || !existsSync(path)) return false;
  const file = new ConfigFile(path);
  const m = file.marker();
  if (m?.status !== 'pending' || !existsSync(file.backupPath)) return false;
  file.restoreBackup();
  file.writeMarker({ ...m, status: 'rolled_back', reason: `the new configuration did not load: ${why}`, reasonCode: 'did_not_load', reasonArgs: { why }, decidedAt: now, reported: false });
  return true;
}
