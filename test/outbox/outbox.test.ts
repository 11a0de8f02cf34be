import t from 'tap';
import { join } from 'node:path';
import { writeFileSync, readdirSync, existsSync } from 'node:fs';
import { pino } from 'pino';
import { openDatabase } from '../../edge/store/sqlite.js';
import { Outbox } from '../../edge/outbox/outbox.js';
import { ManualClock } from '../../edge/clock.js';
import { tempDir } from '../helpers/gateway.js';

const log = pino({ level: 'silent' });

function make(dir = tempDir(), quotaBytes = 1 << 30, clock = new ManualClock(Date.UTC(2026, 0, 1))) {
  const { db } = openDatabase(join(dir, 'outbox.db'), { log });
  const evicted: any[] = [];
  const ob = new Outbox({ db, clock, log, quotaBytes, onEvicted: (e) => evicted.push(e) });
  return { ob, db, dir, evicted, clock };
}

t.test('records get unique ids, per-stream sequences and a durable body', async (t) => {
  const { ob, db } = make();
  const a = await ob.append({ stream: 'telemetry', type: 'meter.reading', data: { v: 1 } });
  const b = await ob.append({ stream: 'telemetry', type: 'meter.reading', data: { v: 2 } });
  const c = await ob.append({ stream: 'access', type: 'door.access', data: { granted: true } });
  t.equal(a.seq, 1);
  t.equal(b.seq, 2);
  t.equal(c.seq, 1, 'each stream has its own sequence');
  t.not(a.id, b.id);
  t.match(a.id, /^[0-9a-f-]{36}$/);
  const recs = ob.read('telemetry', 0, Number.MAX_SAFE_INTEGER, 10, 1 << 20);
  t.same(
    recs.map((r) => r.seq),
    [1, 2],
  );
  const body = JSON.parse(recs[0]!.body);
  t.same(body, { id: a.id, seq: 1, ts: Date.UTC(2026, 0, 1), type: 'meter.reading', data: { v: 1 } });
  ob.close();
  db.close();
});

t.test('sequence numbers are never reused, even after everything was acknowledged and the process restarted', async (t) => {
  const dir = tempDir();
  let { ob, db } = make(dir);
  ob.appendBatch([1, 2, 3].map((v) => ({ stream: 'event' as const, type: 'x', data: { v } })));
  ob.ack('event', 1, 3);
  ob.flush();
  t.equal(ob.stats().streams.event.count, 0);
  ob.close();
  db.close();
  ({ ob, db } = make(dir));
  const r = await ob.append({ stream: 'event', type: 'x', data: {} });
  t.equal(r.seq, 4);
  ob.close();
  db.close();
});

t.test('ack deletes exactly the acknowledged range, in any order', async (t) => {
  const { ob, db } = make();
  ob.appendBatch(Array.from({ length: 10 }, (_, i) => ({ stream: 'telemetry' as const, type: 'x', data: i })));
  ob.ack('telemetry', 6, 10); // a later message acknowledged first
  ob.flush();
  t.same(
    ob.read('telemetry', 0, 1e9, 100, 1 << 20).map((r) => r.seq),
    [1, 2, 3, 4, 5],
  );
  ob.ack('telemetry', 1, 5);
  ob.ack('telemetry', 1, 5); // duplicate PUBACK handling is harmless
  ob.flush();
  t.equal(ob.stats().count, 0);
  t.equal(ob.stats().bytes, 0);
  ob.close();
  db.close();
});

t.test('read honours record and byte caps and the upper bound', async (t) => {
  const { ob, db } = make();
  ob.appendBatch(Array.from({ length: 50 }, (_, i) => ({ stream: 'telemetry' as const, type: 'x', data: 'y'.repeat(100) + i })));
  t.equal(ob.read('telemetry', 0, 1e9, 20, 1 << 20).length, 20);
  const small = ob.read('telemetry', 0, 1e9, 50, 1000);
  t.ok(small.length >= 1 && small.length < 10, `byte cap respected (${small.length})`);
  t.same(
    ob.read('telemetry', 10, 12, 50, 1 << 20).map((r) => r.seq),
    [11, 12],
  );
  t.equal(ob.read('telemetry', 0, 1e9, 50, 10).length, 1, 'one oversize record still goes alone');
  ob.close();
  db.close();
});

