// The last few hundred log lines, in memory, for the System page's log tail. The
// gateway's logger writes JSON lines to one destination stream (journald); we tap that
// stream (observability/logtap.ts) so the console sees exactly what journald gets, with no second logger
// and no change to how the service logs. Lines are parsed lazily, when someone looks.
import { maskUrlPasswordsIn } from '../config/redact.js';
import type { Logger } from 'pino';
import { tapLogStream } from '../observability/logtap.js';

const LEVELS: Record<string, number> = { trace: 10, debug: 20, info: 30, warn: 40, error: 50, fatal: 60 };

export interface LogLine {
  time: string;
  level: string;
  msg: string;
  [k: string]: unknown;
}

export class LogRing {
  private readonly lines: string[] = [];
  private restore: (() => void) | undefined;

  constructor(private readonly capacity = 500) {}

  push(line: string): void {
    // The log should hold no secret; a URL password that got into one is not shown here either.
    const shown = maskUrlPasswordsIn(line);
    this.lines.push(shown.length > 4000 ? `${shown.slice(0, 4000)}…` : shown);
    if (this.lines.length > this.capacity) this.lines.splice(0, this.lines.length - this.capacity);
  }

  /** Tee the logger's destination; returns false when the logger has no stream to tap. */
  attach(log: Logger): boolean {
    const restore = tapLogStream(log, (s) => this.push(s.trimEnd()));
    if (!restore) return false;
    this.restore = restore;
    return true;
  }

  detach(): void {
    this.restore?.();
    this.restore = undefined;
  }

  /** Newest last; at least `minLevel`; at most `limit` lines; optional text filter. */
  tail(opts: { minLevel?: string; limit?: number; contains?: string } = {}): LogLine[] {
    const min = LEVELS[opts.minLevel ?? 'trace'] ?? 10;
    const limit = Math.min(Math.max(opts.limit ?? 200, 1), this.capacity);
    const needle = opts.contains?.toLowerCase();
    const out: LogLine[] = [];
    for (let i = this.lines.length - 1; i >= 0 && out.length < limit; i--) {
      const raw = this.lines[i]!;
      let obj: Record<string, unknown>;
      try {
        obj = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        obj = { level: 'info', msg: raw };
      }
      const level = typeof obj.level === 'number' ? (Object.entries(LEVELS).find(([, v]) => v === obj.level)?.[0] ?? 'info') : String(obj.level ?? 'info');
      if ((LEVELS[level] ?? 30) < min) continue;
      if (needle && !raw.toLowerCase().includes(needle)) continue;
      const { time, msg, svc: _svc, pid: _pid, hostname: _h, ...rest } = obj;
      out.push({ ...rest, time: typeof time === 'number' ? new Date(time).toISOString() : String(time ?? ''), level, msg: String(msg ?? '') });
    }
    return out.reverse();
  }
}
