// Re-enrolment from gate captures, end to end: the shared video through the real ffmpeg as
// the gate camera, the real models and doors module. Without the resident's consent a
// granted approach teaches nothing; with it (person.upsert faces.gateUpdates) the capture of
// a confident, live grant is added to the record and audited; withdrawing consent deletes it.
import t from 'tap';
import { join } from 'node:path';
import { faceRig, FACES, photo, VIDEO, waitFor } from './helpers.js';
import type { VisionDecisionEvent } from '../../edge/vision/module.js';

const OBAMA = () => ({ id: 'obama', kind: 'resident', doorGroups: ['residents'] });

t.test('gate captures teach the record only with consent, and withdrawing it deletes what was learned', async (t) => {
  const r = await faceRig({
    camera: { source: { kind: 'file', path: VIDEO() }, fps: 10 },
    match: { cooldownS: 1 },
    enrolment: { gateUpdates: { minIntervalH: 0 } },
  });
  t.teardown(() => r.stop());
  const decisions: VisionDecisionEvent[] = [];
  r.g.bus.on('vision.decision', (d) => decisions.push(d));
  const learned = async () => {
    const m = await r.g.metrics.registry.getSingleMetric('estate_vision_learned_total')!.get();
    return Object.fromEntries(m.values.map((v) => [String(v.labels.outcome), v.value]));
  };
  const list = async () => (await r.cmd('person.list', { query: 'obama' })).result.people[0];

  const up = await r.cmd('person.upsert', { ...OBAMA(), faces: { photos: [photo(join(FACES(), 'obama', '2.jpg')).toString('base64')] } });
  t.match(up.result?.faces, { available: true, accepted: 1, templates: 1 }, JSON.stringify(up.error ?? ''));
  t.notOk('faceGateUpdates' in (await list()), 'no consent until given');
  await waitFor(() => decisions.some((d) => d.granted), 60_000, 'a granted face decision');
  await waitFor(() => decisions.filter((d) => d.granted).length >= 2, 30_000, 'a second granted decision');
  const before = await learned();
  t.ok((before.no_consent ?? 0) >= 2, `granted approaches without consent: nothing learned (${JSON.stringify(before)})`);
  t.equal((await r.cmd('vision.status')).result.templates, 1, 'still the enrolled template only');

  const given = await r.cmd('person.upsert', { ...OBAMA(), faces: { gateUpdates: true } });
  t.match(given.result?.faces, { available: true, templates: 1, gateUpdates: true });
  t.ok(
    r.records('audit').some((a) => a.type === 'face.consent_given' && a.data.personId === 'obama'),
    'consent audited',
  );
  await waitFor(() => r.records('audit').some((a) => a.type === 'face.learned'), 60_000, 'a capture learned after consent');
  const rec = r.records('audit').find((a) => a.type === 'face.learned')!;
  t.match(rec.data, { personId: 'obama', doorId: 'gate', templates: 2, learned: 1 });
  const after = await learned();
  t.comment(`learning outcomes: ${JSON.stringify(after)}`);
  t.ok((await r.cmd('vision.status')).result.templates >= 2, 'the record holds the learned template');
  const listed = await list();
  t.ok(listed.faceGateUpdates === true && listed.faceLearned >= 1, `person.list shows the consent and the learned templates (${JSON.stringify({ faceGateUpdates: listed.faceGateUpdates, faceLearned: listed.faceLearned })})`);
  // Still granted with the learned template in the gallery (and nothing else learned from near-repeats).
  const n = decisions.filter((d) => d.granted).length;
  await waitFor(() => decisions.filter((d) => d.granted).length > n, 30_000, 'a grant after learning');
  t.ok((await list()).faceLearned <= 3, 'at most vision.enrolment.gateUpdates.maxTemplates learned');

  const withdrawn = await r.cmd('person.upsert', { ...OBAMA(), faces: { gateUpdates: false } });
  t.match(withdrawn.result?.faces, { available: true, templates: 1, gateUpdates: false });
  t.ok(withdrawn.result?.faces.learnedRemoved >= 1, `withdrawal deleted ${withdrawn.result?.faces.learnedRemoved} learned template(s)`);
  t.equal((await r.cmd('vision.status')).result.templates, 1, 'learned templates deleted, the enrolled one kept');
  t.notOk('faceGateUpdates' in (await list()), 'consent gone from the person list');
  t.ok(
    r.records('audit').some((a) => a.type === 'face.consent_withdrawn' && a.data.learnedRemoved >= 1),
    'withdrawal audited with what it deleted',
  );
  // Granted as before, learning nothing.
  const m = decisions.filter((d) => d.granted).length;
  await waitFor(() => decisions.filter((d) => d.granted).length > m, 30_000, 'a grant after withdrawal');
  t.equal((await r.cmd('vision.status')).result.templates, 1, 'nothing learned after withdrawal');
});
