import t from 'tap';
import mqtt from 'mqtt';
import { Broker } from '../helpers/broker.js';
import { Platform, waitFor } from '../helpers/subscriber.js';
import { startGateway } from '../helpers/gateway.js';

t.test('records reach the broker in batches, are deleted on PUBACK; birth and status', async (t) => {
  const broker = await Broker.start();
  t.teardown(() => broker.stop());
  const platform = await Platform.connect(broker.url);
  t.teardown(() => platform.close());
  const gw = await startGateway({ uplink: { url: broker.url, batchMaxRecords: 100 } });
  t.teardown(() => gw.stop());
  await waitFor(() => gw.uplink.isConnected(), 5000, 'connect');
  await waitFor(() => platform.raw.some((m) => m.topic === 'estate/t-site/t-gw/status'), 5000, 'birth');
  const birth = JSON.parse(platform.raw.find((m) => m.topic === 'estate/t-site/t-gw/status')!.payload.toString());
  t.equal(birth.state, 'online');
  t.equal(birth.v, 1);
  t.match(birth, { version: String, configRevision: String, uptimeS: Number });

  gw.outbox.appendBatch(Array.from({ length: 250 }, (_, i) => ({ stream: 'telemetry' as const, type: 'meter.reading', data: { i } })));
  await platform.waitFor(() => platform.records('telemetry').length >= 250, 5000, 'telemetry');
  const msgs = platform.messages.filter((m) => m.body.stream === 'telemetry');
  t.ok(msgs.length >= 3 && msgs.length < 250, `batched: ${msgs.length} messages`);
  t.ok(
    msgs.every((m) => m.body.records.length <= 100),
    'batch cap respected',
  );
  t.equal(msgs[0]!.topic, 'estate/t-site/t-gw/up/telemetry');
  t.same(
    platform.records('telemetry').map((r) => r.data.i),
    Array.from({ length: 250 }, (_, i) => i),
    'in order',
  );
  t.ok(platform.records('telemetry').every((r) => typeof r.id === 'string' && typeof r.ts === 'number'));
  await waitFor(() => gw.outbox.stats().count === 0, 5000, 'outbox emptied after PUBACK');
});

t.test('the will message reports offline when the gateway vanishes; graceful stop says offline too', async (t) => {
  const broker = await Broker.start();
  t.teardown(() => broker.stop());
  const platform = await Platform.connect(broker.url, 'estate/+/+/status');
  t.teardown(() => platform.close());
  const gw = await startGateway({ uplink: { url: broker.url, keepaliveS: 5 } });
  await waitFor(() => platform.raw.some((m) => JSON.parse(m.payload.toString()).state === 'online'), 5000, 'online');
  await gw.stop();
  await waitFor(() => platform.raw.some((m) => JSON.parse(m.payload.toString()).state === 'offline'), 5000, 'offline');
  // A new subscriber sees the retained state.
  const late = await mqtt.connectAsync(broker.url);
  t.teardown(() => late.endAsync(true));
  const got: string[] = [];
  late.on('message', (_t, p) => got.push(JSON.parse(p.toString()).state));
  await late.subscribeAsync('estate/t-site/t-gw/status');
  await waitFor(() => got.length > 0, 3000, 'retained');
  t.equal(got[0], 'offline');
});

t.test('broker unreachable: buffering, never an exit; then everything drains in per-stream order', async (t) => {
  const broker = await Broker.start();
  await broker.stop(); // the broker is gone before the gateway starts
  t.teardown(() => broker.stop());
  const gw = await startGateway({ uplink: { url: broker.url, backfillRecordsPerSecond: 0, batchMaxRecords: 200, reconnectMinMs: 2000, reconnectMaxMs: 3000 } }); // reconnects after the platform subscribed
  t.teardown(() => gw.stop());
  t.equal(gw.uplink.isConnected(), false);
  for (let k = 0; k < 20; k++) gw.outbox.appendBatch(Array.from({ length: 500 }, (_, i) => ({ stream: 'telemetry' as const, type: 'r', data: { n: k * 500 + i } })));
  for (let i = 0; i < 50; i++) await gw.outbox.append({ stream: 'access', type: 'door.access', data: { n: i } });
  t.equal(gw.outbox.stats().count, 10_050, 'all buffered');
  await new Promise((r) => setTimeout(r, 300));
  await broker.start();
  const platform = await Platform.connect(broker.url);
  t.teardown(() => platform.close());
  await platform.waitFor(() => platform.records('telemetry').length >= 10_000 && platform.records('access').length >= 50, 20_000, 'drain');
  for (const s of ['telemetry', 'access']) {
    const seqs = platform.records(s).map((r) => r.seq);
    const sorted = [...seqs].sort((a, b) => a - b);
    t.same(seqs, sorted, `${s}: order kept`);
    t.equal(new Set(seqs).size, seqs.length, `${s}: no duplicates in a clean reconnect`);
  }
  t.ok(
    platform.messages.filter((m) => m.body.stream === 'telemetry').every((m) => m.body.backfill === true),
    'marked as backfill',
  );
  const firstAccess = platform.messages.findIndex((m) => m.body.stream === 'access');
  const firstTelemetry = platform.messages.findIndex((m) => m.body.stream === 'telemetry');
  t.ok(firstAccess < firstTelemetry, 'access events go before the telemetry backlog');
  await waitFor(() => gw.outbox.stats().count === 0, 5000, 'empty');
});

