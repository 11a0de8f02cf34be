// scripts/install.sh in a throwaway root (--root), with systemctl and udevadm replaced on
// PATH by test/deploy/fake-systemctl.sh, which runs the installed unit's ExecStart= under
// a real notify socket. Real: the script, tar, systemd-sysusers/-tmpfiles (--root), the
// unit file it installs, systemd-notify. Releases are small stand-in apps whose
// behaviour at start is chosen per test (ready, crash, never ready); pack.test.ts installs
// the real gateway.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { appendFileSync, chmodSync, cpSync, existsSync, mkdirSync, readFileSync, readlinkSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tempDir } from '../helpers/gateway.js';
import { generateSigningKey } from '../../edge/upgrade/signature.js';

const REPO = resolve('.');
const haveTools = ['systemd-sysusers', 'systemd-tmpfiles', 'systemd-notify'].every((b) => spawnSync('sh', ['-c', `command -v ${b}`]).status === 0) && existsSync('/usr/bin/python3');

type Behaviour = 'ready' | 'crash' | 'silent';

/** A release tarball shaped like pack.sh's, whose main.js behaves as asked. */
function fakeRelease(dir: string, release: string, behaviour: Behaviour): string {
  const top = join(dir, `src-${release}`, `estate-edge-${release}`);
  mkdirSync(join(top, 'dist', 'bundle', 'edge'), { recursive: true });
  cpSync(join(REPO, 'systemd'), join(top, 'systemd'), { recursive: true });
  // The release's own runtime, as pack.sh ships it (here: the Node running the tests).
  mkdirSync(join(top, 'node', 'bin'), { recursive: true });
  symlinkSync(process.execPath, join(top, 'node', 'bin', 'node'));
  writeFileSync(join(top, 'package.json'), JSON.stringify({ name: 'estate-edge', version: release.split('-')[0], type: 'module' }));
  writeFileSync(join(top, 'RELEASE.json'), JSON.stringify({ name: 'estate-edge', release, version: release.split('-')[0], commit: 'test', arch: process.arch, platform: 'linux' }));
  writeFileSync(
    join(top, 'dist', 'bundle', 'edge', 'main.js'),
    `import { spawnSync } from 'node:child_process';
const behaviour = ${JSON.stringify(behaviour)};
if (process.argv[2] === 'check-config') process.exit(0);
if (behaviour === 'crash') { console.error('stand-in crash'); process.exit(1); }
if (behaviour === 'ready') spawnSync('systemd-notify', ['--pid=' + process.pid, 'READY=1', 'STATUS=${release}']);
setInterval(() => {}, 1000);
process.on('SIGTERM', () => process.exit(0));
`,
  );
  const tarball = join(dir, `estate-edge-${release}-linux-${process.arch}.tar.gz`);
  const r = spawnSync('tar', ['-C', join(dir, `src-${release}`), '-czf', tarball, `estate-edge-${release}`]);
  if (r.status !== 0) throw new Error(`tar failed: ${r.stderr}`);
  return tarball;
}

interface Env {
  root: string;
  state: string;
  run(args: string[], extraEnv?: NodeJS.ProcessEnv): { status: number | null; out: string };
  startedRelease(): string;
}

