// `estate-edge doctor` against real things: a real Mosquitto broker, a real serial pty
// (socat), real files and model hashes; the service account comes from small
// passwd/group files so device permissions are judged as for the estate-edge user.
import t from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { runDoctor, formatReport, doctorExitCode, redactUrl, type Finding, type DoctorOptions } from '../../edge/doctor.js';
import { ManualClock } from '../../edge/clock.js';
import { Broker } from '../helpers/broker.js';
import { freePort } from '../helpers/ports.js';
import { tempDir, testConfig } from '../helpers/gateway.js';

const isRoot = process.getuid?.() === 0;

function accounts(dir: string): Pick<DoctorOptions, 'passwdFile' | 'groupFile'> {
  writeFileSync(join(dir, 'passwd'), 'root:x:0:0::/root:/bin/sh\nestate-edge:x:990:990::/var/lib/estate-edge:/usr/sbin/nologin\n');
  writeFileSync(join(dir, 'group'), 'root:x:0:\ntty:x:5:\ndialout:x:20:\nvideo:x:44:\ngpio:x:997:\nestate-edge:x:990:\n');
  return { passwdFile: join(dir, 'passwd'), groupFile: join(dir, 'group') };
}

async function pty(t: { teardown(fn: () => void): void }, dir: string): Promise<string> {
  const link = join(dir, `tty-${Math.random().toString(36).slice(2)}`);
  const p: ChildProcess = spawn('socat', [`pty,raw,echo=0,link=${link}`, `pty,raw,echo=0,link=${link}-peer`], { stdio: 'ignore' });
  t.teardown(() => void p.kill());
  for (let i = 0; i < 100 && !existsSync(link); i++) await new Promise((r) => setTimeout(r, 20));
  return realpathSync(link);
}

const pick = (f: Finding[], check: string) => f.filter((x) => x.check === check);
const levels = (f: Finding[], check: string) => pick(f, check).map((x) => x.level);

t.test('a healthy box: broker reachable, serial port accessible to the service, data dir writable', async (t) => {
  const broker = await Broker.start();
  t.teardown(() => broker.stop());
  const dir = tempDir('ee-doctor-');
  const port = await pty(t, dir);
  if (isRoot) {
    // What the udev rule does: group dialout, 0660.
    chownSync(port, 0, 20);
    chmodSync(port, 0o660);
  }
  const loaded = testConfig({ uplink: { url: broker.url } });
  (loaded.config as unknown as Record<string, unknown>).meters = { buses: [{ id: 'b1', port }] };
  const findings = await runDoctor({ loaded, clock: new ManualClock(Date.UTC(2026, 0, 1), true), systemctl: false, ...accounts(dir), timeoutMs: 3000 });
  t.same(levels(findings, 'broker'), ['OK'], JSON.stringify(pick(findings, 'broker')));
  t.match(pick(findings, 'broker')[0]!.message, /MQTT connect accepted/);
  t.same(levels(findings, 'serial'), ['OK'], JSON.stringify(pick(findings, 'serial')));
  t.match(pick(findings, 'serial')[0]!.message, /^meters\.buses\[0\]\.port \/dev\/pts\/\d+ present and accessible/);
  t.same(levels(findings, 'datadir'), ['OK']);
  t.same(levels(findings, 'clock'), ['OK']);
  t.same(levels(findings, 'gpio'), ['SKIP']);
  t.equal(doctorExitCode(findings), 0, formatReport(findings));
  const text = formatReport(findings);
  t.match(text, /\[ OK \] 平台连接 broker\s+mqtt:\/\/127\.0\.0\.1:\d+: MQTT connect accepted/);
  t.match(text, /结论 Result: /);
});

t.test('every kind of trouble is a FAIL (or WARN) line with the reason, and exit status 1', async (t) => {
  const dir = tempDir('ee-doctor-bad-');
  const closed = await freePort();
  const notADir = join(dir, 'file');
  writeFileSync(notADir, 'x');
  const port = await pty(t, dir);
  if (isRoot) {
    chownSync(port, 0, 5);
    chmodSync(port, 0o620);
  }
  const loaded = testConfig({ uplink: { url: `mqtt://127.0.0.1:${closed}` }, gateway: { id: 'g', dataDir: notADir } });
  const cfg = loaded.config as unknown as Record<string, unknown>;
  cfg.meters = { buses: [{ id: 'b1', port: '/dev/rs485-NOPE' }, { id: 'b2', port }] };
  cfg.doors = { gpio: { backend: 'chardev' }, doors: [{ id: 'd1' }] };
  const findings = await runDoctor({ loaded, clock: new ManualClock(0, false), systemctl: false, devDir: dir, ...accounts(dir), timeoutMs: 2000 });
  const broker = pick(findings, 'broker')[0]!;
  t.equal(broker.level, 'FAIL');
  t.match(broker.message, /ECONNREFUSED/);
  const serial = pick(findings, 'serial');
  t.equal(serial[0]!.level, 'FAIL');
  t.match(serial[0]!.message, /meters\.buses\[0\]\.port \/dev\/rs485-NOPE: missing/);
  if (isRoot) {
    t.equal(serial[1]!.level, 'FAIL', 'a pty of group tty, mode 620, is not for the estate-edge user');
    t.match(serial[1]!.message, /estate-edge cannot open it \(owner 0:5, mode 620\)/);
  }
  t.same(levels(findings, 'datadir'), ['FAIL']);
  t.match(pick(findings, 'datadir')[0]!.message, /is not a directory/);
  t.same(levels(findings, 'clock'), ['WARN']);
  t.match(pick(findings, 'clock')[0]!.message, /not synchronised \(1970-01-01T00:00:00\.000Z\): records are flagged clockUnsynced/);
  t.same(levels(findings, 'gpio'), ['FAIL']);
  t.match(pick(findings, 'gpio')[0]!.message, /no GPIO character device/);
  t.equal(doctorExitCode(findings), 1);
  t.match(formatReport(findings), /有问题 NOT READY: \d+ FAIL/);
});

