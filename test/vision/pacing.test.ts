// Which frame is analysed when the worker becomes free (edge/vision/pacing.ts): the newest
// one while it is fresh, else the next one, but never a wait longer than one interval.
import t from 'tap';
import { pace } from '../../edge/vision/pacing.js';

t.test('a frame younger than half an interval is analysed at once', async (t) => {
  t.same(pace(0, 10), { take: true });
  t.same(pace(49, 10), { take: true }, '49 ms old at 10 fps (interval 100 ms)');
  t.same(pace(50, 10), { take: true }, 'exactly half an interval: taken');
});

t.test('an older frame waits for the next one, at most one interval', async (t) => {
  t.same(pace(51, 10), { take: false, waitMs: 100 }, '51 ms old at 10 fps: the next frame is due within 49 ms');
  t.same(pace(90, 25), { take: false, waitMs: 40 }, '25 fps: interval 40 ms');
  t.same(pace(5000, 0.5), { take: false, waitMs: 2000 }, 'slowest camera setting: waits one interval (2 s), then the module analyses it anyway');
});

t.test('a nonsense age never blocks analysis', async (t) => {
  t.same(pace(Number.NaN, 10), { take: true }, 'NaN age (no timestamp): taken');
  t.same(pace(-5, 10), { take: true }, 'a clock step backwards: taken');
});
