// Access decisions (people, groups, validity, weekly windows in the estate's time zone),
// person commands, the event log, and every bad-input case: virtual time throughout.
import t from 'tap';
import { doorsRig, baseDoors } from './harness.js';
import { VirtualTime } from '../../drivers/gpio/virtual-time.js';
import { SimulatedGpio } from '../../drivers/gpio/simulated.js';
import { GpioError } from '../../drivers/gpio/types.js';
import { testConfig, tempDir } from '../helpers/gateway.js';
import type { ConfigError } from '../../edge/config/load.js';
import { compileSchedule, inSchedule, ZonedWeek } from '../../edge/doors/schedule.js';
import type { FacesApi } from '../../edge/vision/api.js';

/** Wall-clock time in Asia/Shanghai (UTC+8, no DST) → UTC ms. */
const cst = (y: number, mo: number, d: number, h: number, mi = 0) => Date.UTC(y, mo - 1, d, h - 8, mi);

t.test('weekly windows across midnight and the week boundary; validity periods (Asia/Shanghai)', async (t) => {
  // 2026-11-27 is a Friday.
  const vt = new VirtualTime(cst(2026, 11, 27, 12));
  const r = await doorsRig(baseDoors(), { vt });
  const up = async (a: Record<string, unknown>) => t.equal((await r.cmd('person.upsert', { kind: 'resident', doorGroups: ['residents-a'], ...a })).ok, true, `upsert ${a.id}`);
  await up({ id: 'night', schedule: [{ days: ['fri'], start: '22:00', end: '02:00' }] });
  await up({ id: 'sunnight', schedule: [{ days: ['sun'], start: '23:00', end: '01:00' }] });
  await up({ id: 'monday', schedule: [{ days: ['mon'], start: '00:00', end: '24:00' }] });
  await up({ id: 'weekend', validFrom: '2026-11-28T00:00:00+08:00', validUntil: cst(2026, 11, 29, 0) });
  const access = r.g.services.get('access')!;
  const at = (h: [number, number, number, number], expect: Record<string, string>) => {
    vt.advance(cst(2026, 11, h[0], h[1], h[2]) + h[3] - vt.now());
    for (const [id, reason] of Object.entries(expect)) {
      // Face access searches only persons mayEnter() admits: it must agree with the rules.
      t.equal(access.mayEnter!('bldg-a', id), reason === 'granted', `${id}: mayEnter agrees (${reason})`);
      const d = access.decide({ doorId: 'bldg-a', credential: 'face', personId: id, score: 0.8 });
      t.equal(d.reason, reason, `${id} at 11-${h[0]} ${h[1]}:${String(h[2]).padStart(2, '0')}${h[3] ? `+${h[3]}ms` : ''} → ${reason}`);
      t.equal(d.granted, reason === 'granted');
    }
  };
  at([27, 21, 59, 0], { night: 'outside_schedule', weekend: 'not_yet_valid', monday: 'outside_schedule' });
  at([27, 22, 0, 0], { night: 'granted' });
  at([27, 23, 59, 59_999], { night: 'granted', weekend: 'not_yet_valid' });
  at([28, 0, 0, 0], { night: 'granted', weekend: 'granted' });
  at([28, 1, 59, 0], { night: 'granted' });
  at([28, 2, 0, 0], { night: 'outside_schedule' });
  at([28, 22, 30, 0], { night: 'outside_schedule', sunnight: 'outside_schedule' });
  at([28, 23, 59, 59_999], { weekend: 'granted' });
  at([29, 0, 0, 0], { weekend: 'expired' });
  at([29, 23, 30, 0], { sunnight: 'granted', monday: 'outside_schedule' });
  at([30, 0, 0, 0], { sunnight: 'granted', monday: 'granted' });
  at([30, 0, 59, 0], { sunnight: 'granted' });
  at([30, 1, 0, 0], { sunnight: 'outside_schedule', monday: 'granted' });
  at([30, 23, 59, 0], { monday: 'granted' });
  t.equal(access.mayEnter!('no-such-door', 'monday'), false, 'an unknown door admits no one');
  t.equal(access.mayEnter!('bldg-a', 'nobody'), false, 'an unknown person is not admitted');
  await r.stop();
});

