// End to end over a real Mosquitto: the platform sends door.unlock over MQTT → the lock
// output pulses on the (simulated) GPIO → the access event, door state events and the
// command result arrive upstream. Also: a fire release with the uplink down is kept and
// its records are delivered once the broker is back.
import t from 'tap';
import { Broker } from '../helpers/broker.js';
import { Platform, waitFor } from '../helpers/subscriber.js';
import { startGateway } from '../helpers/gateway.js';
import { SimulatedGpio } from '../../drivers/gpio/simulated.js';
import { createDoorsModule } from '../../edge/doors/module.js';

const doors = {
  fire: { input: { pin: 26, debounceMs: 5 } },
  groups: [{ id: 'residents', doors: ['gate'] }],
  doors: [
    { id: 'gate', name: 'Gate', lock: { pin: 17 }, contact: { pin: 27, debounceMs: 5 }, unlockMs: 400 },
    { id: 'bldg-a', lock: { pin: 23 }, unlockMs: 400 },
  ],
};

t.test('door.unlock over MQTT → GPIO pulse → access event upstream', async (t) => {
  const broker = await Broker.start();
  t.teardown(() => broker.stop());
  const gpio = new SimulatedGpio();
  const g = await startGateway({ uplink: { url: broker.url }, doors }, { modules: [(ctx) => createDoorsModule(ctx, { backend: gpio })] });
  t.teardown(() => g.stop());
  const p = await Platform.connect(broker.url);
  t.teardown(() => p.close());
  const base = 'estate/t-site/t-gw';
  await waitFor(() => g.uplink.isConnected(), 10_000, 'uplink');

  const person = await p.command(base, 'person.upsert', { id: 'r-101', name: 'Resident 101', kind: 'resident', doorGroups: ['residents'] });
  t.equal(person.ok, true);
  const sent = Date.now();
  const res = await p.command(base, 'door.unlock', { doorId: 'gate', personId: 'r-101' });
  t.equal(res.ok, true, 'command result ok');
  t.match(res.result, { granted: true, doorId: 'gate', personId: 'r-101', credential: 'remote' });
  await waitFor(() => gpio.history(17).length >= 3, 5000, 'pulse end');
  const [, on, off] = gpio.history(17);
  t.ok(on!.value && !off!.value, 'one unlock pulse on BCM 17');
  t.ok(on!.at >= sent - 50, 'pulse after the command was sent');
  const width = off!.at - on!.at;
  t.ok(width >= 390 && width < 3000, `pulse width ${width} ms ≈ unlockMs 400 (late only by event-loop delay)`);
  t.equal(gpio.history(23).length, 1, 'the other door did not move');

  await p.waitFor(() => p.records('access').some((r) => r.data.doorId === 'gate'), 10_000, 'access record');
  const acc = p.records('access').find((r) => r.data.doorId === 'gate')!;
  t.match(acc, { type: 'access.decision', data: { granted: true, reason: 'granted', credential: 'remote', personId: 'r-101', personName: 'Resident 101', doorId: 'gate' } });
  t.match(acc.data.requestedBy, /^mqtt:cmd-/);
  // (States published before the platform subscribed, like the one at start, are not seen here.)
  const states = () => p.records('event').filter((r) => r.type === 'door.state' && r.data.doorId === 'gate' && r.data.cause !== 'start');
  await p.waitFor(() => states().length >= 2, 10_000, 'door states');
  t.same(
    states().map((r) => [r.data.lock, r.data.cause]),
    [
      ['unlocked', 'granted:remote'],
      ['locked', 'pulse_end'],
    ],
  );

  // A denial is an access record too, and the command result says why.
  const denied = await p.command(base, 'door.unlock', { doorId: 'bldg-a', personId: 'r-101' });
  t.match(denied, { ok: false, error: { code: 'door_not_allowed' } });
  await p.waitFor(() => p.records('access').some((r) => r.data.reason === 'door_not_allowed'), 10_000, 'denial record');

  // Uplink down: the fire release still works, and its records wait in the outbox.
  await broker.stop();
  await waitFor(() => !g.uplink.isConnected(), 10_000, 'uplink down');
  gpio.set(26, true);
  await waitFor(() => gpio.level(17) && gpio.level(23), 2000, 'fire release with the uplink down');
  gpio.set(27, true); // people leave through the gate: no forced-open alarm during a fire
  await new Promise((r) => setTimeout(r, 50));
  g.outbox.flush();
  const held = g.outbox.read('alarm', 0, Number.MAX_SAFE_INTEGER, 100, 1e9).map((r) => JSON.parse(r.body));
  t.same(
    held.map((r) => [r.type, r.data.alarm]),
    [['alarm.raised', 'fire.release']],
    'the fire alarm waits in the outbox (and no forced-open alarm)',
  );
  t.ok(g.outbox.stats().streams.access.count === 0, 'earlier access records were acknowledged');
  await broker.start();
  // Delivered (acknowledged by the broker) once the uplink is back.
  await waitFor(() => g.outbox.stats().streams.alarm.count === 0, 20_000, 'fire alarm delivered after reconnect');
  t.equal(gpio.level(17), true, 'still released');
});
