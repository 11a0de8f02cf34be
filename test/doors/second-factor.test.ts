// The second factor (issue 14): door access modes (face, face_or_card, face_and_pin, card,
// card_and_pin), the per-person needsSecondFactor flag, cards from a Wiegand reader and
// PINs from its keypad or the console pad (door.pin), PIN lockout, and PIN secrecy.
// A started gateway with the real doors module on the simulated GPIO backend; cards and
// keys are real pulse trains from the Wiegand simulator twin, decoded by the same reader
// code as on hardware. The face step is the call edge/vision/module.ts makes after a
// confirmed match (access.decide with credential 'face'); test/vision/second-factor.test.ts
// goes through the real vision path.
import t from 'tap';
import { Writable } from 'node:stream';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { doorsRig, FRI_NOON_CST, type DoorsRig } from './harness.js';
import { VirtualTime } from '../../drivers/gpio/virtual-time.js';
import { SimulatedGpio } from '../../drivers/gpio/simulated.js';
import { WiegandTwin } from '../../drivers/wiegand/simulator.js';
import { testConfig } from '../helpers/gateway.js';
import { Gateway } from '../../edge/gateway.js';
import { createDoorsModule } from '../../edge/doors/module.js';
import { auditArgs } from '../../edge/console/routes/commands.js';
import { verifyPin, hashPin } from '../../edge/doors/pin.js';

const doors = () => ({
  groups: [
    { id: 'residents', doors: ['gate', 'lobby', 'side', 'garage'] },
    { id: 'lobby-only', doors: ['lobby'] },
  ],
  doors: [
    { id: 'gate', name: 'Gate', lock: { pin: 17 }, reader: { d0: 13, d1: 19 }, access: { mode: 'face_and_pin', pinTimeoutS: 10 } },
    { id: 'lobby', lock: { pin: 23 } },
    { id: 'side', lock: { pin: 16 }, reader: { d0: 7, d1: 8 } },
    { id: 'garage', lock: { pin: 12 }, reader: { d0: 9, d1: 10 }, access: { mode: 'card_and_pin' } },
  ],
});

interface Rig extends DoorsRig {
  gate: WiegandTwin;
  side: WiegandTwin;
  garage: WiegandTwin;
  face(doorId: string, personId: string): any;
  play(p: Promise<void>): Promise<void>;
  last(pred?: (r: any) => boolean): Promise<any>;
  access(): any[];
}

async function rig(extra: Record<string, unknown> = {}): Promise<Rig> {
  const vt = new VirtualTime(FRI_NOON_CST);
  const gpio = new SimulatedGpio({ timers: vt });
  const gate = new WiegandTwin(gpio, { d0: 13, d1: 19, timers: vt });
  const side = new WiegandTwin(gpio, { d0: 7, d1: 8, timers: vt });
  const garage = new WiegandTwin(gpio, { d0: 9, d1: 10, timers: vt });
  const r = await doorsRig(doors(), { vt, gpio, extra });
  const access = () =>
    r
      .records('access')
      .filter((x) => x.type === 'access.decision')
      .map((x) => x.data);
  return {
    ...r,
    gate,
    side,
    garage,
    access,
    face: (doorId, personId) => r.g.services.get('access')!.decide({ doorId, credential: 'face', personId, score: 0.91, requestedBy: 'camera', evidence: { metric: 'cosine', distance: 0.91 } }),
    async play(p) {
      let done = false;
      void p.then(() => (done = true));
      for (let i = 0; !done && i < 100_000; i++) {
        await new Promise((res) => setImmediate(res));
        vt.advance(1);
      }
      await p;
    },
    /** The newest access record (matching pred), waiting in real time for a PIN being verified (scrypt runs off the event loop). */
    async last(pred = () => true) {
      const n0 = Date.now();
      for (;;) {
        const found = access().filter(pred).at(-1);
        if (found) return found;
        if (Date.now() - n0 > 10_000) throw new Error('no such access record');
        await new Promise((res) => setTimeout(res, 10));
      }
    },
  };
}

