// The second factor through the real face path: the shared video streamed through ffmpeg
// as the gate camera, the real inference worker and models, the real doors module on a
// face_and_pin gate. The recognised resident is not let in on the face: the door waits for
// her PIN, and only the right one opens it (docs/face-access.md, "Second factor").
import t from 'tap';
import { join } from 'node:path';
import { faceRig, FACES, photo, VIDEO, waitFor } from './helpers.js';
import type { VisionDecisionEvent } from '../../edge/vision/module.js';

t.test('face_and_pin gate: the confirmed face waits for the PIN; a wrong PIN denies, the right one opens', async (t) => {
  const r = await faceRig(
    { camera: { source: { kind: 'file', path: VIDEO() }, fps: 10 }, match: { cooldownS: 2 } },
    {
      doors: {
        gpio: { backend: 'simulated' },
        groups: [{ id: 'residents', doors: ['gate'] }],
        doors: [{ id: 'gate', lock: { pin: 17 }, unlockMs: 3000, access: { mode: 'face_and_pin', pinTimeoutS: 60 } }],
      },
    },
  );
  t.teardown(() => r.stop());
  const decisions: VisionDecisionEvent[] = [];
  r.g.bus.on('vision.decision', (d) => decisions.push(d));
  const up = await r.cmd('person.upsert', { id: 'obama', kind: 'resident', doorGroups: ['residents'], pin: '2468', faces: { photos: [photo(join(FACES(), 'obama', '2.jpg')).toString('base64')] } });
  t.ok(up.ok, JSON.stringify(up.error ?? ''));
  t.equal(up.result.person.hasPin, true);
  await waitFor(() => decisions.length > 0, 60_000, 'a face decision');
  t.match(decisions[0], { doorId: 'gate', personId: 'obama', granted: false, reason: 'pin_required' }, 'recognised, but the face alone does not open');
  t.notOk(
    r.gpio.history(17).some((h) => h.value),
    'the gate stayed locked',
  );
  t.equal(r.records('access').length, 0, 'no decision recorded yet');
  const status = (await r.cmd('door.status', { doorId: 'gate' })).result.doors[0];
  t.match(status, { mode: 'face_and_pin', awaitingPin: { personId: 'obama', via: ['face'] } });

  const wrong = await r.cmd('door.pin', { doorId: 'gate', pin: '1357' });
  t.match(wrong, { ok: false, error: { code: 'pin_wrong' } });
  t.notOk(
    r.gpio.history(17).some((h) => h.value),
    'a wrong PIN does not open',
  );
  // The face is seen again after the cooldown: a new wait, and the right PIN.
  await waitFor(() => decisions.length > 1, 60_000, 'the face again after the cooldown');
  const ok = await r.cmd('door.pin', { doorId: 'gate', pin: '2468' });
  t.match(ok, { ok: true, result: { granted: true, personId: 'obama', via: ['face', 'pin'] } });
  await waitFor(() => r.gpio.history(17).some((h) => h.value), 5_000, 'the gate unlocked');
  const recs = r.records('access').map((a) => a.data);
  t.match(
    recs,
    [
      { reason: 'pin_wrong', credential: 'face', via: ['face', 'pin'], personId: 'obama', evidence: { metric: String, threshold: Number } },
      { reason: 'granted', credential: 'face', via: ['face', 'pin'], personId: 'obama', evidence: { metric: String, threshold: Number } },
    ],
    'each decision recorded once, with the face evidence and both factors',
  );
  t.notOk(JSON.stringify(recs).includes('2468'), 'no PIN in the records');
});
