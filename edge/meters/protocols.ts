// One adapter per bus protocol: executes a planned Block against one device over the
// bus's Line and returns decoded, scaled values, or a ReadError of a known kind that
// the scheduler counts (timeouts, CRC/checksum errors, exception codes, wrong unit…).
import { TransactionTimeout, AmbiguousReply, type Transactor, type Framer } from '../../drivers/serial/transactor.js';
import { ModbusClient, ModbusError } from '../../drivers/modbus/client.js';
import { decodeValue } from '../../drivers/modbus/codec.js';
import * as dlt from '../../drivers/dlt645/codec.js';
import * as cjt from '../../drivers/cjt188/codec.js';
import type { Block, PointSpec } from './plan.js';

export type ErrorKind = 'timeout' | 'crc' | 'exception' | 'wrong_unit' | 'bad_reply' | 'port';

/**
 * bus.scan probes run without a guard after each timeout (247 guards would triple a
 * scan; a probe publishes no value, and a late answer from the previous unit carries
 * its own address); the scan holds one guard at its end, before polling resumes.
 */
const NO_GUARD = { guardMs: 0 };

export class ReadError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly exceptionCode?: number,
  ) {
    super(message);
    this.name = 'ReadError';
  }
  /** The device says the register/identifier does not exist (Modbus 02, DL/T 645 "no data"). */
  get unsupported(): boolean {
    return this.kind === 'exception' && this.exceptionCode === 2;
  }
}

export interface PointValue {
  point: PointSpec;
  /** undefined = the device sent no valid number (NaN, FF… BCD). */
  value: number | undefined;
}

export interface ReadOutcome {
  values: PointValue[];
  /** UTC ms when the reply arrived. */
  at: number;
  latencyMs: number;
}

export interface DeviceTarget {
  /** Modbus unit id, DL/T 645 12-digit or CJ/T 188 14-digit address. */
  address: number | string;
  /** CJ/T 188 meter type and DI byte order. */
  meterType?: number;
  diOrder?: cjt.DiOrder;
}

export interface ScanHit {
  address: number | string;
  detail: string;
}

export interface BusProtocol {
  readonly transactor: Transactor;
  /** Called after every (re)open of the line. */
  attach(): Promise<void>;
  read(target: DeviceTarget, block: Block, timeoutMs: number): Promise<ReadOutcome>;
  /** One probe of a bus address during bus.scan; undefined = nothing answered. */
  probe(address: number | string | undefined, timeoutMs: number): Promise<ScanHit[]>;
  dispose(): void;
}

function scaled(p: PointSpec, v: number | undefined): number | undefined {
  if (v === undefined) return undefined;
  const out = v * (p.scale ?? 1) + (p.offset ?? 0);
  // Scaling by 0.1 etc. leaves binary noise (230.10000000000002); keep 9 significant digits.
  return Number(out.toPrecision(12));
}

export class ModbusProtocol implements BusProtocol {
  readonly client: ModbusClient;
  constructor(
    transactor: Transactor,
    framing: 'rtu' | 'tcp',
    private readonly now: () => number,
  ) {
    this.client = new ModbusClient(transactor, framing);
  }
  get transactor(): Transactor {
    return this.client.transactor;
  }
  attach(): Promise<void> {
    return this.client.attach();
  }
  dispose(): void {
    this.client.dispose();
  }

  async read(target: DeviceTarget, block: Block, timeoutMs: number): Promise<ReadOutcome> {
    if (block.kind !== 'modbus') throw new Error(`a ${block.kind} block on a Modbus bus`);
    let r;
    try {
      r = await this.client.read(target.address as number, block.fc, block.address, block.count, timeoutMs);
    } catch (err) {
      if (err instanceof ModbusError) throw new ReadError(err.kind, err.message, err.exceptionCode);
      throw new ReadError('port', (err as Error).message);
    }
    const at = this.now();
    const values = block.points.map((p) => {
      if (block.fc === 1 || block.fc === 2) {
        const bit = p.address! - block.address;
        return { point: p, value: (r.bytes[bit >> 3]! >> (bit & 7)) & 1 };
      }
      const off = (p.address! - block.address) * 2;
      const raw = r.bytes.subarray(off, off + p.words! * 2);
      if (raw.length !== p.words! * 2) throw new ReadError('bad_reply', `reply too short for ${p.name}`);
      return { point: p, value: scaled(p, decodeValue(raw, p.dataType!, p.wordOrder, p.byteOrder)) };
    });
    return { values, at, latencyMs: r.latencyMs };
  }

