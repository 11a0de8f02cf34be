// The offline path end to end: scripts/pack.sh builds a release tarball of this
// checkout, scripts/install.sh installs it into a throwaway root, and the real gateway
// from the pack starts under the (fake) service manager and reports READY through its
// own sd_notify code. Only the host arch can be exercised here (see docs/deploy.md).
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tempDir } from '../helpers/gateway.js';

const REPO = resolve('.');
const haveTools = ['systemd-sysusers', 'systemd-tmpfiles', 'systemd-notify', 'tar', 'gzip'].every((b) => spawnSync('sh', ['-c', `command -v ${b}`]).status === 0) && existsSync('/usr/bin/python3');

t.test('pack.sh → install.sh --from → the packed gateway reports READY', { skip: haveTools ? false : 'needs systemd tools and /usr/bin/python3', timeout: 290_000 }, async (t) => {
  const dir = tempDir('ee-pack-');
  const out = join(dir, 'out');
  const p = spawnSync('bash', ['scripts/pack.sh', '--out', out, '--no-typecheck', '--no-models'], { encoding: 'utf8', env: { ...process.env, PACK_GZIP_LEVEL: '1' }, timeout: 240_000 });
  t.equal(p.status, 0, `${p.stdout}${p.stderr}`);
  const tarball = p.stdout.trim().split('\n').pop()!;
  t.match(tarball, new RegExp(`estate-edge-\\d+\\.\\d+\\.\\d+-[0-9a-f]+-linux-${process.arch}\\.tar\\.gz$`));
  t.ok(existsSync(`${tarball}.sha256`), 'checksum beside the tarball');
  t.ok(existsSync(join(out, 'install.sh')), 'installer beside the tarball');

  const list = spawnSync('tar', ['-tzf', tarball], { encoding: 'utf8', maxBuffer: 64 << 20 }).stdout.split('\n');
  const has = (re: RegExp) => list.some((l) => re.test(l));
  t.ok(has(/^estate-edge-[^/]+\/dist\/edge\/main\.js$/), 'compiled app');
  t.ok(has(/^estate-edge-[^/]+\/RELEASE\.json$/), 'release metadata');
  t.ok(has(/\/node_modules\/better-sqlite3\/build\/Release\/better_sqlite3\.node$/), 'native addon');
  t.ok(has(/\/systemd\/estate-edge\.service$/) && has(/\/scripts\/install\.sh$/), 'units and installer');
  t.ok(has(/\/dist\/edge\/console\/web\/.+\.(html|js|css)$/), 'console web assets');
  t.ok(has(/\/dist\/drivers\/profiles\/.+\.yaml$/), 'meter profiles');
  t.ok(has(/\/dist\/bundle\/edge\/console-web\/index\.html$/) && has(/\/dist\/bundle\/edge\/console-web\/app\.js$/), 'the console page built with the bundle');
  t.ok(has(/\/dist\/edge\/config\/validator\.generated\.cjs$/), 'the generated config validator');
  t.notOk(has(/^estate-edge-[^/]+\/build\//), 'no build/ of the checkout (the gateway has no addon of its own)');
  t.notOk(has(/\/dist\/edge\/native\/.+\.c$/), 'no C sources beside the compiled code');
  t.notOk(has(/\/dist\/test\//), 'no tests');
  t.notOk(has(/\/node_modules\/(typescript|tap|tsx|@tensorflow)\//), 'no dev dependencies');
  // Build-only (the recognizer's weights and ONNX writer, models/install.ts) and unused
  // packages stay out of the release, and nothing the box runs imports them.
  for (const name of ['@vladmandic/face-api', 'protobufjs', '@protobufjs/codegen', '@fastify/static']) {
    t.notOk(has(new RegExp(`/node_modules/${name.replace('/', '\\/')}/`)), `${name} not in the release tree`);
  }
  const bundled = spawnSync('tar', ['-xzOf', tarball, '--wildcards', '*/dist/bundle/edge/*.js'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  t.equal(bundled.status, 0, bundled.stderr);
  t.notMatch(bundled.stdout, /["'](protobufjs|@vladmandic\/face-api|@fastify\/static)(\/[^"']*)?["']/, 'the production bundle imports no build-only package');
  const bytes = statSync(tarball).size;
  const files = list.filter((l) => l && !l.endsWith('/')).length;
  const modules = new Set(list.map((l) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(l)?.[1]).filter(Boolean)).size;
  t.comment(`pack size: ${(bytes / 1048576).toFixed(1)} MiB (gzip -1, no models), ${files} files, ${modules} top-level packages in node_modules`);
  t.notOk(has(/onnxruntime-node\/bin\/napi-v\d+\/(darwin|win32)\//), 'no other OS binaries');
  t.notOk(has(new RegExp(`onnxruntime-node/bin/napi-v\\d+/linux/(?!${process.arch}/)[^/]+`)), 'no other arch binaries');

  // Install it (fake systemctl, see install.test.ts) with a config that keeps the
  // gateway's listeners off fixed ports.
  const root = join(dir, 'root');
  const state = join(dir, 'state');
  const bin = join(dir, 'bin');
  mkdirSync(join(root, 'etc', 'estate-edge'), { recursive: true });
  mkdirSync(bin);
  writeFileSync(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(root, 'etc', 'group'), 'root:x:0:\ndialout:x:20:\nvideo:x:44:\n');
  writeFileSync(join(root, 'etc', 'estate-edge', 'config.yaml'), `site: { id: pack-test }\ngateway: { id: gw, dataDir: ${join(root, 'var', 'lib', 'estate-edge')} }\nlog: { level: warn }\nhttp: { port: 0 }\nconsole: { port: 0, host: 127.0.0.1 }\nuplink: { enabled: false }\n`);
  cpSync(join(REPO, 'test', 'deploy', 'fake-systemctl.sh'), join(bin, 'systemctl'));
  writeFileSync(join(bin, 'udevadm'), '#!/bin/sh\nexit 0\n');
  chmodSync(join(bin, 'systemctl'), 0o755);
  chmodSync(join(bin, 'udevadm'), 0o755);
  const env = { ...process.env, PATH: `${bin}:/usr/sbin:/usr/bin:/sbin:/bin`, FAKE_SYSTEMD_ROOT: root, FAKE_SYSTEMD_STATE: state, FAKE_NOTIFY_LISTENER: join(REPO, 'scripts', 'lib', 'notify-listener.py') };
  t.teardown(() => void spawnSync(join(bin, 'systemctl'), ['shutdown-fake'], { env }));
  const r = spawnSync('bash', [join(REPO, 'scripts', 'install.sh'), '--root', root, '--from', tarball, '--timeout', '90', '--settle', '2'], { env, encoding: 'utf8', timeout: 200_000 });
  const log = existsSync(join(state, 'service.log')) ? readFileSync(join(state, 'service.log'), 'utf8').slice(-2000) : '';
  t.equal(r.status, 0, `${r.stdout}${r.stderr}\nservice log:\n${log}`);
  t.match(r.stdout, /is running \(READY\)/);
  t.match(r.stdout, /console: {2}http:\/\//, 'tells how to reach the console');
  t.match(readlinkSync(join(root, 'opt', 'estate-edge', 'current')), /^releases\/\d+\.\d+\.\d+-[0-9a-f]+$/);
  const notify = readFileSync(join(state, 'notify.log'), 'utf8');
  t.match(notify, /"READY": "1"/, 'READY came from the packed gateway');
  t.match(notify, /"STATUS": "running/);
  t.ok(existsSync(join(root, 'var', 'lib', 'estate-edge', 'outbox.db')), 'its data went to the state directory');
  t.ok(existsSync(join(root, 'opt', 'estate-edge', 'current', 'scripts', 'upgrade-boot-check.sh')), 'the release carries the upgrade boot check (the unit runs it before every start)');
  const service = readFileSync(join(state, 'service.log'), 'utf8');
  t.notMatch(service, /module failed to start/, 'every module of the pack starts (assets and profiles found)');
});
