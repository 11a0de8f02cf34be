// Secrets are masked in every output, for every role, through one list derived from the
// schema (edge/config/redact.ts): config.get over MQTT and from the console (a viewer's
// too), the console's config view and download, validation diffs and the effective
// config, audit records, the log tail. Secrets here: an inline broker password, a broker
// URL with a password and a camera URL with one (rtsp://admin:…@).
import t from 'tap';
import { readFileSync } from 'node:fs';
import { startConsoleGateway, withAccounts, baseConfig, type ConsoleGateway, type Client } from './helpers.js';
import { tempDir } from '../helpers/gateway.js';
import { Broker } from '../helpers/broker.js';
import { Platform } from '../helpers/subscriber.js';
import { SECRET_PATHS, formatSecretPath, maskSecrets, maskUrlPassword, secretPathsOf } from '../../edge/config/redact.js';
import { Type } from '@sinclair/typebox';
import { SecretRef, URL_WITH_CREDENTIALS } from '../../edge/config/types.js';

const SECRETS = ['Broker-Secret-55', 'Url-Secret-33', 'Cam-Secret-77'];
const leaks = (x: unknown) => {
  const s = typeof x === 'string' ? x : JSON.stringify(x);
  return SECRETS.filter((p) => s.includes(p));
};

t.test('the list of secret paths comes from the schema', async (t) => {
  t.same(SECRET_PATHS.map(formatSecretPath).sort(), ['elevator.cars[].camera.source.url', 'uplink.password', 'uplink.tls.keyPassphrase', 'uplink.url', 'vision.camera.source.url'].sort());
  // A new field marked in any schema is on the list, in arrays and maps too.
  const s = Type.Object({ a: Type.Array(Type.Object({ token: SecretRef, feed: Type.String(URL_WITH_CREDENTIALS) })), m: Type.Record(Type.String(), SecretRef) });
  t.same(secretPathsOf(s).map(formatSecretPath).sort(), ['a[].feed', 'a[].token', 'm[]'].sort());
  t.equal(maskUrlPassword('rtsp://admin:pw@192.0.2.10:554/x'), 'rtsp://admin:***@192.0.2.10:554/x');
  t.equal(maskUrlPassword('rtsp://192.0.2.10/x?a=b@c'), 'rtsp://192.0.2.10/x?a=b@c', 'no userinfo: unchanged');
  t.same(maskSecrets({ note: 'see http://u:p@h/ and ftp://a:b@c/' }), { note: 'see http://u:***@h/ and ftp://a:***@c/' }, 'URLs inside free text too');
  t.same(maskSecrets({ feed: 'https://u:p@h/' }), { feed: 'https://u:***@h/' }, 'a URL with a password in an unmarked field is masked too');
});

let broker: Broker;
let g: ConsoleGateway;
let c: { admin: Client; tech: Client; viewer: Client };
let platform: Platform;
t.before(async () => {
  broker = await Broker.start();
  const dir = tempDir('ee-console-secrets-');
  const url = broker.url.replace('mqtt://', 'mqtt://gw:Url-Secret-33@');
  g = await startConsoleGateway({
    dir,
    config: baseConfig(dir, {
      uplink: { url, username: 'gw', password: { value: 'Broker-Secret-55' } },
      vision: { enabled: false, camera: { source: { kind: 'rtsp', url: 'rtsp://admin:Cam-Secret-77@192.0.2.10:554/Streaming/Channels/102' } } },
    }),
  });
  c = await withAccounts(g);
  platform = await Platform.connect(broker.url);
});
t.teardown(async () => {
  await platform?.close();
  await g?.stop();
  await broker?.stop();
});

t.test('config.get: over MQTT and from the console for every role, nothing secret', async (t) => {
  const mqtt = await platform.command('estate/t-site/t-gw', 'config.get');
  t.equal(mqtt.ok, true);
  t.same(leaks(mqtt), [], 'MQTT config.get');
  t.equal(mqtt.result.config.vision.camera.source.url, 'rtsp://admin:***@192.0.2.10:554/Streaming/Channels/102', 'the camera URL with its password masked, the rest readable');
  t.equal(mqtt.result.config.uplink.password.value, '***');
  for (const who of ['viewer', 'tech', 'admin'] as const) {
    const r = await c[who].post('/api/commands/config.get', {});
    t.equal(r.status, 200, `${who}: config.get`);
    t.same(leaks(r.body), [], `${who}: nothing secret`);
  }
});