  async probe(address: number | string | undefined, timeoutMs: number): Promise<ScanHit[]> {
    const unit = Number(address);
    // Any well-formed answer (data or an exception) proves a device at this unit id.
    try {
      await this.client.read(unit, 3, 0, 1, timeoutMs, NO_GUARD);
      return [{ address: unit, detail: 'answered FC 03' }];
    } catch (err) {
      if (err instanceof ModbusError && err.kind === 'exception') return [{ address: unit, detail: `answered with exception ${err.exceptionCode}` }];
      if (err instanceof ModbusError && (err.kind === 'crc' || err.kind === 'bad_reply')) return [{ address: unit, detail: `garbled answer (${err.kind}): check baud rate and wiring` }];
      return [];
    }
  }
}

/**
 * A framer that finds the codec's frames and accepts only the one that answers this
 * request: `answers` tells a well-formed frame for another request (another meter's
 * address, another identifier or sequence number: a late reply) from ours; such a
 * frame is dropped and counted by the transactor, and the wait goes on.
 */
function framerOf<F>(find: (buf: Buffer) => { kind: 'frame'; frame: F; start: number; end: number } | { kind: 'bad'; start: number; end: number; error: Error } | { kind: 'need-more'; skip: number }, answers: (frame: F) => boolean): Framer {
  return (buf) => {
    const r = find(buf);
    if (r.kind === 'need-more') return { kind: 'need-more', skip: r.skip };
    if (r.kind === 'bad') return { kind: 'bad', start: r.start, end: r.end, error: r.error };
    return answers(r.frame) ? { kind: 'frame', start: r.start, end: r.end } : { kind: 'other', start: r.start, end: r.end };
  };
}

/**
 * Does a DL/T 645 frame answer a read of `identifier` at `address`? A reply (bit 7 set)
 * of the read function, from that address, carrying the identifier (and for 2007
 * follow-ups the sequence number); an error reply (bit 6) carries no identifier and is
 * taken when address and function match.
 */
export function dltAnswers(version: dlt.Dlt645Version, address: string, identifier: string, followUpSeq?: number): (f: dlt.Dlt645Frame) => boolean {
  const readC = followUpSeq === undefined ? (version === '2007' ? dlt.C2007.read : dlt.C1997.read) : version === '2007' ? dlt.C2007.readFollow : dlt.C1997.readFollow;
  const di = identifier.toUpperCase();
  const diLen = version === '2007' ? 4 : 2;
  return (f) => {
    if (!(f.control & 0x80) || (f.control & 0x1f) !== readC) return false;
    if (address !== dlt.WILDCARD_ADDRESS && f.address !== address) return false;
    if (f.control & 0x40) return true;
    if (f.data.length < diLen || dlt.decodeAddress(f.data.subarray(0, diLen)) !== di) return false;
    if (followUpSeq !== undefined && version === '2007' && f.data[f.data.length - 1] !== (followUpSeq & 0xff)) return false;
    return true;
  };
}

/** Does a CJ/T 188 frame answer our 90 1F read with sequence number `ser` at `address`? */
export function cjtAnswers(address: string, meterType: number | undefined, ser: number): (f: cjt.Cjt188Frame) => boolean {
  return (f) => {
    if (f.control !== 0x81 && f.control !== 0xc1) return false;
    if (f.address !== address) return false;
    if (meterType !== undefined && meterType !== 0xaa && f.meterType !== meterType) return false;
    // 81H: DI DI SER …; C1H: SER ST ST. The meter echoes SER: a reply with another one
    // answers an earlier request.
    const s = f.control === 0x81 ? f.data[2] : f.data[0];
    if (f.control === 0x81) {
      const di = ((f.data[0] ?? 0) << 8) | (f.data[1] ?? 0);
      if (di !== 0x901f && di !== 0x1f90) return false;
    }
    return s === (ser & 0xff);
  };
}

const anyDlt = framerOf(dlt.findFrame, () => true);
const anyCjt = framerOf(cjt.findFrame, () => true);

function lineError(err: unknown): ReadError {
  if (err instanceof TransactionTimeout) return new ReadError('timeout', err.message);
  if (err instanceof AmbiguousReply) return new ReadError('bad_reply', err.message);
  if (err instanceof dlt.Dlt645Error || err instanceof cjt.Cjt188Error) return new ReadError(err.code === 'checksum' ? 'crc' : 'bad_reply', err.message);
  return new ReadError('port', (err as Error).message);
}

