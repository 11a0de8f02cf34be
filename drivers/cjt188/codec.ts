// CJ/T 188-2004 frame codec for water, heat and gas meters (pure functions, no I/O).
//
// Frame: [FE…] 68 T A0..A6 C L DATA CS 16
//  - T: meter type (10H cold water, 11H hot water, 12H drinking water, 13H reclaimed
//    water, 20H/21H heat, 30H gas, 40H electricity); AAH = any type;
//  - address: 7 bytes BCD, low byte first; AA…AA = wildcard;
//  - C: 01H read data → 81H reply (C1H error); 03H read address → 83H;
//  - DATA is plain (no 33H offset); CS = sum from 68 to the end of DATA, mod 256.
// Read data with DI 90 1F ("current cumulative flow") answers 22 bytes:
// DI(2) SER(1) current flow (4 BCD + unit) settlement-day flow (4 BCD + unit)
// real time (7 BCD: ss mm hh DD MM YY YY) status (2).
// The standard sends the DI as 90 1F; some meters expect 1F 90 — the profile chooses
// (`diOrder`) and the reply parser accepts either.

export const METER_TYPES: Record<number, string> = {
  0x10: 'cold water',
  0x11: 'hot water',
  0x12: 'drinking water',
  0x13: 'reclaimed water',
  0x20: 'heat (heat)',
  0x21: 'heat (cold)',
  0x30: 'gas',
  0x40: 'electricity',
};

/** Unit codes of CJ/T 188 flow/energy values. */
export const UNITS: Record<number, string> = {
  0x02: 'Wh',
  0x05: 'kWh',
  0x08: 'MWh',
  0x0a: 'MWh×100',
  0x01: 'J',
  0x0b: 'kJ',
  0x0e: 'MJ',
  0x11: 'GJ',
  0x13: 'GJ×100',
  0x14: 'W',
  0x17: 'kW',
  0x1a: 'MW',
  0x29: 'L',
  0x2c: 'm3',
  0x32: 'L/h',
  0x35: 'm3/h',
};

export const C188 = { read: 0x01, readAddress: 0x03 } as const;
export const WILDCARD_ADDRESS = 'AAAAAAAAAAAAAA';

export class Cjt188Error extends Error {
  constructor(
    readonly code: 'checksum' | 'format' | 'address' | 'control' | 'meter_error',
    message: string,
  ) {
    super(message);
    this.name = 'Cjt188Error';
  }
}

export interface Cjt188Frame {
  meterType: number;
  /** 14 digits, high digit first. */
  address: string;
  control: number;
  data: Buffer;
}

export function normaliseAddress(a: string | number): string {
  const s = String(a).trim();
  if (!/^[0-9A-Fa-f]{1,14}$/.test(s)) throw new RangeError(`CJ/T 188 address "${a}" must be up to 14 BCD digits`);
  return s.padStart(14, '0').toUpperCase();
}

function addressBytes(address: string): Buffer {
  if (!/^[0-9A-Fa-f]{14}$/.test(address)) throw new RangeError(`CJ/T 188 address must be 14 digits, got "${address}"`);
  const out = Buffer.alloc(7);
  for (let i = 0; i < 7; i++) out[i] = parseInt(address.slice(12 - 2 * i, 14 - 2 * i), 16);
  return out;
}

function addressString(b: Uint8Array): string {
  let s = '';
  for (let i = b.length - 1; i >= 0; i--) s += b[i]!.toString(16).padStart(2, '0');
  return s.toUpperCase();
}

function checksum(buf: Uint8Array, start: number, end: number): number {
  let s = 0;
  for (let i = start; i < end; i++) s = (s + buf[i]!) & 0xff;
  return s;
}

export function encodeFrame(meterType: number, address: string, control: number, data: Uint8Array, preamble = 2): Buffer {
  const body = Buffer.alloc(13 + data.length);
  body[0] = 0x68;
  body[1] = meterType;
  addressBytes(address).copy(body, 2);
  body[9] = control;
  body[10] = data.length;
  Buffer.from(data).copy(body, 11);
  body[11 + data.length] = checksum(body, 0, 11 + data.length);
  body[12 + data.length] = 0x16;
  return preamble > 0 ? Buffer.concat([Buffer.alloc(preamble, 0xfe), body]) : body;
}

export type DiOrder = '901F' | '1F90';

/** Read data request; `ser` is the sequence number echoed by the meter. */
export function readRequest(meterType: number, address: string, di = 0x901f, ser = 0, order: DiOrder = '901F'): Buffer {
  const hi = (di >> 8) & 0xff;
  const lo = di & 0xff;
  return encodeFrame(meterType, address, C188.read, Buffer.from(order === '901F' ? [hi, lo, ser & 0xff] : [lo, hi, ser & 0xff]));
}

export type FrameSearch = { kind: 'frame'; frame: Cjt188Frame; start: number; end: number } | { kind: 'bad'; error: Cjt188Error; start: number; end: number } | { kind: 'need-more'; skip: number };