t.test('GPIO character devices are judged for the service account', { skip: isRoot ? false : 'needs root (mknod)' }, async (t) => {
  const dir = tempDir('ee-doctor-gpio-');
  const dev = join(dir, 'dev');
  mkdirSync(dev);
  // A real character device node (same numbers as /dev/null), owned like Pi OS does it.
  t.equal(spawnSync('mknod', [join(dev, 'gpiochip0'), 'c', '1', '3']).status, 0);
  chownSync(join(dev, 'gpiochip0'), 0, 997);
  chmodSync(join(dev, 'gpiochip0'), 0o660);
  const loaded = testConfig({ uplink: { enabled: false } });
  (loaded.config as unknown as Record<string, unknown>).doors = { gpio: { backend: 'chardev' }, doors: [{ id: 'd1' }] };
  let f = await runDoctor({ loaded, systemctl: false, devDir: dev, ...accounts(dir) });
  t.same(levels(f, 'gpio'), ['OK'], JSON.stringify(pick(f, 'gpio')));
  t.same(levels(f, 'broker'), ['WARN'], 'uplink disabled is a warning');
  chmodSync(join(dev, 'gpiochip0'), 0o600);
  f = await runDoctor({ loaded, systemctl: false, devDir: dev, ...accounts(dir) });
  t.same(levels(f, 'gpio'), ['FAIL']);
  t.match(pick(f, 'gpio')[0]!.message, /estate-edge cannot open it/);
});

t.test('models: hashes checked against the manifest; a model vision needs must be there; camera URL reached', async (t) => {
  const dir = tempDir('ee-doctor-models-');
  const manifest = JSON.parse(readFileSync('models/manifest.json', 'utf8'));
  const ids = Object.keys(manifest.models);
  const good = Buffer.from('a stand-in model file');
  const goodId = manifest.defaults.detector as string;
  manifest.models[goodId].sha256 = createHash('sha256').update(good).digest('hex');
  manifest.models[goodId].size = good.length;
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
  writeFileSync(join(dir, manifest.models[goodId].file), good);
  const badId = ids.find((id) => id !== goodId && id !== manifest.defaults.recognizer)!;
  writeFileSync(join(dir, manifest.models[badId].file), 'corrupt');
  const closed = await freePort();
  const loaded = testConfig({ uplink: { enabled: false } });
  (loaded.config as unknown as Record<string, unknown>).vision = {
    enabled: true,
    modelsDir: dir,
    liveness: { enabled: false },
    camera: { source: { kind: 'rtsp', url: `rtsp://admin:s3cret@127.0.0.1:${closed}/Streaming/Channels/102` } },
  };
  const f = await runDoctor({ loaded, systemctl: false, timeoutMs: 2000 });
  const models = pick(f, 'models');
  t.ok(models.some((m) => m.level === 'OK' && m.message.startsWith(`${goodId} `)), 'matching hash is OK');
  t.ok(models.some((m) => m.level === 'FAIL' && m.message.startsWith(`${badId} `) && /does not match the manifest/.test(m.message)), 'wrong hash is FAIL');
  t.ok(models.some((m) => m.level === 'FAIL' && m.message.startsWith(`${manifest.defaults.recognizer} `) && /not installed, and vision needs it/.test(m.message)), 'missing recognizer is FAIL');
  const cam = pick(f, 'camera')[0]!;
  t.equal(cam.level, 'FAIL');
  t.match(cam.message, /ECONNREFUSED/);
  t.notMatch(JSON.stringify(f), /s3cret/, 'camera credentials never printed');
  t.equal(redactUrl('rtsp://u:p@h:554/x'), 'rtsp://***@h:554/x');
});

t.test('the CLI: `estate-edge doctor --json` with an invalid config lists the problems and exits 1', async (t) => {
  const dir = tempDir('ee-doctor-cli-');
  const cfg = join(dir, 'config.yaml');
  writeFileSync(cfg, 'site: { id: "bad id" }\ngateway: { id: g }\n');
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'edge/main.ts', 'doctor', '--json', '--config', cfg], { encoding: 'utf8', timeout: 60_000 });
  t.equal(r.status, 1, r.stderr);
  const findings = JSON.parse(r.stdout) as Finding[];
  const config = pick(findings, 'config');
  t.equal(config[0]!.level, 'FAIL');
  t.match(config[0]!.message, /site\.id: has a wrong format/);
  t.ok(findings.some((x) => x.check === 'clock'), 'the clock is still checked');
  // And the human form with a valid one (the models in the repo are hashed too).
  writeFileSync(cfg, `site: { id: s }\ngateway: { id: g, dataDir: ${join(dir, 'data')} }\nuplink: { enabled: false }\n`);
  mkdirSync(join(dir, 'data'));
  const ok = spawnSync(process.execPath, ['--import', 'tsx', 'edge/main.ts', 'doctor', '--config', cfg], { encoding: 'utf8', timeout: 60_000 });
  t.match(ok.stdout, /\[ OK \] 配置 config\s+.*config\.yaml valid \(site s, gateway g/);
  t.match(ok.stdout, /\[WARN\] 平台连接 broker\s+uplink disabled/);
  t.equal(ok.status, 0, ok.stdout);
});
