// ≥60 hostile configuration files through `check-config`: every one exits 2 with a
// message naming the problem, none with a stack trace or any other exit. Most run in
// process through main() (fast); the resource-exhaustion ones run as real processes
// under the unit's --max-old-space-size=128, where an expansion would abort V8.
import t from 'tap';
import { spawn, execFileSync } from 'node:child_process';
import { writeFileSync, mkdirSync, symlinkSync, chmodSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { tempDir } from '../helpers/gateway.js';
import { main } from '../../edge/cli.js';

const dir = tempDir('ee-hostile-');
const ok = (extra = '') => `site: { id: s }\ngateway: { id: g, dataDir: ${join(dir, 'data')} }\n${extra}`;
const pem = join(dir, 'ca.pem');
writeFileSync(pem, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
const openKey = join(dir, 'open-key.pem');
writeFileSync(openKey, '-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n');
chmodSync(openKey, 0o644);
const empty = join(dir, 'empty.pem');
writeFileSync(empty, '');
const aFile = join(dir, 'a-file');
writeFileSync(aFile, 'x');

const bomb = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
for (let i = 1; i < 10; i++)
  bomb.push(
    `${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9)
      .fill(`*${String.fromCharCode(96 + i)}`)
      .join(',')}]`,
  );

// [name, file content (or a function making the file and returning its path), expected stderr]
type Case = [string, string | (() => string), RegExp];
const cases: Case[] = [
  ['alias bomb (billion laughs)', `${bomb.join('\n')}\n${ok()}`, /alias/i],
  ['alias bomb inside a section', `${ok()}meters: { buses: &x [1,2] }\nz: [${Array(200).fill('*x').join(',')}]\n`, /alias|unknown key/i],
  ['deep flow nesting', `${ok()}x: ${'['.repeat(5000)}${']'.repeat(5000)}\n`, /nested|YAML/],
  ['deep block nesting', ok() + Array.from({ length: 60 }, (_, i) => `${' '.repeat(i * 2)}k${i}:`).join('\n') + ' 1\n', /nested|unknown key/],
  ['unclosed flow', `${ok()}uplink: { url: "mqtt://x"\n`, /YAML/],
  ['unclosed quote', `${ok()}site: { id: "s }\n`, /YAML/],
  ['duplicate key', `${ok()}log: { level: info }\nlog: { level: warn }\n`, /YAML.*(unique|duplicate)/i],
  ['tab indentation', `site:\n\tid: s\n`, /YAML/],
  [
    'binary garbage',
    () => {
      const p = join(dir, 'garbage.yaml');
      writeFileSync(p, Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256)));
      return p;
    },
    /NUL|YAML/,
  ],
  ['NUL bytes', `${ok()}\u0000\u0000\n`, /NUL/],
  [
    'invalid UTF-8',
    () => {
      const p = join(dir, 'utf8.yaml');
      writeFileSync(p, Buffer.concat([Buffer.from(ok()), Buffer.from('site: { name: "'), Buffer.from([0xff, 0xfe]), Buffer.from('" }\n')]));
      return p;
    },
    /YAML|invalid/,
  ],
  ['empty file', '', /site|required|mapping/],
  ['only comments', '# nothing\n', /site|required|mapping/],
  ['scalar root', '42\n', /mapping/],
  ['list root', '- a\n- b\n', /mapping/],
  ['null root', 'null\n', /site|required|mapping/],
  ['custom tag', `${ok()}x: !evil { a: 1 }\n`, /YAML|tag|unknown key/i],
  ['js function tag', `${ok()}x: !!js/function "function(){}"\n`, /YAML|tag|unknown key/i],
  ['1.5 MB file', `${ok()}# ${'x'.repeat(1_500_000)}\n`, /more than/],
  [
    '40 MB sparse file',
    () => {
      const p = join(dir, 'huge.yaml');
      writeFileSync(p, ok());
      truncateSync(p, 40 * 1048576);
      return p;
    },
    /more than/,
  ],
  ['12k buses under the size cap', `${ok()}meters:\n  buses: [${Array.from({ length: 12_000 }, (_, i) => `{id: b${i}}`).join(',')}]\n`, /more than the 10000/],
  ['20k keys', `${ok()}x: {${Array.from({ length: 20_000 }, (_, i) => `k${i}: 1`).join(',')}}\n`, /more than 10000|unknown key/],
  [
    'a directory',
    () => {
      const p = join(dir, 'cfgdir');
      mkdirSync(p);
      return p;
    },
    /not a regular file/,
  ],
  [
    'a FIFO',
    () => {
      const p = join(dir, 'fifo.yaml');
      execFileSync('mkfifo', [p]);
      return p;
    },
    /not a regular file/,
  ],
  [
    'a symlink loop',
    () => {
      const p = join(dir, 'loop.yaml');
      symlinkSync(p, p);
      return p;
    },
    /ELOOP/,
  ],
  ['missing file', () => join(dir, 'none.yaml'), /ENOENT/],
  ['/dev/zero', () => '/dev/zero', /not a regular file/],
  // Schema
  ['unknown top-level key', `${ok()}bogus: 1\n`, /bogus: unknown key/],
  ['missing site', `gateway: { id: g, dataDir: ${dir}/d }\n`, /site: required/],
  ['missing gateway id', `site: { id: s }\ngateway: { dataDir: ${dir}/d }\n`, /gateway.id: required/],
  ['site id with a slash', `site: { id: "a/b" }\ngateway: { id: g, dataDir: ${dir}/d }\n`, /site.id/],
  ['site id with MQTT wildcard', `site: { id: "a+#" }\ngateway: { id: g, dataDir: ${dir}/d }\n`, /site.id/],
  ['site id 10 kB', `site: { id: "${'s'.repeat(10_000)}" }\ngateway: { id: g, dataDir: ${dir}/d }\n`, /site.id/],
  ['uplink url scheme', `${ok()}uplink: { url: "http://x" }\n`, /uplink.url/],
  ['protocol version 7', `${ok()}uplink: { protocolVersion: 7 }\n`, /protocolVersion/],
  ['keepalive 0', `${ok()}uplink: { keepaliveS: 0 }\n`, /keepaliveS/],
  ['maxInflight string', `${ok()}uplink: { maxInflight: "lots" }\n`, /maxInflight/],
  ['batchMaxBytes huge', `${ok()}uplink: { batchMaxBytes: 1e12 }\n`, /batchMaxBytes/],
  ['topic prefix with #', `${ok()}uplink: { topicPrefix: "a/#" }\n`, /topicPrefix/],
  ['http port 70000', `${ok()}http: { port: 70000 }\n`, /http.port/],
  ['http port negative', `${ok()}http: { port: -1 }\n`, /http.port/],
  ['quota 0', `${ok()}outbox: { quotaMB: 0 }\n`, /quotaMB/],
  ['quota NaN', `${ok()}outbox: { quotaMB: .nan }\n`, /quotaMB/],
  ['quota infinite', `${ok()}outbox: { quotaMB: .inf }\n`, /quotaMB/],
  ['synchronous off', `${ok()}outbox: { synchronous: "off" }\n`, /synchronous/],
  ['disk budget 1 MB', `site: { id: s }\ngateway: { id: g, dataDir: ${dir}/d, diskBudgetMB: 1 }\n`, /diskBudgetMB/],
  ['reserve negative', `site: { id: s }\ngateway: { id: g, dataDir: ${dir}/d, diskReserveMB: -5 }\n`, /diskReserveMB/],
  ['shutdown timeout 1 day', `site: { id: s }\ngateway: { id: g, dataDir: ${dir}/d, shutdownTimeoutMs: 86400000 }\n`, /shutdownTimeoutMs/],
  ['commands maxAgeS 0', `${ok()}commands: { maxAgeS: 0 }\n`, /maxAgeS/],
  ['clock skew 1 day', `${ok()}commands: { maxClockSkewS: 86400 }\n`, /maxClockSkewS/],
  ['log level', `${ok()}log: { level: loud }\n`, /log.level/],
  ['section as a list', `${ok()}uplink: [1, 2]\n`, /uplink/],
  ['section as a string', `${ok()}outbox: "big"\n`, /outbox/],
  ['secret env missing', `${ok()}uplink: { username: u, password: { env: EE_NO_SUCH_VAR_HOSTILE } }\n`, /uplink.password/],
  ['secret file missing', `${ok()}uplink: { username: u, password: { file: ${dir}/no-secret } }\n`, /uplink.password/],
  ['secret with two sources', `${ok()}uplink: { password: { env: A, file: B } }\n`, /uplink.password/],
  // Referenced files and directories
  ['dataDir under /proc', `site: { id: s }\ngateway: { id: g, dataDir: /proc/estate/data }\n`, /pseudo-filesystem/],
  ['dataDir under /sys', `site: { id: s }\ngateway: { id: g, dataDir: /sys/estate }\n`, /pseudo-filesystem/],
  ['dataDir is a file', `site: { id: s }\ngateway: { id: g, dataDir: ${aFile} }\n`, /not a directory/],
  ['dataDir below a file', `site: { id: s }\ngateway: { id: g, dataDir: ${aFile}/sub/data }\n`, /not a directory/],
  ['uplink.tls.ca missing', `${ok()}uplink: { url: "mqtts://x:8883", tls: { ca: ${dir}/no-ca.pem } }\n`, /uplink.tls.ca: .*no such file/],
  ['uplink.tls.ca a directory', `${ok()}uplink: { url: "mqtts://x:8883", tls: { ca: ${dir} } }\n`, /uplink.tls.ca: .*not a regular file/],
  ['uplink.tls.ca empty', `${ok()}uplink: { url: "mqtts://x:8883", tls: { ca: ${empty} } }\n`, /uplink.tls.ca: .*empty/],
  ['uplink.tls.key world-readable', `${ok()}uplink: { url: "mqtts://x:8883", tls: { ca: ${pem}, cert: ${pem}, key: ${openKey} } }\n`, /uplink.tls.key: .*chmod 600/],
  ['uplink.tls.cert without key', `${ok()}uplink: { url: "mqtts://x:8883", tls: { cert: ${pem} } }\n`, /cert and key (go|must be given) together/],
  ['console cert missing', `${ok()}console: { tls: { enabled: true, cert: ${dir}/no-cert.pem, key: ${dir}/no-key.pem } }\n`, /console.tls.cert: .*no such file/],
  ['console key world-readable', `${ok()}console: { tls: { enabled: true, cert: ${pem}, key: ${openKey} } }\n`, /console.tls.key: .*chmod 600/],
];

