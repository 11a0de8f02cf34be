// Over-time cut against the pymodbus pile peer without waiting hours: the gateway runs
// on a clock the test moves on. The peer keeps supplying the power, the scheduler keeps
// polling, only time jumps.
import t from 'tap';
import { waitFor } from './peer.js';
import { pileRig, records, SteppedClock } from './rig.js';

t.test('a session longer than maxHours is cut as over_time with a session record; a wall-clock step is not time passing', async (t) => {
  const clock = new SteppedClock();
  const { g, py, port } = await pileRig(t, {
    clock,
    edit: (c) => {
      c.charging.piles[0]!.thresholds = { ...c.charging.piles[0]!.thresholds, maxHours: 0.5 };
      // The jump of half an hour must not look like a silent meter.
      (c.charging as { meterStaleS: number }).meterStaleS = 3600;
    },
  });
  await py.send({ load: { 0: 400 } });
  await waitFor(() => port('p1').state === 'charging', 5000, 'session started');
  // NTP steps the wall clock a day forward (a box whose RTC was a day behind): the
  // session has not lasted longer, so it must go on.
  clock.wallOffsetMs += 86_400_000;
  await new Promise((r) => setTimeout(r, 600));
  t.equal(port('p1').state, 'charging', 'a wall-clock step does not cut the session');
  // Half an hour passes.
  const jumped = performance.now();
  clock.advance(30 * 60_000);
  await waitFor(() => port('p1').state === 'off', 3000, 'p1 cut as over-time');
  t.comment(`over-time cut ${(performance.now() - jumped).toFixed(0)} ms after the clock passed maxHours (tick 50 ms)`);
  t.equal(port('p1').lastEnd?.reason, 'over_time');
  await waitFor(() => port('p1').relay.on === false, 3000, 'p1 coil read back off');
  t.equal(port('p2').state, 'idle', 'the idle ports are untouched by the jump');
  t.equal(port('p3').state, 'idle');
  const sessions = records(g, 'event').filter((r) => r.type === 'charging.session');
  t.equal(sessions.length, 1, 'one session upstream');
  const s = sessions[0].data;
  t.match(s, { pile: 'shed-1', port: 'p1', endReason: 'over_time', energySource: 'meter' });
  t.ok(s.end - s.start >= 30 * 60_000, `the record spans the half hour (${s.end - s.start} ms of wall time)`);
  t.ok(s.peakW >= 399 && s.peakW <= 401, `peak W from the peer (${s.peakW})`);
  t.ok(s.kWh >= 0, 'kWh from the meter counter');
  const cuts = records(g, 'event').filter((r) => r.type === 'charging.port' && r.data.port === 'p1' && r.data.state === 'off');
  t.equal(cuts[0]?.data.cause, 'over_time', 'the state change says why');
});