const people = async (r: Rig) => {
  for (const p of [
    { id: 'alice', name: 'Alice', pin: '1234', cards: ['26:1:100'] },
    { id: 'bob', name: 'Bob', pin: '5678', cards: ['34:7:4242'] },
    { id: 'nopin', name: 'No PIN' },
  ]) {
    const res = await r.cmd('person.upsert', { kind: 'resident', doorGroups: ['residents'], ...p });
    if (!res.ok) throw new Error(JSON.stringify(res.error));
  }
};

t.test("face_and_pin: the right PIN grants; another person's PIN, a wrong PIN and a timeout deny", async (t) => {
  const r = await rig();
  t.teardown(() => r.stop());
  await people(r);
  const d = r.face('gate', 'alice');
  t.match(d, { granted: false, pending: true, reason: 'pin_required', personId: 'alice', via: ['face'] }, 'the face is accepted, the door waits for the PIN');
  t.equal(r.access().length, 0, 'nothing recorded while waiting');
  t.match((await r.cmd('door.status', { doorId: 'gate' })).result.doors[0], { mode: 'face_and_pin', awaitingPin: { personId: 'alice', via: ['face'], until: r.vt.now() + 10_000 }, reader: {} });
  t.equal(r.gpio.level(17), false, 'still locked');

  // Bob's PIN typed after Alice's face: not Alice's, denied (a look-alike confused as Alice).
  await r.play(r.gate.keys('5678#'));
  let rec = await r.last((x) => x.reason === 'pin_wrong');
  t.match(rec, { doorId: 'gate', granted: false, reason: 'pin_wrong', credential: 'face', personId: 'alice', via: ['face', 'pin'], pinSource: 'keypad', wrongPins: 1, score: 0.91 });
  t.equal(r.gpio.level(17), false, "another person's PIN does not open");
  t.notOk((await r.cmd('door.status', { doorId: 'gate' })).result.doors[0].awaitingPin, 'the wait ended with the wrong PIN');

  // The right PIN after the face: granted, both factors in the record.
  r.face('gate', 'alice');
  await r.play(r.gate.keys('1234#', 8));
  rec = await r.last((x) => x.granted);
  t.match(rec, { doorId: 'gate', doorName: 'Gate', granted: true, reason: 'granted', credential: 'face', personId: 'alice', personName: 'Alice', via: ['face', 'pin'], pinSource: 'keypad', evidence: { metric: 'cosine' } });
  t.equal(r.gpio.level(17), true, 'the gate is unlocked');
  t.equal(r.gpio.history(17).filter((h) => h.value).length, 1, 'one unlock pulse');
  r.vt.advance(6000);

  // A plain wrong PIN; '*' clears a mistyped entry first.
  const t0 = r.vt.now();
  r.face('gate', 'alice');
  await r.play(r.gate.keys('12*0000#'));
  rec = await r.last((x) => x.reason === 'pin_wrong' && x.decidedAt > t0);
  t.equal(rec.wrongPins, 1, 'the count started again after the right PIN');
  t.equal(r.access().filter((x) => x.reason === 'pin_wrong').length, 2);
  t.equal(r.gpio.level(17), false);

  // No PIN at all: pin_timeout after pinTimeoutS, with only the face as factor.
  r.face('gate', 'alice');
  r.vt.advance(9_999);
  t.equal(r.access().filter((x) => x.reason === 'pin_timeout').length, 0, 'still waiting at 9.999 s');
  r.vt.advance(1);
  t.match(await r.last(), { reason: 'pin_timeout', granted: false, personId: 'alice', via: ['face'] });

  // A PIN with nothing waiting opens nothing and is not a decision.
  const before = r.access().length;
  await r.play(r.gate.keys('1234#'));
  await new Promise((res) => setTimeout(res, 50));
  t.equal(r.access().length, before, 'a PIN alone is no credential');
  t.match(await r.metric('estate_door_pin_entries_total'), /door="gate",outcome="unexpected"} 1/);

  // A person without a PIN at a face_and_pin door: denied at once.
  t.match(r.face('gate', 'nopin'), { granted: false, reason: 'second_factor_required' });
  t.notOk(r.face('gate', 'nopin').pending);

  // Another face before the PIN: the first wait ends (pin_superseded), the new one starts.
  r.face('gate', 'alice');
  t.match(r.face('gate', 'bob'), { pending: true, personId: 'bob' });
  t.match(await r.last((x) => x.reason === 'pin_superseded'), { personId: 'alice', via: ['face'] });
  t.match(r.face('gate', 'bob'), { pending: true, personId: 'bob' }, 'the same person again keeps the wait');
  await r.play(r.gate.keys('5678#'));
  t.match(await r.last((x) => x.granted && x.personId === 'bob'), { via: ['face', 'pin'] });

  // A card is not a factor of a face_and_pin door.
  await r.play(r.gate.card(26, 1, 100));
  t.match(await r.last((x) => x.credential === 'card'), { reason: 'credential_not_accepted', personId: 'alice', card: '26:1:100', via: ['card'] });
});