t.ok(cases.length >= 60, `${cases.length} hostile configuration files`);

t.test('check-config on every hostile file: exit 2, a message, no stack trace', async (t) => {
  const write = process.stderr.write.bind(process.stderr);
  for (const [i, [name, content, expect]] of cases.entries()) {
    const path = typeof content === 'function' ? content() : join(dir, `case-${i}.yaml`);
    if (typeof content === 'string') writeFileSync(path, content);
    let err = '';
    (process.stderr as unknown as { write: (s: string) => boolean }).write = (s: string) => ((err += s), true);
    let code: number | undefined;
    let threw: unknown;
    const t0 = Date.now();
    try {
      code = await main(['check-config', '--config', path]);
    } catch (e) {
      threw = e;
    } finally {
      (process.stderr as unknown as { write: typeof write }).write = write;
    }
    if (process.env.EE_TIME) write(`${name} ${Date.now() - t0} ms\n`);
    t.equal(threw, undefined, `${name}: no exception`);
    t.equal(code, 2, `${name}: exit 2`);
    t.match(err, expect, `${name}: says why (${err.split('\n').slice(1, 2).join('').trim().slice(0, 120)})`);
    t.notMatch(err, /\n\s+at .+:\d+:\d+/, `${name}: no stack trace`);
  }
});

