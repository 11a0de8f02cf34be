// Quota reached on a live gateway: only telemetry is evicted, oldest first; the
// eviction is counted in /metrics and reported upstream as an event, so the platform
// can tell a deliberate gap from lost data.
import t from 'tap';
import { Broker } from '../helpers/broker.js';
import { Platform } from '../helpers/subscriber.js';
import { startGateway } from '../helpers/gateway.js';

t.test('quota: telemetry evicted and reported, access events all delivered', async (t) => {
  const broker = await Broker.start();
  t.teardown(() => broker.stop());
  await broker.stop(); // outage: everything buffers
  const gw = await startGateway({ outbox: { quotaMB: 1 }, uplink: { url: broker.url, backfillRecordsPerSecond: 0, reconnectMinMs: 2000, reconnectMaxMs: 3000 } }); // reconnects after the platform subscribed
  t.teardown(() => gw.stop());
  const quota = 1048576;
  for (let i = 0; i < 160; i++) {
    gw.outbox.appendBatch(Array.from({ length: 50 }, (_, k) => ({ stream: 'telemetry' as const, type: 'meter.reading', data: { n: i * 50 + k, pad: 'p'.repeat(150) } })));
    gw.outbox.appendBatch([{ stream: 'access', type: 'door.access', data: { n: i, granted: true } }]);
  }
  const s = gw.outbox.stats();
  t.ok(s.bytes <= quota * 1.01, `within quota: ${s.bytes} bytes`);
  t.equal(s.streams.access.count, 160, 'no access event evicted');
  t.ok(s.streams.telemetry.evicted > 0, `${s.streams.telemetry.evicted} telemetry records evicted`);
  await new Promise((r) => setImmediate(r));
  t.match(await gw.metrics.text(), /estate_outbox_evicted_total\{stream="telemetry"\} [1-9]/);

  await broker.start();
  const platform = await Platform.connect(broker.url);
  t.teardown(() => platform.close());
  await platform
    .waitFor(() => platform.records('access').length === 160 && gw.outbox.stats().count === 0, 15_000, 'drain')
    .catch((e) => {
      console.error(JSON.stringify(gw.outbox.stats()), platform.records('access').length, gw.uplink.state());
      throw e;
    });
  const ev = platform.records('event').filter((r) => r.type === 'outbox.evicted');
  t.ok(ev.length > 0, 'eviction reported upstream');
  const evictedSeqs = new Set<number>();
  for (const e of ev) for (let q = e.data.fromSeq; q <= e.data.toSeq; q++) evictedSeqs.add(q);
  const got = platform.records('telemetry').map((r) => r.seq);
  const all = new Set([...got, ...evictedSeqs]);
  t.equal(all.size, 8000, 'every telemetry sequence number is either delivered or reported evicted');
  t.ok(Math.min(...got) > Math.min(...evictedSeqs), 'the oldest were evicted, the newest kept');
});
