// Pure Modbus helpers: CRC-16/MODBUS, RTU frame building and framing, and the register
// data types of meter profiles (word and byte order). No I/O here, so every function is
// unit-tested on published frames.

const CRC_TABLE = (() => {
  const t = new Uint16Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
    t[i] = c;
  }
  return t;
})();

/** CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF); sent low byte first. */
export function crc16(buf: Uint8Array, start = 0, end = buf.length): number {
  let crc = 0xffff;
  for (let i = start; i < end; i++) crc = (crc >>> 8) ^ CRC_TABLE[(crc ^ buf[i]!) & 0xff]!;
  return crc;
}

export function withCrc(pdu: Uint8Array): Buffer {
  const out = Buffer.alloc(pdu.length + 2);
  out.set(pdu);
  out.writeUInt16LE(crc16(pdu), pdu.length);
  return out;
}

export function crcOk(frame: Uint8Array): boolean {
  if (frame.length < 4) return false;
  return crc16(frame, 0, frame.length - 2) === (frame[frame.length - 2]! | (frame[frame.length - 1]! << 8));
}

/** RTU read request (FC 1–4): unit, fc, start, count. */
export function readRequest(unit: number, fc: number, address: number, count: number): Buffer {
  const b = Buffer.alloc(6);
  b[0] = unit;
  b[1] = fc;
  b.writeUInt16BE(address, 2);
  b.writeUInt16BE(count, 4);
  return withCrc(b);
}

/** Bytes of a complete normal reply to a read request (FC 3/4: 5 + 2·count; FC 1/2: 5 + ⌈count/8⌉). */
export function expectedReplyLength(fc: number, count: number): number {
  if (fc === 3 || fc === 4) return 5 + 2 * count;
  if (fc === 1 || fc === 2) return 5 + Math.ceil(count / 8);
  if (fc === 5 || fc === 6 || fc === 15 || fc === 16) return 8;
  return 0;
}

export const EXCEPTION_NAMES: Record<number, string> = {
  1: 'illegal function',
  2: 'illegal data address',
  3: 'illegal data value',
  4: 'server device failure',
  5: 'acknowledge',
  6: 'server device busy',
  8: 'memory parity error',
  10: 'gateway path unavailable',
  11: 'gateway target device failed to respond',
};

export type FrameScan =
  | { kind: 'frame'; start: number; length: number }
  /** `suspect`: a complete frame for this unit and function whose CRC fails; it is the
   * answer (a CRC error) only if nothing else arrives — RTU frames end with silence. */
  | { kind: 'need-more'; suspect?: { start: number; length: number } }
  | { kind: 'garbage'; drop: number };

/**
 * Find the reply to (unit, fc) in a receive buffer that may start with noise or a
 * late reply to an earlier request. A candidate is any offset whose function code is
 * the expected one (or its exception form) and whose CRC checks over the expected
 * length; a CRC-valid frame from another unit id is also returned, so the caller can
 * report "wrong unit id" instead of waiting for a timeout. A complete frame with the
 * right unit and function but a bad CRC is only a suspect: more bytes may still be on
 * their way (the valid reply after a corrupt leftover), so the caller decides once the
 * line has gone quiet.
 */
export function scanReply(buf: Uint8Array, unit: number, fc: number, replyLength: number): FrameScan {
  let firstPlausible = -1;
  for (let i = 0; i + 2 <= buf.length; i++) {
    const f = buf[i + 1]!;
    const isExc = f === (fc | 0x80);
    if (f !== fc && !isExc) continue;
    const len = isExc ? 5 : replyLength;
    if (i + len > buf.length) {
      if (firstPlausible < 0 && (buf[i] === unit || unit === 0)) firstPlausible = i;
      continue;
    }
    const frame = buf.subarray(i, i + len);
    if (crcOk(frame)) return { kind: 'frame', start: i, length: len };
    if (buf[i] === unit && firstPlausible < 0) firstPlausible = i;
  }
  if (firstPlausible >= 0) {
    const f = buf[firstPlausible + 1]!;
    const len = f & 0x80 ? 5 : replyLength;
    if (firstPlausible + len <= buf.length) return { kind: 'need-more', suspect: { start: firstPlausible, length: len } };
    return firstPlausible > 0 ? { kind: 'garbage', drop: firstPlausible } : { kind: 'need-more' };
  }
  // Keep the last byte: it may be the unit id of a frame still arriving.
  return buf.length > 1 ? { kind: 'garbage', drop: buf.length - 1 } : { kind: 'need-more' };
}

// ---- register data types ----------------------------------------------------------

export type DataType = 'u16' | 's16' | 'u32' | 's32' | 'float32' | 'u64' | 's64' | 'float64' | 'bcd16' | 'bcd32';
export type Order = 'big' | 'little';

export const DATA_TYPE_WORDS: Record<DataType, number> = { u16: 1, s16: 1, bcd16: 1, u32: 2, s32: 2, float32: 2, bcd32: 2, u64: 4, s64: 4, float64: 4 };

