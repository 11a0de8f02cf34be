// Door controller behaviour on the simulated GPIO backend, in virtual time.
import t from 'tap';
import { doorsRig, baseDoors } from './harness.js';
import { SimulatedGpio } from '../../drivers/gpio/simulated.js';
import { VirtualTime } from '../../drivers/gpio/virtual-time.js';

t.test('outputs come up in the locked state without an unlock pulse; stop puts the configured safe state', async (t) => {
  const r = await doorsRig();
  const t0 = r.vt.now();
  // gate: failSecure, active-high → one change to low (de-energised = locked).
  t.same(r.gpio.history(17), [{ at: t0, value: false, raw: false }], 'gate lock: a single initial level, locked');
  // bldg-a: failSecure, active-low relay board → physical high = de-energised.
  t.same(r.gpio.history(23), [{ at: t0, value: false, raw: true }], 'active-low lock: inverted on the pin');
  // bldg-b: failSafe maglock → energised to lock.
  t.same(r.gpio.history(16), [{ at: t0, value: true, raw: true }], 'fail-safe maglock energised (locked)');
  t.same(r.gpio.history(5), [{ at: t0, value: false, raw: false }], 'LED off');
  const st = (await r.cmd('door.status')).result;
  t.same(
    st.doors.map((d: any) => [d.id, d.lock, d.contact]),
    [
      ['gate', 'locked', 'closed'],
      ['bldg-a', 'locked', 'closed'],
      ['bldg-b', 'locked', 'closed'],
      ['garage', 'locked', 'unknown'],
    ],
  );

  await r.cmd('door.unlock', { doorId: 'gate' });
  r.vt.advance(1000);
  await r.stop();
  t.equal(r.gpio.level(17), false, 'failSecure door locked at stop even during a pulse');
  t.equal(r.gpio.level(16), false, 'failSafe door de-energised (unlocked) at stop: as without power');
  t.equal(r.gpio.level(5), false, 'LED off at stop');
  t.notOk(r.gpio.inUse(17), 'lines released');
  const safe = r.records('event').find((e) => e.type === 'doors.safe_state');
  t.same(safe?.data.doors, { gate: 'locked', 'bldg-a': 'locked', 'bldg-b': 'unlocked', garage: 'locked' });
});

t.test('safeState override and emergencyStop (crash path) are synchronous', async (t) => {
  const doors = baseDoors();
  (doors.doors[2]!.lock as any).safeState = 'locked';
  const r = await doorsRig(doors);
  await r.cmd('door.unlock', { doorId: 'gate' });
  t.equal(r.gpio.level(17), true);
  r.g.emergencyStop();
  t.equal(r.gpio.level(17), false, 'gate relocked synchronously');
  t.equal(r.gpio.level(16), true, 'maglock with safeState locked stays energised');
  await r.stop();
});

t.test('unlock pulse timing; overlapping unlocks extend, never shorten', async (t) => {
  const r = await doorsRig();
  const t0 = r.vt.now();
  const a = await r.cmd('door.unlock', { doorId: 'gate' });
  t.equal(a.ok, true);
  t.equal(a.result.unlockedUntil, t0 + 5000);
  r.vt.advance(3000);
  const b = await r.cmd('door.unlock', { doorId: 'gate', durationMs: 1000 });
  t.equal(b.result.unlockedUntil, t0 + 5000, 'a shorter unlock does not shorten the running pulse');
  t.equal(b.result.extended, true);
  const c = await r.cmd('door.unlock', { doorId: 'gate', durationMs: 4000 });
  t.equal(c.result.unlockedUntil, t0 + 7000, 'a longer one extends it');
  r.vt.advance(10_000);
  t.same(
    r.gpio.history(17).map((h) => [h.at - t0, h.value]),
    [
      [0, false],
      [0, true],
      [7000, false],
    ],
    'one continuous unlock from 0 to 7000 ms, no relay chatter',
  );
  t.same(
    r.gpio.history(5).map((h) => [h.at - t0, h.value]),
    [
      [0, false],
      [0, true],
      [7000, false],
    ],
    'LED follows the lock',
  );
  const lock = await r.cmd('door.unlock', { doorId: 'gate' });
  r.vt.advance(100);
  const l = await r.cmd('door.lock', { doorId: 'gate' });
  t.same(l.result, { doorId: 'gate', wasUnlocked: true }, 'door.lock ends a pulse at once');
  t.equal(r.gpio.level(17), false);
  t.ok(lock.ok);
  await r.stop();
});