t.test('schedule compiler and zone arithmetic', async (t) => {
  const iv = compileSchedule([{ days: ['sun'], start: '22:00', end: '06:00' }]);
  t.same(
    iv,
    [
      [6 * 1440 + 22 * 60, 7 * 1440],
      [0, 360],
    ],
    'Sunday night wraps into Monday',
  );
  t.ok(inSchedule(iv, 5 * 60));
  t.notOk(inSchedule(iv, 6 * 60));
  const sh = new ZonedWeek('Asia/Shanghai');
  t.equal(sh.minuteOfWeek(cst(2026, 11, 30, 0, 30)), 30, 'Monday 00:30 in Shanghai');
  t.equal(new ZonedWeek('UTC').minuteOfWeek(cst(2026, 11, 30, 0, 30)), 6 * 1440 + 16 * 60 + 30, 'same instant is Sunday 16:30 UTC');
  t.notOk(ZonedWeek.valid('Mars/Olympus'));
});

t.test('decision reasons: groups, disabled, unknown person and door, credentials', async (t) => {
  const r = await doorsRig();
  await r.cmd('person.upsert', { id: 'p-a', kind: 'resident', doorGroups: ['residents-a'] });
  await r.cmd('person.upsert', { id: 'p-off', kind: 'staff', doorGroups: ['residents-a'], enabled: false });
  const access = r.g.services.get('access')!;
  const d = (doorId: string, personId?: string, credential: any = 'face') => access.decide({ doorId, credential, ...(personId ? { personId } : {}) }).reason;
  t.equal(d('bldg-a', 'p-a'), 'granted');
  t.equal(d('bldg-b', 'p-a'), 'door_not_allowed');
  t.equal(d('garage', 'p-a'), 'door_not_allowed', 'a door in no group');
  t.equal(d('bldg-a', 'p-off'), 'disabled');
  t.equal(d('bldg-a', 'nobody'), 'unknown_person');
  t.equal(d('nowhere', 'p-a'), 'unknown_door');
  t.equal(d('gate'), 'person_required', 'face without a person');
  t.equal(d('gate', undefined, 'fire'), 'invalid_credential');
  t.equal(d('gate', undefined, 'bogus'), 'invalid_credential');
  t.same(access.person('p-a'), { id: 'p-a', kind: 'resident', doorGroups: ['residents-a'] });
  t.same(
    access.doors().map((x) => x.id),
    ['gate', 'bldg-a', 'bldg-b', 'garage'],
  );
  const acc = r.records('access');
  t.equal(acc.length, 9, 'every decision is an access record');
  t.match(acc[0]!.data, { doorId: 'bldg-a', personId: 'p-a', credential: 'face', granted: true, personKind: 'resident' });
  t.match(acc[6]!.data, { reason: 'person_required', granted: false });
  t.match(await r.metric('estate_door_decisions_total'), /door="\(unknown\)",granted="false",reason="unknown_door"} 1/);
  await r.stop();
});

