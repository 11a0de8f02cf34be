import t from 'tap';
import { Broker } from '../helpers/broker.js';
import { Platform, waitFor } from '../helpers/subscriber.js';
import { startGateway } from '../helpers/gateway.js';

const BASE = 'estate/t-site/t-gw';

t.test('commands over MQTT: core commands, every kind of bad command, duplicates and TTL', async (t) => {
  const broker = await Broker.start();
  t.teardown(() => broker.stop());
  const platform = await Platform.connect(broker.url);
  t.teardown(() => platform.close());
  const gw = await startGateway({ uplink: { url: broker.url, password: { value: 'very-secret-pw' }, username: 'u' }, commands: { maxAgeS: 30, maxPayloadBytes: 4096 } });
  t.teardown(() => gw.stop());
  await waitFor(() => gw.uplink.isConnected(), 5000, 'connect');
  // The broker lets anonymous clients in, so a username/password is simply ignored by it.

  const ping = await platform.command(BASE, 'gateway.ping', { echo: 'hi' });
  t.equal(ping.ok, true);
  t.equal(ping.result.pong, true);
  t.equal(ping.result.echo, 'hi');

  const info = await platform.command(BASE, 'gateway.info');
  t.equal(info.ok, true);
  t.match(info.result, { version: String, site: 't-site', gateway: 't-gw', uplink: { connected: true }, outbox: { count: Number } });

  const cfg = await platform.command(BASE, 'config.get');
  t.equal(cfg.ok, true);
  t.equal(cfg.result.config.site.id, 't-site');
  t.notMatch(JSON.stringify(cfg.result), /very-secret-pw/, 'secrets masked');

  const list = await platform.command(BASE, 'commands.list');
  t.ok(list.result.some((c: any) => c.name === 'gateway.ping'));

  const unknown = await platform.command(BASE, 'door.teleport', {});
  t.match(unknown, { ok: false, error: { code: 'unknown_command' } });

  const badArgs = await platform.command(BASE, 'gateway.ping', { echo: 42, extra: true });
  t.match(badArgs, { ok: false, error: { code: 'bad_args' } });
  t.match(badArgs.error.message, /echo: must be string/);
  t.match(badArgs.error.message, /unknown argument "extra"/);

  const stale = await platform.command(BASE, 'gateway.ping', {}, { ts: Date.now() - 120_000 });
  t.match(stale, { ok: false, error: { code: 'expired' } });
  const expired = await platform.command(BASE, 'gateway.ping', {}, { expiresAt: Date.now() - 1 });
  t.match(expired, { ok: false, error: { code: 'expired' } });

  // The same id twice: executed once, the original result answered again.
  const first = await platform.command(BASE, 'gateway.ping', { echo: 'once' }, { id: 'dup-1' });
  const before = platform.records('result').length;
  await platform.client.publishAsync(`${BASE}/cmd`, JSON.stringify({ v: 1, id: 'dup-1', name: 'gateway.ping', args: { echo: 'twice' }, ts: Date.now() }), { qos: 1 });
  await platform.waitFor(() => platform.records('result').length > before, 5000, 'duplicate result');
  const dup = platform.records('result').at(-1)!.data;
  t.equal(dup.duplicate, true);
  t.same(dup.result, first.result, 'original result, not a second execution');

  // Garbage payloads: each gets an error result and a counter, never a crash.
  const garbage: Array<[Buffer | string, string]> = [
    ['{not json', 'bad_json'],
    ['[]', 'bad_envelope'],
    ['null', 'bad_envelope'],
    [JSON.stringify({ id: 'x1' }), 'bad_envelope'],
    [JSON.stringify({ id: 'x2', name: 'gateway.ping', args: 'str' }), 'bad_envelope'],
    [JSON.stringify({ id: 'x3', name: 'gateway.ping', bogus: 1 }), 'bad_envelope'],
    [Buffer.from([0xff, 0xfe, 0x00, 0x01]), 'bad_json'],
    [JSON.stringify({ id: 'x4', name: 'gateway.ping', args: { echo: 'x'.repeat(5000) } }), 'too_large'],
  ];
  for (const [payload, code] of garbage) {
    const n = platform.records('result').length;
    await platform.client.publishAsync(`${BASE}/cmd`, payload, { qos: 1 });
    await platform.waitFor(() => platform.records('result').length > n, 5000, `result for ${code}`);
    t.equal(platform.records('result').at(-1)!.data.error.code, code, `garbage → ${code}`);
  }
  const metrics = await gw.metrics.text();
  t.match(metrics, /estate_command_errors_total\{code="bad_json"\} 2/);
  t.match(metrics, /estate_command_errors_total\{code="too_large"\} 1/);
  t.match(metrics, /estate_command_errors_total\{code="expired"\} 2/);
  // Still alive and answering.
  t.equal((await platform.command(BASE, 'gateway.ping')).ok, true);
});

t.test('a handler that throws or hangs gives an error result', async (t) => {
  const { Type } = await import('@sinclair/typebox');
  const gw = await startGateway();
  t.teardown(() => gw.stop());
  gw.commands.register({
    name: 't.throw',
    description: '',
    role: 'technician',
    args: Type.Object({}),
    handler: () => {
      throw new Error('boom');
    },
  });
  gw.commands.register({ name: 't.hang', description: '', role: 'technician', args: Type.Object({}), timeoutMs: 100, handler: () => new Promise(() => {}) });
  const meta = (id: string) => ({ id, source: 'local' as const, receivedAt: Date.now() });
  t.match((await gw.commands.execute('t.throw', {}, meta('a'))).result, { ok: false, error: { code: 'internal', message: /boom/ } });
  t.match((await gw.commands.execute('t.hang', {}, meta('b'))).result, { ok: false, error: { code: 'timeout' } });
});
