// Broker outage with a backlog (issue 16, "prove it in the suite"): the production bundle as
// the unit runs it, meters at several hundred records/s, a door.unlock from the platform and
// one from the console every ~300 ms; the uplink is cut for EE_OUTAGE_S (default 22 s) and
// restored (test/faults/outage-campaign.ts says why a cut link and not a killed broker).
// Pass:
// - nothing lost: every seq the gateway made is upstream or still held in its outbox at the
//   exit, and every seq committed before the return is upstream; no outbox.evicted (default
//   quota); per stream and flow the order holds within each connection;
// - the access backlog arrives before the telemetry backlog;
// - live telemetry is not starved while the backlog drains;
// - every command the broker handed over got exactly one result, the ones sent after the
//   return too (their latency is printed);
// - during the outage the retained status is the will (docs/mqtt-api.md: "Only when the
//   connection dies does the broker publish the will (offline, reason: connection lost)"),
//   /healthz says degraded with the uplink not ok, gateway.status says uplinkConnected false;
//   after the return online again and /healthz ok;
// - no error logged, no stack trace, exit 0 on SIGTERM within TimeoutStopSec.
import t from 'tap';
import { runOutageCampaign, outageFigures } from './outage-campaign.js';
import { STREAMS, TIMEOUT_STOP_S } from './harness.js';

const OUTAGE_S = Number(process.env.EE_OUTAGE_S ?? 22);

t.test(`broker outage of ${OUTAGE_S} s with a backlog, under load: nothing lost, access first, live not starved, commands answered after the return`, async (t) => {
  const r = await runOutageCampaign({ outageS: OUTAGE_S, progress: (l) => t.comment(l) });

  // Nothing lost.
  for (const s of STREAMS) {
    t.same(r.lost[s].slice(0, 20), [], `${s}: every seq 1…${r.lastSeq[s]} is upstream or still held in the outbox (${r.heldAtExit[s]} held at the exit)${r.lost[s].length ? `, ${r.lost[s].length} lost` : ''}`);
  }
  t.ok(r.drained, `every seq committed before the return is upstream: ${JSON.stringify(r.recordedAtRestore)}`);
  t.same(r.evicted, [], 'no outbox.evicted with the default quota');
  t.same(r.orderViolations, [], 'per stream and flow, seqs only go up within each connection');
  t.ok(r.backlog.telemetry > r.productionPerS * r.outageS * 0.5, `a real telemetry backlog: ${r.backlog.telemetry} records (${r.productionPerS.toFixed(0)}/s for ${r.outageS.toFixed(1)} s)`);
  t.ok(r.backlog.access > 0, `an access backlog from the console's unlocks during the outage: ${r.backlog.access} records (${r.console.duringOutageOk} unlocks)`);

  // Access first.
  t.ok(r.order.accessBackfillMessages > 0 && r.order.lastAccessBackfill < r.order.firstTelemetryBackfill, `access backlog before the telemetry backlog: ${JSON.stringify(r.order)}`);

  // Live data while the backlog drains.
  t.ok(r.live.records > 0, `${r.live.records} live telemetry records arrived during the ${r.drainS.toFixed(1)} s drain`);
  // Starved would mean live records wait behind the backlog: their lag (made → upstream)
  // says so. Their rate is the meters' (simulated meters poll on the gateway's event loop, so
  // a busy drain on a busy machine slows production itself): a figure, not a pass criterion.
  t.ok(r.live.lagP50Ms < 1000 && r.live.lagMaxMs < 5000, `live telemetry not held behind the backlog: lag p50 ${r.live.lagP50Ms} ms (< 1 s), max ${r.live.lagMaxMs} ms (< 5 s); ${r.live.perS.toFixed(0)}/s during the drain, ${r.productionPerS.toFixed(0)}/s before the outage`);

  // Commands.
  const c = r.commands;
  t.same(c.errors, [], 'the platform could publish every command');
  t.same(c.unansweredWhen.slice(0, 10), [], `every command the gateway was given got a result (${c.delivered} of ${c.sent} handed over, ${c.unanswered.length} unanswered)`);
  // In flight at the cut: accepted by the broker, lost with the connection (clean session),
  // answered once the platform sends it again with the same id, and never executed twice.
  t.ok(
    c.resent.every((x) => x.fromCutMs > -2000 && x.fromCutMs <= 0),
    `commands without a result before the return were all sent in the 2 s before the cut (in flight): ${JSON.stringify(c.resent)}`,
  );
  t.ok(
    c.resent.every((x) => x.answered && x.results.filter((r) => !r.duplicate).length === 1),
    'each of them answered after being sent again with the same id, executed once',
  );
  t.same(c.answeredTwice.slice(0, 10), [], 'no other command answered twice');
  t.same(c.strays, [], 'no result for a command that found no subscriber');
  t.equal(c.duringOutageDelivered, 0, 'no command was handed over while the gateway was cut off (clean session: not queued)');
  t.ok(c.afterReturn.delivered >= 5 && c.afterReturn.unanswered === 0, `${c.afterReturn.delivered} commands sent after the return, each answered: latency p50 ${c.afterReturn.latencyP50Ms} ms, max ${c.afterReturn.latencyMaxMs} ms`);
  t.ok(c.afterReturn.latencyMaxMs < 5000, 'commands are answered within 5 s while the backlog drains');
  t.same(
    Object.keys(c.codes).filter((k) => k !== 'ok'),
    [],
    `every result ok: ${JSON.stringify(c.codes)}`,
  );
  t.same(
    Object.keys(r.console.byStatus).filter((s) => s !== '200'),
    [],
    `every console unlock answered 200: ${JSON.stringify(r.console.byStatus)}`,
  );

  // Status and health.
  t.match(r.status.will, { state: 'offline', reason: 'connection lost' }, `the will was published ${r.status.willAfterMs} ms after the cut`);
  t.match(r.status.retainedDuring, { state: 'offline', reason: 'connection lost' }, 'during the outage the retained status is the will');
  t.ok(r.status.onlineAfterReturn, 'online birth after the return');
  t.match(r.status.retainedAfter, { state: 'online' }, 'after the return the retained status is online');
  t.match(r.health.during, { status: 'degraded', modules: { uplink: { ok: false } } }, `/healthz during the outage: degraded, uplink: ${r.health.during?.modules?.uplink?.message}`);
  t.match(r.health.after, { status: 'ok', modules: { uplink: { ok: true } } }, '/healthz after the return: ok');
  t.ok(r.statusRecords.duringOutage > 0 && r.statusRecords.saidDisconnected === r.statusRecords.duringOutage, `gateway.status made during the outage says uplinkConnected false (${r.statusRecords.saidDisconnected} of ${r.statusRecords.duringOutage})`);

  // The process.
  t.same(r.log.errors, [], 'no error logged');
  t.notOk(r.log.stackTrace, 'no stack trace');
  t.ok(r.log.stopped && !r.log.startedAfterStopped, '"gateway stopped" logged, nothing started after it');
  t.equal(r.exit.code, 0, `exit 0 on SIGTERM in ${Math.round(r.exit.ms)} ms`);
  t.ok(r.exit.ms < TIMEOUT_STOP_S * 1000, `stopped within TimeoutStopSec (${TIMEOUT_STOP_S} s)`);
  t.same(r.integrity, { 'outbox.db': 'ok', 'state.db': 'ok' }, 'PRAGMA integrity_check ok');

  t.comment(`figures: ${outageFigures(r)}`);
});
