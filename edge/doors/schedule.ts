// Weekly access windows in the estate's time zone.
//
// A window is days + start/end wall-clock times ("22:00"–"06:00"). An end at or before
// the start runs past midnight into the next day, and Sunday's night runs into Monday,
// so windows are compiled to intervals of minutes-of-the-week (Monday 00:00 = 0),
// split where they wrap around the week. The local minute-of-week of an instant comes
// from Intl with the configured IANA zone (no dependency, DST-correct where the zone
// has DST; Asia/Shanghai has none).
export const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export type Day = (typeof DAYS)[number];

export interface TimeWindow {
  days: Day[];
  /** "HH:MM", 00:00–23:59. */
  start: string;
  /** "HH:MM", 00:00–24:00; at or before start = ends the next day. */
  end: string;
}

const WEEK = 7 * 1440;

/** Parse "HH:MM" (24:00 allowed as an end) to minutes; undefined when malformed. */
export function parseHm(s: string, allow24 = false): number | undefined {
  const m = /^(\d{2}):(\d{2})$/.exec(s);
  if (!m) return undefined;
  const h = Number(m[1]);
  const min = Number(m[2]);
  if (min > 59) return undefined;
  if (h === 24 && min === 0 && allow24) return 1440;
  if (h > 23) return undefined;
  return h * 60 + min;
}

/** Problems of a schedule ("schedule[1].end: …"), empty when valid. */
export function scheduleProblems(windows: readonly TimeWindow[]): string[] {
  const p: string[] = [];
  windows.forEach((w, i) => {
    const at = `schedule[${i}]`;
    if (!Array.isArray(w.days) || w.days.length === 0) p.push(`${at}.days: at least one day (mon…sun)`);
    else for (const d of w.days) if (!DAYS.includes(d)) p.push(`${at}.days: "${String(d)}" is not a day (mon, tue, wed, thu, fri, sat, sun)`);
    const s = parseHm(w.start);
    const e = parseHm(w.end, true);
    if (s === undefined) p.push(`${at}.start: "${w.start}" is not a time HH:MM (00:00–23:59)`);
    if (e === undefined) p.push(`${at}.end: "${w.end}" is not a time HH:MM (00:00–24:00)`);
    if (s !== undefined && e !== undefined && s === e) p.push(`${at}: start and end are equal (${w.start}); for a whole day use 00:00–24:00`);
  });
  return p;
}

/** Half-open [from, to) minute-of-week intervals. */
export type Intervals = Array<[number, number]>;

export function compileSchedule(windows: readonly TimeWindow[]): Intervals {
  const out: Intervals = [];
  for (const w of windows) {
    const s = parseHm(w.start)!;
    let e = parseHm(w.end, true)!;
    if (e <= s) e += 1440; // runs past midnight
    for (const d of w.days) {
      const from = DAYS.indexOf(d) * 1440 + s;
      const to = DAYS.indexOf(d) * 1440 + e;
      if (to <= WEEK) out.push([from, to]);
      else out.push([from, WEEK], [0, to - WEEK]); // Sunday night into Monday
    }
  }
  return out;
}

export function inSchedule(intervals: Intervals, minuteOfWeek: number): boolean {
  for (const [a, b] of intervals) if (minuteOfWeek >= a && minuteOfWeek < b) return true;
  return false;
}

const WEEKDAY_INDEX: Record<string, number> = { Mon: 0, Tue: 1, Wed: 2, Thu: 3, Fri: 4, Sat: 5, Sun: 6 };

/** Local minute-of-week (Monday 00:00 = 0) of UTC instants in one time zone. */
export class ZonedWeek {
  private readonly fmt: Intl.DateTimeFormat;
  // Decisions come in bursts at the same minute: remember the last minute computed.
  private cacheMinute = NaN;
  private cacheValue = 0;

  constructor(readonly timeZone: string) {
    this.fmt = new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  }

  static valid(timeZone: string): boolean {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone });
      return true;
    } catch {
      return false;
    }
  }

  minuteOfWeek(utcMs: number): number {
    const minute = Math.floor(utcMs / 60000);
    if (minute === this.cacheMinute) return this.cacheValue;
    let day = 0;
    let hour = 0;
    let min = 0;
    for (const p of this.fmt.formatToParts(new Date(utcMs))) {
      if (p.type === 'weekday') day = WEEKDAY_INDEX[p.value] ?? 0;
      else if (p.type === 'hour') hour = Number(p.value) % 24;
      else if (p.type === 'minute') min = Number(p.value);
    }
    this.cacheMinute = minute;
    this.cacheValue = day * 1440 + hour * 60 + min;
    return this.cacheValue;
  }
}
