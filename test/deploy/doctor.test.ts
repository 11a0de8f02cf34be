// `estate-edge doctor` against real things: a real Mosquitto broker, a real serial pty
// (socat), real files and model hashes; the service account comes from small
// passwd/group files so device permissions are judged as for the estate-edge user.
import t from 'tap';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, realpathSync, statfsSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { runDoctor, formatReport, doctorExitCode, redactUrl, type Finding, type DoctorOptions } from '../../edge/doctor.js';
import { ManualClock } from '../../edge/clock.js';
import { Broker } from '../helpers/broker.js';
import { freePort } from '../helpers/ports.js';
import { tempDir, testConfig, silentLog } from '../helpers/gateway.js';
import { openDatabase } from '../../edge/store/sqlite.js';
import { Outbox } from '../../edge/outbox/outbox.js';
import { SystemClock } from '../../edge/clock.js';
import { mountTmpfs } from '../faults/tmpfs.js';

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
  cfg.meters = {
    buses: [
      { id: 'b1', port: '/dev/rs485-NOPE' },
      { id: 'b2', port },
    ],
  };
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
  t.ok(
    models.some((m) => m.level === 'OK' && m.message.startsWith(`${goodId} `)),
    'matching hash is OK',
  );
  t.ok(
    models.some((m) => m.level === 'FAIL' && m.message.startsWith(`${badId} `) && /does not match the manifest/.test(m.message)),
    'wrong hash is FAIL',
  );
  t.ok(
    models.some((m) => m.level === 'FAIL' && m.message.startsWith(`${manifest.defaults.recognizer} `) && /not installed, and vision needs it/.test(m.message)),
    'missing recognizer is FAIL',
  );
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
  t.ok(
    findings.some((x) => x.check === 'clock'),
    'the clock is still checked',
  );
  // And the human form with a valid one (the models in the repo are hashed too).
  writeFileSync(cfg, `site: { id: s }\ngateway: { id: g, dataDir: ${join(dir, 'data')} }\nuplink: { enabled: false }\n`);
  mkdirSync(join(dir, 'data'));
  const ok = spawnSync(process.execPath, ['--import', 'tsx', 'edge/main.ts', 'doctor', '--config', cfg], { encoding: 'utf8', timeout: 60_000 });
  t.match(ok.stdout, /\[ OK \] 配置 config\s+.*config\.yaml valid \(site s, gateway g/);
  t.match(ok.stdout, /\[WARN\] 平台连接 broker\s+uplink disabled/);
  t.equal(ok.status, 0, ok.stdout);
});

/** A real outbox in `dataDir` with some telemetry, left open as the running service leaves it (its -wal and -shm on disk). */
async function filledOutbox(t: { teardown(fn: () => void): void }, dataDir: string, records: number): Promise<void> {
  const { db } = openDatabase(join(dataDir, 'outbox.db'), { synchronous: 'full' });
  const outbox = new Outbox({ db, clock: new SystemClock(), log: silentLog, quotaBytes: 512 * 1048576 });
  t.teardown(() => {
    outbox.close();
    db.close();
  });
  for (let i = 0; i < records; i += 200) {
    await Promise.all(Array.from({ length: 200 }, (_, k) => outbox.append({ stream: 'telemetry', type: 'meter.reading', data: { n: i + k, kWh: 1234.5, pad: 'r'.repeat(200) } })));
  }
}

/** Bytes of a file as the budget counts them, from the file itself. */
const fileSize = (p: string) => {
  const st = lstatSync(p);
  return Math.max(st.size, st.blocks * 512);
};

