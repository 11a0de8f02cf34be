// A bounded command fuzz (npm run bench:faults runs ≥100,000): every message gets
// exactly one result record, garbage never executes anything, metric series stay bounded.
import t from 'tap';
import { runFuzz } from '../../scripts/lib/fuzz.js';

t.test('5,000 fuzzed commands: one result each, no side effect from garbage, bounded metric labels', async (t) => {
  const f = await runFuzz(5000, 7);
  t.equal(f.results, f.messages, `${f.results} result records for ${f.messages} messages`);
  t.equal(f.unanswered, 0, 'none unanswered');
  t.equal(f.wrongExecutions, 0, 'no invalid command executed');
  t.equal(f.executed, f.valid, `every valid command executed once (${f.valid})`);
  t.ok(f.metricSeries <= 2, `metric name labels: ${f.metricSeries} (f.act and unknown)`);
  for (const code of ['bad_json', 'bad_envelope', 'clock_skew', 'expired', 'unknown_command', 'bad_args', 'too_large']) t.ok(f.codes[code]! > 0, `${code}: ${f.codes[code]}`);
});