export function findFrame(buf: Uint8Array): FrameSearch {
  for (let i = 0; i < buf.length; i++) {
    if (buf[i] !== 0x68) continue;
    if (buf.length - i < 11) return { kind: 'need-more', skip: i };
    const len = buf[i + 10]!;
    const total = 13 + len;
    if (len > 0x64) continue;
    if (buf.length - i < total) return { kind: 'need-more', skip: i };
    const end = i + total;
    if (buf[end - 1] !== 0x16) continue;
    const cs = checksum(buf, i, end - 2);
    if (cs !== buf[end - 2]) return { kind: 'bad', error: new Cjt188Error('checksum', `checksum mismatch (got ${buf[end - 2]}, computed ${cs})`), start: i, end };
    return {
      kind: 'frame',
      frame: { meterType: buf[i + 1]!, address: addressString(buf.subarray(i + 2, i + 9)), control: buf[i + 9]!, data: Buffer.from(buf.subarray(i + 11, i + 11 + len)) },
      start: i,
      end,
    };
  }
  return { kind: 'need-more', skip: buf.length };
}

export function decodeFrame(buf: Uint8Array): Cjt188Frame {
  const r = findFrame(buf);
  if (r.kind === 'frame') return r.frame;
  if (r.kind === 'bad') throw r.error;
  throw new Cjt188Error('format', 'no complete CJ/T 188 frame');
}

function bcd(bytes: Uint8Array): number | undefined {
  let v = 0;
  for (let i = bytes.length - 1; i >= 0; i--) {
    const hi = bytes[i]! >> 4;
    const lo = bytes[i]! & 0x0f;
    if (hi > 9 || lo > 9) return undefined;
    v = v * 100 + hi * 10 + lo;
  }
  return v;
}

export interface FlowReading {
  /** Current cumulative flow, in `unit`. */
  current: number | undefined;
  unit: string;
  /** Cumulative flow on the settlement day. */
  settlement: number | undefined;
  settlementUnit: string;
  /** The meter's clock as "YYYY-MM-DD hh:mm:ss" (meter local time), if valid. */
  meterTime?: string;
  /** Status word ST (bits: valve state, battery low…), as sent. */
  status: number;
  ser: number;
}

/** Parse the reply (81H) to DI 90 1F. Throws Cjt188Error. */
export function parseFlowReply(frame: Cjt188Frame, expect: { meterType?: number; address: string }): FlowReading {
  if (frame.address !== expect.address && expect.address !== WILDCARD_ADDRESS) throw new Cjt188Error('address', `reply from ${frame.address}, expected ${expect.address}`);
  if (expect.meterType !== undefined && expect.meterType !== 0xaa && frame.meterType !== expect.meterType) throw new Cjt188Error('format', `reply meter type ${frame.meterType.toString(16)}, expected ${expect.meterType.toString(16)}`);
  if (frame.control === 0xc1) throw new Cjt188Error('meter_error', `meter answered error (status ${frame.data.toString('hex')})`);
  if (frame.control !== 0x81) throw new Cjt188Error('control', `unexpected control code ${frame.control.toString(16)}`);
  const d = frame.data;
  const di = (d[0]! << 8) | d[1]!;
  if (d.length < 13 || (di !== 0x901f && di !== 0x1f90)) throw new Cjt188Error('format', `not a 90 1F reply (${d.length} bytes, DI ${di.toString(16)})`);
  const cur = bcd(d.subarray(3, 7));
  const set = bcd(d.subarray(8, 12));
  const out: FlowReading = {
    current: cur === undefined ? undefined : cur / 100,
    unit: UNITS[d[7]!] ?? `unit 0x${d[7]!.toString(16)}`,
    settlement: set === undefined ? undefined : set / 100,
    settlementUnit: UNITS[d[12]!] ?? `unit 0x${d[12]!.toString(16)}`,
    status: d.length >= 22 ? d[20]! | (d[21]! << 8) : 0,
    ser: d[2]!,
  };
  if (d.length >= 20) {
    const t = d.subarray(13, 20);
    const digits = Array.from(t, (b) => b.toString(16).padStart(2, '0'));
    // ss mm hh DD MM YY(low) YY(high)
    if (digits.every((x) => /^\d\d$/.test(x))) out.meterTime = `${digits[6]}${digits[5]}-${digits[4]}-${digits[3]} ${digits[2]}:${digits[1]}:${digits[0]}`;
  }
  return out;
}

/** Build the 22-byte 90 1F reply data (for the simulator twin). */
export function flowReplyData(volumeM3: number, settlementM3: number, when: Date, status = 0, ser = 0, order: DiOrder = '901F'): Buffer {
  const b = Buffer.alloc(22);
  if (order === '901F') (b[0] = 0x90), (b[1] = 0x1f);
  else (b[0] = 0x1f), (b[1] = 0x90);
  b[2] = ser;
  const put = (v: number, at: number) => {
    let n = Math.round(v * 100);
    for (let i = 0; i < 4; i++) {
      b[at + i] = (n % 10) | ((Math.floor(n / 10) % 10) << 4);
      n = Math.floor(n / 100);
    }
  };
  put(volumeM3, 3);
  b[7] = 0x2c;
  put(settlementM3, 8);
  b[12] = 0x2c;
  const bcd2 = (n: number) => ((Math.floor(n / 10) % 10) << 4) | (n % 10);
  const y = when.getUTCFullYear();
  [when.getUTCSeconds(), when.getUTCMinutes(), when.getUTCHours(), when.getUTCDate(), when.getUTCMonth() + 1, y % 100, Math.floor(y / 100)].forEach((v, i) => (b[13 + i] = bcd2(v)));
  b[20] = status & 0xff;
  b[21] = (status >> 8) & 0xff;
  return b;
}
