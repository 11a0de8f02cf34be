// Sign a release tarball (scripts/pack.sh) with the fleet's Ed25519 key, on the build
// machine — never on a box, which holds the public key only.
//
//   scripts/sign-release keygen --out DIR          → DIR/fleet-signing.key (0600), DIR/fleet-signing.pub
//   scripts/sign-release sign --key KEY TARBALL     → TARBALL.sig (base64) and TARBALL.manifest.json
//
// The manifest has what gateway.upgrade needs: version, commit, arch, sha256, size,
// signature (docs/deploy.md, "Signed upgrades").
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parseArgs } from 'node:util';
import { fileDigest, generateSigningKey, signRelease } from '../edge/upgrade/signature.js';

function fail(msg: string): never {
  process.stderr.write(`sign-release: ${msg}\n`);
  process.exit(2);
}

/** <version>-<commit>-linux-<arch> from pack.sh's tarball name. */
export function parseTarballName(name: string): { version: string; commit: string; arch: string } | undefined {
  const m = /^estate-edge-(\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.]+)?)-([0-9A-Za-z]+)-linux-(x64|arm64)\.tar\.gz$/.exec(name);
  return m ? { version: m[1]!, commit: m[2]!, arch: m[3]! } : undefined;
}

async function main(argv: string[]): Promise<void> {
  const { positionals, values } = parseArgs({ args: argv, allowPositionals: true, options: { out: { type: 'string' }, key: { type: 'string' }, force: { type: 'boolean' } } });
  const [cmd, file] = positionals;
  if (cmd === 'keygen') {
    const dir = values.out ?? fail('keygen: --out DIR');
    mkdirSync(dir, { recursive: true });
    const priv = join(dir, 'fleet-signing.key');
    if (existsSync(priv) && !values.force) fail(`${priv} exists (a new key means reinstalling every box's public key); --force to replace it`);
    const k = generateSigningKey();
    writeFileSync(priv, k.privateKeyPem, { mode: 0o600 });
    chmodSync(priv, 0o600);
    writeFileSync(join(dir, 'fleet-signing.pub'), k.publicKeyPem, { mode: 0o644 });
    process.stdout.write(`${join(dir, 'fleet-signing.pub')}\n`);
    return;
  }
  if (cmd === 'sign') {
    if (!file) fail('sign: TARBALL');
    const keyFile = values.key ?? fail('sign: --key PRIVATE_KEY_FILE');
    const meta = parseTarballName(basename(file));
    if (!meta) fail(`${basename(file)} is not named like a release (estate-edge-<version>-<commit>-linux-<arch>.tar.gz)`);
    const { sha256, size } = await fileDigest(file);
    let signature: string;
    try {
      signature = signRelease({ version: meta.version, sha256, size }, readFileSync(keyFile, 'utf8'));
    } catch (err) {
      fail(`cannot sign with ${keyFile}: ${(err as Error).message}`);
    }
    writeFileSync(`${file}.sig`, `${signature}\n`);
    const manifest = { ...meta, sha256, size, signature, file: basename(file) };
    writeFileSync(`${file}.manifest.json`, `${JSON.stringify(manifest, null, 2)}\n`);
    process.stdout.write(`${JSON.stringify(manifest)}\n`);
    return;
  }
  fail('usage: sign-release keygen --out DIR | sign --key KEY TARBALL');
}

if (/sign-release(\.ts)?$/.test(process.argv[1] ?? '')) await main(process.argv.slice(2));
