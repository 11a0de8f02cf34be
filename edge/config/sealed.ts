// Secrets sealed for one box: the platform encrypts a value with the box's X25519 public
// key (published in gateway.info as `boxPublicKey`), so a pushed configuration carries
// `{ sealed: '<base64>' }` instead of the secret, and only this box can open it — even a
// broker without TLS, or the platform's own logs, never see the value.
//
// Envelope (base64 of the bytes): version 0x01 | sender's ephemeral X25519 public key (32)
// | AES-GCM nonce (12) | tag (16) | ciphertext. Key: HKDF-SHA256 of the ECDH secret, salt =
// ephemeral key ‖ box key (binds the envelope to this box), info "estate-edge sealed v1".
// The first 45 bytes (version, ephemeral key, nonce) are the GCM additional data.
// node:crypto only: no new dependency on a 1-GB board.
import { createCipheriv, createDecipheriv, createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, hkdfSync, randomBytes, type KeyObject } from 'node:crypto';
import { chmodSync, closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const BOX_KEY_FILE = 'box-key.pem';
const VERSION = 1;
const INFO = Buffer.from('estate-edge sealed v1');
const HEADER = 1 + 32 + 12;

function rawPublic(key: KeyObject): Buffer {
  const jwk = key.export({ format: 'jwk' }) as { x?: string };
  if (!jwk.x) throw new Error('not an X25519 key');
  return Buffer.from(jwk.x, 'base64url');
}

function publicFromRaw(raw: Buffer): KeyObject {
  if (raw.length !== 32) throw new Error(`an X25519 public key is 32 bytes, this one is ${raw.length}`);
  return createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: raw.toString('base64url') }, format: 'jwk' });
}

function derive(shared: Buffer, ephemeral: Buffer, box: Buffer): Buffer {
  return Buffer.from(hkdfSync('sha256', shared, Buffer.concat([ephemeral, box]), INFO, 32));
}

/** Seal `plaintext` for the box whose public key (base64, 32 raw bytes, as in gateway.info) is given. */
export function sealFor(publicKeyB64: string, plaintext: string): string {
  const boxRaw = Buffer.from(publicKeyB64, 'base64');
  const box = publicFromRaw(boxRaw);
  const eph = generateKeyPairSync('x25519');
  const ephRaw = rawPublic(eph.publicKey);
  const key = derive(diffieHellman({ privateKey: eph.privateKey, publicKey: box }), ephRaw, boxRaw);
  const nonce = randomBytes(12);
  const header = Buffer.concat([Buffer.from([VERSION]), ephRaw, nonce]);
  const c = createCipheriv('aes-256-gcm', key, nonce);
  c.setAAD(header);
  const ct = Buffer.concat([c.update(plaintext, 'utf8'), c.final()]);
  return Buffer.concat([header, c.getAuthTag(), ct]).toString('base64');
}

/** Open an envelope with the box's private key. Throws a reason that never contains the value. */
export function openSealed(privateKey: KeyObject, envelopeB64: string): string {
  const buf = Buffer.from(envelopeB64, 'base64');
  if (buf.length < HEADER + 16) throw new Error('sealed value is too short to be an envelope');
  if (buf[0] !== VERSION) throw new Error(`sealed value has envelope version ${buf[0]}, this gateway opens version ${VERSION}`);
  const ephRaw = buf.subarray(1, 33);
  const nonce = buf.subarray(33, HEADER);
  const tag = buf.subarray(HEADER, HEADER + 16);
  const boxRaw = rawPublic(createPublicKey(privateKey));
  const key = derive(diffieHellman({ privateKey, publicKey: publicFromRaw(Buffer.from(ephRaw)) }), Buffer.from(ephRaw), boxRaw);
  const d = createDecipheriv('aes-256-gcm', key, nonce);
  d.setAAD(buf.subarray(0, HEADER));
  d.setAuthTag(tag);
  try {
    return Buffer.concat([d.update(buf.subarray(HEADER + 16)), d.final()]).toString('utf8');
  } catch {
    throw new Error('sealed value cannot be opened with this box key (sealed for another box, or damaged)');
  }
}

/** The box's private key from the data dir; undefined when none was generated yet. */
export function readBoxKey(dataDir: string): KeyObject | undefined {
  const path = join(dataDir, BOX_KEY_FILE);
  if (!existsSync(path)) return undefined;
  return createPrivateKey(readFileSync(path));
}

/** The box key, generated (0600) on first use; returns its public key as base64. */
export function ensureBoxKey(dataDir: string): { publicKey: string; created: boolean } {
  const existing = readBoxKey(dataDir);
  if (existing) return { publicKey: rawPublic(createPublicKey(existing)).toString('base64'), created: false };
  mkdirSync(dataDir, { recursive: true });
  const pair = generateKeyPairSync('x25519');
  const pem = pair.privateKey.export({ format: 'pem', type: 'pkcs8' }) as string;
  const path = join(dataDir, BOX_KEY_FILE);
  // Written atomically with mode 0600 from the start: never readable by others, even briefly.
  writeKeyFile(path, pem);
  chmodSync(path, 0o600);
  return { publicKey: rawPublic(pair.publicKey).toString('base64'), created: true };
}

function writeKeyFile(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'wx', 0o600);
  try {
    writeFileSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}
