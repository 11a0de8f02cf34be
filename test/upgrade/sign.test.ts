// scripts/sign-release and the box's signature check: what is signed, what tampering is
// caught, and the script's refusals (an existing key, a file not named like a release,
// a key that is not a private key).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { publicKeyOf, signatureValid } from '../../edge/upgrade/signature.js';
import { keygen, makeRelease, REPO, signTarball, tmp } from './harness.js';

const script = join(REPO, 'scripts/sign-release');

t.test('keygen, sign, verify, tampering', async (t) => {
  const dir = tmp('ee-keys-');
  const k = keygen(dir);
  t.equal(spawnSync('stat', ['-c', '%a', k.key], { encoding: 'utf8' }).stdout.trim(), '600', 'private key is 0600');
  const again = spawnSync(script, ['keygen', '--out', dir], { encoding: 'utf8' });
  t.equal(again.status, 2, 'keygen refuses to replace a key');
  t.match(again.stderr, /exists/);
  const tarball = makeRelease(tmp(), { version: '1.2.3', commit: 'deadbee' });
  const m = signTarball(tarball, k.key);
  t.match(m, { version: '1.2.3', commit: 'deadbee', arch: process.arch }, 'manifest from the name');
  t.equal(readFileSync(`${tarball}.sig`, 'utf8').trim(), m.signature, '.sig holds the signature');
  const key = publicKeyOf(readFileSync(k.pub, 'utf8'));
  t.ok(signatureValid(m, m.signature, key), 'valid');
  t.notOk(signatureValid({ ...m, version: '9.9.9' }, m.signature, key), 'another version: invalid');
  t.notOk(signatureValid({ ...m, size: m.size - 1 }, m.signature, key), 'another size: invalid');
  t.notOk(signatureValid({ ...m, sha256: '0'.repeat(64) }, m.signature, key), 'another digest: invalid');
  t.notOk(signatureValid(m, 'AAAA', key), 'short garbage: invalid, no throw');
  t.notOk(signatureValid(m, Buffer.alloc(64).toString('base64'), key), 'zeros: invalid');
  t.throws(() => publicKeyOf(readFileSync(k.key, 'utf8').replace('PRIVATE', 'PUBLIC')), 'a mangled key is refused');

  const odd = join(tmp(), 'release.tar.gz');
  writeFileSync(odd, 'x');
  const r = spawnSync(script, ['sign', '--key', k.key, odd], { encoding: 'utf8' });
  t.equal(r.status, 2, 'a file not named like a release is refused');
  t.match(r.stderr, /not named like a release/);
  const r2 = spawnSync(script, ['sign', '--key', k.pub, tarball], { encoding: 'utf8' });
  t.equal(r2.status, 2, 'signing with the public key is refused');
  t.match(r2.stderr, /cannot sign/);
});
