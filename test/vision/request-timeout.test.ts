// A request the inference worker does not answer in time fails, but the worker is not
// terminated: onnxruntime would call back into the dead worker and abort the whole
// gateway (seen under arm64 emulation, where a frame takes longer than the 30 s limit).
// Real models and onnxruntime; a 1 ms limit makes every request late.
import t from 'tap';
import { join } from 'node:path';
import { FACES, manifestModels, modelsDir, photo, rgb } from './helpers.js';
import { InferenceClient } from '../../edge/vision/inference.js';

const limits = { minFacePx: 40, maxYaw: 0.35, maxRollDeg: 20, minSharpness: 0, minBrightness: 0 };

t.test('a late answer fails the request, keeps the worker and its slot, and the next request works', async (t) => {
  const c = InferenceClient.create({ engine: { models: manifestModels(), dir: modelsDir(), threads: 1 }, maxQueuedPhotos: 2, requestTimeoutMs: 1 });
  const timeouts: number[] = [];
  c.on('timeout', (id: number) => timeouts.push(id));
  let crashed = 0;
  c.on('crash', () => crashed++);
  await c.load();
  const img = await rgb(photo(join(FACES(), 'obama', '2.jpg')));
  await t.rejects(c.analyzeFrame(img, limits, false), /not answered within 0\.001 s/);
  t.equal(timeouts.length, 1, 'the timeout was reported');
  t.ok(c.frameInFlight, 'the frame slot stays taken until the worker answers');
  await t.rejects(c.analyzeFrame(img, limits, false), { name: 'BusyError' }, 'no second frame piles up behind it');
  const end = Date.now() + 60_000;
  while (c.frameInFlight && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
  t.notOk(c.frameInFlight, 'the late answer freed the slot');
  t.ok(c.ready, 'the same worker is still there');
  t.equal(crashed, 0, 'no worker crash');
  // A photo, also late, then stop() while it is in flight: no abort, a clean end.
  const late = c.analyzePhoto(img, limits);
  await t.rejects(late, /not answered/);
  await c.stop();
  t.pass('stopped with a run in flight, and the process is still alive');
});

t.test('with a limit the worker meets, results come back as before', async (t) => {
  const c = InferenceClient.create({ engine: { models: manifestModels(), dir: modelsDir(), threads: 1 }, maxQueuedPhotos: 2, requestTimeoutMs: 30_000 });
  await c.load();
  const a = await c.analyzePhoto(await rgb(photo(join(FACES(), 'obama', '2.jpg'))), limits);
  t.ok(a.subject?.embedding && a.subject.embedding.length > 100, 'an embedding');
  await c.stop();
});