t.test('relock when the door closes after opening', async (t) => {
  const r = await doorsRig();
  const t0 = r.vt.now();
  await r.cmd('door.unlock', { doorId: 'gate' });
  r.vt.advance(1000);
  r.gpio.set(27, true); // opened
  r.vt.advance(100); // contact debounce 50 ms
  r.vt.advance(900);
  r.gpio.set(27, false); // closed at t0+2000
  r.vt.advance(100);
  t.same(
    r.gpio.history(17).map((h) => [h.at - t0, h.value]),
    [
      [0, false],
      [0, true],
      [2050, false],
    ],
    'relocked on close (after the 50 ms debounce), not at 5000',
  );
  const st = r
    .records('event')
    .filter((e) => e.type === 'door.state' && e.data.doorId === 'gate')
    .map((e) => [e.data.cause, e.data.lock, e.data.contact]);
  t.same(st, [
    ['start', 'locked', 'closed'],
    ['granted:remote', 'unlocked', 'closed'],
    ['door_opened', 'unlocked', 'open'],
    ['closed_after_opening', 'locked', 'closed'],
    ['door_closed', 'locked', 'closed'],
  ]);
  t.equal(r.records('alarm').length, 0, 'no alarm for an authorised passage');

  // relockOnClose: false → the pulse runs to its end.
  const doors = baseDoors();
  (doors.doors[0] as any).relockOnClose = false;
  const r2 = await doorsRig(doors);
  const s0 = r2.vt.now();
  await r2.cmd('door.unlock', { doorId: 'gate' });
  r2.vt.advance(1000);
  r2.gpio.set(27, true);
  r2.vt.advance(1000);
  r2.gpio.set(27, false);
  r2.vt.advance(5000);
  t.same(
    r2.gpio.history(17).map((h) => [h.at - s0, h.value]),
    [
      [0, false],
      [0, true],
      [5000, false],
    ],
  );
  await r.stop();
  await r2.stop();
});

t.test('held-open alarm raised after heldOpenAlarmS and cleared on close; buzzer sounds meanwhile', async (t) => {
  const r = await doorsRig();
  const t0 = r.vt.now();
  await r.cmd('door.unlock', { doorId: 'bldg-a' });
  r.vt.advance(500);
  r.gpio.set(24, true); // active-low contact: logical open
  t.equal(r.gpio.raw(24), false, 'active-low contact: open reads low');
  r.vt.advance(50);
  r.vt.advance(19_000);
  t.equal(r.records('alarm').length, 0, 'not yet');
  r.vt.advance(1000);
  const raised = r.records('alarm');
  t.equal(raised.length, 1);
  t.equal(raised[0]!.type, 'alarm.raised');
  t.same({ alarm: raised[0]!.data.alarm, doorId: raised[0]!.data.doorId, since: raised[0]!.data.since - t0 }, { alarm: 'door.held_open', doorId: 'bldg-a', since: 500 + 20_000 });
  t.equal(r.gpio.level(6), true, 'buzzer on');
  t.same((await r.cmd('door.status', { doorId: 'bldg-a' })).result.doors[0].alarms, ['held_open']);
  r.gpio.set(24, false);
  r.vt.advance(60);
  const all = r.records('alarm');
  t.equal(all.length, 2);
  t.equal(all[1]!.type, 'alarm.cleared');
  t.equal(all[1]!.data.alarm, 'door.held_open');
  t.ok(all[1]!.data.durationMs > 0);
  t.equal(r.gpio.level(6), false, 'buzzer off');
  await r.stop();
});