t.test('resource exhaustion as real processes under --max-old-space-size=128: exit 2, never an abort', async (t) => {
  const TSX = pathToFileURL(join(process.cwd(), 'node_modules/tsx/dist/loader.mjs')).href;
  const MAIN = join(process.cwd(), 'edge/main.ts');
  const big = join(dir, 'buses-200k.yaml');
  writeFileSync(big, `${ok()}meters:\n  buses:\n${Array.from({ length: 200_000 }, (_, i) => `    - { id: b${i} }`).join('\n')}\n`);
  const nearCap = join(dir, 'near-cap.yaml');
  writeFileSync(
    nearCap,
    `${ok()}meters:\n  buses: [${Array.from({ length: 9_000 }, (_, i) => `{id: bus${i}, devices: [{id: m${i}}]}`)
      .join(',')
      .slice(0, 1_000_000 - 200)}]\n`,
  );
  const bombFile = join(dir, 'bomb.yaml');
  writeFileSync(bombFile, `${bomb.join('\n')}\n${ok()}`);
  const proc = join(dir, 'proc.yaml');
  writeFileSync(proc, `site: { id: s }\ngateway: { id: g, dataDir: /proc/estate/data }\n`);
  for (const [name, file, args] of [
    ['200k buses', big, ['check-config']],
    ['~1 MB of buses', nearCap, ['check-config']],
    ['alias bomb', bombFile, ['check-config']],
    ['run with a dataDir under /proc', proc, ['run']],
  ] as const) {
    const child = spawn(process.execPath, ['--max-old-space-size=128', '--import', TSX, MAIN, ...args, '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const killer = setTimeout(() => child.kill('SIGTERM'), 60_000);
    const [code, signal] = await new Promise<[number | null, string | null]>((r) => child.on('exit', (c, s) => r([c, s])));
    clearTimeout(killer);
    t.equal(signal, null, `${name}: not killed (${signal})`);
    t.equal(code, 2, `${name}: exit 2 (${out.trim().split('\n').slice(-1)[0]?.slice(0, 160)})`);
    t.notMatch(out, /\n\s+at .+:\d+:\d+|heap out of memory/, `${name}: no stack trace, no heap abort`);
  }
});
