// DL/T 645-2007 and DL/T 645-1997 frame codec (pure functions, no I/O).
//
// Frame: [FE…] 68 A0 A1 A2 A3 A4 A5 68 C L DATA CS 16
//  - address: 6 bytes BCD, low byte first (A0 = the two lowest digits); 99…99 = broadcast,
//    AA…AA = wildcard (read-address on a point-to-point line);
//  - every DATA byte is sent +33H (and −33H on receipt);
//  - CS = sum of all bytes from the first 68 to the end of DATA, mod 256.
// 2007: read 11H → 91H (normal), B1H (more data follows, read on with 12H), D1H (error);
//       read address 13H → 93H; broadcast time 08H (no reply). Identifiers are 4 bytes
//       DI3..DI0, sent DI0 first.
// 1997: read 01H → 81H / A1H (follow-up) / C1H (error); identifiers are 2 bytes, DI0 first.
// Values are BCD, low byte first, with a fixed number of decimals per identifier; for
// signed quantities (power, current, power factor) the top bit of the highest byte is
// the sign.

export type Dlt645Version = '2007' | '1997';

export const BROADCAST_ADDRESS = '999999999999';
export const WILDCARD_ADDRESS = 'AAAAAAAAAAAA';

export const C2007 = { read: 0x11, readFollow: 0x12, readAddress: 0x13, broadcastTime: 0x08 } as const;
export const C1997 = { read: 0x01, readFollow: 0x02, broadcastTime: 0x08 } as const;

export class Dlt645Error extends Error {
  constructor(
    readonly code: 'checksum' | 'format' | 'address' | 'control' | 'meter_error',
    message: string,
    readonly meterErrorCode?: number,
  ) {
    super(message);
    this.name = 'Dlt645Error';
  }
}

export interface Dlt645Frame {
  /** 12 digits as printed on the meter (high digit first). */
  address: string;
  control: number;
  /** Data with the 33H offset removed. */
  data: Buffer;
}

/** "000000000001" → bytes 01 00 00 00 00 00 (low byte first). Accepts AA/99 wildcards. */
export function encodeAddress(address: string): Buffer {
  if (!/^[0-9A-Fa-f]{12}$/.test(address)) throw new RangeError(`DL/T 645 address must be 12 digits, got "${address}"`);
  const out = Buffer.alloc(6);
  for (let i = 0; i < 6; i++) out[i] = parseInt(address.slice(10 - 2 * i, 12 - 2 * i), 16);
  return out;
}

export function decodeAddress(bytes: Uint8Array): string {
  let s = '';
  for (let i = bytes.length - 1; i >= 0; i--) s += bytes[i]!.toString(16).padStart(2, '0');
  return s.toUpperCase();
}

/** Normalise a configured address: digits only, left-padded to 12. */
export function normaliseAddress(a: string | number): string {
  const s = String(a).trim();
  if (!/^[0-9A-Fa-f]{1,12}$/.test(s)) throw new RangeError(`DL/T 645 address "${a}" must be up to 12 BCD digits`);
  return s.padStart(12, '0').toUpperCase();
}

function checksum(buf: Uint8Array, start: number, end: number): number {
  let s = 0;
  for (let i = start; i < end; i++) s = (s + buf[i]!) & 0xff;
  return s;
}

export function encodeFrame(address: string, control: number, data: Uint8Array = Buffer.alloc(0), preamble = 4): Buffer {
  const body = Buffer.alloc(12 + data.length);
  body[0] = 0x68;
  encodeAddress(address).copy(body, 1);
  body[7] = 0x68;
  body[8] = control;
  body[9] = data.length;
  for (let i = 0; i < data.length; i++) body[10 + i] = (data[i]! + 0x33) & 0xff;
  body[10 + data.length] = checksum(body, 0, 10 + data.length);
  body[11 + data.length] = 0x16;
  return preamble > 0 ? Buffer.concat([Buffer.alloc(preamble, 0xfe), body]) : body;
}

/** Identifier "00010000" (2007) or "9010" (1997) → bytes DI0 first. */
export function identifierBytes(id: string): Buffer {
  if (!/^([0-9A-Fa-f]{4}|[0-9A-Fa-f]{8})$/.test(id)) throw new RangeError(`identifier must be 4 or 8 hex digits, got "${id}"`);
  return encodeAddressLike(id);
}

