import t from 'tap';
import { writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseConfig, loadConfig, ConfigError, redactedConfig } from '../../edge/config/load.js';
import { tempDir } from '../helpers/gateway.js';
import { inspect } from 'node:util';

const minimal = `site: { id: estate-1 }\ngateway: { id: gw-1 }\n`;

t.test('a minimal file gets every default from the schema', async (t) => {
  const { config, revision } = parseConfig(minimal, 'x.yaml');
  t.equal(config.uplink.url, 'mqtt://127.0.0.1:1883');
  t.equal(config.uplink.protocolVersion, 5);
  t.equal(config.outbox.quotaMB, 512);
  t.equal(config.commands.maxAgeS, 60);
  t.equal(config.uplink.tls.rejectUnauthorized, true);
  t.equal(config.gateway.dataDir, '/var/lib/estate-edge');
  t.match(revision, /^[0-9a-f]{12}$/);
});

t.test('every problem is listed with its path and reason', async (t) => {
  const text = `site: { id: "bad id" }\ngateway: { id: gw-1, dataDr: /x }\nuplink:\n  protocolVersion: 6\n  maxInflight: 0\nlog: { level: loud }\nfoo: 1\n`;
  const err = t.throws(() => parseConfig(text, 'bad.yaml')) as ConfigError;
  t.ok(err instanceof ConfigError);
  const p = err.problems.join('\n');
  t.match(p, /site\.id: has a wrong format/);
  t.match(p, /gateway\.dataDr: unknown key/);
  t.match(p, /uplink\.protocolVersion: must be one of 5, 4/);
  t.match(p, /uplink\.maxInflight: must be >= 1/);
  t.match(p, /log\.level: must be one of "fatal"/);
  t.match(p, /foo: unknown key/);
  t.ok(err.problems.length >= 6, 'all errors reported at once');
});

t.test('YAML syntax errors and duplicate keys are reported', async (t) => {
  t.throws(() => parseConfig('site: { id: a\n', 'x'), ConfigError);
  const err = t.throws(() => parseConfig('site: {id: a}\nsite: {id: b}\ngateway: {id: g}\n', 'x')) as ConfigError;
  t.match(err.problems.join(), /YAML/);
  t.throws(() => parseConfig('- 1\n- 2\n', 'x'), /must be a mapping/);
});

t.test('cross-field checks', async (t) => {
  const err = t.throws(() => parseConfig(`${minimal}uplink: { reconnectMinMs: 5000, reconnectMaxMs: 1000, password: { value: x }, tls: { cert: /c.pem } }\n`, 'x')) as ConfigError;
  const p = err.problems.join('\n');
  t.match(p, /reconnectMaxMs: must be ≥/);
  t.match(p, /cert and key must be given together/);
  t.match(p, /uplink\.password: needs uplink\.username/);
});

t.test('secrets from env and file; never printed', async (t) => {
  const dir = tempDir();
  const f = join(dir, 'pw');
  writeFileSync(f, 's3cret-file\n', { mode: 0o600 });
  const a = parseConfig(`${minimal}uplink: { username: u, password: { file: ${f} } }\n`, 'x');
  t.equal(a.secrets.get('uplink.password')!.reveal(), 's3cret-file');
  const b = parseConfig(`${minimal}uplink: { username: u, password: { env: EE_PW } }\n`, 'x', { EE_PW: 's3cret-env' });
  const s = b.secrets.get('uplink.password')!;
  t.equal(s.reveal(), 's3cret-env');
  t.equal(JSON.stringify({ s }), '{"s":"***"}');
  t.notMatch(inspect(s), /s3cret/);
  t.notMatch(`${s}`, /s3cret/);
  const c = parseConfig(`${minimal}uplink: { username: u, password: { value: inline-s3cret } }\n`, 'x');
  t.notMatch(JSON.stringify(redactedConfig(c.config)), /inline-s3cret/);
  const err = t.throws(() => parseConfig(`${minimal}uplink: { username: u, password: { env: NOPE_NOT_SET } }\n`, 'x', {})) as ConfigError;
  t.match(err.problems[0], /uplink\.password: environment variable NOPE_NOT_SET is not set/);
  const err2 = t.throws(() => parseConfig(`${minimal}uplink: { username: u, password: { file: /nonexistent/pw } }\n`, 'x')) as ConfigError;
  t.match(err2.problems[0], /cannot read secret file \/nonexistent\/pw: ENOENT/);
  t.throws(() => parseConfig(`${minimal}uplink: { username: u, password: { env: A, file: B } }\n`, 'x'), ConfigError, 'exactly one source');
});

t.test('loadConfig: explicit path must exist; none falls back to the embedded simulated estate', async (t) => {
  t.throws(() => loadConfig({ path: '/nonexistent/config.yaml' }), /cannot read \/nonexistent\/config.yaml: ENOENT/);
  const dir = tempDir();
  const p = join(dir, 'c.yaml');
  writeFileSync(p, minimal);
  t.equal(loadConfig({ path: p }).config.site.id, 'estate-1');
  if (!existsSync('/etc/estate-edge/config.yaml')) {
    const e = loadConfig({});
    t.equal(e.source, 'embedded');
    t.equal(e.config.simulation.enabled, true);
    t.equal(e.config.gateway.dataDir, './var');
  }
});
