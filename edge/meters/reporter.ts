// What goes upstream from a poll: report-by-exception with a deadband where the device
// has one, every point otherwise, and a periodic full report of every point either way.
// One telemetry record per device poll batches its points.
import type { MeterDeviceConfig } from './schema.js';
import type { ReadingEvent } from './scheduler.js';
import type { MeterPointValue } from './api.js';

export interface ReportDecision {
  full: boolean;
  points: MeterPointValue[];
}

export class Reporter {
  private readonly published = new Map<string, Map<string, number | null>>();
  private readonly lastFull = new Map<string, number>();

  constructor(private readonly fullReportIntervalMs: number) {}

  private deadbandOf(cfg: MeterDeviceConfig, point: string): number | undefined {
    const db = cfg.deadband;
    if (db === undefined) return undefined;
    return typeof db === 'number' ? db : db[point];
  }

  /** Decide which points of this poll to publish; remembers what was published. */
  decide(e: ReadingEvent, now: number): ReportDecision {
    const d = e.device;
    const last = this.published.get(d.id) ?? new Map<string, number | null>();
    this.published.set(d.id, last);
    const lastFull = this.lastFull.get(d.id);
    const full = lastFull === undefined || (this.fullReportIntervalMs > 0 && now - lastFull >= this.fullReportIntervalMs);
    const points: MeterPointValue[] = [];
    for (const v of e.values) {
      const value = v.value ?? null;
      const prev = last.get(v.point.name);
      const db = this.deadbandOf(d.cfg, v.point.name);
      const changed = full || db === undefined || prev === undefined || prev === null || value === null || Math.abs(value - prev) > db;
      if (!changed) continue;
      last.set(v.point.name, value);
      points.push({ name: v.point.name, value, unit: v.point.unit, kind: v.point.kind, quality: v.quality, ts: v.at });
    }
    if (full) this.lastFull.set(d.id, now);
    return { full, points };
  }
}
