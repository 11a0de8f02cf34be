// What a fleet signing key signs: the release's version, the SHA-256 of its tarball and
// its size, in one fixed text. The box checks the signature the moment gateway.upgrade
// arrives (before a byte is downloaded), then checks that the tarball it receives has
// exactly that digest and size: the tarball is covered through its digest, and the
// version cannot be changed to slip past the downgrade check.
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { createReadStream } from 'node:fs';

export interface SignedFields {
  version: string;
  sha256: string;
  size: number;
}

export function signedText(f: SignedFields): Buffer {
  return Buffer.from(`estate-edge-release v1\nversion ${f.version}\nsha256 ${f.sha256.toLowerCase()}\nsize ${f.size}\n`, 'utf8');
}

export function signRelease(f: SignedFields, privateKeyPem: string): string {
  return sign(null, signedText(f), createPrivateKey(privateKeyPem)).toString('base64');
}

/** The Ed25519 public key of a PEM (SPKI) text; throws on anything else. */
export function publicKeyOf(pem: string): KeyObject {
  const key = createPublicKey(pem);
  if (key.asymmetricKeyType !== 'ed25519') throw new Error(`not an Ed25519 public key (${key.asymmetricKeyType})`);
  return key;
}

export function signatureValid(f: SignedFields, signatureB64: string, key: KeyObject): boolean {
  const sig = Buffer.from(signatureB64, 'base64');
  if (sig.length !== 64) return false;
  try {
    return verify(null, signedText(f), key, sig);
  } catch {
    return false;
  }
}

export function generateSigningKey(): { publicKeyPem: string; privateKeyPem: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  return { publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(), privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString() };
}

/** SHA-256 (hex) and size of a file, streamed (a release is tens of MB; the box has little RAM). */
export async function fileDigest(path: string): Promise<{ sha256: string; size: number }> {
  const h = createHash('sha256');
  let size = 0;
  for await (const chunk of createReadStream(path)) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { sha256: h.digest('hex'), size };
}