t.test('forced-open alarm when the door opens while locked; cleared on close', async (t) => {
  const r = await doorsRig();
  const events: any[] = [];
  r.g.bus.on('door.alarm', (a) => events.push(a));
  r.gpio.set(27, true);
  r.vt.advance(60);
  t.same(
    events.map((e) => [e.alarm, e.doorId, e.active]),
    [['door.forced_open', 'gate', true]],
  );
  t.equal(r.records('alarm')[0]!.data.alarm, 'door.forced_open');
  r.vt.advance(60_000);
  t.notOk(
    events.some((e) => e.alarm === 'door.held_open'),
    'a forced door is not also held-open',
  );
  r.gpio.set(27, false);
  r.vt.advance(60);
  t.same(
    events.map((e) => [e.alarm, e.active]),
    [
      ['door.forced_open', true],
      ['door.forced_open', false],
    ],
  );
  t.match(await r.metric('estate_door_alarms_total'), /alarm="door.forced_open"} 1/);
  await r.stop();
});

t.test('exit button: debounced, grants and unlocks without a person, recorded as an access event', async (t) => {
  const r = await doorsRig();
  // A bouncing press: three edges within the 30 ms debounce window.
  r.gpio.set(22, true);
  r.vt.advance(5);
  r.gpio.set(22, false);
  r.vt.advance(5);
  r.gpio.set(22, true);
  r.vt.advance(40);
  t.equal(r.gpio.level(17), true, 'unlocked');
  r.gpio.set(22, false);
  r.vt.advance(40);
  const acc = r.records('access');
  t.equal(acc.length, 1, 'one decision for one (bouncy) press');
  t.match(acc[0]!.data, { doorId: 'gate', granted: true, reason: 'granted', credential: 'exit_button' });
  // Exit buttons are never rate-limited.
  for (let i = 0; i < 20; i++) {
    r.gpio.set(22, true);
    r.vt.advance(40);
    r.gpio.set(22, false);
    r.vt.advance(40);
  }
  // Every press decided (21 in all): 'every … granted' alone would hold if presses went unseen.
  t.equal(r.records('access').length, 21, 'one decision per press');
  t.same(
    r.records('access').filter((a) => !a.data.granted),
    [],
    'every exit granted',
  );
  await r.stop();
});

t.test('fire release during an unlock storm: all fire doors released until cleared, whatever else happens', async (t) => {
  const r = await doorsRig();
  const storm = [];
  for (let i = 0; i < 40; i++) storm.push(r.cmd('door.unlock', { doorId: i % 2 ? 'gate' : 'garage' }));
  const results = await Promise.all(storm);
  t.ok(
    results.some((x) => !x.ok && x.error?.code === 'rate_limited'),
    'the storm is rate-limited',
  );
  t.equal(results.filter((x) => x.ok).length, 10, 'burst of 5 per door accepted');
  // Fire panel trips mid-storm.
  r.gpio.set(26, true); // released on the first edge: no debounce wait
  for (const pin of [17, 23, 16]) t.equal(r.gpio.level(pin), pin !== 16, `fire door on BCM ${pin} released`);
  t.equal(r.gpio.level(12), true, 'garage (not a fire door) still in its own unlock pulse');
  // More storm, pulses ending, lock commands: released doors stay released.
  for (let i = 0; i < 40; i++) await r.cmd('door.unlock', { doorId: 'gate' });
  r.vt.advance(60_000);
  t.equal(r.gpio.level(17), true, 'gate still released after every pulse ended');
  t.equal(r.gpio.level(12), false, 'garage relocked normally');
  const lock = await r.cmd('door.lock', { doorId: 'gate' });
  t.equal(lock.error?.code, 'fire_release_active');
  const clear1 = await r.cmd('door.fireRelease', { action: 'clear' });
  t.equal(clear1.error?.code, 'fire_input_active', 'cannot clear while the panel is in alarm');
  // Panel back to normal: latched, still released.
  r.gpio.set(26, false);
  r.vt.advance(200);
  t.equal(r.gpio.level(17), true, 'latched release survives the input returning to normal');
  const st = (await r.cmd('door.status')).result;
  t.match(st.fire, { inputActive: false, latched: true, released: true });
  t.ok(st.doors.filter((d: any) => d.id !== 'garage').every((d: any) => d.fireReleased && d.lock === 'unlocked'));
  const clear = await r.cmd('door.fireRelease', { action: 'clear' });
  t.equal(clear.ok, true);
  t.match(clear.result.fire, { released: false, latched: false });
  for (const pin of [17, 23, 16]) t.equal(r.gpio.level(pin), pin === 16, `BCM ${pin} locked again`);
  const fire = r.records('alarm').filter((a) => a.data.alarm === 'fire.release');
  t.same(
    fire.map((a) => a.type),
    ['alarm.raised', 'alarm.cleared'],
  );
  t.same(fire[0]!.data.doors, ['gate', 'bldg-a', 'bldg-b']);
  // Command release works the same with no input at all.
  await r.cmd('door.fireRelease', { action: 'release' });
  t.equal(r.gpio.level(23), true);
  await r.cmd('door.fireRelease', { action: 'clear' });
  t.equal(r.gpio.level(23), false);
  await r.stop();
});

