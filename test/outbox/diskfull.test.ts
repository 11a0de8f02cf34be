// A full disk (emulated with SQLite's max_page_count, which fails writes with
// SQLITE_FULL exactly as a full filesystem does): telemetry makes room or is refused
// and counted, access events are never rejected, nothing crashes.
import t from 'tap';
import { join } from 'node:path';
import { pino } from 'pino';
import { openDatabase } from '../../edge/store/sqlite.js';
import { Outbox, OutboxFullError } from '../../edge/outbox/outbox.js';
import { ManualClock } from '../../edge/clock.js';
import { tempDir } from '../helpers/gateway.js';

t.test('SQLITE_FULL: old telemetry is evicted to make room; access events are kept (in memory if need be) and retried', async (t) => {
  const { db } = openDatabase(join(tempDir(), 'outbox.db'), { log: pino({ level: 'silent' }) });
  const ob = new Outbox({ db, clock: new ManualClock(1), log: pino({ level: 'silent' }), quotaBytes: 1 << 30 });
  t.teardown(() => {
    ob.close();
    db.close();
  });
  // Fill the "disk" with telemetry until it refuses.
  const pageCount = (db.pragma('page_count', { simple: true }) as number) + 400;
  db.pragma(`max_page_count = ${pageCount}`);
  let refused = 0;
  for (let i = 0; i < 400 && refused === 0; i++) {
    try {
      ob.appendBatch(Array.from({ length: 100 }, (_, k) => ({ stream: 'telemetry' as const, type: 'r', data: { i, k, pad: 'x'.repeat(200) } })));
    } catch (err) {
      t.ok(err instanceof OutboxFullError, 'telemetry refused with OutboxFullError');
      refused++;
    }
  }
  t.equal(refused, 1, 'the disk filled up');
  const before = ob.stats();
  t.ok(before.dropped > 0, `dropped telemetry counted (${before.dropped})`);
  t.ok(before.evicted > 0, `old telemetry evicted to make room (${before.evicted})`);
  // Access events still go in: room was made by evicting telemetry.
  const acc = await ob.append({ stream: 'access', type: 'door.access', data: { granted: true } });
  t.equal(acc.seq, 1);
  t.equal(ob.stats().streams.access.count, 1);

  // No telemetry left to evict and the disk still full: access events wait in memory.
  db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);
  while (ob.stats().streams.telemetry.count > 0) {
    const head = ob.read('telemetry', 0, 1e12, 1000, 1 << 30);
    ob.ack('telemetry', head[0]!.seq, head[head.length - 1]!.seq);
    ob.flush();
  }
  db.exec('VACUUM'); // give the freed pages back, so the file is really full
  db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);
  const pending = Array.from({ length: 200 }, (_, i) => ob.append({ stream: 'access', type: 'door.access', data: { i, pad: 'y'.repeat(500) } }));
  await new Promise((r) => setTimeout(r, 50));
  t.ok(ob.pendingInMemory() > 0, `access events held in memory while the disk refuses (${ob.pendingInMemory()})`);
  // Space comes back (a technician cleaned up): the retry stores them, in order.
  db.pragma('max_page_count = 1073741823');
  const stored = await Promise.all(pending);
  t.equal(ob.pendingInMemory(), 0);
  t.same(
    stored.map((r) => r.seq),
    Array.from({ length: 200 }, (_, i) => i + 2),
    'kept in order, none lost',
  );
});