t.test('person commands: list, filters, paging, delete; people survive a restart', async (t) => {
  const dataDir = tempDir();
  const r = await doorsRig(baseDoors(), { dataDir });
  for (const [id, kind, name] of [
    ['r1', 'resident', '张伟'],
    ['s1', 'staff', 'Wang Qiang'],
    ['v1', 'visitor', 'Guest'],
    ['r2', 'resident', 'Li Na'],
  ])
    t.equal((await r.cmd('person.upsert', { id, kind, name, doorGroups: [kind === 'resident' ? 'residents-a' : 'residents-b'] })).result.created, true);
  const again = await r.cmd('person.upsert', { id: 'r1', kind: 'resident', name: '张伟', doorGroups: ['residents-b'] });
  t.equal(again.result.created, false, 'replace');
  const all = (await r.cmd('person.list')).result;
  t.equal(all.total, 4);
  t.same(
    all.people.map((p: any) => p.id),
    ['r1', 'r2', 's1', 'v1'],
  );
  t.equal(all.faceAccess, false);
  t.same(
    (await r.cmd('person.list', { kind: 'resident' })).result.people.map((p: any) => p.id),
    ['r1', 'r2'],
  );
  t.same(
    (await r.cmd('person.list', { doorGroup: 'residents-b' })).result.people.map((p: any) => p.id),
    ['r1', 's1', 'v1'],
  );
  t.same(
    (await r.cmd('person.list', { query: 'wang' })).result.people.map((p: any) => p.id),
    ['s1'],
  );
  t.same(
    (await r.cmd('person.list', { limit: 2, offset: 2 })).result.people.map((p: any) => p.id),
    ['s1', 'v1'],
  );
  t.same((await r.cmd('person.delete', { id: 'v1' })).result, { id: 'v1', deleted: true, facesRemoved: null, note: 'face access unavailable: no face templates to remove here' });
  await r.stop();
  const r2 = await doorsRig(baseDoors(), { dataDir });
  t.same(
    (await r2.cmd('person.list')).result.people.map((p: any) => [p.id, p.doorGroups[0]]),
    [
      ['r1', 'residents-b'],
      ['r2', 'residents-a'],
      ['s1', 'residents-b'],
    ],
  );
  t.equal(r2.g.services.get('access')!.decide({ doorId: 'bldg-b', credential: 'face', personId: 'r1' }).granted, true, 'decisions from the stored people after a restart');
  await r2.stop();
});

t.test('person.sync: thousands of people in one transaction, all-or-nothing', async (t) => {
  const r = await doorsRig();
  const people = Array.from({ length: 3000 }, (_, i) => ({ id: `s${i}`, kind: 'resident', doorGroups: ['residents-a'], ...(i === 7 ? { validUntil: r.vt.now() - 1 } : {}) }));
  const bad = await r.cmd('person.sync', { people: [...people, { id: 's5', kind: 'resident', doorGroups: [] }, { id: 'x', kind: 'staff', doorGroups: [], schedule: [{ days: ['mon'], start: '9', end: '10:00' }] }] });
  t.equal(bad.error?.code, 'bad_people');
  t.same(bad.error?.details.problems, ['people[3000]: id "s5" appears twice', 'people[3001] (x): bad_schedule: malformed schedule: schedule[0].start: "9" is not a time HH:MM (00:00–23:59)']);
  t.equal((await r.cmd('person.list')).result.total, 0, 'nothing stored');
  const t0 = Date.now();
  const ok = await r.cmd('person.sync', { people });
  t.match(ok.result, { upserted: 3000, created: 3000 });
  t.match(ok.result.warnings.s7[0], /will be denied \(expired\)/);
  t.ok(Date.now() - t0 < 30_000, 'one command, one commit');
  const again = await r.cmd('person.sync', { people: people.slice(0, 10) });
  t.equal(again.result.created, 0, 'replacements are not created');
  const access = r.g.services.get('access')!;
  t.equal(access.decide({ doorId: 'bldg-a', credential: 'face', personId: 's2999' }).reason, 'granted');
  t.equal(access.decide({ doorId: 'bldg-a', credential: 'face', personId: 's7' }).reason, 'expired');
  await r.stop();
});