export class Dlt645Protocol implements BusProtocol {
  constructor(
    readonly transactor: Transactor,
    private readonly now: () => number,
  ) {}
  async attach(): Promise<void> {}
  dispose(): void {
    this.transactor.dispose();
  }

  async read(target: DeviceTarget, block: Block, timeoutMs: number): Promise<ReadOutcome> {
    if (block.kind !== 'dlt645') throw new Error(`a ${block.kind} block on a DL/T 645 bus`);
    const address = String(target.address);
    const start = performance.now();
    let raw: Buffer;
    try {
      raw = await this.transactor.request(dlt.readRequest(block.version, address, block.identifier), framerOf(dlt.findFrame, dltAnswers(block.version, address, block.identifier)), timeoutMs);
    } catch (err) {
      throw lineError(err);
    }
    let reply: dlt.ReadReply;
    const parse = (frame: Buffer, seq?: number) => {
      try {
        return dlt.parseReadReply(block.version, dlt.decodeFrame(frame), address, block.identifier, seq);
      } catch (err) {
        const e = err as dlt.Dlt645Error;
        if (e.code === 'address') throw new ReadError('wrong_unit', e.message);
        // "No data requested" (bit 1) is the DL/T 645 form of Modbus "illegal data address".
        if (e.code === 'meter_error') throw new ReadError('exception', e.message, e.meterErrorCode !== undefined && e.meterErrorCode & 0x02 ? 2 : 4);
        throw new ReadError('bad_reply', e.message);
      }
    };
    reply = parse(raw);
    // Data longer than one frame comes in follow-up frames (B1H → 12H … 92H).
    const parts = [reply.value];
    for (let seq = 1; reply.followUp; seq++) {
      if (seq > 16) throw new ReadError('bad_reply', `more than 16 follow-up frames for ${block.identifier}`);
      try {
        raw = await this.transactor.request(dlt.readFollowUpRequest(block.version, address, block.identifier, seq), framerOf(dlt.findFrame, dltAnswers(block.version, address, block.identifier, seq)), timeoutMs);
      } catch (err) {
        throw lineError(err);
      }
      reply = parse(raw, seq);
      parts.push(reply.value);
    }
    reply = { ...reply, value: Buffer.concat(parts) };
    const at = this.now();
    const p = block.points[0]!;
    if (reply.value.length < p.bytes!) throw new ReadError('bad_reply', `${p.name}: ${reply.value.length} value bytes, expected ${p.bytes}`);
    const v = dlt.decodeBcd(reply.value.subarray(0, p.bytes!), p.decimals!, p.signed);
    return { values: [{ point: p, value: scaled(p, v) }], at, latencyMs: performance.now() - start };
  }

  async probe(address: number | string | undefined, timeoutMs: number): Promise<ScanHit[]> {
    // Wildcard read-address (2007 only), or a read of total energy at a given address,
    // asked the 2007 way and then the 1997 way (old meters ignore 2007 frames).
    const attempts = address === undefined ? [dlt.readAddressRequest()] : [dlt.readRequest('2007', dlt.normaliseAddress(String(address)), '00010000'), dlt.readRequest('1997', dlt.normaliseAddress(String(address)), '9010')];
    for (const req of attempts) {
      try {
        const raw = await this.transactor.request(req, anyDlt, timeoutMs, NO_GUARD);
        const f = dlt.decodeFrame(raw);
        if (f.control === 0x93) return [{ address: dlt.parseReadAddressReply(f), detail: 'answered read-address (13H)' }];
        const version = (f.control & 0x1f) === dlt.C1997.read ? 'DL/T 645-1997' : 'DL/T 645-2007';
        return [{ address: f.address, detail: `${version} meter answered (control ${f.control.toString(16).toUpperCase()}H)` }];
      } catch (err) {
        if (err instanceof dlt.Dlt645Error) return [{ address: address ?? '?', detail: `garbled answer: ${err.message} (several meters answering at once, or wrong baud rate)` }];
      }
    }
    return [];
  }

