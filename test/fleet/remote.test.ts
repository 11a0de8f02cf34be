// Remote configuration and diagnostics against the real thing: the gateway as its own
// process (edge/main.ts run --config, as the unit starts it), a real Mosquitto with
// password authentication, and the test as both the platform (commands over MQTT, records
// read from the up topics) and systemd (a process that exits 0 is started again, as
// Restart=always does). The box must roll back by itself a config that loses the broker.
import t from 'tap';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { stringify } from 'yaml';
import { Broker } from '../helpers/broker.js';
import { Platform } from '../helpers/subscriber.js';
import { tempDir } from '../helpers/gateway.js';
import { freePort } from '../helpers/ports.js';
import { REPO } from '../../scripts/lib/unit.js';
import { sealFor } from '../../edge/fleet/seal.js';

const GW_PASSWORD = 'gw-broker-pass-7q';
const PF_PASSWORD = 'platform-pass-3x';
const BASE = 'estate/fl-site/fl-gw';

let broker: Broker;
let platform: Platform;
const dir = tempDir('ee-fleet-');
const configPath = join(dir, 'config.yaml');
const lines: string[] = [];
let child: ChildProcess | undefined;
let starts = 0;
let supervising = true;
const exits: Array<number | null> = [];

function startProcess(): void {
  const env: NodeJS.ProcessEnv = { ...process.env, GW_BROKER_PASSWORD: GW_PASSWORD };
  delete env.NOTIFY_SOCKET;
  const c = spawn(process.execPath, ['--import', 'tsx', join(REPO, 'edge', 'main.ts'), 'run', '--config', configPath], { cwd: REPO, stdio: ['ignore', 'pipe', 'pipe'], env });
  child = c;
  starts += 1;
  createInterface({ input: c.stdout! }).on('line', (l) => lines.push(l));
  c.stderr!.on('data', (d: Buffer) => lines.push(`stderr: ${d.toString()}`));
  c.once('exit', (code) => {
    exits.push(code);
    // systemd's Restart=always: an orderly exit (a restart request) is started again.
    if (supervising && code === 0) setTimeout(startProcess, 100);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The latest retained status the platform saw. */
function status(): { state: string; configRevision: string; id: string } | undefined {
  const s = platform.raw.filter((m) => m.topic === `${BASE}/status`).at(-1);
  return s ? JSON.parse(s.payload.toString()) : undefined;
}

async function online(since: number, what: string, timeoutMs = 60_000): Promise<void> {
  await platform.waitFor(() => platform.raw.some((m) => m.topic === `${BASE}/status` && m.at >= since && JSON.parse(m.payload.toString()).state === 'online'), timeoutMs, `${what}: gateway online (log tail:\n${lines.slice(-15).join('\n')})`);
}

async function send(name: string, args: Record<string, unknown> = {}, id = `c-${name}-${Math.random().toString(16).slice(2)}`) {
  return platform.command(BASE, name, args, { id });
}

function configText(): string {
  return readFileSync(configPath, 'utf8');
}

t.before(async () => {
  // Its own directory: mosquitto drops root privileges, so its user must be able to read the file.
  const pwdir = tempDir('ee-fleet-broker-');
  const pwfile = join(pwdir, 'passwd');
  writeFileSync(pwfile, 'gw:placeholder\n');
  execFileSync('mosquitto_passwd', ['-b', pwfile, 'gw', GW_PASSWORD]);
  execFileSync('mosquitto_passwd', ['-b', pwfile, 'platform', PF_PASSWORD]);
  chmodSync(pwdir, 0o755);
  chmodSync(pwfile, 0o644);
  broker = await Broker.start(`password_file ${pwfile}\nallow_anonymous false\n`);
  platform = await Platform.connect(`mqtt://platform:${PF_PASSWORD}@127.0.0.1:${broker.port}`);
  writeFileSync(
    configPath,
    `# a small estate box, configured remotely\n${stringify({
      site: { id: 'fl-site' },
      gateway: { id: 'fl-gw', dataDir: join(dir, 'data') },
      log: { level: 'info' },
      http: { enabled: false },
      console: { enabled: false },
      status: { intervalS: 30 },
      uplink: { url: broker.url, username: 'gw', password: { env: 'GW_BROKER_PASSWORD' }, reconnectMinMs: 200, reconnectMaxMs: 1000 },
    })}`,
  );
  const at = Date.now();
  startProcess();
  await online(at, 'first start');
});

t.teardown(async () => {
  supervising = false;
  if (child && child.exitCode === null) child.kill('SIGKILL');
  await platform?.close();
  await broker?.stop();
});

let info: { boxPublicKey: string; configRevision: string };

t.test('gateway.info gives the box key; config.apply refuses bad input and changes nothing', async (t) => {
  const r = await send('gateway.info');
  t.ok(r.ok, 'info answered');
  info = r.result;
  t.match(info.boxPublicKey, /^[A-Za-z0-9+/]{43}=$/, 'a 32-byte X25519 public key, base64');
  t.equal(info.configRevision, status()?.configRevision, 'the retained status carries the running revision');
  const before = configText();

  const invalid = await send('config.apply', { patch: { status: { intervalS: -5 }, uplink: { keepaliveS: 'soon' } }, baseRevision: info.configRevision });
  t.equal(invalid.ok, false);
  t.equal(invalid.error.code, 'invalid_config');
  t.ok(
    invalid.error.details.problems.some((p: string) => p.startsWith('status.intervalS')),
    'field error for status.intervalS',
  );
  t.ok(
    invalid.error.details.problems.some((p: string) => p.startsWith('uplink.keepaliveS')),
    'field error for uplink.keepaliveS',
  );

  const stale = await send('config.apply', { patch: { status: { intervalS: 40 } }, baseRevision: '000000000000' });
  t.equal(stale.error?.code, 'revision_conflict');
  t.equal(stale.error.details.runningRevision, info.configRevision, 'says which revision runs');

  const both = await send('config.apply', { patch: {}, yaml: 'site: {}', baseRevision: info.configRevision });
  t.equal(both.error?.code, 'bad_args', 'yaml and patch together');

  const plain = await send('config.apply', { patch: { uplink: { password: { value: GW_PASSWORD } } }, baseRevision: info.configRevision, allowPlaintextSecrets: true });
  t.equal(plain.error?.code, 'plaintext_secret', 'an inline secret over a link without TLS is refused, even when allowed');
  t.same(plain.error.details.paths, ['uplink.password']);

  t.equal(configText(), before, 'the file is unchanged');
  t.equal(starts, 1, 'no restart');
  t.notOk(
    lines.some((l) => l.includes(GW_PASSWORD)),
    'the refused plaintext secret was not logged',
  );
});

let appliedRevision = '';

t.test('a good patch: pending, restart, config.confirmed; a duplicate id is not applied twice', async (t) => {
  const id = 'c-apply-good-1';
  const at = Date.now();
  const r = await send('config.apply', { patch: { status: { intervalS: 45 } }, baseRevision: info.configRevision, reason: 'slower status', confirmWithinS: 30 }, id);
  t.ok(r.ok, JSON.stringify(r.error));
  t.equal(r.result.status, 'pending');
  t.equal(r.result.previousRevision, info.configRevision);
  t.not(r.result.revision, info.configRevision);
  appliedRevision = r.result.revision;
  t.match(configText(), /intervalS: 45/, 'written to the file');
  t.match(configText(), /# a small estate box/, 'the file keeps its comments');
  await online(at, 'after the apply');
  await platform.waitFor(() => platform.records('event').some((e) => e.type === 'config.confirmed' && e.data.commandId === id), 30_000, 'config.confirmed');
  const ev = platform.records('event').find((e) => e.type === 'config.confirmed')!;
  t.same({ revision: ev.data.revision, previousRevision: ev.data.previousRevision, commandId: ev.data.commandId }, { revision: appliedRevision, previousRevision: info.configRevision, commandId: id });
  t.equal(status()?.configRevision, appliedRevision, 'the retained status has the new revision');
  const audit = platform.records('audit');
  t.ok(
    audit.some((a) => a.type === 'config.applied' && a.data.commandId === id && a.data.source === 'mqtt' && a.data.user === 'platform' && a.data.reason === 'slower status'),
    'audit: applied, with who and why',
  );
  await platform.waitFor(() => platform.records('audit').some((a) => a.type === 'config.confirmed' && a.data.commandId === id), 10_000, 'audit confirmed');
  t.equal(starts, 1, 'applied by a reload inside the process: no process restart (no RestartSec wait)');
  t.ok(
    lines.some((l) => l.includes('service restart requested') && l.includes('"how":"reload"')),
    'the restart was a reload',
  );

  const startsBefore = starts;
  await platform.client.publishAsync(`${BASE}/cmd`, JSON.stringify({ v: 1, id, name: 'config.apply', args: { patch: { status: { intervalS: 45 } }, baseRevision: info.configRevision }, ts: Date.now() }), { qos: 1 });
  let again: any;
  await platform.waitFor(() => (again = platform.records('result').find((r) => r.data.commandId === id && r.data.duplicate)?.data) !== undefined, 10_000, 'duplicate result');
  t.equal(again.duplicate, true, 'the same id is answered as a duplicate');
  t.equal(again.result.revision, appliedRevision, 'with the original result');
  await sleep(1500);
  t.equal(starts, startsBefore, 'not applied again: no restart');
});

t.test('a sealed broker password works and is never shown', async (t) => {
  const sealed = sealFor(info.boxPublicKey, GW_PASSWORD);
  const at = Date.now();
  const id = 'c-apply-sealed';
  const r = await send('config.apply', { patch: { uplink: { password: { env: null, sealed } } }, baseRevision: appliedRevision, reason: 'password sealed for this box', confirmWithinS: 30 }, id);
  t.ok(r.ok, JSON.stringify(r.error));
  await online(at, 'with the sealed password');
  await platform.waitFor(() => platform.records('event').some((e) => e.type === 'config.confirmed' && e.data.commandId === id), 30_000, 'confirmed with the sealed password');
  appliedRevision = r.result.revision;
  const got = await send('config.get');
  t.same(got.result.config.uplink.password, { sealed: '***' }, 'config.get masks the sealed value');
  t.equal(got.result.revision, appliedRevision);
  const logs = await send('logs.get', { limit: 2000 });
  const everything = [lines.join('\n'), JSON.stringify(logs), JSON.stringify(platform.records())].join('\n');
  t.notOk(everything.includes(GW_PASSWORD), 'the password is in no log line, log ring or record');
  t.notOk(everything.includes(sealed), 'nor is the sealed envelope');
  t.notOk(readFileSync(join(dir, 'data', 'logs', 'gateway.log'), 'utf8').includes(GW_PASSWORD), 'nor the ring file');

  const other = sealFor(Buffer.alloc(32, 9).toString('base64'), GW_PASSWORD);
  const wrongBox = await send('config.apply', { patch: { uplink: { password: { sealed: other } } }, baseRevision: appliedRevision });
  t.equal(wrongBox.error?.code, 'invalid_config', 'a value sealed for another box is refused before anything is applied');
  t.match(wrongBox.error.details.problems.join('\n'), /uplink\.password: sealed value cannot be opened/);
});

let brokenId = '';
t.test('a patch that loses the broker is rolled back by the box and reported when it is back', async (t) => {
  const wrong = await freePort();
  const at = Date.now();
  brokenId = 'c-apply-broken';
  const r = await send('config.apply', { patch: { uplink: { url: `mqtt://127.0.0.1:${wrong}` } }, baseRevision: appliedRevision, reason: 'move to the new broker', confirmWithinS: 4 }, brokenId);
  t.ok(r.ok, JSON.stringify(r.error));
  t.equal(r.result.confirmWithinS, 4);
  const broken = r.result.revision;
  // Restarted with the wrong broker, gave it 4 s, restored the file, restarted: online again with the old config.
  await platform.waitFor(() => platform.records('alarm').some((a) => a.type === 'config.rolled_back' && a.data.commandId === brokenId), 90_000, 'config.rolled_back alarm');
  const alarm = platform.records('alarm').find((a) => a.type === 'config.rolled_back' && a.data.commandId === brokenId)!;
  t.equal(alarm.data.revision, broken);
  t.equal(alarm.data.previousRevision, appliedRevision);
  t.match(alarm.data.reason, /uplink/, 'the reason names the uplink');
  t.ok(alarm.ts > at, 'a timestamped record');
  await online(at, 'after the rollback');
  t.equal(status()?.configRevision, appliedRevision, 'running the previous revision again');
  t.notMatch(configText(), new RegExp(`:${wrong}`), 'the file is the previous one');
  await platform.waitFor(() => platform.records('audit').some((a) => a.type === 'config.rolled_back' && a.data.commandId === brokenId), 10_000, 'audit rolled back');
});

t.test('a wrong (sealed) broker password is rolled back too', async (t) => {
  const at = Date.now();
  const id = 'c-apply-wrong-password';
  const r = await send('config.apply', { patch: { uplink: { password: { sealed: sealFor(info.boxPublicKey, 'not-the-password') } } }, baseRevision: appliedRevision, confirmWithinS: 4 }, id);
  t.ok(r.ok, JSON.stringify(r.error));
  await platform.waitFor(() => platform.records('alarm').some((a) => a.type === 'config.rolled_back' && a.data.commandId === id), 90_000, 'config.rolled_back alarm (password)');
  await online(at, 'after the password rollback');
  t.equal(status()?.configRevision, appliedRevision, 'the working password is back');
  const alarm = platform.records('alarm').find((a) => a.type === 'config.rolled_back' && a.data.commandId === id)!;
  t.match(alarm.data.reason, /uplink: broker .* unreachable: .*[Nn]ot authori[sz]ed/, 'rolled back because the broker refused the password');
  t.notOk(
    lines.some((l) => l.includes('not-the-password')),
    'the wrong password was not logged either',
  );
});

t.test('config.history and config.rollback', async (t) => {
  const h = await send('config.history');
  t.ok(h.ok);
  const byRev = (rev: string) => h.result.entries.filter((e: { revision: string }) => e.revision === rev).at(-1);
  t.equal(h.result.running, appliedRevision);
  t.match(byRev(appliedRevision), { status: 'confirmed', user: 'platform', source: 'mqtt', reason: 'password sealed for this box', commandId: 'c-apply-sealed' });
  const brokenEntry = h.result.entries.find((e: { commandId?: string }) => e.commandId === brokenId);
  t.match(brokenEntry, { status: 'rolled_back', reason: 'move to the new broker' });
  t.ok(brokenEntry.rollbackReason, 'with why it was rolled back');
  t.ok(h.result.available.includes(info.configRevision), 'the first revision can still be gone back to');

  const at = Date.now();
  const id = 'c-rollback-1';
  const r = await send('config.rollback', { reason: 'undo the sealed password' }, id);
  t.ok(r.ok, JSON.stringify(r.error));
  t.equal(r.result.status, 'pending');
  const target = byRev(appliedRevision).previousRevision;
  t.equal(r.result.revision, target, 'default: the revision before the running one');
  await online(at, 'after config.rollback');
  await platform.waitFor(() => platform.records('event').some((e) => e.type === 'config.confirmed' && e.data.commandId === id), 30_000, 'rollback confirmed');
  t.equal(status()?.configRevision, target);
  const unknown = await send('config.rollback', { revision: 'abcdef123456' });
  t.equal(unknown.error?.code, 'unknown_revision');
});

t.test('diagnostics: logs.get, doctor.run, metrics.get', async (t) => {
  const all = await send('logs.get', { limit: 2000 });
  t.ok(all.ok);
  t.ok(all.result.lines.length > 10, 'lines from this and earlier runs');
  t.ok(
    all.result.lines.some((l: { msg: string }) => l.msg === 'configuration change rolled back: restoring the previous config and restarting'),
    'the rollback is explained in the ring, across restarts',
  );
  t.ok(all.result.ringBytes <= all.result.ringMaxBytes, 'within the ring bound');
  t.ok(
    all.result.lines.some((l: { module?: string; msg: string }) => l.module === 'boot' && l.msg === 'module started'),
    'lines from before the fleet module started are in the ring too (attached with the logger)',
  );
  const warn = await send('logs.get', { level: 'warn', limit: 3 });
  t.ok(warn.result.lines.length <= 3 && warn.result.lines.length > 0);
  t.ok(
    warn.result.lines.every((l: { level: string }) => ['warn', 'error', 'fatal'].includes(l.level)),
    'only warn and above',
  );
  const since = Date.now();
  await sleep(50);
  await send('gateway.ping');
  const recent = await send('logs.get', { since });
  t.ok(
    recent.result.lines.every((l: { time: string }) => Date.parse(l.time) >= since),
    'nothing before since',
  );
  const bad = await send('logs.get', { level: 'loud' });
  t.equal(bad.error?.code, 'bad_args');

  const doc = await send('doctor.run');
  t.ok(doc.ok, JSON.stringify(doc.error));
  t.ok(
    doc.result.findings.some((f: { check: string; level: string }) => f.check === 'config' && f.level === 'OK'),
    'the config check',
  );
  t.ok(
    doc.result.findings.some((f: { check: string }) => f.check === 'broker'),
    'the broker check',
  );
  t.equal(typeof doc.result.summary.fail, 'number');

  const json = await send('metrics.get');
  t.ok(
    json.result.metrics.some((m: { name: string }) => m.name === 'estate_commands_total'),
    'metrics as JSON',
  );
  const text = await send('metrics.get', { format: 'text' });
  t.match(text.result.text, /# HELP estate_commands_total/);
});

t.test('gateway.restart answers, then the gateway comes back online', async (t) => {
  const at = Date.now();
  const startsBefore = starts;
  const r = await send('gateway.restart', { reason: 'remote test' });
  t.ok(r.ok);
  t.equal(r.result.status, 'restarting');
  await online(at, 'after gateway.restart');
  t.equal(starts, startsBefore + 1, 'restarted once');
  t.equal(exits.at(-1), 0, 'an orderly exit');
  await platform.waitFor(() => platform.records('audit').some((a) => a.type === 'gateway.restart' && a.data.reason === 'remote test'), 10_000, 'audit restart');
  const noReason = await send('gateway.restart', {});
  t.equal(noReason.error?.code, 'bad_args', 'a reason is required');
});