t.test('the console pad: door.pin completes a waiting face for that person only; declared role viewer', async (t) => {
  const r = await rig();
  t.teardown(() => r.stop());
  await people(r);
  t.equal(r.g.commands.roleOf('door.pin'), 'viewer', 'the touch pad at the door runs under the least console role');
  t.same(r.g.commands.secretArgsOf('door.pin'), ['pin']);
  const none = await r.cmd('door.pin', { doorId: 'gate', pin: '1234' });
  t.match(none, { ok: false, error: { code: 'no_pin_expected' } }, 'nothing waiting');
  r.face('gate', 'alice');
  const wrong = await r.cmd('door.pin', { doorId: 'gate', pin: '5678' }, { source: 'console', user: 'pad-gate' });
  t.match(wrong, { ok: false, error: { code: 'pin_wrong' } });
  r.face('gate', 'alice');
  const ok = await r.cmd('door.pin', { doorId: 'gate', pin: '1234' }, { source: 'console', user: 'pad-gate' });
  t.match(ok, { ok: true, result: { granted: true, personId: 'alice', via: ['face', 'pin'], unlockedUntil: r.vt.now() + 5000 } });
  t.match(await r.last((x) => x.granted), { pinSource: 'console:pad-gate' });
  t.match(await r.cmd('door.pin', { doorId: 'nope', pin: '1234' }), { ok: false, error: { code: 'unknown_door' } });
  t.match(await r.cmd('door.pin', { doorId: 'gate', pin: '12a4' }), { ok: false, error: { code: 'bad_args' } });
});

t.test('needsSecondFactor asks for the PIN at a face door; others pass with the face alone', async (t) => {
  const r = await rig();
  t.teardown(() => r.stop());
  await people(r);
  t.equal((await r.cmd('person.upsert', { id: 'carol', kind: 'resident', doorGroups: ['lobby-only'], pin: '24680', needsSecondFactor: true })).ok, true);
  t.match((await r.cmd('door.status', { doorId: 'lobby' })).result.doors[0], { mode: 'face' }, 'no reader, no mode: face');
  t.match(r.face('lobby', 'alice'), { granted: true, via: ['face'] }, 'alice: face alone');
  r.vt.advance(6000);
  t.match(r.face('lobby', 'carol'), { pending: true, reason: 'pin_required' }, 'carol is asked for her PIN');
  t.match(await r.cmd('door.pin', { doorId: 'lobby', pin: '24680' }), { ok: true, result: { granted: true, via: ['face', 'pin'] } });
  // The flag is kept when an older platform upserts without it, and can be cleared.
  t.equal((await r.cmd('person.upsert', { id: 'carol', kind: 'resident', doorGroups: ['lobby-only'] })).result.person.needsSecondFactor, true);
  t.notOk((await r.cmd('person.upsert', { id: 'carol', kind: 'resident', doorGroups: ['lobby-only'], needsSecondFactor: false })).result.person.needsSecondFactor);
  r.vt.advance(6000);
  t.match(r.face('lobby', 'carol'), { granted: true, via: ['face'] });
  // The flag without a PIN: warned at upsert, denied at the door.
  const up = await r.cmd('person.upsert', { id: 'dave', kind: 'resident', doorGroups: ['lobby-only'], needsSecondFactor: true });
  t.match(up.result.warnings, [/a PIN is required/]);
  t.match(r.face('lobby', 'dave'), { granted: false, reason: 'second_factor_required' });
  // A needsSecondFactor person's card at a face_or_card door asks for the PIN too.
  t.equal((await r.cmd('person.upsert', { id: 'carol', kind: 'resident', doorGroups: ['residents'], cards: ['26:9:9'], needsSecondFactor: true })).ok, true);
  await r.play(r.side.card(26, 9, 9));
  t.match((await r.cmd('door.status', { doorId: 'side' })).result.doors[0].awaitingPin, { personId: 'carol', via: ['card'] });
  await r.play(r.side.keys('24680#'));
  t.match(await r.last((x) => x.granted && x.personId === 'carol' && x.credential === 'card'), { via: ['card', 'pin'], card: '26:9:9' });
});

