// Plausibility: the second line of defence behind the wire checks (transactor guard,
// frame identity). A value that a meter of this point kind cannot report is published
// with quality `suspect` and counted, never as `good`:
//
// - counters (energy, heat energy, water and gas volume) never decrease, except when
//   the register rolls over: from the top 10 % of its range to the bottom 10 %. The
//   rollover value is the profile's `plausible.rollover`, or implied by the register
//   (DL/T 645 BCD: 10^(2·bytes − decimals); Modbus unsigned integers: 2^(16·words),
//   times the scale). A counter that stays lower for `RESET_AFTER` consecutive readings
//   that agree among themselves is taken as a meter reset or replacement: the new level
//   becomes the reference (logged), and from then on is good again. Counters are never
//   negative.
// - voltage (V: 0–600; kV: 0–0.6), frequency (Hz: 40–70, or exactly 0 when the meter
//   sees no voltage) and power factor (−1…1; in %: −100…100) have bounds.
// - any point may narrow or widen its bounds in the profile (`plausible: {min, max}`).
import type { PointSpec } from './plan.js';

export const COUNTER_KINDS: ReadonlySet<string> = new Set(['energy', 'heat_energy', 'water_volume', 'gas_volume']);
export const RESET_AFTER = 3;

interface Bounds {
  min?: number;
  max?: number;
  /** Also accepted outside [min, max] (0 Hz: no voltage). */
  also?: number;
}

/** Default bounds of a point kind in its unit; undefined = no bounds. */
export function kindBounds(kind: string, unit: string): Bounds | undefined {
  const u = unit.trim();
  switch (kind) {
    case 'voltage':
      return u === 'V' ? { min: 0, max: 600 } : u === 'kV' ? { min: 0, max: 0.6 } : undefined;
    case 'frequency':
      return u === 'Hz' ? { min: 40, max: 70, also: 0 } : undefined;
    case 'power_factor':
      // Meters round; a reading of 1.0004 is a 1.
      return u === '%' ? { min: -100.05, max: 100.05 } : u === '' ? { min: -1.0005, max: 1.0005 } : undefined;
    default:
      return COUNTER_KINDS.has(kind) ? { min: 0 } : undefined;
  }
}

/** The value at which a counter register wraps to zero, if known. */
export function rolloverOf(p: PointSpec): number | undefined {
  if (p.plausible?.rollover !== undefined) return p.plausible.rollover;
  const scale = p.scale ?? 1;
  if (p.bytes !== undefined && p.decimals !== undefined && !p.signed) return 10 ** (2 * p.bytes - p.decimals) * scale;
  if (p.dataType && /^u(16|32|64)$/.test(p.dataType) && p.words) return 2 ** (16 * p.words) * scale;
  return undefined;
}

interface CounterState {
  ref: number;
  /** Consecutive lower readings since the reference (a reset, if they persist). */
  lower: number[];
}

export class Plausibility {
  private readonly counters = new Map<string, CounterState>();

  /** Why the value is implausible, or undefined when it is plausible. Updates the counter references. */
  check(p: PointSpec, v: number): string | undefined {
    const b = kindBounds(p.kind, p.unit) ?? {};
    const min = p.plausible?.min ?? b.min;
    const max = p.plausible?.max ?? b.max;
    if (!Number.isFinite(v)) return `${p.name}: not a finite number`;
    if (v !== b.also && ((min !== undefined && v < min) || (max !== undefined && v > max))) return `${p.name}: ${v} ${p.unit} outside ${min ?? '−∞'}…${max ?? '∞'}`;
    if (!COUNTER_KINDS.has(p.kind)) return undefined;
    const st = this.counters.get(p.name);
    if (!st) {
      this.counters.set(p.name, { ref: v, lower: [] });
      return undefined;
    }
    if (v >= st.ref) {
      st.ref = v;
      st.lower = [];
      return undefined;
    }
    const roll = rolloverOf(p);
    if (roll !== undefined && st.ref >= 0.9 * roll && v <= 0.1 * roll) {
      st.ref = v;
      st.lower = [];
      return undefined;
    }
    // Lower than before: suspect, unless it is the RESET_AFTER-th consistent lower reading.
    const prev = st.lower.at(-1);
    if (prev !== undefined && v < prev) st.lower = [];
    st.lower.push(v);
    if (st.lower.length >= RESET_AFTER) {
      const was = st.ref;
      st.ref = v;
      st.lower = [];
      this.onReset?.(p, was, v);
      return undefined;
    }
    return `${p.name}: counter went down from ${st.ref} to ${v} ${p.unit}`;
  }

  /** Called when a counter is re-based after a persistent drop (meter reset or replaced). */
  onReset: ((p: PointSpec, from: number, to: number) => void) | undefined;
}