t.test('disk budget: the data dir counted as the disk guard counts it, databases with their -wal/-shm, against the files on disk', async (t) => {
  const dir = tempDir('ee-doctor-budget-');
  const dataDir = join(dir, 'data');
  mkdirSync(dataDir);
  await filledOutbox(t, dataDir, 2000);
  mkdirSync(join(dataDir, 'snapshots'));
  writeFileSync(join(dataDir, 'snapshots', 'a.jpg'), Buffer.alloc(100_000, 7));
  const loaded = testConfig({ uplink: { enabled: false }, gateway: { id: 'g', dataDir, diskBudgetMB: 64, diskReserveMB: 1 } });
  const f = await runDoctor({ loaded, systemctl: false });
  const [b] = pick(f, 'budget');
  t.ok(b, JSON.stringify(f));
  t.equal(b!.level, 'OK', b!.message);
  const d = b!.data as { usedBytes: number; budgetBytes: number; reserveBytes: number; databases: Record<string, { bytes: number; files: Record<string, number> }>; otherBytes: number; fsFreeBytes: number };
  // Every file, from the files themselves.
  const files = ['outbox.db', 'outbox.db-wal', 'outbox.db-shm'];
  for (const name of files) t.ok(existsSync(join(dataDir, name)), `${name} on disk`);
  const real = Object.fromEntries(files.map((n) => [n, fileSize(join(dataDir, n))]));
  t.same(d.databases['outbox.db']!.files, real, `outbox.db, -wal and -shm counted at their real sizes: ${JSON.stringify(real)}`);
  t.ok(real['outbox.db-wal']! > 0, 'the WAL holds data (it is part of the budget)');
  const snapshot = fileSize(join(dataDir, 'snapshots', 'a.jpg'));
  t.equal(d.otherBytes, snapshot, 'other files: the snapshot directory');
  const sum =
    readdirSync(dataDir)
      .filter((n) => n !== 'snapshots')
      .reduce((n, f) => n + fileSize(join(dataDir, f)), 0) + snapshot;
  t.equal(d.usedBytes, sum, `used ${d.usedBytes} bytes = the sum of every file under the data dir`);
  t.equal(d.budgetBytes, 64 * 1048576);
  t.equal(d.reserveBytes, 1048576);
  const s = statfsSync(dataDir);
  t.ok(Math.abs(d.fsFreeBytes - s.bavail * s.bsize) < 64 * 1048576, 'filesystem free space from statfs');
  t.match(b!.message, new RegExp(`^${(d.usedBytes / 1048576).toFixed(1)} MB of 64 MB budget used \\(\\d+\\.\\d %\\) in ${dataDir}: outbox\\.db \\d+\\.\\d MB \\(with -wal/-shm\\)`));
  t.match(b!.message, /reserve not in place of 1 MB; filesystem \d+\.\d MB free$/);
});

t.test('disk budget: over budget is a FAIL naming what to do; free space below the reserve is a FAIL', { skip: isRoot ? false : 'needs root (mount a tmpfs)' }, async (t) => {
  // A real small filesystem, so "free space" is a figure the test controls.
  const fs = mountTmpfs(12);
  t.teardown(() => fs.unmount());
  const dataDir = join(fs.dir, 'data');
  mkdirSync(dataDir);
  await filledOutbox(t, dataDir, 4000);
  // Somebody's files in the data dir: they count, and the guard cannot evict them.
  writeFileSync(join(dataDir, 'old-backup.tar'), Buffer.alloc(4 * 1048576, 1));
  const over = testConfig({ uplink: { enabled: false }, gateway: { id: 'g', dataDir, diskBudgetMB: 4, diskReserveMB: 0 } });
  let f = await runDoctor({ loaded: over, systemctl: false });
  let b = pick(f, 'budget')[0]!;
  const used = (b.data as { usedBytes: number }).usedBytes;
  t.ok(used > 4 * 1048576, `${used} bytes used for a 4 MB budget`);
  t.equal(b.level, 'FAIL', b.message);
  t.match(b.message, /over the disk budget by \d+\.\d MB: the gateway evicts the oldest telemetry/);
  t.match(b.message, /not the gateway's databases \(the guard cannot evict them\): old-backup\.tar 4\.0 MB/);
  t.match(b.message, /raise gateway\.diskBudgetMB/);
  t.equal(doctorExitCode(f), 1, 'exit status 1');
  t.match(formatReport(f), /\[FAIL\] 磁盘配额 disk budget\s+\d/);

  // Within the budget, but the filesystem has less room than the reserve asks for.
  const low = testConfig({ uplink: { enabled: false }, gateway: { id: 'g', dataDir, diskBudgetMB: 64, diskReserveMB: 32 } });
  f = await runDoctor({ loaded: low, systemctl: false });
  b = pick(f, 'budget')[0]!;
  t.equal(b.level, 'FAIL', b.message);
  t.match(b.message, /less free space than gateway\.diskReserveMB \(32 MB\)/);
  t.ok((b.data as { fsFreeBytes: number }).fsFreeBytes < 32 * 1048576);

  // Within the budget and the reserve, but the budget is larger than the filesystem.
  const big = testConfig({ uplink: { enabled: false }, gateway: { id: 'g', dataDir, diskBudgetMB: 64, diskReserveMB: 1 } });
  b = pick(await runDoctor({ loaded: big, systemctl: false }), 'budget')[0]!;
  t.equal(b.level, 'WARN', b.message);
  t.match(b.message, /the budget is more than this filesystem can give .* set gateway\.diskBudgetMB to at most \d+/);
});
