// HTTPS material for the console: the configured certificate, or a self-signed one
// generated on first start and kept in the data directory (so the fingerprint a
// technician accepted once stays the same across restarts).
import { existsSync, mkdirSync, readFileSync, writeFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import { hostname, networkInterfaces } from 'node:os';
import { X509Certificate } from 'node:crypto';
import { requireCjs } from '../cjs.js';

export interface TlsMaterial {
  cert: string;
  key: string;
  fingerprint256: string;
  selfSigned: boolean;
}

export async function loadTls(opts: { cert?: string; key?: string; dataDir: string; now: number }): Promise<TlsMaterial> {
  if (opts.cert !== undefined && opts.key !== undefined) {
    const cert = readFileSync(opts.cert, 'utf8');
    const key = readFileSync(opts.key, 'utf8');
    return { cert, key, fingerprint256: new X509Certificate(cert).fingerprint256, selfSigned: false };
  }
  const dir = join(opts.dataDir, 'console-tls');
  const certPath = join(dir, 'cert.pem');
  const keyPath = join(dir, 'key.pem');
  if (existsSync(certPath) && existsSync(keyPath)) {
    const cert = readFileSync(certPath, 'utf8');
    const x = new X509Certificate(cert);
    // Regenerate a self-signed certificate that has expired rather than serve a dead one.
    if (Date.parse(x.validTo) > opts.now) return { cert, key: readFileSync(keyPath, 'utf8'), fingerprint256: x.fingerprint256, selfSigned: true };
  }
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const altNames: Array<{ type: 2; value: string } | { type: 7; ip: string }> = [
    { type: 2, value: 'localhost' },
    { type: 2, value: hostname() },
  ];
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) if (!a.internal || a.address === '127.0.0.1') altNames.push({ type: 7, ip: a.address.split('%')[0]! });
  const notBefore = new Date(opts.now - 86_400_000);
  const notAfter = new Date(opts.now + 10 * 365 * 86_400_000);
  // Loaded only when a certificate must be made: its ASN.1/X.509 libraries are ~300 KB of
  // source that a box on plain HTTP or with its own certificate never needs.
  const { generate } = requireCjs('selfsigned') as typeof import('selfsigned');
  const pems = await generate([{ name: 'commonName', value: `estate-edge ${hostname()}` }], {
    keyType: 'ec',
    curve: 'P-256',
    algorithm: 'sha256',
    notBeforeDate: notBefore,
    notAfterDate: notAfter,
    extensions: [
      { name: 'basicConstraints', cA: false },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      { name: 'subjectAltName', altNames },
    ],
  } as Parameters<typeof generate>[1]);
  writeFileSync(`${keyPath}.tmp`, pems.private, { mode: 0o600 });
  renameSync(`${keyPath}.tmp`, keyPath);
  writeFileSync(`${certPath}.tmp`, pems.cert, { mode: 0o644 });
  renameSync(`${certPath}.tmp`, certPath);
  return { cert: pems.cert, key: pems.private, fingerprint256: new X509Certificate(pems.cert).fingerprint256, selfSigned: true };
}