t.test('config view, download, validation (diff, effective): masked; an edit keeps the real secrets', async (t) => {
  const view = await c.tech.get('/api/config');
  t.same(leaks(view.body), [], 'the view (YAML and running config)');
  t.match(view.body.yaml, /rtsp:\/\/admin:\*\*\*@192\.0\.2\.10/);
  const dl = await c.tech.get('/api/config/download');
  t.equal(dl.status, 200);
  t.same(leaks(dl.body), [], 'the download');
  // Edit the masked YAML: move the camera to another address, keep its (masked) password.
  const edited = (view.body.yaml as string).replace('192.0.2.10', '192.0.2.11');
  const v = await c.tech.post('/api/config/validate', { yaml: edited });
  t.equal(v.body.ok, true, JSON.stringify(v.body.problems));
  t.same(leaks(v.body), [], 'validation result: diff and effective config');
  t.match(v.body.diff, [{ path: 'vision.camera.source.url', from: 'rtsp://admin:***@192.0.2.10:554/Streaming/Channels/102', to: 'rtsp://admin:***@192.0.2.11:554/Streaming/Channels/102' }]);
  // A password change shows as changed, never as either value.
  const pw = await c.tech.post('/api/config/validate', { changes: [{ path: ['uplink', 'password', 'value'], value: 'Other-Secret-99' }] });
  t.equal(pw.body.ok, true);
  t.notMatch(JSON.stringify(pw.body), /Other-Secret-99|Broker-Secret-55/);
  t.match(pw.body.diff, [{ path: 'uplink.password.value', from: '***', to: '***', secretChanged: true }]);
  const apply = await c.tech.post('/api/config/apply', { yaml: edited, baseRevision: view.body.revision });
  t.equal(apply.status, 200, JSON.stringify(apply.body));
  t.same(leaks(apply.body), [], 'the apply answer');
  const file = readFileSync(g.configPath, 'utf8');
  t.match(file, /rtsp:\/\/admin:Cam-Secret-77@192\.0\.2\.11/, 'the file keeps the real password at the new address');
  t.match(file, /Broker-Secret-55/, 'and the broker password');
  // A masked URL password with nothing behind it is refused, not written as "***".
  const orphan = await c.tech.post('/api/config/validate', { changes: [{ path: ['uplink', 'url'], value: 'mqtts://x:***@broker.example:8883' }] });
  t.equal(orphan.body.ok, true, 'the current file has a password there: it is restored');
  const none = await c.tech.post('/api/config/validate', { yaml: edited.replace(/vision:/, 'extra: 1\nvision:') });
  t.equal(none.body.ok, false);
});

t.test('audit records, live events and the log tail: nothing secret', async (t) => {
  await c.admin.post('/api/commands/gateway.ping', { echo: 'rtsp://admin:Cam-Secret-77@192.0.2.10/' });
  const audit = await c.admin.get('/api/events?type=audit&limit=300');
  t.ok(audit.body.events.length > 3);
  t.same(leaks(audit.body), [], 'audit records (config applied with its diff, a command with a URL argument)');
  const logs = await c.tech.get('/api/logs?limit=500');
  t.same(leaks(logs.body), [], 'the log tail');
  t.same(leaks(g.logLines.join('\n')), [], 'the service log itself');
  // What the platform received of them (the uplink is connected to the real broker).
  await platform.waitFor(() => platform.records('audit').some((r) => r.data?.action === 'console.command' && r.data?.command === 'gateway.ping'), 10_000, 'the audit records upstream');
  const upstream = platform.records('audit');
  t.ok(
    upstream.some((r) => r.type === 'console.config.applied'),
    `${upstream.length} audit records upstream, the config apply among them`,
  );
  t.same(leaks(upstream), [], 'nothing secret in what went upstream');
});