function setup(t: { teardown(fn: () => void): void }): Env {
  const dir = tempDir('ee-install-');
  const root = join(dir, 'root');
  const state = join(dir, 'systemd-state');
  const bin = join(dir, 'bin');
  mkdirSync(join(root, 'etc'), { recursive: true });
  mkdirSync(bin);
  // A minimal Debian-like account database in the root (dialout/video exist on Debian).
  writeFileSync(join(root, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(root, 'etc', 'group'), 'root:x:0:\ndialout:x:20:\nvideo:x:44:\n');
  cpSync(join(REPO, 'test', 'deploy', 'fake-systemctl.sh'), join(bin, 'systemctl'));
  chmodSync(join(bin, 'systemctl'), 0o755);
  writeFileSync(join(bin, 'udevadm'), `#!/bin/sh\necho "udevadm $*" >>"${state}/calls"\n`);
  chmodSync(join(bin, 'udevadm'), 0o755);
  const env = {
    ...process.env,
    PATH: `${bin}:/usr/sbin:/usr/bin:/sbin:/bin`,
    FAKE_SYSTEMD_ROOT: root,
    FAKE_SYSTEMD_STATE: state,
    FAKE_NOTIFY_LISTENER: join(REPO, 'scripts', 'lib', 'notify-listener.py'),
  };
  t.teardown(() => void spawnSync(join(bin, 'systemctl'), ['shutdown-fake'], { env }));
  return {
    root,
    state,
    run(args, extraEnv = {}) {
      const r = spawnSync('bash', [join(REPO, 'scripts', 'install.sh'), '--root', root, '--settle', '1', ...args], { env: { ...env, ...extraEnv }, encoding: 'utf8', timeout: 120_000 });
      return { status: r.status, out: `${r.stdout}${r.stderr}` };
    },
    startedRelease: () => readFileSync(join(state, 'started-release'), 'utf8').trim(),
  };
}

t.test('install, upgrade keeping config and data, re-run, and roll back a version that never gets ready', { skip: haveTools ? false : 'needs systemd-sysusers, systemd-tmpfiles, systemd-notify (Debian package systemd) and /usr/bin/python3' }, async (t) => {
  const e = setup(t);
  const dir = tempDir('ee-releases-');
  const app = join(e.root, 'opt', 'estate-edge');
  const current = () => readlinkSync(join(app, 'current'));

  // 1. First install into an empty root, with the fleet's public signing key.
  const fleet = generateSigningKey();
  writeFileSync(join(dir, 'fleet.pub'), fleet.publicKeyPem);
  writeFileSync(join(dir, 'fleet.key'), fleet.privateKeyPem);
  const tarA = fakeRelease(dir, '1.0.0-aaaa', 'ready');
  const refused = e.run(['--from', tarA, '--fleet-key', join(dir, 'fleet.key'), '--no-start']);
  t.not(refused.status, 0, 'a private key is refused');
  t.match(refused.out, /is a private key/);
  t.notOk(existsSync(join(e.root, 'etc', 'estate-edge', 'fleet-signing.pub')), 'and not installed');
  let r = e.run(['--from', tarA, '--site', 'estate-7', '--gateway', 'gw-1', '--timeout', '30', '--fleet-key', join(dir, 'fleet.pub')]);
  t.equal(r.status, 0, r.out);
  t.equal(readFileSync(join(e.root, 'etc', 'estate-edge', 'fleet-signing.pub'), 'utf8'), fleet.publicKeyPem, 'the fleet public key is installed');
  t.equal(current(), 'releases/1.0.0-aaaa');
  t.equal(e.startedRelease(), 'releases/1.0.0-aaaa', 'the service was started from the new release');
  t.match(r.out, /1\.0\.0-aaaa is running \(READY\)/);
  const passwd = readFileSync(join(e.root, 'etc', 'passwd'), 'utf8');
  t.match(passwd, /^estate-edge:x:\d+:\d+:estate-edge gateway:\/var\/lib\/estate-edge:\/usr\/sbin\/nologin$/m, 'system user created');
  t.match(readFileSync(join(e.root, 'etc', 'group'), 'utf8'), /^gpio:x:\d+:$/m, 'gpio group created on plain Debian');
  t.ok(existsSync(join(e.root, 'etc', 'systemd', 'system', 'estate-edge.service')));
  t.equal(readFileSync(join(e.root, 'etc', 'systemd', 'system', 'estate-edge.service'), 'utf8'), readFileSync('systemd/estate-edge.service', 'utf8'));
  t.notOk(existsSync(join(e.root, 'etc', 'systemd', 'system', 'estate-edge.service.d', '10-restart-backoff.conf')), 'no RestartSteps drop-in on systemd 252');
  t.ok(existsSync(join(e.root, 'etc', 'udev', 'rules.d', '99-estate-edge-rs485.rules')));
  t.ok(existsSync(join(e.root, 'etc', 'systemd', 'journald.conf.d', '50-estate-edge.conf')));
  t.match(readFileSync(join(e.root, 'usr', 'local', 'bin', 'estate-edge'), 'utf8'), /exec \/opt\/estate-edge\/current\/node\/bin\/node \/opt\/estate-edge\/current\/dist\/bundle\/edge\/main\.js "\$@"/);
  const config = readFileSync(join(e.root, 'etc', 'estate-edge', 'config.yaml'), 'utf8');
  t.match(config, /site:\n  id: estate-7\n/);
  t.match(config, /gateway:\n  id: gw-1\n  dataDir: .*\/root\/var\/lib\/estate-edge\n/);
  t.match(config, /enabled: false/, 'uplink off until a broker is given');
  t.notMatch(config, /password: [^{]/, 'no password in the starter config');
  t.equal(statSync(join(e.root, 'etc', 'estate-edge', 'secrets.env')).mode & 0o777, 0o600);
  t.equal(statSync(join(e.root, 'var', 'lib', 'estate-edge')).mode & 0o777, 0o750);
  const calls = () => readFileSync(join(e.state, 'calls'), 'utf8');
  t.match(calls(), /daemon-reload/);
  t.match(calls(), /enable estate-edge\.service/);
  t.match(calls(), /restart estate-edge\.service/);
  t.match(calls(), /udevadm control --reload/);

  // 2. Upgrade: config and data are kept.
  appendFileSync(join(e.root, 'etc', 'estate-edge', 'config.yaml'), '# edited by the technician\n');
  writeFileSync(join(e.root, 'var', 'lib', 'estate-edge', 'outbox.db'), 'records');
  r = e.run(['--from', fakeRelease(dir, '1.1.0-bbbb', 'ready'), '--timeout', '30']);
  t.equal(r.status, 0, r.out);
  t.equal(current(), 'releases/1.1.0-bbbb');
  t.equal(readlinkSync(join(app, 'previous')), 'releases/1.0.0-aaaa', 'previous release kept');
  t.ok(existsSync(join(app, 'releases', '1.0.0-aaaa', 'dist', 'bundle', 'edge', 'main.js')));
  t.match(readFileSync(join(e.root, 'etc', 'estate-edge', 'config.yaml'), 'utf8'), /# edited by the technician\n$/, 'config untouched');
  t.equal(readFileSync(join(e.root, 'var', 'lib', 'estate-edge', 'outbox.db'), 'utf8'), 'records', 'data untouched');
  t.equal(e.startedRelease(), 'releases/1.1.0-bbbb');

  // 3. Running it again with the same tarball is harmless.
  const tarB = join(dir, `estate-edge-1.1.0-bbbb-linux-${process.arch}.tar.gz`);
  r = e.run(['--from', tarB, '--timeout', '30']);
  t.equal(r.status, 0, r.out);
  t.match(r.out, /release 1\.1\.0-bbbb already unpacked/);
  t.equal(current(), 'releases/1.1.0-bbbb');
  t.equal(readlinkSync(join(app, 'previous')), 'releases/1.0.0-aaaa');

  // 4. A version that crashes at start: rolled back to the running one.
  r = e.run(['--from', fakeRelease(dir, '2.0.0-cccc', 'crash'), '--timeout', '3']);
  t.equal(r.status, 1, r.out);
  t.match(r.out, /no READY within 3s/);
  t.match(r.out, /rolling back to 1\.1\.0-bbbb/);
  t.match(r.out, /2\.0\.0-cccc did not become ready; 1\.1\.0-bbbb is running again/);
  t.equal(current(), 'releases/1.1.0-bbbb');
  t.equal(e.startedRelease(), 'releases/1.1.0-bbbb', 'the previous release was restarted');
  t.match(spawnSync(join(e.root, '..', 'bin', 'systemctl'), ['show', '-p', 'ActiveState', 'estate-edge.service'], { env: { ...process.env, FAKE_SYSTEMD_ROOT: e.root, FAKE_SYSTEMD_STATE: e.state, FAKE_NOTIFY_LISTENER: 'x' }, encoding: 'utf8' }).stdout, /ActiveState=active/);

  // 5. One that runs but never reports READY: same.
  r = e.run(['--from', fakeRelease(dir, '2.0.1-dddd', 'silent'), '--timeout', '3']);
  t.equal(r.status, 1, r.out);
  t.match(r.out, /rolling back to 1\.1\.0-bbbb/);
  t.equal(current(), 'releases/1.1.0-bbbb');
  t.equal(readFileSync(join(e.root, 'etc', 'estate-edge', 'config.yaml'), 'utf8').endsWith('# edited by the technician\n'), true, 'config still untouched');
});

t.test('systemd >= 254 gets the growing restart back-off drop-in; a wrong-arch or foreign tarball is refused', { skip: haveTools ? false : 'needs systemd tools' }, async (t) => {
  const e = setup(t);
  const dir = tempDir('ee-releases-');
  let r = e.run(['--from', fakeRelease(dir, '1.0.0-aaaa', 'ready'), '--no-start'], { FAKE_SYSTEMD_VERSION: '256' });
  t.equal(r.status, 0, r.out);
  t.match(readFileSync(join(e.root, 'etc', 'systemd', 'system', 'estate-edge.service.d', '10-restart-backoff.conf'), 'utf8'), /RestartSteps=5/);
  t.notOk(existsSync(join(e.state, 'pid')), '--no-start starts nothing');

  const other = process.arch === 'arm64' ? 'x64' : 'arm64';
  const tarball = fakeRelease(dir, '1.2.0-eeee', 'ready');
  const src = join(dir, 'src-1.2.0-eeee', 'estate-edge-1.2.0-eeee', 'RELEASE.json');
  writeFileSync(src, readFileSync(src, 'utf8').replace(`"arch":"${process.arch}"`, `"arch":"${other}"`));
  spawnSync('tar', ['-C', join(dir, 'src-1.2.0-eeee'), '-czf', tarball, 'estate-edge-1.2.0-eeee']);
  r = e.run(['--from', tarball, '--no-start']);
  t.equal(r.status, 1);
  t.match(r.out, new RegExp(`release 1\\.2\\.0-eeee is for ${other}, this box is ${process.arch}`));
  const junk = join(dir, 'junk.tar.gz');
  spawnSync('tar', ['-C', REPO, '-czf', junk, 'systemd']);
  r = e.run(['--from', junk, '--no-start']);
  t.equal(r.status, 1);
  t.match(r.out, /is not an estate-edge release/);
  t.equal(readlinkSync(join(e.root, 'opt', 'estate-edge', 'current')), 'releases/1.0.0-aaaa', 'refused tarballs change nothing');
});