t.test('a fire input already active at start: doors come up released, with no lock-then-unlock', async (t) => {
  const vt = new VirtualTime(Date.UTC(2026, 0, 1));
  const gpio = new SimulatedGpio({ timers: vt });
  gpio.drive(26, true);
  const r = await doorsRig(baseDoors(), { vt, gpio });
  t.same(
    r.gpio.history(17).map((h) => h.value),
    [true],
    'gate: one level, released',
  );
  t.same(
    r.gpio.history(16).map((h) => h.value),
    [false],
    'maglock: one level, de-energised',
  );
  t.same(
    r.gpio.history(12).map((h) => h.value),
    [false],
    'garage: locked',
  );
  await r.stop();
  t.equal(gpio.level(17), true, 'stop during a fire keeps fire doors released');
});

t.test('polling fallback: inputs work where edge interrupts are unavailable', async (t) => {
  const vt = new VirtualTime(Date.UTC(2026, 0, 1));
  const gpio = new SimulatedGpio({ timers: vt, interrupts: false, pollMs: 20 });
  const r = await doorsRig(baseDoors(), { vt, gpio });
  t.same((await r.cmd('door.status', { doorId: 'gate' })).result.doors[0].inputs, { contact: 'polling', exitButton: 'polling' });
  gpio.set(22, true);
  vt.advance(100);
  t.equal(gpio.level(17), true, 'exit button seen by polling');
  await r.stop();
});

t.test('simulated estate: after a grant someone walks through (contact opens, closes, the door relocks); demo people seeded', async (t) => {
  const r = await doorsRig(baseDoors(), { extra: { simulation: { enabled: true } } });
  t.equal((await r.cmd('person.list')).result.total, 3, 'demo people in an empty estate');
  const t0 = r.vt.now();
  await r.cmd('door.unlock', { doorId: 'gate' });
  r.vt.advance(10_000);
  const states = r
    .records('event')
    .filter((e) => e.type === 'door.state' && e.data.doorId === 'gate')
    .map((e) => e.data.cause);
  t.same(states, ['start', 'granted:remote', 'door_opened', 'closed_after_opening', 'door_closed']);
  const relock = r.gpio.history(17).at(-1)!;
  t.ok(relock.value === false && relock.at - t0 < 5000, 'relocked when the simulated visitor closed the door, before the pulse end');
  t.equal(r.records('alarm').length, 0);
  r.vt.advance(120_000);
  t.ok(
    r.records('access').some((a) => a.data.credential === 'exit_button'),
    'someone left by an exit button',
  );
  await r.stop();
});

t.test('fire input: released on the first edge, bounces filtered, a new alarm after normal acted on at once', async (t) => {
  const r = await doorsRig();
  r.gpio.set(26, true);
  t.equal(r.gpio.level(17), true, 'released at the first edge, no debounce wait');
  r.gpio.set(26, false); // contact bounce
  r.gpio.set(26, true);
  r.gpio.set(26, false); // panel back to normal within the window
  r.vt.advance(100);
  const st = (await r.cmd('door.status')).result.fire;
  t.match(st, { inputActive: false, latched: true, released: true }, 'settled to normal after the window; latched');
  t.equal((await r.cmd('door.fireRelease', { action: 'clear' })).ok, true);
  t.equal(r.gpio.level(17), false);
  r.vt.advance(1);
  r.gpio.set(26, true);
  t.equal(r.gpio.level(17), true, 'the next alarm releases at once');
  t.same(
    r
      .records('alarm')
      .filter((a) => a.data.alarm === 'fire.release')
      .map((a) => a.type),
    ['alarm.raised', 'alarm.cleared', 'alarm.raised'],
  );
  await r.stop();
});
