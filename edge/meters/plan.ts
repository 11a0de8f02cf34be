// Read planning: which transactions read a device's points.
//
// Modbus points are coalesced into block reads: per function code, sorted by address,
// merged across gaps of at most `maxGap` registers while the block stays within the
// 125-register protocol cap and the profile's own limit. DL/T 645 needs one transaction
// per identifier; CJ/T 188 reads every 90 1F field in one transaction.
import { DATA_TYPE_WORDS, type DataType, type Order } from '../../drivers/modbus/codec.js';
import type { Profile, PointKind } from './profiles.js';

export const MODBUS_MAX_REGISTERS = 125;

export interface PointSpec {
  name: string;
  kind: PointKind;
  unit: string;
  /** Modbus */
  fc?: 1 | 2 | 3 | 4;
  address?: number;
  words?: number;
  dataType?: DataType;
  wordOrder?: Order;
  byteOrder?: Order;
  scale?: number;
  offset?: number;
  /** DL/T 645 / CJ/T 188 */
  identifier?: string;
  bytes?: number;
  decimals?: number;
  signed?: boolean;
  field?: 'current' | 'settlement' | 'status';
  /** Plausibility overrides from the profile (see plausibility.ts). */
  plausible?: { min?: number; max?: number; rollover?: number };
}

export type Block = { kind: 'modbus'; fc: 1 | 2 | 3 | 4; address: number; count: number; points: PointSpec[] } | { kind: 'dlt645'; version: '2007' | '1997'; identifier: string; points: PointSpec[] } | { kind: 'cjt188'; identifier: '901F'; points: PointSpec[] };

/** The points of a profile, resolved with its defaults (optionally only the named ones). */
export function resolvePoints(profile: Profile, only?: string[]): PointSpec[] {
  const wanted = only ? new Set(only) : undefined;
  const out: PointSpec[] = [];
  if (profile.protocol === 'modbus') {
    const d = profile.defaults ?? {};
    for (const p of profile.points) {
      if (wanted && !wanted.has(p.name)) continue;
      const dataType = p.dataType ?? d.dataType ?? 'u16';
      out.push({
        name: p.name,
        kind: p.kind,
        unit: p.unit,
        address: p.address,
        dataType,
        words: DATA_TYPE_WORDS[dataType],
        wordOrder: p.wordOrder ?? d.wordOrder ?? 'big',
        byteOrder: p.byteOrder ?? d.byteOrder ?? 'big',
        ...(p.scale !== undefined ? { scale: p.scale } : {}),
        ...(p.offset !== undefined ? { offset: p.offset } : {}),
        fc: p.functionCode ?? d.functionCode ?? 3,
      });
    }
  } else if (profile.protocol === 'cjt188') {
    for (const p of profile.points) if (!wanted || wanted.has(p.name)) out.push({ name: p.name, kind: p.kind, unit: p.unit, identifier: p.identifier, field: p.field });
  } else {
    for (const p of profile.points) if (!wanted || wanted.has(p.name)) out.push({ name: p.name, kind: p.kind, unit: p.unit, identifier: p.identifier.toUpperCase(), bytes: p.bytes, decimals: p.decimals, signed: p.signed ?? false, ...(p.scale !== undefined ? { scale: p.scale } : {}) });
  }
  const byName = new Map<string, { plausible?: PointSpec['plausible'] }>(profile.points.map((p) => [p.name, p]));
  for (const o of out) {
    const pl = byName.get(o.name)?.plausible;
    if (pl) o.plausible = pl;
  }
  return out;
}

function fcOf(p: PointSpec): 1 | 2 | 3 | 4 {
  return p.fc ?? 3;
}

export interface CoalesceOptions {
  maxRegisters: number;
  maxGap: number;
}

/** Group Modbus points into as few block reads as the limits allow. */
export function coalesceModbus(points: PointSpec[], opts: CoalesceOptions): Block[] {
  const cap = Math.min(MODBUS_MAX_REGISTERS, opts.maxRegisters);
  const byFc = new Map<number, PointSpec[]>();
  for (const p of points) {
    const fc = fcOf(p);
    byFc.set(fc, [...(byFc.get(fc) ?? []), p]);
  }
  const blocks: Block[] = [];
  for (const [fc, list] of [...byFc].sort((a, b) => a[0] - b[0])) {
    list.sort((a, b) => a.address! - b.address!);
    let cur: { address: number; end: number; points: PointSpec[] } | undefined;
    for (const p of list) {
      const start = p.address!;
      const end = start + p.words!;
      if (cur && start - cur.end <= opts.maxGap && Math.max(end, cur.end) - cur.address <= cap) {
        cur.end = Math.max(cur.end, end);
        cur.points.push(p);
        continue;
      }
      if (cur) blocks.push({ kind: 'modbus', fc: fc as 1 | 2 | 3 | 4, address: cur.address, count: cur.end - cur.address, points: cur.points });
      cur = { address: start, end, points: [p] };
    }
    if (cur) blocks.push({ kind: 'modbus', fc: fc as 1 | 2 | 3 | 4, address: cur.address, count: cur.end - cur.address, points: cur.points });
  }
  return blocks;
}

/** One block per point: the plan without coalescing (fallback and bench comparison). */
export function perPointModbus(points: PointSpec[]): Block[] {
  return points.map((p) => ({ kind: 'modbus' as const, fc: fcOf(p), address: p.address!, count: p.words!, points: [p] }));
}

export function planReads(profile: Profile, points: PointSpec[], opts: { coalesce?: boolean } = {}): Block[] {
  if (profile.protocol === 'modbus') {
    if (opts.coalesce === false) return perPointModbus(points);
    return coalesceModbus(points, { maxRegisters: profile.limits?.maxRegisters ?? MODBUS_MAX_REGISTERS, maxGap: profile.limits?.maxGap ?? 0 });
  }
  if (profile.protocol === 'cjt188') return points.length ? [{ kind: 'cjt188', identifier: '901F', points }] : [];
  const version = profile.protocol === 'dlt645-2007' ? '2007' : '1997';
  return points.map((p) => ({ kind: 'dlt645' as const, version, identifier: p.identifier!, points: [p] }));
}

/** Split a Modbus block after "illegal data address": one read per point. */
export function splitBlock(b: Block): Block[] {
  if (b.kind !== 'modbus' || b.points.length <= 1) return [b];
  return perPointModbus(b.points);
}