/**
 * Put the registers of one value in big-endian order: `wordOrder: little` means the
 * low word comes first (e.g. "CDAB" floats); `byteOrder: little` swaps the two bytes
 * inside each register ("BADC").
 */
function normalise(regs: Uint8Array, wordOrder: Order, byteOrder: Order): Buffer {
  const words = regs.length / 2;
  const out = Buffer.alloc(regs.length);
  for (let w = 0; w < words; w++) {
    const src = wordOrder === 'big' ? w : words - 1 - w;
    const hi = regs[src * 2]!;
    const lo = regs[src * 2 + 1]!;
    out[w * 2] = byteOrder === 'big' ? hi : lo;
    out[w * 2 + 1] = byteOrder === 'big' ? lo : hi;
  }
  return out;
}

function bcdDigits(b: Buffer): number | undefined {
  let v = 0;
  for (const byte of b) {
    const hi = byte >> 4;
    const lo = byte & 0x0f;
    if (hi > 9 || lo > 9) return undefined;
    v = v * 100 + hi * 10 + lo;
  }
  return v;
}

/** Decode a value from its raw register bytes (2 bytes per register, as on the wire). Returns undefined for NaN/invalid BCD. */
export function decodeValue(regs: Uint8Array, type: DataType, wordOrder: Order = 'big', byteOrder: Order = 'big'): number | undefined {
  const need = DATA_TYPE_WORDS[type] * 2;
  if (regs.length !== need) throw new RangeError(`${type} needs ${need} bytes, got ${regs.length}`);
  const b = normalise(regs, wordOrder, byteOrder);
  let v: number;
  switch (type) {
    case 'u16':
      v = b.readUInt16BE(0);
      break;
    case 's16':
      v = b.readInt16BE(0);
      break;
    case 'u32':
      v = b.readUInt32BE(0);
      break;
    case 's32':
      v = b.readInt32BE(0);
      break;
    case 'float32':
      v = b.readFloatBE(0);
      break;
    case 'float64':
      v = b.readDoubleBE(0);
      break;
    case 'u64':
      v = Number(b.readBigUInt64BE(0));
      break;
    case 's64':
      v = Number(b.readBigInt64BE(0));
      break;
    case 'bcd16':
    case 'bcd32': {
      const d = bcdDigits(b);
      if (d === undefined) return undefined;
      v = d;
      break;
    }
  }
  return Number.isFinite(v) ? v : undefined;
}

/** The inverse of decodeValue (used by the simulator twin). */
export function encodeValue(value: number, type: DataType, wordOrder: Order = 'big', byteOrder: Order = 'big'): Buffer {
  const b = Buffer.alloc(DATA_TYPE_WORDS[type] * 2);
  const int = Math.round(value);
  switch (type) {
    case 'u16':
      b.writeUInt16BE(int & 0xffff, 0);
      break;
    case 's16':
      b.writeInt16BE(Math.max(-32768, Math.min(32767, int)), 0);
      break;
    case 'u32':
      b.writeUInt32BE(int >>> 0, 0);
      break;
    case 's32':
      b.writeInt32BE(int | 0, 0);
      break;
    case 'float32':
      b.writeFloatBE(value, 0);
      break;
    case 'float64':
      b.writeDoubleBE(value, 0);
      break;
    case 'u64':
      b.writeBigUInt64BE(BigInt(Math.max(0, int)), 0);
      break;
    case 's64':
      b.writeBigInt64BE(BigInt(int), 0);
      break;
    case 'bcd16':
    case 'bcd32': {
      let n = Math.abs(int);
      for (let i = b.length - 1; i >= 0; i--) {
        b[i] = (n % 10) | ((Math.floor(n / 10) % 10) << 4);
        n = Math.floor(n / 100);
      }
      break;
    }
  }
  // normalise() is its own inverse for these permutations.
  return normalise(b, wordOrder, byteOrder);
}

/** Modbus TCP (MBAP) framing: transaction id, protocol 0, length, unit + PDU. */
export function mbapWrap(transactionId: number, unit: number, pdu: Uint8Array): Buffer {
  const out = Buffer.alloc(7 + pdu.length);
  out.writeUInt16BE(transactionId & 0xffff, 0);
  out.writeUInt16BE(0, 2);
  out.writeUInt16BE(pdu.length + 1, 4);
  out[6] = unit;
  out.set(pdu, 7);
  return out;
}

/** Length of the first complete MBAP frame in buf, 0 if incomplete, -1 if the header is impossible. */
export function mbapFrameLength(buf: Uint8Array): number {
  if (buf.length < 7) return 0;
  const proto = (buf[2]! << 8) | buf[3]!;
  const len = (buf[4]! << 8) | buf[5]!;
  if (proto !== 0 || len < 2 || len > 254) return -1;
  return buf.length >= 6 + len ? 6 + len : 0;
}

export function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength)
    .toString('hex')
    .replace(/(..)(?!$)/g, '$1 ')
    .toUpperCase();
}
