// A smoke detector on a discrete input of the relay board (a Modbus input, read at the
// board's poll interval), played by the pymodbus pile peer: tripping it cuts every port
// of the pile within 1 s plus that interval and raises charging.fire on the alarm stream.
import t from 'tap';
import { waitFor } from './peer.js';
import { cmd, pileRig, records } from './rig.js';

t.test('Modbus smoke input: every port cut within 1 s + the poll interval, fire alarm, enable refused until it clears', async (t) => {
  const { g, py, port, status } = await pileRig(t, {
    edit: (c) => {
      (c.charging.piles[0] as { smoke: unknown[] }).smoke = [{ kind: 'modbus', device: 'relays-a', point: 'input_1' }];
    },
  });
  const pollMs = 100;
  await py.send({ load: { 0: 300, 1: 300, 2: 300 } });
  await waitFor(() => ['p1', 'p2', 'p3'].every((p) => port(p).state === 'charging'), 5000, 'three sessions');
  t.same(status().piles[0]!.fire, { active: false, inputs: [{ input: 'relays-a.input_1', active: false }] });
  // Measured from before the peer is told: includes the peer's own command handling.
  const t0 = performance.now();
  await py.send({ di: { 0: 1 } });
  await waitFor(() => ['p1', 'p2', 'p3'].every((p) => port(p).relay.on === false), 3000, 'all coils read back off');
  const ms = performance.now() - t0;
  t.comment(`Modbus smoke input → all 3 ports cut and read back: ${ms.toFixed(1)} ms (board and meter polled every ${pollMs} ms)`);
  t.ok(ms < 1000 + pollMs, `within 1 s + one poll interval (${ms.toFixed(0)} ms)`);
  t.ok(
    ['p1', 'p2', 'p3'].every((p) => port(p).lastEnd?.reason === 'fire'),
    'every port ended as fire',
  );
  t.same(status().piles[0]!.fire.inputs, [{ input: 'relays-a.input_1', active: true }]);
  const fire = records(g, 'alarm').filter((r) => r.type === 'charging.fire');
  t.equal(fire.length, 1, 'one fire alarm');
  t.match(fire[0].data, { alarm: 'fire', pile: 'shed-1', active: true, message: /relays-a\.input_1/ });
  t.same(
    records(g, 'event')
      .filter((r) => r.type === 'charging.session')
      .map((r) => r.data.endReason),
    ['fire', 'fire', 'fire'],
  );
  const refused = await cmd(g, 'charging.enable', { pile: 'shed-1', port: 'p1' });
  t.equal(refused.error?.code, 'fire_active', 'enable refused while the input is closed');
  // The detector resets: the alarm is cleared, the ports stay off until enabled.
  await py.send({ di: { 0: 0 } });
  await waitFor(() => !status().piles[0]!.fire.active, 3000, 'fire input back to normal');
  t.ok(
    records(g, 'alarm').some((r) => r.type === 'charging.fire' && r.data.active === false),
    'fire alarm cleared upstream',
  );
  t.equal(port('p1').state, 'off', 'still off until enabled');
  const en = await cmd(g, 'charging.enable', { pile: 'shed-1', port: 'p1' });
  t.equal(en.ok, true, 'enable answered ok once the input cleared');
  await waitFor(() => port('p1').state === 'charging', 5000, 'p1 charges again (the load is still plugged in)');
});
