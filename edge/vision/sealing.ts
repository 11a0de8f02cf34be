// The sealing of biometric data at rest: one random AES-256 key in its own 0600 file (the
// faces database alone reveals nothing), AES-256-GCM per value with associated data that
// binds a sealed value to its owner (person id and recognizer), so a row copied to another
// person or read as another model's template fails to open.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

const KEY_BYTES = 32;
const IV_BYTES = 12;

export class KeyFileError extends Error {}

/**
 * Load the template key, creating it (random, mode 0600, directory 0700) when absent.
 * A key readable by others is tightened to 0600 and reported through `onWarning`.
 */
export function loadOrCreateKey(path: string, onWarning: (msg: string) => void = () => {}): Buffer {
  if (!existsSync(path)) {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    const key = randomBytes(KEY_BYTES);
    // 'wx': never overwrite a key another process created meanwhile.
    try {
      const fd = openSync(path, 'wx', 0o600);
      try {
        writeSync(fd, key);
      } finally {
        closeSync(fd);
      }
      return key;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new KeyFileError(`cannot create template key ${path}: ${(err as Error).message}`);
    }
  }
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077) {
    chmodSync(path, 0o600);
    onWarning(`template key ${path} had mode ${mode.toString(8)}; tightened to 600`);
  }
  const key = readFileSync(path);
  if (key.length !== KEY_BYTES) throw new KeyFileError(`template key ${path} is ${key.length} bytes, expected ${KEY_BYTES}`);
  return key;
}

export function seal(key: Buffer, plain: Buffer, aad: string): Buffer {
  const iv = randomBytes(IV_BYTES);
  const c = createCipheriv('aes-256-gcm', key, iv);
  c.setAAD(Buffer.from(aad, 'utf8'));
  const body = Buffer.concat([c.update(plain), c.final()]);
  return Buffer.concat([iv, c.getAuthTag(), body]);
}

export function open(key: Buffer, sealed: Buffer, aad: string): Buffer {
  if (sealed.length < IV_BYTES + 16) throw new Error('sealed value too short');
  const d = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV_BYTES));
  d.setAAD(Buffer.from(aad, 'utf8'));
  d.setAuthTag(sealed.subarray(IV_BYTES, IV_BYTES + 16));
  return Buffer.concat([d.update(sealed.subarray(IV_BYTES + 16)), d.final()]);
}