t.test('cards: face_or_card grants the holder under the same rules as a face; card_and_pin; unknown cards are reported, rate-limited', async (t) => {
  const r = await rig();
  t.teardown(() => r.stop());
  await people(r);
  t.match((await r.cmd('door.status', { doorId: 'side' })).result.doors[0], { mode: 'face_or_card', reader: {} }, 'a reader and no mode: face_or_card');
  await r.play(r.side.card(26, 1, 100));
  t.match(await r.last(), { doorId: 'side', granted: true, credential: 'card', card: '26:1:100', personId: 'alice', personName: 'Alice', via: ['card'], requestedBy: 'reader' });
  t.equal(r.gpio.level(16), true, 'side door unlocked by the card');
  r.vt.advance(6000);
  t.match(r.face('side', 'bob'), { granted: true, via: ['face'] }, 'and a face works too');
  r.vt.advance(6000);
  // Same rules as a face: a disabled holder, a holder without the door.
  await r.cmd('person.upsert', { id: 'alice', kind: 'resident', doorGroups: ['residents'], enabled: false });
  await r.play(r.side.card(26, 1, 100));
  t.match(await r.last(), { granted: false, reason: 'disabled', personId: 'alice', credential: 'card' });
  await r.cmd('person.upsert', { id: 'alice', kind: 'resident', doorGroups: ['lobby-only'] });
  await r.play(r.side.card(26, 1, 100));
  t.match(await r.last(), { granted: false, reason: 'door_not_allowed', personId: 'alice' });
  t.same((await r.cmd('person.get', { id: 'alice' })).result.person.cards, ['26:1:100'], 'cards kept over upserts that omit them');

  // card_and_pin: the card, then the holder's PIN on the same reader's keypad.
  await r.play(r.garage.card(34, 7, 4242));
  t.match((await r.cmd('door.status', { doorId: 'garage' })).result.doors[0], { mode: 'card_and_pin', awaitingPin: { personId: 'bob', via: ['card'] } });
  await r.play(r.garage.keys('5678#'));
  t.match(await r.last((x) => x.doorId === 'garage'), { granted: true, credential: 'card', via: ['card', 'pin'], card: '34:7:4242' });
  t.match(r.face('garage', 'bob'), { granted: false, reason: 'credential_not_accepted' }, 'a face is not a factor of card_and_pin');

  // Unknown cards: denied (nothing moves, no access record), counted, one event per interval.
  const n = r.access().length;
  const lockBefore = r.gpio.history(16).length;
  await r.play(r.side.card(26, 200, 1));
  await r.play(r.side.card(26, 200, 2));
  await r.play(r.side.card(34, 1, 1));
  t.equal(r.access().length, n, 'an unknown card is no access decision');
  t.equal(r.gpio.history(16).length, lockBefore, 'and moves nothing');
  const unknown = () =>
    r
      .records('event')
      .filter((e) => e.type === 'card.unknown')
      .map((e) => e.data);
  t.same(unknown(), [{ doorId: 'side', card: '26:200:1', suppressed: 0 }]);
  t.match(await r.metric('estate_door_unknown_cards_total'), /door="side"} 3/);
  r.vt.advance(30_000);
  await r.play(r.side.card(26, 200, 3));
  t.same(unknown().at(-1), { doorId: 'side', card: '26:200:3', suppressed: 2 }, 'the next report says how many were suppressed');
  // Garbage on the lines is counted by kind, never a decision.
  await r.play(r.side.noise(3));
  await r.play(r.side.send(Array(26).fill(1)));
  t.match(await r.metric('estate_wiegand_frames_total'), /door="side",kind="noise"} 1[\s\S]*door="side",kind="parity"} 1|door="side",kind="parity"} 1[\s\S]*door="side",kind="noise"} 1/);
});

