// The shipped systemd/udev files, checked by systemd's own tools (Debian package systemd,
// which .ci/run installs): any warning about our files is a failure.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const SYSTEMD_DIR = 'systemd';
const unit = join(SYSTEMD_DIR, 'estate-edge.service');
const have = (bin: string) => spawnSync('sh', ['-c', `command -v ${bin}`]).status === 0;

function systemdVersion(): number {
  const out = spawnSync('systemctl', ['--version'], { encoding: 'utf8' }).stdout ?? '';
  return Number(/systemd (\d+)/.exec(out)?.[1] ?? 0);
}

// The unit runs the release's own runtime, /opt/estate-edge/current/node/bin/node, which
// does not exist on a development machine and verify would report. The copy verified
// here names the same Node binary at the path the tests run it from; everything else is
// the shipped file byte for byte.
const RELEASE_NODE = '/opt/estate-edge/current/node/bin/node';

t.test('systemd-analyze verify accepts the service without a single warning', { skip: have('systemd-analyze') ? false : 'systemd-analyze not installed (Debian package systemd)' }, async (t) => {
  const text = readFileSync(unit, 'utf8');
  t.match(text, new RegExp(`^ExecStart=${RELEASE_NODE} `, 'm'), "ExecStart runs the release's own Node runtime");
  const dir = join('test-artifacts', `units-ok-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const copy = join(dir, 'estate-edge.service');
  writeFileSync(copy, text.replace(`ExecStart=${RELEASE_NODE} `, `ExecStart=${process.execPath} `));
  const r = spawnSync('systemd-analyze', ['verify', copy], { encoding: 'utf8' });
  const out = `${r.stdout}${r.stderr}`.trim();
  t.equal(r.status, 0, 'exit status 0');
  t.equal(out, '', `no output (got: ${out})`);
});

t.test('systemd-analyze verify catches a broken copy (the check can fail)', { skip: have('systemd-analyze') ? false : 'systemd-analyze not installed' }, async (t) => {
  const dir = join('test-artifacts', `units-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bad = join(dir, 'estate-edge.service');
  const text = readFileSync(unit, 'utf8').replace('Type=notify', 'Type=notfy').replace('WatchdogSec=30s', 'WatchdogSec=thirty');
  writeFileSync(bad, text);
  const r = spawnSync('systemd-analyze', ['verify', bad], { encoding: 'utf8' });
  t.match(`${r.stdout}${r.stderr}`, /service type/);
});

t.test('the unit has what issue 7 asks for', async (t) => {
  const text = readFileSync(unit, 'utf8');
  const keys = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (m) keys.set(m[1]!, [...(keys.get(m[1]!) ?? []), m[2]!]);
  }
  const one = (k: string) => keys.get(k)?.[0];
  t.equal(one('Type'), 'notify');
  t.equal(one('NotifyAccess'), 'all', 'the systemd-notify helper is a child process');
  t.match(one('WatchdogSec'), /^\d+s$/);
  t.equal(one('Restart'), 'always');
  t.ok(one('RestartSec'));
  t.equal(one('StartLimitIntervalSec'), '0', 'never stops restarting');
  t.equal(one('User'), 'estate-edge');
  t.same(one('SupplementaryGroups')?.split(' ').sort(), ['dialout', 'gpio', 'video']);
  t.equal(one('StateDirectory'), 'estate-edge');
  for (const k of ['NoNewPrivileges', 'ProtectHome', 'PrivateTmp']) t.equal(one(k), 'yes', k);
  t.equal(one('ProtectSystem'), 'strict');
  t.equal(one('DevicePolicy'), 'closed');
  const allowed = keys.get('DeviceAllow') ?? [];
  for (const d of ['char-ttyS', 'char-ttyUSB', 'char-ttyACM', 'char-gpiochip', 'char-video4linux']) t.ok(allowed.includes(`${d} rw`), `DeviceAllow=${d} rw`);
  t.notOk(keys.has('PrivateDevices'), 'not PrivateDevices (hides the hardware)');
  t.notOk(keys.has('MemoryDenyWriteExecute'), 'not MemoryDenyWriteExecute (V8 JIT)');
  t.notOk(keys.has('RestartSteps'), 'RestartSteps only in the drop-in for systemd >= 254');
});

t.test('the back-off drop-in is for systemd >= 254 only', async (t) => {
  const dropin = readFileSync(join(SYSTEMD_DIR, 'estate-edge-restart-backoff.conf'), 'utf8');
  t.match(dropin, /^RestartSteps=\d+$/m);
  t.match(dropin, /^RestartMaxDelaySec=/m);
  const v = systemdVersion();
  if (v >= 254 && have('systemd-analyze')) {
    // Verify the unit with the drop-in applied, as the installer would install it.
    const dir = join('test-artifacts', `dropin-${process.pid}`);
    mkdirSync(join(dir, 'estate-edge.service.d'), { recursive: true });
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    copyFileSync(unit, join(dir, 'estate-edge.service'));
    copyFileSync(join(SYSTEMD_DIR, 'estate-edge-restart-backoff.conf'), join(dir, 'estate-edge.service.d', '10-restart-backoff.conf'));
    const r = spawnSync('systemd-analyze', ['verify', join(dir, 'estate-edge.service')], { encoding: 'utf8' });
    t.equal(`${r.stdout}${r.stderr}`.trim(), '');
  } else {
    t.pass(`systemd ${v || '(none)'} predates RestartSteps: the installer leaves the drop-in out (tested in install.test.ts)`);
  }
});

const udevOk = have('udevadm') && process.getuid?.() === 0 && existsSync('/sys/class/tty/tty');
t.test('udevadm parses the RS-485 rules without errors', { skip: udevOk ? false : 'needs udevadm (Debian package udev/systemd), root and /sys/class/tty' }, async (t) => {
  // udevadm (252) has no `verify`; `udevadm test` loads every rules file and reports
  // the errors of each. /run/udev/rules.d is volatile; the copy is removed at once.
  const name = `98-estate-edge-test-${process.pid}.rules`;
  const target = join('/run/udev/rules.d', name);
  mkdirSync('/run/udev/rules.d', { recursive: true });
  const check = (): string[] => {
    const r = spawnSync('udevadm', ['test', '--action=add', '/sys/class/tty/tty'], { encoding: 'utf8' });
    return `${r.stdout}${r.stderr}`.split('\n').filter((l) => l.includes(name));
  };
  try {
    copyFileSync(join(SYSTEMD_DIR, '99-estate-edge-rs485.rules'), target);
    const gpioGroup = spawnSync('getent', ['group', 'gpio']).status === 0;
    const problems = check().filter((l) => !/Reading rules file/.test(l) && !(!gpioGroup && /Unknown group 'gpio'/.test(l)));
    t.same(problems, [], 'no parse errors');
    t.ok(
      check().some((l) => /Reading rules file/.test(l)),
      'the file was read',
    );
    // The check can fail: a broken line is reported.
    copyFileSync(join(SYSTEMD_DIR, '99-estate-edge-rs485.rules'), target);
    appendFileSync(target, 'ATTRS{idVendor}="0403", SYMLINK+="x"\n');
    t.ok(
      check().some((l) => /Invalid operator/.test(l)),
      'a broken rule is reported',
    );
  } finally {
    rmSync(target, { force: true });
  }
});
