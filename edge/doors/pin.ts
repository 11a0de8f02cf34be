// PINs (the second factor) are kept only as a salted scrypt hash (node:crypto), never in
// clear: not in the state database, not in logs, records or command results.
//
// Cost: N = 2^14, r = 8, p = 1 (16 MiB, ~50 ms on a desktop core, a few hundred ms on a
// Pi 4), run asynchronously on libuv's thread pool so door timers and meter polling do
// not stall. Honest limit: a 4–8 digit PIN has at most 10^8 values, so a stolen state
// database can still be searched offline given enough time; the slow hash makes that
// costly, and what protects a PIN at the door is the attempt limit (doors.pin).
import { randomBytes, scrypt, timingSafeEqual } from 'node:crypto';

const N = 16384;
const R = 8;
const P = 1;
const KEYLEN = 32;
const PREFIX = 'scrypt';

export const PIN_PATTERN = '^[0-9]{4,8}$';

function derive(pin: string, salt: Buffer, n: number, r: number, p: number, keylen: number): Promise<Buffer> {
  return new Promise((resolve, reject) => scrypt(pin, salt, keylen, { N: n, r, p, maxmem: 64 * 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key))));
}

/** "scrypt$N$r$p$salt$hash" (base64url). */
export async function hashPin(pin: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await derive(pin, salt, N, R, P, KEYLEN);
  return [PREFIX, N, R, P, salt.toString('base64url'), key.toString('base64url')].join('$');
}

/** Whether `pin` matches a stored hash; false for a malformed hash. Constant-time compare. */
export async function verifyPin(pin: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== PREFIX) return false;
  const [n, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  if (![n, r, p].every((x) => Number.isInteger(x) && x > 0) || n > 1 << 20) return false;
  const salt = Buffer.from(parts[4]!, 'base64url');
  const want = Buffer.from(parts[5]!, 'base64url');
  if (want.length < 16 || want.length > 64) return false;
  const got = await derive(pin, salt, n, r, p, want.length);
  return timingSafeEqual(got, want);
}
