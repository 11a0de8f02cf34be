// A port switched by a GPIO relay (the GPIO simulator, active-low like most opto-isolated
// relay boards) and metered by a channel of the pymodbus peer's meter. The test mirrors
// the relay line into the peer, so the channel draws its load only while the GPIO relay
// is on, as a charger behind that relay would.
import t from 'tap';
import { waitFor } from './peer.js';
import { cmd, pileRig, records } from './rig.js';
import { GpioError } from '../../drivers/gpio/types.js';
import type { SessionRecord } from '../../edge/charging/api.js';

const PIN = 17;

t.test('GPIO relay port: on at start, cut on over-power, write failure → fault, off (safe state) at shutdown', async (t) => {
  let mirror = Promise.resolve();
  const { g, py, gpio, port } = await pileRig(t, {
    edit: (c) => {
      (c.charging.piles[0]!.ports[0] as { relay: unknown }).relay = { kind: 'gpio', pin: PIN, activeLow: true };
    },
    beforeStart: async (peer, sim) => {
      await peer.send({ ext: { 0: false } });
      sim.onOutput = (line, change) => {
        if (line === PIN) mirror = mirror.then(() => peer.send({ ext: { 0: change.value } }));
      };
    },
  });
  t.equal(gpio.level(PIN), true, 'relay energised at start');
  t.equal(gpio.raw(PIN), false, 'active-low: the line is driven low');
  t.match(port('p1').relay, { kind: 'gpio', on: true, where: `GPIO ${PIN}` });
  await py.send({ load: { 0: 400 } });
  await waitFor(() => port('p1').state === 'charging', 5000, 'session on the GPIO port');
  const over = performance.now();
  await py.send({ load: { 0: 1500 } });
  await waitFor(() => port('p1').state === 'off', 5000, 'cut on over-power');
  t.comment(`GPIO port over-power cut ${(performance.now() - over).toFixed(0)} ms after the load rose (overPowerS 0.5 s, poll 100 ms)`);
  t.equal(port('p1').lastEnd?.reason, 'over_power');
  t.equal(gpio.level(PIN), false, 'relay released');
  t.equal(gpio.raw(PIN), true, 'line high (active-low off)');
  await mirror;
  await waitFor(() => port('p1').powerW === 0, 3000, 'the channel reads 0 W once the relay is off');
  t.ok(
    records(g, 'alarm').some((r) => r.type === 'charging.over_power' && r.data.port === 'p1'),
    'over-power alarm',
  );
  // Enabled again with a normal load: a second session.
  await py.send({ load: { 0: 400 } });
  t.equal((await cmd(g, 'charging.enable', { pile: 'shed-1', port: 'p1' })).ok, true);
  t.equal(gpio.level(PIN), true);
  await waitFor(() => port('p1').state === 'charging', 5000, 'second session');
  // A relay write that fails: the port is a fault, the command answers, nothing else breaks.
  gpio.failWrites(PIN, new GpioError('io', 'EIO writing the line'));
  const stop = await cmd(g, 'charging.stop', { pile: 'shed-1', port: 'p1' });
  t.equal(stop.ok, true, 'stop answered');
  t.equal(port('p1').state, 'fault', 'a relay that cannot be written is a fault');
  t.match(port('p1').fault, /GPIO 17: EIO/);
  t.ok(
    records(g, 'alarm').some((r) => r.type === 'charging.fault' && r.data.port === 'p1' && r.data.active),
    'fault alarm',
  );
  gpio.failWrites(PIN, undefined);
  t.equal((await cmd(g, 'charging.enable', { pile: 'shed-1', port: 'p1' })).ok, true, 'enabled again once the line can be written');
  await waitFor(() => port('p1').state === 'charging', 5000, 'third session');
  // Shutdown: the GPIO relay goes to its safe state and its session is recorded; the
  // Modbus ports keep their coils (the board holds them).
  const ended: SessionRecord[] = [];
  g.bus.on('charging.session', (s) => ended.push(s));
  await g.stop();
  t.equal(gpio.level(PIN), false, 'GPIO relay off after the gateway stopped');
  t.equal(gpio.inUse(PIN), false, 'line released');
  t.same(
    ended.map((s) => [s.port, s.endReason]),
    [['p1', 'shutdown']],
    'the open GPIO session ends as shutdown',
  );
});