t.test('backlog drains at the configured rate while live data goes first', async (t) => {
  const broker = await Broker.start();
  t.teardown(() => broker.stop());
  await broker.stop();
  const gw = await startGateway({ uplink: { url: broker.url, backfillRecordsPerSecond: 2000, batchMaxRecords: 100, reconnectMinMs: 2000, reconnectMaxMs: 3000 } });
  t.teardown(() => gw.stop());
  gw.outbox.appendBatch(Array.from({ length: 3000 }, (_, i) => ({ stream: 'telemetry' as const, type: 'r', data: { old: i } })));
  await broker.start();
  const platform = await Platform.connect(broker.url);
  t.teardown(() => platform.close());
  await waitFor(() => gw.uplink.isConnected(), 5000, 'connect');
  const t0 = Date.now();
  // Live readings while the backlog drains.
  for (let i = 0; i < 5; i++) {
    await gw.outbox.append({ stream: 'telemetry', type: 'r', data: { live: i } });
    await new Promise((r) => setTimeout(r, 50));
  }
  await platform.waitFor(() => platform.records('telemetry').filter((r) => r.data.live !== undefined).length === 5, 3000, 'live');
  const backfilledWhenLiveDone = platform.records('telemetry').filter((r) => r.data.old !== undefined).length;
  t.ok(backfilledWhenLiveDone < 3000, `live data did not wait for the backlog (${backfilledWhenLiveDone} of 3000 old records sent by then)`);
  await platform.waitFor(() => platform.records('telemetry').filter((r) => r.data.old !== undefined).length >= 3000, 10_000, 'backlog');
  const took = Date.now() - t0;
  t.ok(took >= 900, `rate-limited: 3000 records at 2000/s took ${took} ms (≥ ~1 s)`);
  const live = platform.messages.filter((m) => m.body.records.some((r: any) => r.data.live !== undefined));
  t.ok(
    live.every((m) => m.body.backfill === false),
    'live flagged as not backfill',
  );
  const oldSeqs = platform
    .records('telemetry')
    .filter((r) => r.data.old !== undefined)
    .map((r) => r.seq);
  t.same(
    oldSeqs,
    [...oldSeqs].sort((a, b) => a - b),
    'backlog in order',
  );
});

t.test('MQTT 3.1.1 and username/password from an env secret', async (t) => {
  const { writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { execFileSync } = await import('node:child_process');
  const { tempDir, testConfig } = await import('../helpers/gateway.js');
  const dir = tempDir();
  const pwfile = join(dir, 'passwd');
  writeFileSync(pwfile, 'gw:placeholder\n');
  execFileSync('mosquitto_passwd', ['-b', pwfile, 'gw', 'right-password']);
  // mosquitto drops root privileges: let its user read the file.
  const { chmodSync } = await import('node:fs');
  chmodSync(dir, 0o755);
  chmodSync(pwfile, 0o644);
  const broker = await Broker.start(`password_file ${pwfile}\nallow_anonymous false\n`);
  t.teardown(() => broker.stop());
  const { Gateway } = await import('../../edge/gateway.js');
  const { silentLog } = await import('../helpers/gateway.js');
  const wrong = new Gateway({ loaded: testConfig({ uplink: { url: broker.url, reconnectMinMs: 100, username: 'gw', password: { env: 'EE_T_PW' } } }, { EE_T_PW: 'wrong' }), log: silentLog, modules: [] });
  await wrong.start();
  t.teardown(() => wrong.stop());
  // Bounded by the refusals themselves, not a sleep: two attempts counted, each refused by the broker.
  await waitFor(() => wrong.uplink.state().failures >= 2 && /Not authorized|Bad User Name or Password/.test(wrong.uplink.state().lastError ?? ''), 5000, 'two refused attempts');
  t.equal(wrong.uplink.isConnected(), false, 'refused with a wrong password, keeps retrying');
  t.match(wrong.uplink.state().lastError ?? '', /Not authorized|Bad User Name or Password/);
  const right = new Gateway({ loaded: testConfig({ gateway: { id: 'gw2' }, uplink: { url: broker.url, protocolVersion: 4, username: 'gw', password: { env: 'EE_T_PW' } } }, { EE_T_PW: 'right-password' }), log: silentLog, modules: [] });
  await right.start();
  t.teardown(() => right.stop());
  await waitFor(() => right.uplink.isConnected(), 5000, 'MQTT 3.1.1 connect with password');
  t.pass('connected with MQTT 3.1.1');
});