t.test('card numbers: canonical form, unique across people (card_in_use), in person.sync too', async (t) => {
  const r = await rig();
  t.teardown(() => r.stop());
  await people(r);
  const taken = await r.cmd('person.upsert', { id: 'eve', kind: 'resident', doorGroups: ['residents'], cards: ['26:001:0100'] });
  t.match(taken, { ok: false, error: { code: 'card_in_use', details: { card: '26:1:100', heldBy: 'alice' } } }, 'leading zeros do not make another card');
  t.notOk((await r.cmd('person.list', { query: 'eve' })).result.total, 'nothing stored');
  t.match(await r.cmd('person.upsert', { id: 'eve', kind: 'resident', doorGroups: [], cards: ['123:4567'] }), { ok: false, error: { code: 'bad_card' } });
  t.match(await r.cmd('person.upsert', { id: 'eve', kind: 'resident', doorGroups: [], cards: ['26:1:5', '26:01:5'] }), { ok: false, error: { code: 'bad_card' } });
  t.match(await r.cmd('person.upsert', { id: 'alice', kind: 'resident', doorGroups: ['residents'], cards: ['26:1:100', '34:65535:65535'] }), { ok: true, result: { person: { cards: ['26:1:100', '34:65535:65535'] } } }, 'the holder may upsert her own card');
  // A sync may move a card between two people of the batch; not take one from someone outside it.
  const move = await r.cmd('person.sync', {
    people: [
      { id: 'alice', kind: 'resident', doorGroups: ['residents'], cards: [] },
      { id: 'bob', kind: 'resident', doorGroups: ['residents'], cards: ['26:1:100'] },
    ],
  });
  t.equal(move.ok, true, JSON.stringify(move.error ?? ''));
  await r.play(r.side.card(26, 1, 100));
  t.match(await r.last(), { granted: true, personId: 'bob' }, 'the card now opens for bob');
  const steal = await r.cmd('person.sync', { people: [{ id: 'eve', kind: 'resident', doorGroups: [], cards: ['26:1:100'] }] });
  t.match(steal, { ok: false, error: { code: 'bad_people', message: /card_in_use: card 26:1:100 is held by person bob/ } });
  const twice = await r.cmd('person.sync', {
    people: [
      { id: 'x1', kind: 'resident', doorGroups: [], cards: ['26:5:5'] },
      { id: 'x2', kind: 'resident', doorGroups: [], cards: ['26:5:5'] },
    ],
  });
  t.match(twice, { ok: false, error: { code: 'bad_people', message: /also given to x1/ } });
  t.match(await r.cmd('person.sync', { people: [{ id: 'x1', kind: 'resident', doorGroups: [], pin: '1234' }] }), { ok: false, error: { code: 'bad_args' } }, 'no PINs in a sync');
  // Deleting a person frees the card.
  t.equal((await r.cmd('person.delete', { id: 'bob' })).ok, true);
  t.equal((await r.cmd('person.upsert', { id: 'eve', kind: 'resident', doorGroups: ['residents'], cards: ['26:1:100'] })).ok, true);
});