t.test('faces: enrolled through the faces service when present; "unavailable" (person still stored) when not', async (t) => {
  const r = await doorsRig();
  const png = Buffer.from('89504e470d0a1a0a', 'hex');
  const res = await r.cmd('person.upsert', { id: 'f1', kind: 'resident', doorGroups: ['residents-a'], faces: { photos: [png.toString('base64')] } });
  t.equal(res.ok, true);
  t.equal(res.result.faces.available, false);
  t.match(res.result.faces.message, /face access is unavailable/);
  t.ok((await r.cmd('person.list', { query: 'f1' })).result.total === 1, 'stored anyway');

  const calls: any[] = [];
  const fake: FacesApi = {
    enrol: async (id, input) => {
      calls.push(['enrol', id, input]);
      return { accepted: (input.photos?.length ?? 0) + (input.embeddings?.length ?? 0), rejected: [], templates: 2 };
    },
    remove: async (id) => {
      calls.push(['remove', id]);
      return 2;
    },
    count: () => 2,
    setGateUpdates: async (id, consent) => {
      calls.push(['gateUpdates', id, consent]);
      return { gateUpdates: consent, learnedRemoved: consent ? 0 : 1 };
    },
    gateUpdates: () => ({ gateUpdates: false, learned: 0 }),
  };
  r.g.services.provide('faces', fake);
  const res2 = await r.cmd('person.upsert', { id: 'f2', kind: 'staff', doorGroups: ['residents-b'], faces: { photos: [`data:image/png;base64,${png.toString('base64')}`], embeddings: [[0.1, 0.2]], replace: true } });
  t.same(res2.result.faces, { available: true, accepted: 2, rejected: [], templates: 2 });
  t.equal(calls[0][1], 'f2');
  t.ok(Buffer.isBuffer(calls[0][2].photos[0]) && calls[0][2].photos[0].equals(png), 'photo decoded from base64 (data URL prefix accepted)');
  t.same(calls[0][2].embeddings, [[0.1, 0.2]]);
  t.equal(calls[0][2].replace, true);
  t.equal((await r.cmd('person.list', { query: 'f2' })).result.people[0].faceTemplates, 2);
  t.same((await r.cmd('person.delete', { id: 'f2' })).result, { id: 'f2', deleted: true, facesRemoved: 2 });
  t.same(calls[1], ['remove', 'f2']);
  // Consent alone (no photos): stored through the faces service, reported back.
  const c1 = await r.cmd('person.upsert', { id: 'f4', kind: 'resident', doorGroups: [], faces: { gateUpdates: true } });
  t.same(c1.result.faces, { available: true, accepted: 0, rejected: [], templates: 2, gateUpdates: true });
  const c2 = await r.cmd('person.upsert', { id: 'f4', kind: 'resident', doorGroups: [], faces: { gateUpdates: false } });
  t.same(c2.result.faces, { available: true, accepted: 0, rejected: [], templates: 2, gateUpdates: false, learnedRemoved: 1 });
  t.same(calls.slice(2), [
    ['gateUpdates', 'f4', true],
    ['gateUpdates', 'f4', false],
  ]);
  const bad = await r.cmd('person.upsert', { id: 'f3', kind: 'resident', doorGroups: [], faces: { photos: ['not base64!'] } });
  t.equal(bad.error?.code, 'bad_photo');
  t.equal((await r.cmd('person.list', { query: 'f3' })).result.total, 0, 'nothing stored on bad input');
  await r.stop();
});

t.test('access.events: recent decisions with filters and paging', async (t) => {
  const r = await doorsRig();
  await r.cmd('person.upsert', { id: 'p1', kind: 'resident', doorGroups: ['residents-a'] });
  const access = r.g.services.get('access')!;
  for (let i = 0; i < 6; i++) {
    access.decide({ doorId: i % 2 ? 'gate' : 'bldg-b', credential: 'face', personId: 'p1', score: 0.9 });
    r.vt.advance(60_000);
  }
  const all = (await r.cmd('access.events')).result.events;
  t.equal(all.length, 6);
  t.ok(all[0].seq > all[5].seq, 'newest first');
  const denied = (await r.cmd('access.events', { granted: false })).result.events;
  t.same([...new Set(denied.map((e: any) => e.doorId))], ['bldg-b']);
  t.equal(denied[0].reason, 'door_not_allowed');
  t.equal((await r.cmd('access.events', { doorId: 'gate', personId: 'p1', credential: 'face' })).result.events.length, 3);
  const page = (await r.cmd('access.events', { limit: 2, beforeSeq: all[1].seq })).result.events;
  t.same(
    page.map((e: any) => e.seq),
    [all[2].seq, all[3].seq],
  );
  t.equal((await r.cmd('access.events', { since: all[2].ts })).result.events.length, 3);
  t.equal(access.events({ doorId: 'gate' })[0]!.data.score, 0.9);
  await r.stop();
});