t.test('quota: only telemetry is evicted, oldest first, counted and reported', async (t) => {
  const { ob, db, evicted } = make(tempDir(), 50_000);
  const access = ob.appendBatch(Array.from({ length: 100 }, (_, i) => ({ stream: 'access' as const, type: 'door.access', data: { i, pad: 'a'.repeat(200) } })));
  ob.appendBatch(Array.from({ length: 400 }, (_, i) => ({ stream: 'telemetry' as const, type: 'r', data: { i, pad: 'b'.repeat(200) } })));
  const s = ob.stats();
  t.ok(s.bytes <= 50_000 || s.streams.telemetry.count === 0, `within quota (${s.bytes})`);
  t.equal(s.streams.access.count, 100, 'no access event evicted');
  t.ok(s.streams.telemetry.evicted > 0, 'evictions counted');
  t.ok(evicted.length > 0 && evicted[0].stream === 'telemetry');
  const remaining = ob.read('telemetry', 0, 1e9, 1000, 1 << 30).map((r) => r.seq);
  t.equal(remaining[remaining.length - 1], 400, 'newest telemetry kept');
  t.ok(remaining[0]! > 1, 'oldest telemetry gone');
  // A full buffer never rejects access events: fill far past the quota with them.
  const more = ob.appendBatch(Array.from({ length: 500 }, (_, i) => ({ stream: 'access' as const, type: 'door.access', data: { i, pad: 'c'.repeat(200) } })));
  t.equal(more.length, 500);
  t.equal(ob.stats().streams.access.count, 600);
  t.equal(ob.stats().streams.telemetry.count, 0, 'all telemetry made room first');
  t.equal(access[0]!.seq, 1);
  ob.close();
  db.close();
});

t.test('unsynchronised clock is flagged on each record', async (t) => {
  const { ob, db, clock } = make();
  clock.setSynced(false);
  await ob.append({ stream: 'event', type: 'x', data: 1 });
  t.match(ob.read('event', 0, 1e9, 1, 1e6)[0]!.body, /"clockUnsynced":true/);
  ob.close();
  db.close();
});

t.test('a corrupt database file is moved aside and a fresh one created', async (t) => {
  const dir = tempDir();
  const file = join(dir, 'outbox.db');
  writeFileSync(file, Buffer.alloc(8192, 0x41));
  const { db, movedAside } = openDatabase(file, { log });
  t.ok(movedAside, 'moved aside');
  t.ok(existsSync(movedAside!));
  const ob = new Outbox({ db, clock: new ManualClock(1), log, quotaBytes: 1e9 });
  t.equal((await ob.append({ stream: 'event', type: 'x', data: 1 })).seq, 1);
  t.ok(readdirSync(dir).some((f) => f.includes('.corrupt-')));
  ob.close();
  db.close();
});

t.test('a database damaged inside (valid header, broken pages) is detected at open', async (t) => {
  const dir = tempDir();
  const file = join(dir, 'outbox.db');
  {
    const { db } = openDatabase(file, { log });
    const ob = new Outbox({ db, clock: new ManualClock(1), log, quotaBytes: 1e9 });
    ob.appendBatch(Array.from({ length: 3000 }, (_, i) => ({ stream: 'telemetry' as const, type: 'x', data: 'z'.repeat(300) + i })));
    ob.close();
    db.pragma('wal_checkpoint(TRUNCATE)');
    db.close();
  }
  const { openSync, writeSync, closeSync, statSync } = await import('node:fs');
  const size = statSync(file).size;
  const fd = openSync(file, 'r+');
  // Scribble over interior b-tree pages (keep the 100-byte header intact).
  for (let off = 4096 * 3; off < size - 4096; off += 4096 * 7) writeSync(fd, Buffer.alloc(600, 0xff), 0, 600, off + 8);
  closeSync(fd);
  const { db, movedAside } = openDatabase(file, { log });
  t.ok(movedAside, 'corruption found by the integrity check');
  db.close();
});