t.test("PIN lockout: 5 wrong PINs in a row lock that person's PIN for 5 min, raised as an alarm", async (t) => {
  const r = await rig();
  t.teardown(() => r.stop());
  await people(r);
  // A success in between starts the count again.
  for (let i = 0; i < 4; i++) {
    r.face('gate', 'alice');
    await r.cmd('door.pin', { doorId: 'gate', pin: '0000' });
  }
  r.face('gate', 'alice');
  t.equal((await r.cmd('door.pin', { doorId: 'gate', pin: '1234' })).ok, true, 'right PIN after 4 wrong: granted');
  r.vt.advance(6000);
  for (let i = 1; i <= 5; i++) {
    r.face('gate', 'alice');
    const res = await r.cmd('door.pin', { doorId: 'gate', pin: String(1000 + i) });
    t.match(res, { ok: false, error: { code: 'pin_wrong' } }, `wrong PIN ${i}`);
  }
  const fifth = await r.last((x) => x.reason === 'pin_wrong');
  t.match(fifth, { wrongPins: 5, pinLockedUntil: r.vt.now() + 300_000 });
  const alarms = () => r.records('alarm').filter((a) => a.data.alarm === 'pin.locked');
  t.match(alarms(), [{ type: 'alarm.raised', data: { alarm: 'pin.locked', personId: 'alice', until: r.vt.now() + 300_000 } }]);
  t.match(await r.metric('estate_door_pin_lockouts_total'), /} 1|total 1/);
  // Locked: the face is denied at once — no wait, so not even the right PIN gets a chance.
  t.match(r.face('gate', 'alice'), { granted: false, reason: 'pin_locked' });
  t.match(await r.last(), { reason: 'pin_locked', via: ['face'] });
  await r.play(r.garage.card(26, 1, 100));
  t.match(await r.last(), { reason: 'pin_locked', credential: 'card' }, 'at every door, whatever the first factor');
  t.match((await r.cmd('person.get', { id: 'alice' })).result.person, { pinLockedUntil: fifth.pinLockedUntil });
  t.match(r.face('gate', 'bob'), { pending: true }, 'other people are not affected');
  await r.cmd('door.pin', { doorId: 'gate', pin: '5678' });
  r.vt.advance(300_000);
  t.match(alarms().at(-1), { type: 'alarm.cleared', data: { alarm: 'pin.locked', personId: 'alice' } });
  r.face('gate', 'alice');
  t.match(await r.cmd('door.pin', { doorId: 'gate', pin: '1234' }), { ok: true, result: { granted: true } }, 'unlocked after lockoutS');
});