function encodeAddressLike(hexDigits: string): Buffer {
  const n = hexDigits.length / 2;
  const out = Buffer.alloc(n);
  for (let i = 0; i < n; i++) out[i] = parseInt(hexDigits.slice(hexDigits.length - 2 - 2 * i, hexDigits.length - 2 * i), 16);
  return out;
}

export function readRequest(version: Dlt645Version, address: string, identifier: string): Buffer {
  const di = identifierBytes(identifier);
  if (version === '2007' && di.length !== 4) throw new RangeError('DL/T 645-2007 identifiers have 8 hex digits');
  if (version === '1997' && di.length !== 2) throw new RangeError('DL/T 645-1997 identifiers have 4 hex digits');
  return encodeFrame(address, version === '2007' ? C2007.read : C1997.read, di);
}

export function readAddressRequest(): Buffer {
  return encodeFrame(WILDCARD_ADDRESS, C2007.readAddress);
}

/** Broadcast time (08H): data ss mm hh DD MM YY in BCD, in the meters' local time. */
export function broadcastTimeRequest(localTime: { year: number; month: number; day: number; hour: number; minute: number; second: number }): Buffer {
  const bcd = (n: number) => ((Math.floor(n / 10) % 10) << 4) | (n % 10);
  const t = localTime;
  return encodeFrame(BROADCAST_ADDRESS, C2007.broadcastTime, Buffer.from([bcd(t.second), bcd(t.minute), bcd(t.hour), bcd(t.day), bcd(t.month), bcd(t.year % 100)]));
}

export type FrameSearch = { kind: 'frame'; frame: Dlt645Frame; start: number; end: number } | { kind: 'bad'; error: Dlt645Error; start: number; end: number } | { kind: 'need-more'; skip: number };

/**
 * Find the next frame in a receive buffer: skips FE preambles and noise before a 68,
 * checks the second 68, the length, CS and the 16 end byte. `skip` tells how many
 * leading bytes can be discarded because no frame can start there.
 */
export function findFrame(buf: Uint8Array): FrameSearch {
  for (let i = 0; i < buf.length; i++) {
    if (buf[i] !== 0x68) continue;
    if (buf.length - i < 10) return { kind: 'need-more', skip: i };
    if (buf[i + 7] !== 0x68) continue;
    const len = buf[i + 9]!;
    const total = 12 + len;
    if (buf.length - i < total) return { kind: 'need-more', skip: i };
    const end = i + total;
    if (buf[end - 1] !== 0x16) continue;
    const cs = checksum(buf, i, end - 2);
    if (cs !== buf[end - 2]) return { kind: 'bad', error: new Dlt645Error('checksum', `checksum ${hex2(buf[end - 2]!)} != computed ${hex2(cs)}`), start: i, end };
    const data = Buffer.alloc(len);
    for (let k = 0; k < len; k++) data[k] = (buf[i + 10 + k]! - 0x33) & 0xff;
    return { kind: 'frame', frame: { address: decodeAddress(buf.subarray(i + 1, i + 7)), control: buf[i + 8]!, data }, start: i, end };
  }
  return { kind: 'need-more', skip: buf.length };
}

/** Decode one complete frame (preamble allowed); throws Dlt645Error. */
export function decodeFrame(buf: Uint8Array): Dlt645Frame {
  const r = findFrame(buf);
  if (r.kind === 'frame') return r.frame;
  if (r.kind === 'bad') throw r.error;
  throw new Dlt645Error('format', 'no complete DL/T 645 frame');
}

const hex2 = (n: number) => n.toString(16).padStart(2, '0').toUpperCase();

export const ERROR_BITS_2007: Array<[number, string]> = [
  [0x01, 'other error'],
  [0x02, 'no data requested'],
  [0x04, 'password error / unauthorised'],
  [0x08, 'baud rate cannot be changed'],
  [0x10, 'annual time zones exceeded'],
  [0x20, 'daily periods exceeded'],
  [0x40, 'tariffs exceeded'],
];

export function describeMeterError(code: number): string {
  const parts = ERROR_BITS_2007.filter(([bit]) => code & bit).map(([, s]) => s);
  return parts.length ? parts.join(', ') : `error 0x${hex2(code)}`;
}

