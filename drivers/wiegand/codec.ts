// Wiegand frames: what the bits of one burst on D0/D1 mean.
//
//   26 bits (HID H10301): P(even over bits 1–12) · facility 8 bits · card 16 bits · P(odd over bits 13–24)
//   34 bits:              P(even over bits 1–16) · facility 16 bits · card 16 bits · P(odd over bits 17–32)
//   4 bits:  one keypad key, 0–9, * = 10, # = 11 (most keypads in "4-bit burst" mode)
//   8 bits:  one keypad key, high nibble the bitwise complement of the low nibble
//            ("8-bit burst" mode: 1 = 1110 0001)
// Bits are sent most significant first; D0 carries a 0, D1 a 1.
//
// Card numbers have one canonical text form everywhere (person.upsert, the access log,
// the card.unknown event): "<bits>:<facility>:<card>" in decimal without leading zeros,
// e.g. "26:123:4567" or "34:1234:56789". The card number printed on many 34-bit cards
// is the 32-bit value as one decimal (0012345678): facility = ⌊n / 65536⌋, card = n mod 65536.

export type Bit = 0 | 1;
export type Key = '0' | '1' | '2' | '3' | '4' | '5' | '6' | '7' | '8' | '9' | '*' | '#';

/** Why a burst was rejected. `noise`: fewer than 4 bits (a glitch, a cable picking up a relay). */
export type RejectCode = 'parity' | 'bad_length' | 'noise' | 'bad_key' | 'too_long';

export type WiegandFrame = { kind: 'card'; format: 26 | 34; facility: number; number: number; card: string } | { kind: 'key'; key: Key; bits: 4 | 8 } | { kind: 'rejected'; code: RejectCode; bits: number; message: string };

/** Longest burst kept; anything longer is noise or an unsupported format. */
export const MAX_BITS = 64;

const KEYS: readonly Key[] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9', '*', '#'];

function value(bits: readonly Bit[], from: number, to: number): number {
  let v = 0;
  for (let i = from; i < to; i++) v = v * 2 + bits[i]!;
  return v;
}

function ones(bits: readonly Bit[], from: number, to: number): number {
  let n = 0;
  for (let i = from; i < to; i++) n += bits[i]!;
  return n;
}

export function cardText(format: 26 | 34, facility: number, number: number): string {
  return `${format}:${facility}:${number}`;
}

/** Decode one burst. Never throws: anything that is not a valid frame is `rejected`. */
export function decodeFrame(bits: readonly Bit[]): WiegandFrame {
  const n = bits.length;
  const reject = (code: RejectCode, message: string): WiegandFrame => ({ kind: 'rejected', code, bits: n, message });
  if (n > MAX_BITS) return reject('too_long', `${n} bits: longer than any supported frame`);
  if (n < 4) return reject('noise', `${n} bit${n === 1 ? '' : 's'}: a glitch on the data lines, not a frame`);
  if (n === 4) {
    const k = value(bits, 0, 4);
    return k < KEYS.length ? { kind: 'key', key: KEYS[k]!, bits: 4 } : reject('bad_key', `4-bit key code ${k} is not a key (0–9, * = 10, # = 11)`);
  }
  if (n === 8) {
    const hi = value(bits, 0, 4);
    const lo = value(bits, 4, 8);
    if ((hi ^ lo) !== 0xf) return reject('bad_key', `8-bit key 0x${value(bits, 0, 8).toString(16)}: the high nibble is not the complement of the low one`);
    return lo < KEYS.length ? { kind: 'key', key: KEYS[lo]!, bits: 8 } : reject('bad_key', `8-bit key code ${lo} is not a key`);
  }
  if (n === 26 || n === 34) {
    const half = (n - 2) / 2; // 12 or 16 data bits under each parity bit
    if ((bits[0]! + ones(bits, 1, 1 + half)) % 2 !== 0) return reject('parity', `${n}-bit frame: even parity over the first ${half} bits fails`);
    if ((ones(bits, 1 + half, n - 1) + bits[n - 1]!) % 2 !== 1) return reject('parity', `${n}-bit frame: odd parity over the last ${half} bits fails`);
    const facilityBits = n === 26 ? 8 : 16;
    const facility = value(bits, 1, 1 + facilityBits);
    const number = value(bits, 1 + facilityBits, n - 1);
    const format = n as 26 | 34;
    return { kind: 'card', format, facility, number, card: cardText(format, facility, number) };
  }
  return reject('bad_length', `${n} bits: not a supported frame (26- or 34-bit card, 4- or 8-bit key)`);
}

function toBits(v: number, width: number): Bit[] {
  const out: Bit[] = [];
  for (let i = width - 1; i >= 0; i--) out.push(Math.floor(v / 2 ** i) % 2 === 1 ? 1 : 0);
  return out;
}

/** The bits a reader sends for a card (for the simulator twin and tests). */
export function encodeCard(format: 26 | 34, facility: number, number: number): Bit[] {
  const facilityBits = format === 26 ? 8 : 16;
  if (!Number.isInteger(facility) || facility < 0 || facility >= 2 ** facilityBits) throw new RangeError(`facility ${facility} does not fit ${facilityBits} bits`);
  if (!Number.isInteger(number) || number < 0 || number > 0xffff) throw new RangeError(`card number ${number} does not fit 16 bits`);
  const data = [...toBits(facility, facilityBits), ...toBits(number, 16)];
  const half = data.length / 2;
  const even = (ones(data, 0, half) % 2) as Bit;
  const odd = (1 - (ones(data, half, data.length) % 2)) as Bit;
  return [even, ...data, odd];
}

/** The bits a keypad sends for one key. */
export function encodeKey(key: Key, bits: 4 | 8 = 4): Bit[] {
  const k = KEYS.indexOf(key);
  if (k < 0) throw new RangeError(`not a key: ${key}`);
  return bits === 4 ? toBits(k, 4) : [...toBits(~k & 0xf, 4), ...toBits(k, 4)];
}

/**
 * A card number in the canonical form, from what a person or the platform typed:
 * "26:0123:04567" → "26:123:4567". Undefined when it is not a card number of a
 * supported format or out of its range.
 */
export function canonicalCard(s: string): string | undefined {
  const m = /^\s*(26|34)\s*:\s*(\d{1,5})\s*:\s*(\d{1,5})\s*$/.exec(s);
  if (!m) return undefined;
  const format = Number(m[1]) as 26 | 34;
  const facility = Number(m[2]);
  const number = Number(m[3]);
  if (facility >= (format === 26 ? 256 : 65536) || number > 0xffff) return undefined;
  return cardText(format, facility, number);
}
