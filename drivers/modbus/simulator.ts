// Simulator twin of Modbus RTU meters: one or more slave units on a Line (a simulated
// wire, or one end of a socat pty pair). It answers FC 1–4 like the real devices do,
// including the behaviours the scheduler must cope with: "illegal data address" when a
// block read touches an unmapped register, "illegal data value" above the device's
// per-request register limit, silence for other unit ids, a response latency, and a
// switch that makes a unit dead (no answer at all).
import type { Line } from '../serial/line.js';
import { crcOk, withCrc, encodeValue, type DataType, type Order } from './codec.js';

export interface SimUnitOptions {
  /** Largest register count per request; above it the unit answers exception 3. */
  maxRegisters?: number;
  /** Time the device takes to start answering (ms). */
  latencyMs?: number;
  /**
   * Answer unmapped registers inside the mapped range with 0, as most meters do for
   * reserved registers (Eastron, CHINT). When false, any unmapped register in a read
   * is "illegal data address" (a strict device).
   */
  lenient?: boolean;
}

export class SimUnit {
  readonly input = new Map<number, number>();
  readonly holding = new Map<number, number>();
  /** Coils (relay outputs; FC 1 read, FC 5/15 write). FC 1 falls back to `holding` for meters mapped that way. */
  readonly coils = new Map<number, number>();
  /** Discrete inputs (FC 2); falls back to `input`. */
  readonly discrete = new Map<number, number>();
  online = true;
  requests = 0;
  /** A relay board whose relays no longer move (welded contact, coil driver dead): writes are acknowledged, the coils keep their state. */
  stuck = false;
  /** Called after a coil write changed coils (the twin of a load behind the relay). */
  onCoils: ((address: number, values: number[]) => void) | undefined;
  constructor(
    readonly unit: number,
    readonly opts: SimUnitOptions = {},
  ) {}

  /** Store a typed value at a register address in the chosen table. */
  set(table: 'input' | 'holding', address: number, value: number, type: DataType, wordOrder: Order = 'big', byteOrder: Order = 'big'): void {
    const bytes = encodeValue(value, type, wordOrder, byteOrder);
    const map = table === 'input' ? this.input : this.holding;
    for (let i = 0; i < bytes.length / 2; i++) map.set(address + i, bytes.readUInt16BE(i * 2));
  }
}

export class ModbusSlaveSim {
  private readonly units = new Map<number, SimUnit>();
  private buf = Buffer.alloc(0);
  private readonly onData = (d: Buffer) => this.receive(d);
  /** Requests seen that were addressed to one of our units. */
  served = 0;

  constructor(readonly line: Line) {
    line.on('data', this.onData);
  }

  addUnit(unit: number, opts: SimUnitOptions = {}): SimUnit {
    const u = new SimUnit(unit, opts);
    this.units.set(unit, u);
    return u;
  }

  unit(id: number): SimUnit | undefined {
    return this.units.get(id);
  }

  dispose(): void {
    this.line.off('data', this.onData);
  }

  private receive(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    // Requests we answer are 8 bytes (FC 1–5), FC 15 is 9 + n; resynchronise on noise by sliding.
    while (this.buf.length >= 8) {
      const fc = this.buf[1]!;
      const len = fc === 15 ? 9 + this.buf[6]! : 8;
      if (this.buf.length < len) break;
      const frame = this.buf.subarray(0, len);
      if (((fc >= 1 && fc <= 5) || fc === 15) && crcOk(frame)) {
        this.buf = this.buf.subarray(len);
        this.handle(Buffer.from(frame));
      } else {
        this.buf = this.buf.subarray(1);
      }
    }
    if (this.buf.length > 512) this.buf = Buffer.alloc(0);
  }

  private handle(req: Buffer): void {
    const u = this.units.get(req[0]!);
    if (!u?.online) return;
    u.requests++;
    this.served++;
    const reply = this.answer(u, req);
    const latency = u.opts.latencyMs ?? 0;
    if (this.line.writeAfter) void this.line.writeAfter(reply, latency).catch(() => {});
    else if (latency) setTimeout(() => void this.line.write(reply).catch(() => {}), latency);
    else void this.line.write(reply).catch(() => {});
  }

  answer(u: SimUnit, req: Buffer): Buffer {
    const fc = req[1]!;
    const address = req.readUInt16BE(2);
    const count = req.readUInt16BE(4);
    const exc = (code: number) => withCrc(Buffer.from([u.unit, fc | 0x80, code]));
    if (fc === 5 || fc === 15) return this.writeCoils(u, req, exc);
    const max = fc <= 2 ? 2000 : Math.min(125, u.opts.maxRegisters ?? 125);
    if (count < 1 || count > max) return exc(3);
    const map = fc === 4 ? u.input : fc === 1 && u.coils.size ? u.coils : fc === 2 && u.discrete.size ? u.discrete : u.holding;
    if (fc === 1 || fc === 2) {
      const bytes = Buffer.alloc(Math.ceil(count / 8));
      for (let i = 0; i < count; i++) {
        const v = map.get(address + i);
        if (v === undefined) return exc(2);
        if (v) bytes[i >> 3]! |= 1 << (i & 7);
      }
      return withCrc(Buffer.concat([Buffer.from([u.unit, fc, bytes.length]), bytes]));
    }
    const data = Buffer.alloc(count * 2);
    const lenient = u.opts.lenient === true && map.has(address) && map.has(address + count - 1);
    for (let i = 0; i < count; i++) {
      const v = map.get(address + i);
      if (v === undefined && !lenient) return exc(2);
      data.writeUInt16BE(v ?? 0, i * 2);
    }
    return withCrc(Buffer.concat([Buffer.from([u.unit, fc, data.length]), data]));
  }

  /** FC 5 (one coil: FF00 on, 0000 off, anything else exception 3) and FC 15 (a run of coils), echoing like the hardware. */
  private writeCoils(u: SimUnit, req: Buffer, exc: (code: number) => Buffer): Buffer {
    const fc = req[1]!;
    const address = req.readUInt16BE(2);
    let values: number[];
    if (fc === 5) {
      const v = req.readUInt16BE(4);
      if (v !== 0xff00 && v !== 0) return exc(3);
      values = [v ? 1 : 0];
    } else {
      const count = req.readUInt16BE(4);
      if (count < 1 || count > 1968 || req[6] !== Math.ceil(count / 8)) return exc(3);
      values = Array.from({ length: count }, (_, i) => (req[7 + (i >> 3)]! >> (i & 7)) & 1);
    }
    for (let i = 0; i < values.length; i++) if (!u.coils.has(address + i)) return exc(2);
    if (!u.stuck) {
      values.forEach((v, i) => u.coils.set(address + i, v));
      u.onCoils?.(address, values);
    }
    return withCrc(req.subarray(0, 6));
  }
}
