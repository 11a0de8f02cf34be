// The parts of remote configuration that need no process: sealed secrets (node:crypto
// X25519 + HKDF + AES-GCM), the merge patch on the config file, the bounded log ring and
// the bounded revision history, each with its own files in a temp dir.
import t from 'tap';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { tempDir } from '../helpers/gateway.js';
import { sealFor } from '../../edge/fleet/seal.js';
import { ensureBoxKey, openSealed, readBoxKey } from '../../edge/config/sealed.js';
import { resolveSecret } from '../../edge/config/secret.js';
import { mergePatchText, plaintextSecrets } from '../../edge/config/change.js';
import { maskSecrets } from '../../edge/config/redact.js';
import { LogFile } from '../../edge/observability/logfile.js';
import { ConfigHistory } from '../../edge/config/history.js';

t.test('sealed secrets: only this box opens them; tampering and other boxes fail', async (t) => {
  const dir = tempDir('ee-seal-');
  const k = ensureBoxKey(dir);
  t.equal(k.created, true);
  t.equal(statSync(join(dir, 'box-key.pem')).mode & 0o777, 0o600, 'the key file is 0600');
  t.same(ensureBoxKey(dir), { publicKey: k.publicKey, created: false }, 'kept across starts');
  const env = sealFor(k.publicKey, 'pässwörd-1');
  t.not(sealFor(k.publicKey, 'pässwörd-1'), env, 'a fresh ephemeral key and nonce each time');
  t.notOk(Buffer.from(env, 'base64').includes(Buffer.from('pässwörd-1')), 'no plaintext in the envelope');
  t.equal(openSealed(readBoxKey(dir)!, env), 'pässwörd-1');
  const s = resolveSecret({ sealed: env }, {}, { dataDir: dir });
  t.equal(s.reveal(), 'pässwörd-1');
  t.equal(JSON.stringify({ s }), '{"s":"***"}', 'a resolved sealed secret prints as ***');
  const bytes = Buffer.from(env, 'base64');
  bytes[bytes.length - 1]! ^= 1;
  t.throws(() => openSealed(readBoxKey(dir)!, bytes.toString('base64')), /cannot be opened/, 'a flipped bit is refused');
  const other = tempDir('ee-seal-other-');
  ensureBoxKey(other);
  t.throws(() => resolveSecret({ sealed: env }, {}, { dataDir: other }), /cannot be opened with this box key/, 'another box cannot open it');
  t.throws(() => resolveSecret({ sealed: env }, {}, { dataDir: tempDir('ee-seal-none-') }), /has none yet/, 'no key yet: a clear reason');
  t.throws(() => openSealed(readBoxKey(dir)!, 'AAAA'), /too short/);
  t.throws(() => sealFor('c2hvcnQ=', 'x'), /32 bytes/, 'a wrong public key is refused by the sealer');
  t.same(maskSecrets({ uplink: { password: { sealed: env } } }), { uplink: { password: { sealed: '***' } } }, 'masked wherever the config is shown');
});