t.test('bad input: clear command errors, counters, no crash, doors untouched', async (t) => {
  const r = await doorsRig();
  const err = async (name: string, args: Record<string, unknown>, code: string, msg: RegExp, meta = {}) => {
    const res = await r.cmd(name, args, meta);
    t.equal(res.ok, false, `${name} refused`);
    t.equal(res.error?.code, code, `${name} → ${code}`);
    t.match(res.error?.message, msg);
    return res;
  };
  await err('door.unlock', { doorId: 'nope' }, 'unknown_door', /no door "nope"/);
  await err('door.lock', { doorId: 'nope' }, 'unknown_door', /no door/);
  await err('door.status', { doorId: 'nope' }, 'unknown_door', /no door/);
  await err('person.delete', { id: 'ghost' }, 'unknown_person', /no person "ghost"/);
  await err('door.unlock', { doorId: 'gate', personId: 'ghost' }, 'unknown_person', /no person/);
  const sched = await err(
    'person.upsert',
    {
      id: 'x',
      kind: 'resident',
      doorGroups: [],
      schedule: [
        { days: ['funday'], start: '25:00', end: '7:00' },
        { days: [], start: '08:00', end: '08:00' },
      ],
    },
    'bad_schedule',
    /malformed schedule/,
  );
  t.same(sched.error!.details.problems, [
    'schedule[0].days: "funday" is not a day (mon, tue, wed, thu, fri, sat, sun)',
    'schedule[0].start: "25:00" is not a time HH:MM (00:00–23:59)',
    'schedule[0].end: "7:00" is not a time HH:MM (00:00–24:00)',
    'schedule[1].days: at least one day (mon…sun)',
    'schedule[1]: start and end are equal (08:00); for a whole day use 00:00–24:00',
  ]);
  await err('person.upsert', { id: 'x', kind: 'resident', doorGroups: [], validFrom: 2000, validUntil: 1000 }, 'bad_validity', /must be after validFrom/);
  await err('person.upsert', { id: 'x', kind: 'resident', doorGroups: [], validUntil: '2026-12-01' }, 'bad_validity', /ISO 8601 date-time with a zone/);
  await err('person.upsert', { id: 'x', kind: 'alien', doorGroups: [] }, 'bad_args', /kind/);
  await err('person.upsert', { id: 'bad id/', kind: 'resident', doorGroups: [] }, 'bad_args', /id/);
  await err('door.unlock', { doorId: 'gate', durationMs: 7_200_000 }, 'bad_duration', /maxDurationMs/);
  t.equal((await r.cmd('person.list')).result.total, 0, 'nothing stored by refused upserts');
  // Warnings, not errors: unknown groups (another gateway's), validity already over or not begun.
  const warn = await r.cmd('person.upsert', { id: 'w', kind: 'visitor', doorGroups: ['bldg-z'], validUntil: r.vt.now() - 1000 });
  t.equal(warn.ok, true);
  t.match(warn.result.warnings.join('\n'), /"bldg-z" is not a door group on this gateway[\s\S]*will be denied \(expired\)/);
  // A stale unlock (e.g. delivered after an uplink outage) is refused and logged as a denial.
  await err('door.unlock', { doorId: 'gate' }, 'expired', /older than its TTL of 15000 ms/, { ts: r.vt.now() - 20_000 });
  await err('door.unlock', { doorId: 'gate', ttlMs: 1000 }, 'expired', /TTL of 1000 ms/, { ts: r.vt.now() - 2000 });
  const stale = r.records('access').filter((a) => a.data.reason === 'command_expired');
  t.equal(stale.length, 2);
  t.equal(r.gpio.history(17).length, 1, 'the gate never moved');
  const counters = await r.metric('estate_doors_rejected_total');
  for (const code of ['unknown_door', 'unknown_person', 'bad_schedule', 'bad_validity', 'bad_duration', 'expired']) t.match(counters, new RegExp(`code="${code}"} [1-9]`), `counter for ${code}`);
  t.equal((await r.cmd('gateway.ping')).ok, true, 'gateway alive');
  await r.stop();
});