export interface ReadReply {
  identifier: string;
  /** Value bytes (after the identifier), 33H removed. */
  value: Buffer;
  /** More data follows (B1H / A1H). */
  followUp: boolean;
}

/**
 * Interpret a reply to a read request. Checks the reply control code, the address
 * and the identifier echo; an error reply (D1H / C1H) throws with the meter's code.
 */
export function parseReadReply(version: Dlt645Version, frame: Dlt645Frame, expectAddress: string, identifier: string, followUpSeq?: number): ReadReply {
  const readC = followUpSeq === undefined ? (version === '2007' ? C2007.read : C1997.read) : version === '2007' ? C2007.readFollow : C1997.readFollow;
  if (frame.address !== expectAddress && expectAddress !== WILDCARD_ADDRESS) throw new Dlt645Error('address', `reply from ${frame.address}, expected ${expectAddress}`);
  const fn = frame.control & 0x1f;
  if (fn !== readC || !(frame.control & 0x80)) throw new Dlt645Error('control', `unexpected control code ${hex2(frame.control)}`);
  if (frame.control & 0x40) {
    const code = frame.data[0] ?? 0;
    throw new Dlt645Error('meter_error', `meter answered error: ${describeMeterError(code)}`, code);
  }
  const diLen = version === '2007' ? 4 : 2;
  if (frame.data.length < diLen) throw new Dlt645Error('format', `reply data too short (${frame.data.length} bytes)`);
  const di = decodeAddress(frame.data.subarray(0, diLen));
  if (di !== identifier.toUpperCase()) throw new Dlt645Error('format', `reply for identifier ${di}, asked ${identifier}`);
  // 2007 follow-up replies (92H/B2H) end with the frame sequence number SEQ.
  let value = frame.data.subarray(diLen);
  if (followUpSeq !== undefined && version === '2007') {
    if (value.length < 1 || value[value.length - 1] !== (followUpSeq & 0xff)) throw new Dlt645Error('format', `follow-up reply without sequence ${followUpSeq}`);
    value = value.subarray(0, value.length - 1);
  }
  return { identifier: di, value, followUp: (frame.control & 0x20) !== 0 };
}

/** Read follow-up data (12H with DI + SEQ for 2007, 02H with DI for 1997) after a B1H/A1H reply. */
export function readFollowUpRequest(version: Dlt645Version, address: string, identifier: string, seq: number): Buffer {
  const di = identifierBytes(identifier);
  if (version === '2007') return encodeFrame(address, C2007.readFollow, Buffer.concat([di, Buffer.from([seq & 0xff])]));
  return encodeFrame(address, C1997.readFollow, di);
}

/**
 * BCD value, low byte first, with `decimals` implied decimals. `signed`: the top bit
 * of the highest byte is the sign. Returns undefined when a nibble is not a digit
 * (meters send FF… for "no value").
 */
export function decodeBcd(bytes: Uint8Array, decimals: number, signed = false): number | undefined {
  let v = 0;
  let negative = false;
  for (let i = bytes.length - 1; i >= 0; i--) {
    let b = bytes[i]!;
    if (i === bytes.length - 1 && signed) {
      negative = (b & 0x80) !== 0;
      b &= 0x7f;
    }
    const hi = b >> 4;
    const lo = b & 0x0f;
    if (hi > 9 || lo > 9) return undefined;
    v = v * 100 + hi * 10 + lo;
  }
  const out = v / 10 ** decimals;
  return negative ? -out : out;
}

export function encodeBcd(value: number, bytes: number, decimals: number, signed = false): Buffer {
  const out = Buffer.alloc(bytes);
  let n = Math.round(Math.abs(value) * 10 ** decimals);
  for (let i = 0; i < bytes; i++) {
    out[i] = (n % 10) | ((Math.floor(n / 10) % 10) << 4);
    n = Math.floor(n / 100);
  }
  if (signed && value < 0) out[bytes - 1]! |= 0x80;
  return out;
}

/** Reply to read-address (93H): the meter's own address is in the data. */
export function parseReadAddressReply(frame: Dlt645Frame): string {
  if (frame.control !== 0x93) throw new Dlt645Error('control', `unexpected control code ${hex2(frame.control)}`);
  if (frame.data.length !== 6) throw new Dlt645Error('format', 'read-address reply must carry 6 bytes');
  return decodeAddress(frame.data);
}