t.test('merge patch (RFC 7386) on the file keeps its comments; plaintext secrets are found', async (t) => {
  const text = '# the box\nsite:\n  id: s1 # estate\nstatus:\n  intervalS: 30\nlist: [1, 2]\nuplink:\n  password:\n    env: PW\n';
  const out = mergePatchText(text, { status: { intervalS: 60 }, list: [3], uplink: { password: { env: null, file: '/run/pw' } }, site: { name: 'North' }, gone: null });
  t.match(out, /# the box/);
  t.match(out, /id: s1 # estate/);
  t.match(out, /intervalS: 60/);
  t.match(out, /list:\n\s+- 3\n|list: \[ 3 \]/, 'arrays are replaced');
  t.notMatch(out, /env: PW/, 'null removes a key');
  t.match(out, /file: \/run\/pw/);
  t.match(out, /name: North/);
  t.same(mergePatchText('', { a: { b: 1 } }).trim(), 'a:\n  b: 1', 'an empty file gets the patch');
  t.same(plaintextSecrets({ uplink: { password: { value: 'x' } }, cams: [{ pw: { value: '***' } }, { pw: { value: 'y' } }] }), ['uplink.password', 'cams.1.pw']);
  t.same(plaintextSecrets({ uplink: { password: { sealed: 'AAAA' } } }), []);
});

t.test('the log ring stays within two files of maxBytes and filters by level and time', async (t) => {
  const dir = tempDir('ee-logring-');
  const ring = new LogFile(dir, 4096);
  const lines: string[] = [];
  const log = pino({ level: 'debug', timestamp: pino.stdTimeFunctions.isoTime, formatters: { level: (l) => ({ level: l }) } }, { write: (s: string) => void lines.push(s) });
  t.ok(ring.attach(log));
  for (let i = 0; i < 500; i++) (i % 10 === 0 ? log.warn : log.info).call(log, { i, url: 'mqtt://gw:secretpw@broker:1883' }, `line ${i}`);
  ring.flush();
  t.equal(lines.length, 500, 'the logger still writes every line to its destination');
  const files = readdirSync(dir).sort();
  t.same(files, ['gateway.log', 'gateway.log.1']);
  const total = files.reduce((n, f) => n + statSync(join(dir, f)).size, 0);
  t.ok(total <= 2 * 4096 + 200, `bounded (${total} bytes)`);
  const all = ring.read({ limit: 2000 });
  t.equal(all.lines.at(-1)?.msg, 'line 499', 'newest kept');
  t.notOk(
    all.lines.some((l) => l.msg === 'line 0'),
    'oldest dropped',
  );
  t.notOk(JSON.stringify(all).includes('secretpw'), 'URL passwords masked');
  const warns = ring.read({ level: 'warn', limit: 2 });
  t.same(
    warns.lines.map((l) => l.msg),
    ['line 480', 'line 490'],
  );
  t.equal(warns.truncated, true, 'says more matched than were returned');
  t.same(ring.read({ since: Date.now() + 60_000 }).lines, [], 'nothing after a future since');
  ring.detach();
  log.info('after detach');
  ring.flush();
  t.notOk(
    ring.read({ limit: 5 }).lines.some((l) => l.msg === 'after detach'),
    'detached',
  );
  writeFileSync(join(dir, 'gateway.log'), 'not json\n', { flag: 'a' });
  t.equal(ring.read({ limit: 1 }).lines[0]?.msg, 'not json', 'a line that is not JSON is still shown');
});

t.test('the revision history keeps the last N entries and only their texts', async (t) => {
  const dir = tempDir('ee-history-');
  const h = new ConfigHistory(dir, 3);
  for (let i = 0; i < 6; i++) {
    const rev = `aaaaaa00000${i}`;
    h.keepText(rev, `rev ${i}\n`);
    h.add({ revision: rev, previousRevision: i ? `aaaaaa00000${i - 1}` : undefined, at: i, user: 'platform', source: 'mqtt', status: 'pending' });
  }
  t.same(
    h.entries().map((e) => e.revision),
    ['aaaaaa000003', 'aaaaaa000004', 'aaaaaa000005'],
  );
  t.equal(h.text('aaaaaa000002'), 'rev 2\n', 'a previous revision of a kept entry is kept');
  t.equal(h.text('aaaaaa000001'), undefined, 'older ones are removed');
  t.notOk(existsSync(join(h.dir, 'aaaaaa000000.yaml')));
  h.decide('aaaaaa000005', 'rolled_back', 99, 'uplink down');
  t.match(h.entries().at(-1), { status: 'rolled_back', decidedAt: 99, rollbackReason: 'uplink down' });
  t.equal(h.text('../../etc/passwd'), undefined, 'only revision names are read');
  t.equal(statSync(join(h.dir, 'index.json')).mode & 0o777, 0o600);
});
