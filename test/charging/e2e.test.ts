// Charging-pile supervision end to end over a real serial line: socat ptys and an
// independent pymodbus peer (pile_peer.py) playing the relay board and the meter; the
// gateway runs the real meters scheduler and the charging supervisor; GPIO (the smoke
// input) is the simulator, the only thing that cannot exist here.
import t from 'tap';
import { pileConfig as config, thresholds, waitFor } from './peer.js';
import { testConfig } from '../helpers/gateway.js';
import { cmd, pileRig as rig, records } from './rig.js';

t.test('charging → full cut, over-power cut within the configured time, session records, commands', async (t) => {
  const { g, py, port } = await rig(t);
  await py.send({ load: { 0: 400, 1: 400 } });
  await waitFor(() => port('p1').state === 'charging' && port('p2').state === 'charging', 5000, 'sessions started');
  // p1: the battery fills (power tapers below taperW) → cut as full after fullAfterS.
  await py.send({ load: { 0: 15 } });
  await waitFor(() => port('p1').state === 'off', 5000, 'p1 cut as full');
  t.equal(port('p1').lastEnd?.reason, 'full');
  await waitFor(() => port('p1').relay.on === false, 3000, 'p1 coil read back off');
  // p2: over-power.
  const over = Date.now();
  await py.send({ load: { 1: 1500 } });
  await waitFor(() => port('p2').state === 'off', 5000, 'p2 cut on over-power');
  const overMs = Date.now() - over;
  t.comment(`over-power cut ${overMs} ms after the load rose (overPowerS 0.5 s, poll 100 ms)`);
  t.equal(port('p2').lastEnd?.reason, 'over_power');
  t.ok(overMs < 500 + 1500, 'cut within overPowerS plus a few poll cycles');
  const sessions = records(g, 'event').filter((r) => r.type === 'charging.session');
  t.equal(sessions.length, 2, 'two sessions upstream');
  for (const s of sessions) {
    t.match(s.data, { pile: 'shed-1', id: String, start: Number, end: Number, kWh: Number, peakW: Number, energySource: 'meter' });
    t.ok(s.data.end > s.data.start, 'end after start');
  }
  t.same(sessions.map((s) => s.data.endReason).sort(), ['full', 'over_power']);
  t.ok(sessions.find((s) => s.data.endReason === 'over_power').data.peakW >= 1000, 'peak W of the over-power session');
  t.ok(
    records(g, 'alarm').some((r) => r.type === 'charging.over_power' && r.data.active),
    'over-power alarm on the alarm stream',
  );
  // Commands: roles, audit, refusal of unknown ports.
  t.equal(g.commands.roleOf('charging.status'), 'viewer');
  t.equal(g.commands.roleOf('charging.stop'), 'technician');
  t.equal(g.commands.roleOf('charging.enable'), 'technician');
  t.equal(g.commands.capabilityOf('charging.stop'), 'charging');
  const en = await cmd(g, 'charging.enable', { pile: 'shed-1', port: 'p1' });
  t.equal(en.ok, true, 'enable answered ok');
  t.equal(port('p1').state, 'idle');
  const stop = await cmd(g, 'charging.stop', { pile: 'shed-1', port: 'p3' });
  t.equal(stop.ok, true);
  t.equal(port('p3').state, 'off');
  const bad = await cmd(g, 'charging.stop', { pile: 'shed-1', port: 'p9' });
  t.equal(bad.ok, false);
  t.equal((bad as { error?: { code: string } }).error?.code, 'unknown_port');
  const audit = records(g, 'audit').filter((r) => r.type.startsWith('charging.'));
  t.same(
    audit.map((r) => [r.type, r.data.port, r.data.outcome, r.data.by]),
    [
      ['charging.enable', 'p1', 'ok', 'tech1'],
      ['charging.stop', 'p3', 'ok', 'tech1'],
      ['charging.stop', 'p9', 'unknown_port', 'tech1'],
    ],
  );
});

t.test('relay not following → fault after the retries; meter offline → fault and relay off', async (t) => {
  const { g, py, port, status } = await rig(t);
  await py.send({ load: { 0: 300 } });
  await waitFor(() => port('p1').state === 'charging', 5000, 'session started');
  await py.send({ stuck: true });
  await cmd(g, 'charging.stop', { pile: 'shed-1', port: 'p1' });
  await waitFor(() => port('p1').state === 'fault', 5000, 'p1 fault');
  t.match(port('p1').fault, /relay does not follow/);
  t.ok(status().counters.writeRetries >= 2, `write retries counted (${status().counters.writeRetries})`);
  t.ok(
    records(g, 'alarm').some((r) => r.type === 'charging.fault' && r.data.port === 'p1'),
    'fault alarm',
  );
  await py.send({ stuck: false });
  await py.send({ meter: false });
  await waitFor(() => port('p2').state === 'fault' && port('p3').state === 'fault', 8000, 'ports fault when the meter is offline');
  await waitFor(() => port('p2').relay.on === false && port('p3').relay.on === false, 5000, 'relays in their safe state');
  t.match(port('p2').fault, /meter meter-a|no reading/);
});

t.test('smoke input cuts every port of the pile within 1 s while the line is busy polling', async (t) => {
  const { g, py, gpio, port, status } = await rig(t);
  await py.send({ load: { 0: 300, 1: 300, 2: 300 } });
  await waitFor(() => ['p1', 'p2', 'p3'].every((p) => port(p).state === 'charging'), 5000, 'three sessions');
  const t0 = performance.now();
  gpio.set(5, true);
  await waitFor(() => ['p1', 'p2', 'p3'].every((p) => port(p).relay.on === false), 3000, 'all coils read back off');
  const ms = performance.now() - t0;
  t.comment(`smoke → all 3 ports cut and read back: ${ms.toFixed(1)} ms (meter + relay board polled every 100 ms)`);
  // A safety requirement of the issue: within 1 s.
  t.ok(ms < 1000, `all ports cut within 1 s (${ms.toFixed(0)} ms)`);
  t.ok(['p1', 'p2', 'p3'].every((p) => port(p).lastEnd?.reason === 'fire'));
  t.ok(status().piles[0]!.fire.active);
  t.ok(
    records(g, 'alarm').some((r) => r.type === 'charging.fire' && r.data.active),
    'fire alarm on the (never evicted) alarm stream',
  );
  const en = await cmd(g, 'charging.enable', { pile: 'shed-1', port: 'p1' });
  t.equal((en as { error?: { code: string } }).error?.code, 'fire_active', 'enable refused while the input is tripped');
});

t.test('bad config refused with clear errors', async (t) => {
  const c = config('/dev/null') as any;
  c.charging.piles[0].ports[1].relay.coil = 0;
  c.charging.piles[0].ports[2].meter.power = 'power_9';
  c.charging.piles[0].ports[0].meter.device = 'nope';
  c.charging.piles[0].thresholds = { ...thresholds, maxW: 20 };
  c.charging.piles[0].smoke.push({ kind: 'gpio', pin: 5 });
  const problems: string[] = [];
  t.throws(() => testConfig(c), 'refused');
  try {
    testConfig(c);
  } catch (err) {
    problems.push((err as Error).message);
  }
  const msg = problems.join('\n');
  t.match(msg, /coil 0 of relays-a already switches shed-1\/p1/);
  t.match(msg, /has no point "power_9"/);
  t.match(msg, /no device "nope"/);
  t.match(msg, /maxW \(20 W\) must be above taperW/);
  t.match(msg, /GPIO 5 is already used/);
});