t.test('PINs are write-only: never in person.get/list, command results, logs, the access stream, audit or the database', async (t) => {
  const vt = new VirtualTime(FRI_NOON_CST);
  const gpio = new SimulatedGpio({ timers: vt });
  const twin = new WiegandTwin(gpio, { d0: 13, d1: 19, timers: vt });
  let logText = '';
  const log = pino({ level: 'trace' }, new Writable({ write: (c, _e, cb) => ((logText += String(c)), cb()) }));
  const loaded = testConfig({ doors: doors(), uplink: { enabled: false } });
  const g = new Gateway({ loaded, log, clock: vt, modules: [(ctx) => createDoorsModule(ctx, { backend: gpio, timers: vt })] });
  await g.start();
  t.teardown(() => g.stop());
  const PIN = '975318';
  const cmd = async (name: string, args: Record<string, unknown>, source: 'mqtt' | 'console' = 'mqtt') => (await g.commands.execute(name, args, { id: randomUUID(), source, receivedAt: vt.now(), ts: vt.now() })).result as any;
  // Over MQTT, as the platform sends it: the result record goes upstream.
  await g.commands.handleMqtt(Buffer.from(JSON.stringify({ id: 'c-1', name: 'person.upsert', ts: vt.now(), args: { id: 'frank', kind: 'resident', doorGroups: ['residents'], pin: PIN, cards: ['26:3:3'] } })));
  const got = await cmd('person.get', { id: 'frank' });
  t.match(got.result.person, { id: 'frank', hasPin: true, cards: ['26:3:3'] });
  t.notOk('pinHash' in got.result.person, 'no hash in person.get');
  const list = await cmd('person.list', {});
  t.match(list.result.people[0], { id: 'frank', hasPin: true });
  t.notOk('pinHash' in list.result.people[0] || 'pin' in list.result.people[0], 'no PIN or hash in person.list');
  // Omitting the PIN keeps it; null removes it; a bad one is refused.
  t.equal((await cmd('person.upsert', { id: 'frank', kind: 'resident', doorGroups: ['residents'] })).result.person.hasPin, true);
  t.match(await cmd('person.upsert', { id: 'frank', kind: 'resident', doorGroups: ['residents'], pin: '12' }), { ok: false, error: { code: 'bad_args' } });
  t.match(await cmd('person.upsert', { id: 'frank', kind: 'resident', doorGroups: ['residents'], pin: '123456789' }), { ok: false, error: { code: 'bad_args' } });
  // Use it: a wrong and a right PIN on the keypad, and the right one on the console pad.
  const play = async (p: Promise<void>) => {
    let done = false;
    void p.then(() => (done = true));
    while (!done) {
      await new Promise((res) => setImmediate(res));
      vt.advance(1);
    }
  };
  const face = () => g.services.get('access')!.decide({ doorId: 'gate', credential: 'face', personId: 'frank', score: 0.9 });
  const decided = async (n: number) => {
    for (let i = 0; i < 1000 && g.outbox.read('access', 0, Number.MAX_SAFE_INTEGER, 1000, 1e12).length < n; i++) await new Promise((res) => setTimeout(res, 10));
  };
  face();
  await play(twin.keys('975319#'));
  await decided(1);
  face();
  await play(twin.keys(`${PIN}#`));
  await decided(2);
  vt.advance(6000);
  face();
  t.equal((await cmd('door.pin', { doorId: 'gate', pin: PIN }, 'console')).ok, true);
  await decided(3);
  t.same(auditArgs({ doorId: 'gate', pin: PIN }, g.commands.secretArgsOf('door.pin')), { doorId: 'gate', pin: '***' }, 'the console audit record masks the PIN');
  t.same(auditArgs({ id: 'x', pin: PIN }, g.commands.secretArgsOf('person.upsert')), { id: 'x', pin: '***' });
  g.outbox.flush();
  const streams = ['access', 'alarm', 'event', 'result', 'audit', 'telemetry'] as const;
  const upstream = streams.flatMap((s) => g.outbox.read(s, 0, Number.MAX_SAFE_INTEGER, 100000, 1e12).map((x) => x.body)).join('\n');
  t.match(upstream, /"via":\["face","pin"\]/, 'the access stream has the decisions');
  t.match(upstream, /"name":"person.upsert"/, 'and the upsert result');
  const accessRecs = g.outbox.read('access', 0, Number.MAX_SAFE_INTEGER, 1000, 1e12).map((x) => JSON.parse(x.body));
  t.same(
    accessRecs.map((a) => a.data.reason),
    ['pin_wrong', 'granted', 'granted'],
  );
  t.equal(new Set(accessRecs.map((a) => a.id)).size, 3, 'each decision has its own record id');
  t.notOk(upstream.includes(PIN), 'the PIN is in no upstream record');
  t.notOk(upstream.includes('scrypt$'), 'nor its hash');
  const events = await cmd('access.events', {});
  t.notOk(JSON.stringify(events).includes(PIN), 'nor in the local access log');
  t.ok(logText.length > 1000, 'debug logs were written');
  t.notOk(logText.includes(PIN), 'the PIN is in no log line');
  t.notOk(logText.includes('975319'), 'nor the wrong one typed');
  await g.stop();
  for (const f of readdirSync(g.dataDir).filter((f) => /\.db(-wal)?$/.test(f))) {
    const bytes = readFileSync(join(g.dataDir, f));
    t.notOk(bytes.includes(Buffer.from(PIN)), `${f}: the PIN is not stored in clear`);
  }
  const row = readFileSync(join(g.dataDir, 'state.db')).toString('latin1');
  t.match(row, /scrypt\$16384\$8\$1\$/, 'the state database holds the scrypt hash');
});

t.test('pin.ts: salted scrypt, verify, malformed hashes fail closed', async (t) => {
  const a = await hashPin('1234');
  const b = await hashPin('1234');
  t.not(a, b, 'salted: the same PIN hashes differently');
  t.equal(await verifyPin('1234', a), true);
  t.equal(await verifyPin('1235', a), false);
  t.equal(await verifyPin('1234', 'plain'), false);
  t.equal(await verifyPin('1234', a.replace(/\$[^$]+$/, '$AAAA')), false, 'a truncated hash');
  t.equal(await verifyPin('1234', 'scrypt$99999999$8$1$AAAA$AAAAAAAAAAAAAAAAAAAAAA'), false, 'absurd cost refused');
});

