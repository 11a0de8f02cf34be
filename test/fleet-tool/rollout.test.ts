import t from 'tap';
import { commandId, matchGlob, rollout, type Target } from '../../scripts/lib/fleet/rollout.js';

const gws = (n: number): Target[] => Array.from({ length: n }, (_, i) => ({ site: 's1', gateway: `gw${String(i).padStart(2, '0')}` }));

t.test('canary then batches, all succeed', async (t) => {
  const order: string[] = [];
  const rep = await rollout(gws(6), {
    batch: 2,
    changeKey: 'k',
    runStep: async (g) => {
      order.push(g.gateway);
      return { state: 'done' };
    },
  });
  t.equal(rep.halted, false);
  t.same(
    rep.rows.map((r) => r.batch),
    [0, 1, 1, 2, 2, 3],
  );
  t.equal(order[0], 'gw00', 'canary first');
  t.ok(rep.rows.every((r) => r.state === 'done'));
});

t.test('a failing canary halts: the rest untouched', async (t) => {
  let calls = 0;
  const rep = await rollout(gws(5), {
    batch: 5,
    changeKey: 'k',
    runStep: async () => {
      calls++;
      return { state: 'rolled_back', detail: 'uplink lost' };
    },
  });
  t.equal(rep.halted, true);
  t.equal(calls, 1);
  t.same(rep.haltedAt, { site: 's1', gateway: 'gw00' });
  t.equal(rep.rows.filter((r) => r.state === 'untouched').length, 4);
});

t.test('a failure in a batch stops later batches; a thrown step counts as failed', async (t) => {
  const rep = await rollout(gws(7), {
    batch: 2,
    changeKey: 'k',
    runStep: async (g) => {
      if (g.gateway === 'gw02') throw new Error('broker gone');
      return { state: 'confirmed' };
    },
  });
  t.equal(rep.halted, true);
  t.same(
    rep.rows.map((r) => r.state),
    ['confirmed', 'confirmed', 'failed', 'untouched', 'untouched', 'untouched', 'untouched'],
  );
  t.equal(rep.rows[2]?.detail, 'broker gone');
});

t.test('command ids are stable per change and target (idempotent re-run)', async (t) => {
  const a = { site: 's', gateway: 'g' };
  t.equal(commandId('x', a), commandId('x', a));
  t.not(commandId('x', a), commandId('y', a));
  t.not(commandId('x', a), commandId('x', { site: 's', gateway: 'h' }));
  t.ok(commandId('x', a).length <= 128);
  await t.rejects(rollout(gws(1), { batch: 0, changeKey: 'k', runStep: async () => ({ state: 'done' }) }));
});

t.test('globs', async (t) => {
  t.ok(matchGlob('site-*', 'site-a'));
  t.ok(matchGlob('gw?', 'gw1'));
  t.notOk(matchGlob('gw?', 'gw10'));
  t.notOk(matchGlob('a.b', 'axb'), 'dot is literal');
});
