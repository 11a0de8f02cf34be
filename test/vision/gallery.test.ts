// The in-memory gallery (edge/vision/gallery.ts) on its own: after any sequence of adds and
// removals (the matrix is compacted in place) a search must equal a brute-force scan of the
// rows that remain, and the per-person counts must follow.
import t from 'tap';
import { Gallery } from '../../edge/vision/gallery.js';

let seed = 7;
const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff - 0.5) * 0.3;

function brute(rows: Map<number, { p: string; v: Float32Array }>, q: Float32Array) {
  const best = new Map<string, number>();
  for (const r of rows.values()) {
    const dist = Math.sqrt(r.v.reduce((s, x, i) => s + (x - q[i]!) ** 2, 0));
    best.set(r.p, Math.min(best.get(r.p) ?? Infinity, dist));
  }
  return [...best].sort((a, b) => a[1] - b[1]);
}

t.test('adds and removals in any order: search equals a brute-force scan of what remains', async (t) => {
  const dim = 64;
  const g = new Gallery({ dim, metric: 'euclidean', l2Normalise: false });
  const rows = new Map<number, { p: string; v: Float32Array }>();
  let id = 0;
  for (let round = 0; round < 6; round++) {
    for (let k = 0; k < 40; k++) {
      const p = `p${Math.floor(rnd() * 1000 + 500) % 30}`;
      const v = Float32Array.from({ length: dim }, rnd);
      g.add(++id, p, v, k % 7 === 0);
      rows.set(id, { p, v });
    }
    // Remove every third row of this round and, once, a whole person.
    const gone = new Set([...rows.keys()].filter((i) => i % 3 === round % 3));
    g.remove((r) => gone.has(r.id));
    for (const i of gone) rows.delete(i);
    if (round === 3) {
      const victim = rows.values().next().value!.p;
      g.remove((r) => r.personId === victim);
      for (const [i, r] of rows) if (r.p === victim) rows.delete(i);
      t.equal(g.count(victim), 0, 'a removed person has no templates left');
      t.notOk(g.persons().includes(victim), 'and is no longer listed');
    }
    t.equal(g.count(), rows.size, `round ${round}: row count follows`);
    for (let k = 0; k < 5; k++) {
      const q = Float32Array.from({ length: dim }, rnd);
      const ranked = brute(rows, q);
      const m = g.search(q)!;
      t.equal(m.personId, ranked[0]![0], `round ${round}: best person`);
      t.ok(Math.abs(m.score - ranked[0]![1]) < 1e-5, 'its exact distance');
      t.equal(m.runnerUp?.personId, ranked[1]![0], 'runner-up person');
    }
  }
  const perPerson = new Map<string, number>();
  for (const r of rows.values()) perPerson.set(r.p, (perPerson.get(r.p) ?? 0) + 1);
  for (const [p, n] of perPerson) t.equal(g.count(p), n, `${p}: ${n} templates`);
});

t.test('learned rows are kept apart for scoreAgainst; the door-restricted search ignores other persons', async (t) => {
  const g = new Gallery({ dim: 4, metric: 'cosine', l2Normalise: true });
  g.add(1, 'a', Float32Array.from([1, 0, 0, 0]));
  g.add(2, 'a', Float32Array.from([0, 1, 0, 0]), true);
  g.add(3, 'b', Float32Array.from([0.9, 0.1, 0, 0]));
  const q = Float32Array.from([0, 1, 0, 0]);
  t.ok(Math.abs(g.scoreAgainst('a', q, { learned: true })! - 1) < 1e-6, 'with learned rows: the learned template matches exactly');
  t.ok(Math.abs(g.scoreAgainst('a', q, { learned: false })!) < 1e-6, 'enrolled only: orthogonal');
  t.equal(g.scoreAgainst('c', q, { learned: true }), undefined, 'an unknown person has no score');
  t.equal(g.search(Float32Array.from([1, 0, 0, 0]), new Set(['b']))!.personId, 'b', 'only the allowed person is a candidate');
  t.equal(g.search(Float32Array.from([1, 0, 0, 0]), new Set(['nobody'])), undefined, 'nobody allowed: no match');
  t.same(g.gallerySize(new Set(['a'])), { persons: 1, templates: 2 });
  t.throws(() => g.search(Float32Array.from([1, 0])), /2 values, expected 4/, 'a query of the wrong length is refused');
});
