// The gateway's own log lines in a bounded ring on disk (data dir/logs), for `logs.get`
// from the platform: what journald holds, reachable without a shell on the box, and still
// there after a restart (the rollback of a config that lost the broker is explained by
// the lines before it). Two files, each at most `maxBytes`: when the current one is full
// it becomes gateway.log.1 (the older one is dropped) — so the ring never holds more
// than 2 × maxBytes, whatever the log rate.
//
// Written in-process by teeing the logger's destination stream (logtap.ts, shared with the
// console's LogRing): every line journald gets, no second logger. The service attaches it right after
// making its logger (edge/cli.ts), so the lines of a start before the modules are in it. Lines are buffered and appended at
// most every 500 ms (one write per batch, not per line); a write the disk refuses drops
// that batch and is counted, never thrown into the logger.
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { tapLogStream } from './logtap.js';
import { maskUrlPasswordsIn } from '../config/redact.js';

export const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };
const MAX_LINE = 8000;

export interface LogQuery {
  /** UTC ms or ISO time: lines at or after it. */
  since?: number | string;
  level?: string;
  limit?: number;
}

export class LogFile {
  readonly path: string;
  private readonly old: string;
  private buf: string[] = [];
  private bufBytes = 0;
  private size = 0;
  private timer: NodeJS.Timeout | undefined;
  private restore: (() => void) | undefined;
  dropped = 0;

  constructor(
    readonly dir: string,
    readonly maxBytes = 512 * 1024,
  ) {
    this.path = join(dir, 'gateway.log');
    this.old = `${this.path}.1`;
    this.size = existsSync(this.path) ? statSync(this.path).size : 0;
  }

  /**
   * The logs directory, made on the first write: the data dir itself is made (and its
   * problems reported) by the gateway's start, not by the logger. Until it exists lines
   * wait in memory, up to one file's worth.
   */
  private ready(): boolean {
    if (existsSync(this.dir)) return true;
    try {
      mkdirSync(this.dir, { mode: 0o750 });
      return true;
    } catch {
      return false;
    }
  }

  push(line: string): void {
    // Secrets are redacted by the logger (REDACT_PATHS) and never logged by the code; a URL password that got into a message is masked here too.
    let l = maskUrlPasswordsIn(line.trimEnd());
    if (l.length > MAX_LINE) l = `${l.slice(0, MAX_LINE)}…`;
    this.buf.push(l);
    this.bufBytes += l.length + 1;
    if (this.bufBytes > Math.min(64 * 1024, this.maxBytes / 4)) this.flush();
    else this.timer ??= setTimeout(() => this.flush(), 500).unref();
  }

  flush(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.buf.length) return;
    if (!this.ready()) {
      while (this.bufBytes > this.maxBytes && this.buf.length) this.bufBytes -= this.buf.shift()!.length + 1;
      this.timer = setTimeout(() => this.flush(), 500).unref();
      return;
    }
    const lines = this.buf;
    this.buf = [];
    this.bufBytes = 0;
    // Written in pieces that each fit the current file: a burst larger than the file
    // rotates as often as it needs to (its oldest part is what falls out), never overfills.
    let piece: string[] = [];
    let pieceBytes = 0;
    const write = () => {
      if (!piece.length) return;
      appendFileSync(this.path, `${piece.join('\n')}\n`, { mode: 0o640 });
      this.size += pieceBytes;
      piece = [];
      pieceBytes = 0;
    };
    try {
      for (const l of lines) {
        const bytes = Buffer.byteLength(l) + 1;
        if (this.size + pieceBytes + bytes > this.maxBytes && this.size + pieceBytes > 0) {
          write();
          renameSync(this.path, this.old);
          this.size = 0;
        }
        piece.push(l);
        pieceBytes += bytes;
      }
      write();
    } catch {
      this.dropped += 1;
    }
  }

  /** Tee the logger's destination (false when it has none to tap). */
  attach(log: Logger): boolean {
    const restore = tapLogStream(log, (s) => this.push(s));
    if (!restore) return false;
    this.restore = restore;
    return true;
  }

  detach(): void {
    this.restore?.();
    this.restore = undefined;
    this.flush();
  }

  /** Newest last: lines at or after `since`, at least `level`, the last `limit` of them (default 200, at most 2000). */
  read(q: LogQuery = {}): { lines: Array<Record<string, unknown>>; truncated: boolean; ringBytes: number } {
    this.flush();
    const since = q.since === undefined ? undefined : typeof q.since === 'number' ? q.since : Date.parse(q.since);
    const min = LEVELS[q.level ?? 'trace'] ?? 10;
    const limit = Math.min(Math.max(q.limit ?? 200, 1), 2000);
    let text = '';
    let ringBytes = 0;
    for (const p of [this.old, this.path]) {
      try {
        const t = readFileSync(p, 'utf8');
        text += t;
        ringBytes += Buffer.byteLength(t);
      } catch {
        /* not there yet */
      }
    }
    const out: Array<Record<string, unknown>> = [];
    let matched = 0;
    for (const raw of text.split('\n')) {
      if (!raw) continue;
      let obj: Record<string, unknown>;
      try {
        obj = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        obj = { level: 'info', msg: raw };
      }
      const level = String(obj.level ?? 'info');
      if ((LEVELS[level] ?? 30) < min) continue;
      if (since !== undefined) {
        const t = typeof obj.time === 'number' ? obj.time : Date.parse(String(obj.time ?? ''));
        if (!(t >= since)) continue;
      }
      matched += 1;
      out.push(obj);
      if (out.length > limit) out.shift();
    }
    return { lines: out, truncated: matched > out.length, ringBytes };
  }
}
