// The release carries the production dependency tree only (scripts/pack.sh): the packages
// that only build the face recognizer (@vladmandic/face-api's weights, protobufjs to write
// the ONNX file; see models/install.ts) and @fastify/static (never used) are not in it, so
// the production bundle (scripts/bundle.ts) must not import them, and the bundler refuses
// any import of a devDependency rather than silently bundling it.
import t from 'tap';
import { build } from 'esbuild';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { bundle, noDevDependencies, packageOf } from '../../scripts/bundle.js';
import { tempDir } from '../helpers/gateway.js';

const REPO = resolve('.');
const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
const BUILD_ONLY = ['@vladmandic/face-api', 'protobufjs'];

t.test('build-only packages are devDependencies, @fastify/static is gone', async (t) => {
  for (const name of BUILD_ONLY) {
    t.notOk(name in pkg.dependencies, `${name} not a production dependency`);
    t.ok(name in pkg.devDependencies, `${name} still available to build the recognizer`);
  }
  t.notOk('@fastify/static' in pkg.dependencies || '@fastify/static' in pkg.devDependencies, '@fastify/static removed');
  const lock = JSON.parse(readFileSync(join(REPO, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; dependencies?: Record<string, string>; devDependencies?: Record<string, string> }> };
  t.same(lock.packages['']?.dependencies, pkg.dependencies, 'package-lock.json agrees with package.json (dependencies)');
  t.same(lock.packages['']?.devDependencies, pkg.devDependencies, 'package-lock.json agrees with package.json (devDependencies)');
  for (const name of BUILD_ONLY) t.equal(lock.packages[`node_modules/${name}`]?.dev, true, `${name} is dev-only in the lock (npm ci --omit=dev leaves it out)`);
  t.notOk(lock.packages['node_modules/@fastify/static'], '@fastify/static not in the lock');
});

t.test('packageOf', async (t) => {
  t.equal(packageOf('protobufjs'), 'protobufjs');
  t.equal(packageOf('protobufjs/minimal.js'), 'protobufjs');
  t.equal(packageOf('@vladmandic/face-api'), '@vladmandic/face-api');
  t.equal(packageOf('@vladmandic/face-api/dist/face-api.esm.js'), '@vladmandic/face-api');
});

t.test('the bundler refuses an import of a devDependency', async (t) => {
  for (const spec of ['protobufjs', '@vladmandic/face-api/dist/face-api.esm-nobundle.js']) {
    await t.rejects(build({ stdin: { contents: `import x from '${spec}'; console.log(x);`, resolveDir: REPO }, bundle: true, write: false, platform: 'node', format: 'esm', logLevel: 'silent', plugins: [noDevDependencies(pkg)] }), new RegExp(`${spec.replace(/[/.]/g, '\\$&')} is a devDependency`), spec);
  }
  // A production dependency still resolves (left to the bundler as before).
  const ok = await build({ stdin: { contents: `import { parse } from 'yaml'; console.log(parse);`, resolveDir: REPO }, bundle: true, write: false, platform: 'node', format: 'esm', logLevel: 'silent', external: ['yaml'], plugins: [noDevDependencies(pkg)] });
  t.equal(ok.errors.length, 0);
});

t.test('the production bundle references none of the build-only packages', async (t) => {
  const out = join(tempDir('ee-bundle-deps-'), 'edge');
  await bundle(out);
  const files = readdirSync(out).filter((f) => f.endsWith('.js'));
  t.ok(files.includes('main.js') && files.includes('worker.js'), 'main and worker entries built');
  const spec = /["'](protobufjs|@vladmandic\/face-api|@fastify\/static)(\/[^"']*)?["']/;
  for (const f of files) t.notMatch(readFileSync(join(out, f), 'utf8'), spec, `${f} imports no build-only package`);
});
