// edge/backoff.ts: the one back-off every retry loop uses (uplink, meters, camera,
// inference worker, model load).
import t from 'tap';
import { Backoff, backoffCap, backoffDelay, checkBackoff } from '../../edge/backoff.js';

/** A deterministic random() stepping through the given values. */
const seq = (...v: number[]) => {
  let i = 0;
  return () => v[i++ % v.length]!;
};
/** A seeded uniform generator (mulberry32) for distribution checks. */
const seeded = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let x = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
  return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
};

t.test('growth: min × 2^attempt, capped at max; no jitter by default', async (t) => {
  const o = { minMs: 500, maxMs: 5000 };
  t.same(
    [0, 1, 2, 3, 4, 5, 10].map((a) => backoffDelay(a, o)),
    [500, 1000, 2000, 4000, 5000, 5000, 5000],
  );
  t.same(
    [0, 1, 2].map((a) => backoffDelay(a, { ...o, factor: 3 })),
    [500, 1500, 4500],
  );
  t.equal(backoffDelay(0, { minMs: 1000, maxMs: 1000 }), 1000, 'min = max: constant');
  t.equal(backoffDelay(-1, o), 500, 'a negative attempt counts as the first');
  t.equal(backoffCap(1e9, { minMs: 100, maxMs: 3_600_000 }), 3_600_000, 'many failures: the cap, never Infinity or NaN');
  t.equal(backoffCap(2000, { minMs: 0.5, maxMs: Number.MAX_VALUE }), Number.MAX_VALUE, 'no overflow past max');
  t.equal(backoffCap(1e12, { minMs: 100, maxMs: 1000, factor: 1 }), 100, 'factor 1: constant, at once for any attempt');
});

t.test('the previous per-site formulas give the same delays', async (t) => {
  // uplink/camera: min(max, min × 2^min(n, 20|30)); meters: min(max, base × 2^min(over, 20));
  // inference: min(30 s, 500 × 2^min(6, n)); model load: min(max, min × 2^min(16, n)).
  for (const [min, max] of [
    [100, 1000],
    [1000, 60_000],
    [5000, 300_000],
    [600_000, 3_600_000],
    [500, 30_000],
  ] as const)
    for (let n = 0; n < 40; n++) t.equal(backoffDelay(n, { minMs: min, maxMs: max }), Math.min(max, min * 2 ** Math.min(n, 20)), `${min}/${max} attempt ${n}`);
});

t.test("equal jitter: in [cap/2, cap], the uplink's previous formula", async (t) => {
  const o = { minMs: 1000, maxMs: 60_000, jitter: 'equal' as const };
  t.equal(backoffDelay(0, { ...o, random: () => 0 }), 500, 'r = 0: half the cap');
  t.equal(backoffDelay(0, { ...o, random: () => 0.999999 }), 1000, 'r → 1: the cap');
  t.equal(backoffDelay(3, { ...o, random: () => 0.5 }), 6000, '8 s cap, r = 0.5: 6 s');
  t.equal(backoffDelay(50, { ...o, random: () => 0.999999 }), 60_000, 'never above max');
  for (const r of [0, 0.1, 0.37, 0.5, 0.9])
    for (const n of [0, 2, 5, 9]) {
      const cap = Math.min(60_000, 1000 * 2 ** n);
      t.equal(backoffDelay(n, { ...o, random: () => r }), Math.round(cap / 2 + r * (cap / 2)), `attempt ${n}, r ${r}`);
    }
});

t.test('full jitter: in [min, cap]', async (t) => {
  const o = { minMs: 1000, maxMs: 10_000, jitter: 'full' as const };
  t.equal(backoffDelay(0, { ...o, random: () => 0.7 }), 1000, 'first retry: exactly min (cap = min)');
  t.equal(backoffDelay(3, { ...o, random: () => 0 }), 1000, 'never below min');
  t.equal(backoffDelay(3, { ...o, random: () => 0.5 }), 4500, '8 s cap, r = 0.5');
  t.equal(backoffDelay(20, { ...o, random: () => 0.999999 }), 10_000, 'never above max');
});

t.test('jitter distribution: uniform over its interval (seeded random)', async (t) => {
  for (const jitter of ['equal', 'full'] as const) {
    const o = { minMs: 1000, maxMs: 60_000, jitter, random: seeded(42) };
    const lo = jitter === 'equal' ? 8000 : 1000;
    const hi = 16_000;
    const n = 20_000;
    const bins = new Array<number>(10).fill(0);
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const d = backoffDelay(4, o); // cap 16 s
      if (d < lo || d > hi) t.fail(`${jitter}: ${d} outside [${lo}, ${hi}]`);
      sum += d;
      bins[Math.min(9, Math.floor(((d - lo) / (hi - lo)) * 10))]!++;
    }
    t.ok(Math.abs(sum / n - (lo + hi) / 2) < (hi - lo) * 0.01, `${jitter}: mean ${(sum / n).toFixed(0)} ≈ ${(lo + hi) / 2}`);
    t.ok(
      bins.every((b) => Math.abs(b - n / 10) < (n / 10) * 0.1),
      `${jitter}: every tenth of the interval gets ~10 % (${bins.join(' ')})`,
    );
  }
});

t.test('Backoff: counts attempts, resets after a success', async (t) => {
  const b = new Backoff({ minMs: 100, maxMs: 1000 });
  t.same([b.next(), b.next(), b.next(), b.next(), b.next()], [100, 200, 400, 800, 1000]);
  t.equal(b.attempts, 5);
  b.reset();
  t.equal(b.attempts, 0);
  t.equal(b.next(), 100, 'back to min after reset');
  const j = new Backoff({ minMs: 1000, maxMs: 8000, jitter: 'equal', random: seq(0, 0.5, 0.999999) });
  t.same([j.next(), j.next(), j.next()], [500, 1500, 4000], 'each delay draws once from the injected random');
});

t.test('Backoff refuses bad options; backoffDelay (run in timers) never throws', async (t) => {
  t.throws(() => new Backoff({ minMs: 0, maxMs: 10 }), /minMs must be a positive number/);
  t.throws(() => new Backoff({ minMs: 100, maxMs: 10 }), /maxMs \(10\) must be ≥ minMs \(100\)/);
  t.throws(() => new Backoff({ minMs: 100, maxMs: 1000, factor: 0.5 }), /factor must be ≥ 1/);
  t.throws(() => checkBackoff({ minMs: NaN, maxMs: 10 }), /minMs/);
  t.equal(backoffDelay(0, { minMs: 60_000, maxMs: 800 }), 800, 'max below min: max wins (the previous formulas did the same)');
  t.equal(backoffDelay(3, { minMs: 60_000, maxMs: 800, jitter: 'full', random: () => 0.5 }), 800);
  t.equal(backoffDelay(1, { minMs: 1, maxMs: 10, jitter: 'equal', random: () => 1 }), 2, 'random() = 1 clamped: the cap');
  t.equal(backoffDelay(1, { minMs: 100, maxMs: 1000, jitter: 'equal', random: () => NaN }), 100, 'NaN: the low end');
  t.equal(backoffDelay(2, { minMs: 100, maxMs: 1000, factor: 0.5 }), 100, 'factor below 1 counts as 1');
});
