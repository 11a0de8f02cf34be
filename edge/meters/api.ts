// Contract of the meters module towards other modules (the technician console):
// `services.get('meters')`, plus the bus events it emits for live updates.
import type { MeterBusRow } from '../console/api-types.js';

/**
 * good: read and plausible; invalid: the meter sent no number (NaN, FF… BCD);
 * unsupported: the meter rejects the point; suspect: read correctly off the wire but
 * implausible for its kind (a counter that went down, a voltage out of range).
 */
export type MeterQuality = 'good' | 'invalid' | 'unsupported' | 'suspect';

export interface MeterPointValue {
  name: string;
  value: number | null;
  unit: string;
  kind: string;
  quality: MeterQuality;
  /** UTC ms of the reply that carried the value. */
  ts: number;
}

export interface MeterCounters {
  polls: number;
  requests: number;
  responses: number;
  timeouts: number;
  crcErrors: number;
  wrongUnit: number;
  badReplies: number;
  portErrors: number;
  exceptions: Record<string, number>;
  skippedPolls: number;
  readings: number;
  /** Replies that arrived after their timeout (during the guard) or answered another request: discarded. */
  lateReplies: number;
  /** Bytes discarded during this meter's transactions that were no reply (noise, bytes before the request left the line). */
  strayBytes: number;
  /** Values that failed the plausibility check of their point kind: published with quality `suspect`. */
  suspectValues: number;
  latencyMs: { last: number; avg: number; max: number };
}

/** A bus: what the console's Meters page shows of it (MeterBusRow, the console's API type), and more. */
export interface MeterBusInfo extends MeterBusRow {
  protocol: 'modbus' | 'dlt645' | 'cjt188' | 'mixed';
  transport: 'serial' | 'tcp' | 'simulated';
  skippedPolls: number;
  /** Late replies discarded on this line (all meters), bytes received while nothing was asked. */
  lateReplies: number;
  strayBytes: number;
  /** Guards held after timeouts and the line time they cost (ms). */
  guards: number;
  guardMs: number;
  /** Failed attempts to open the line (port missing, connection refused). */
  lineFailures: number;
}

export interface MeterDeviceInfo {
  id: string;
  name?: string;
  bus: string;
  profile: string;
  profileName: string;
  address: string;
  pollIntervalMs: number;
  state: 'unknown' | 'online' | 'offline';
  /** UTC ms of the last state change. */
  stateSince: number;
  lastSuccessAt?: number;
  lastError?: { at: number; kind: string; message: string };
}

export interface MeterDeviceStatus extends MeterDeviceInfo {
  values: MeterPointValue[];
  counters: MeterCounters;
}

export interface RawFrame {
  dir: 'tx' | 'rx';
  hex: string;
  /** UTC ms. */
  at: number;
}

export interface RawPollResult {
  frames: RawFrame[];
  /** Decoded values when a device/point was polled. */
  values?: MeterPointValue[];
  error?: string;
}

export type RawPollRequest =
  | { device: string; point?: string }
  /** Arbitrary bytes (hex) sent on the bus; whatever comes back within timeoutMs is returned. */
  | { requestHex: string; timeoutMs?: number };

export interface ScanResult {
  bus: string;
  found: Array<{ address: string | number; detail: string }>;
  probed: number;
  durationMs: number;
}

export interface MetersApi {
  buses(): MeterBusInfo[];
  devices(bus?: string): MeterDeviceInfo[];
  status(device: string): MeterDeviceStatus | undefined;
  /** Read a device (or one point) now, between scheduled polls. */
  readNow(device: string, point?: string): Promise<MeterPointValue[]>;
  /** Modbus: probe unit ids (default 1–247); DL/T 645 / CJ/T 188: read-address. */
  scan(bus: string, opts?: { from?: number; to?: number; timeoutMs?: number }): Promise<ScanResult>;
  rawPoll(bus: string, req: RawPollRequest): Promise<RawPollResult>;
  /**
   * Write coils of a Modbus device (a relay board) through its bus's scheduler: the write
   * jumps the poll queue (`urgent`: also between the blocks of a poll in progress).
   */
  writeCoils(device: string, coil: number, values: readonly boolean[], opts?: { urgent?: boolean; timeoutMs?: number }): Promise<{ latencyMs: number }>;
  /** Read coils (FC 1) of a Modbus device now, through the scheduler. */
  readCoils(device: string, coil: number, count: number, opts?: { urgent?: boolean; timeoutMs?: number }): Promise<boolean[]>;
  /** Broadcast time to DL/T 645 buses (all, or one). */
  timeSync(bus?: string): Promise<Array<{ bus: string; frameHex: string; at: number }>>;
}

declare module '../module.js' {
  interface Services {
    meters: MetersApi;
  }
}

declare module '../bus.js' {
  interface BusEvents {
    'meter.reading': { bus: string; device: string; values: MeterPointValue[] };
    'meter.device': { bus: string; device: string; online: boolean; reason: string; at: number };
  }
}