  /** Broadcast time (08H); no meter answers a broadcast. */
  async timeSync(local: Date): Promise<Buffer> {
    const frame = dlt.broadcastTimeRequest({
      year: local.getFullYear(),
      month: local.getMonth() + 1,
      day: local.getDate(),
      hour: local.getHours(),
      minute: local.getMinutes(),
      second: local.getSeconds(),
    });
    await this.transactor.send(frame);
    return frame;
  }
}

export class Cjt188Protocol implements BusProtocol {
  private ser = 0;
  constructor(
    readonly transactor: Transactor,
    private readonly now: () => number,
  ) {}
  async attach(): Promise<void> {}
  dispose(): void {
    this.transactor.dispose();
  }

  async read(target: DeviceTarget, block: Block, timeoutMs: number): Promise<ReadOutcome> {
    if (block.kind !== 'cjt188') throw new Error(`a ${block.kind} block on a CJ/T 188 bus`);
    const address = String(target.address);
    const start = performance.now();
    this.ser = (this.ser + 1) & 0xff;
    const ser = this.ser;
    let raw: Buffer;
    try {
      raw = await this.transactor.request(cjt.readRequest(target.meterType ?? 0x10, address, 0x901f, ser, target.diOrder ?? '901F'), framerOf(cjt.findFrame, cjtAnswers(address, target.meterType, ser)), timeoutMs);
    } catch (err) {
      throw lineError(err);
    }
    const at = this.now();
    let r: cjt.FlowReading;
    try {
      r = cjt.parseFlowReply(cjt.decodeFrame(raw), { address, ...(target.meterType !== undefined ? { meterType: target.meterType } : {}) });
    } catch (err) {
      const e = err as cjt.Cjt188Error;
      if (e.code === 'address') throw new ReadError('wrong_unit', e.message);
      if (e.code === 'meter_error') throw new ReadError('exception', e.message, 4);
      throw new ReadError('bad_reply', e.message);
    }
    const values = block.points.map((p) => {
      const v = p.field === 'current' ? r.current : p.field === 'settlement' ? r.settlement : r.status;
      // Meters that count in litres: convert to the profile's unit (m3).
      const unit = p.field === 'current' ? r.unit : r.settlementUnit;
      const value = v !== undefined && p.field !== 'status' && unit === 'L' && p.unit === 'm3' ? v / 1000 : v;
      return { point: p, value };
    });
    return { values, at, latencyMs: performance.now() - start };
  }

  async probe(address: number | string | undefined, timeoutMs: number): Promise<ScanHit[]> {
    try {
      const req = cjt.encodeFrame(0xaa, address === undefined ? cjt.WILDCARD_ADDRESS : cjt.normaliseAddress(String(address)), cjt.C188.readAddress, Buffer.from([0x81, 0x0a, 0]));
      const raw = await this.transactor.request(req, anyCjt, timeoutMs, NO_GUARD);
      const f = cjt.decodeFrame(raw);
      return [{ address: f.address, detail: `${cjt.METER_TYPES[f.meterType] ?? 'type ' + f.meterType.toString(16)} meter answered read-address` }];
    } catch (err) {
      if (err instanceof cjt.Cjt188Error) return [{ address: address ?? '?', detail: `garbled answer: ${err.message}` }];
      return [];
    }
  }
}

/**
 * Modbus RTU and DL/T 645 meters on one line (same baud rate and parity), sharing one
 * transactor so they never talk over each other: each block goes to the protocol of
 * its device's profile.
 */
export class MixedProtocol implements BusProtocol {
  readonly modbus: ModbusProtocol;
  readonly dlt645: Dlt645Protocol;
  constructor(
    readonly transactor: Transactor,
    now: () => number,
  ) {
    this.modbus = new ModbusProtocol(transactor, 'rtu', now);
    this.dlt645 = new Dlt645Protocol(transactor, now);
  }
  attach(): Promise<void> {
    return this.modbus.attach();
  }
  dispose(): void {
    this.transactor.dispose();
  }
  read(target: DeviceTarget, block: Block, timeoutMs: number): Promise<ReadOutcome> {
    return block.kind === 'modbus' ? this.modbus.read(target, block, timeoutMs) : this.dlt645.read(target, block, timeoutMs);
  }
  /** Numbers are Modbus unit ids, strings DL/T 645 addresses. */
  probe(address: number | string | undefined, timeoutMs: number): Promise<ScanHit[]> {
    return typeof address === 'number' ? this.modbus.probe(address, timeoutMs) : this.dlt645.probe(address, timeoutMs);
  }
}