t.test('GPIO export failure and a pin already in use: the door is out of service and safe, the others work', async (t) => {
  const vt = new VirtualTime(Date.UTC(2026, 0, 5, 4));
  const gpio = new SimulatedGpio({ timers: vt });
  gpio.drive(24, true);
  gpio.failOpen(24, new GpioError('export_failed', 'GPIO 536 (BCM 24, for door bldg-a contact) cannot be exported: EIO'));
  gpio.failOpen(16, new GpioError('busy', 'GPIO line 16 is already in use by a kernel driver'));
  const r = await doorsRig(baseDoors(), { vt, gpio });
  t.notOk(gpio.inUse(23), 'bldg-a lock line released after its contact failed');
  t.equal(gpio.level(23), false, 'and left locked');
  const h = r.g.healthReport().doors!;
  t.equal(h.ok, false);
  t.match(h.message, /door bldg-a: .*cannot be exported: EIO; door bldg-b: .*already in use/);
  const st = (await r.cmd('door.status')).result;
  t.match(st.doors.find((d: any) => d.id === 'bldg-a').fault, /EIO/);
  const res = await r.cmd('door.unlock', { doorId: 'bldg-b' });
  t.equal(res.error?.code, 'door_fault');
  t.equal((await r.cmd('door.unlock', { doorId: 'gate' })).ok, true, 'healthy doors keep working');
  const faults = r.records('alarm').filter((a) => a.data.alarm === 'door.fault');
  t.same(
    faults.map((a) => [a.data.doorId, a.data.code]),
    [
      ['bldg-a', 'export_failed'],
      ['bldg-b', 'busy'],
    ],
  );
  const counters = await r.metric('estate_doors_rejected_total');
  t.match(counters, /code="export_failed"} 1/);
  t.match(counters, /code="busy"} 1/);
  await r.stop();
});

t.test('an output write failure: the door reports a fault (alarm, counter, denials) until writes work again', async (t) => {
  const r = await doorsRig();
  r.gpio.failWrites(17, new GpioError('io', 'cannot write gpio529/value: EIO'));
  const res = await r.cmd('door.unlock', { doorId: 'gate' });
  t.equal(res.error?.code, 'door_fault');
  t.match(res.error?.message, /EIO/);
  t.equal(r.g.healthReport().doors!.ok, false);
  t.equal((await r.cmd('door.unlock', { doorId: 'gate' })).error?.code, 'door_fault', 'denied while faulted');
  r.gpio.failWrites(17, undefined);
  await r.cmd('door.lock', { doorId: 'gate' }); // the next write succeeds
  t.equal(r.g.healthReport().doors!.ok, true, 'healthy again');
  t.equal((await r.cmd('door.unlock', { doorId: 'gate' })).ok, true);
  const faults = r.records('alarm').filter((a) => a.data.alarm === 'door.fault');
  t.same(
    faults.map((a) => [a.type, a.data.doorId]),
    [
      ['alarm.raised', 'gate'],
      ['alarm.cleared', 'gate'],
    ],
  );
  t.match(await r.metric('estate_doors_rejected_total'), /code="io"} 1/);
  await r.stop();
});

t.test('config: duplicate pins and ids, unknown doors in groups, bad time zone', async (t) => {
  const doors = baseDoors() as any;
  doors.doors[1].contact.pin = 17;
  doors.doors.push({ id: 'gate', lock: { pin: 40 } });
  doors.groups.push({ id: 'residents-a', doors: ['atlantis'] });
  doors.timeZone = 'Mars/Olympus';
  doors.fire.input.pin = 12;
  const err = t.throws(() => testConfig({ doors })) as ConfigError;
  const p = err.problems.join('\n');
  t.match(p, /doors.timeZone: "Mars\/Olympus" is not an IANA time zone/);
  t.match(p, /doors.doors\[1\].contact.pin: BCM 17 is already used by doors.doors\[0\].lock/);
  t.match(p, /doors.doors\[3\].lock.pin: BCM 12 is already used by doors.fire.input/);
  t.match(p, /doors.doors\[4\].id: door "gate" is defined twice/);
  t.match(p, /doors.groups\[2\].id: group "residents-a" is defined twice/);
  t.match(p, /doors.groups\[2\].doors: "atlantis" is not a door/);
  const bad = t.throws(() => testConfig({ doors: { doors: [{ id: 'd', lock: { pin: 99, failMode: 'sometimes' } }] } })) as ConfigError;
  t.match(bad.problems.join('\n'), /doors.doors\[0\].lock.pin: must be <= 63[\s\S]*failMode: must be one of "failSecure", "failSafe"/);
  t.equal(testConfig({}).config.doors.doors.length, 0, 'no doors section: valid, module off');
});