t.test('config: modes, readers and checks; existing door configs stay valid', async (t) => {
  const { ConfigError } = await import('../../edge/config/load.js');
  const old = testConfig({ doors: { groups: [], doors: [{ id: 'd', lock: { pin: 4 } }] } }).config.doors.doors[0]!;
  t.same(old.access, { pinTimeoutS: 10 }, 'an old door gets the defaults');
  t.equal(old.reader, undefined);
  const bad = (doorsCfg: unknown) => {
    try {
      testConfig({ doors: doorsCfg });
      return '';
    } catch (err) {
      return err instanceof ConfigError ? err.message : String(err);
    }
  };
  t.match(bad({ doors: [{ id: 'd', lock: { pin: 4 }, access: { mode: 'card' } }] }), /access.mode: card needs a card reader/);
  t.match(bad({ doors: [{ id: 'd', lock: { pin: 4 }, reader: { d0: 4, d1: 5 } }] }), /reader.d0: BCM 4 is already used by doors.doors\[0\].lock/);
  t.match(bad({ doors: [{ id: 'd', lock: { pin: 4 }, access: { mode: 'face_and_pin', pinTimeoutS: 1 } }] }), /pinTimeoutS/);
  t.match(bad({ doors: [{ id: 'd', lock: { pin: 4 }, access: { mode: 'iris' } }] }), /mode/);
  t.equal(bad({ doors: [{ id: 'd', lock: { pin: 4 }, access: { mode: 'face_and_pin' } }] }), '', 'face_and_pin without a reader: the console pad');
});

t.test('people stored before the second factor existed load and behave as before', async (t) => {
  const { tempDir } = await import('../helpers/gateway.js');
  const Database = (await import('better-sqlite3')).default;
  const dataDir = tempDir();
  const r0 = await doorsRig(doors(), { dataDir });
  await r0.stop();
  // A row as the previous version wrote it: no cards, no PIN, no flag.
  const db = new Database(join(dataDir, 'state.db'));
  const old = { id: 'old-1', name: 'Old Resident', kind: 'resident', doorGroups: ['residents'], enabled: true, updatedAt: FRI_NOON_CST - 86400_000 };
  db.prepare('INSERT INTO door_people(id, body, updated_at) VALUES (?, ?, ?)').run(old.id, JSON.stringify(old), old.updatedAt);
  db.close();
  const vt = new VirtualTime(FRI_NOON_CST);
  const r = await doorsRig(doors(), { dataDir, vt, gpio: new SimulatedGpio({ timers: vt }) });
  t.teardown(() => r.stop());
  t.match((await r.cmd('person.get', { id: 'old-1' })).result.person, { id: 'old-1', hasPin: false, name: 'Old Resident' });
  t.notOk((await r.cmd('person.get', { id: 'old-1' })).result.person.cards);
  const access = r.g.services.get('access')!;
  t.match(access.decide({ doorId: 'lobby', credential: 'face', personId: 'old-1' }), { granted: true, via: ['face'] }, 'a face door: as before');
  t.match(access.decide({ doorId: 'gate', credential: 'face', personId: 'old-1' }), { granted: false, reason: 'second_factor_required' }, 'a face_and_pin door: no PIN, denied');
  t.match(access.decide({ doorId: 'lobby', credential: 'remote', personId: 'old-1' }), { granted: true, via: ['remote'] }, 'remote unlocks are not affected by modes');
});

t.test('a reader whose lines can only be polled is reported, and the door still works by face', async (t) => {
  const vt = new VirtualTime(FRI_NOON_CST);
  const r = await doorsRig(doors(), { vt, gpio: new SimulatedGpio({ timers: vt, interrupts: false }) });
  t.teardown(() => r.stop());
  await r.cmd('person.upsert', { id: 'p', kind: 'resident', doorGroups: ['residents'] });
  t.match((await r.cmd('door.status', { doorId: 'side' })).result.doors[0].reader, { problem: /door side reader: the D0\/D1 lines have no edge interrupts/ });
  const h = r.g.healthReport().doors!;
  t.equal(h.ok, false);
  t.match(h.message, /door side reader/);
  t.match(r.g.services.get('access')!.decide({ doorId: 'side', credential: 'face', personId: 'p' }), { granted: true });
});
