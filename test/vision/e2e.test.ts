// Face access end to end: the shared video streamed through the real ffmpeg as the gate
// camera, the real inference worker and models, the real doors module (simulated GPIO).
// The enrolled person gets a granted door decision; a person who is not enrolled gets
// none (and an unknown-face event). Templates are sealed at rest and leave no trace when
// the person is deleted. A missing or corrupt model file leaves the doors working and
// face access loudly unavailable.
import t from 'tap';
import { existsSync, readFileSync, readdirSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { faceRig, FACES, modelsDir, photo, VIDEO, waitFor } from './helpers.js';
import { tempDir } from '../helpers/gateway.js';
import type { VisionDecisionEvent } from '../../edge/vision/module.js';
import { isMatch, resolveModels } from '../../edge/vision/models.js';
import { Value } from '@sinclair/typebox/value';
import { VisionSchema } from '../../edge/vision/schema.js';

const camera = () => ({ source: { kind: 'file', path: VIDEO() }, fps: 10 });
const b64 = (p: string) => photo(p).toString('base64');

t.test('enrolled resident: the video ends in a granted door decision; deletion removes every trace', async (t) => {
  const r = await faceRig({ camera: camera() });
  t.teardown(() => r.stop());
  const decisions: VisionDecisionEvent[] = [];
  r.g.bus.on('vision.decision', (d) => decisions.push(d));
  const up = await r.cmd('person.upsert', { id: 'obama', kind: 'resident', doorGroups: ['residents'], faces: { photos: [b64(join(FACES(), 'obama', '2.jpg'))] } });
  t.ok(up.ok, JSON.stringify(up.error ?? ''));
  t.match(up.result.faces, { available: true, accepted: 1, rejected: [], templates: 1 });
  await waitFor(() => decisions.length > 0, 60000, 'a face decision');
  const d = decisions[0]!;
  t.match(d, { doorId: 'gate', personId: 'obama', granted: true, reason: 'granted' });
  const face = r.records('access').find((a) => a.data.credential === 'face' && a.data.personId === 'obama')!.data.evidence;
  t.ok(isMatch(face.metric, d.distance, face.threshold), `distance ${d.distance.toFixed(3)} beyond the threshold ${face.threshold} for the ${face.searched} person(s) searched`);
  t.ok(d.liveness! >= 0.5, `liveness ${d.liveness?.toFixed(3)}`);
  t.comment(`frame-to-decision ${d.latencyMs.toFixed(0)} ms`);
  const access = r.records('access').filter((a) => a.data.credential === 'face');
  t.ok(
    access.some((a) => a.data.personId === 'obama' && a.data.granted === true),
    'access event recorded by the doors module',
  );
  t.ok(
    r.gpio.history(17).some((h) => h.value === true),
    'the gate lock was pulsed open',
  );
  t.equal(decisions.filter((x) => x.personId === 'obama').length, 1, 'one decision: the cooldown holds the next ones back');

  // At rest: key file 0600 outside the database, templates sealed.
  const dataDir = r.g.dataDir;
  const keyFile = join(dataDir, 'keys', 'faces.key');
  t.equal(statSync(keyFile).mode & 0o777, 0o600, 'key file 0600');
  const st = (await r.cmd('vision.status')).result;
  t.match(st, { available: true, doorId: 'gate', templates: 1, models: { metric: resolveModels(Value.Default(VisionSchema, { enabled: true }) as any).metric } });
  const snap = (await r.cmd('vision.snapshot')).result;
  t.equal(Buffer.from(snap.jpeg, 'base64').subarray(0, 2).toString('hex'), 'ffd8', 'snapshot is a JPEG');
  t.ok(snap.faces.length >= 1 && snap.faces[0].score >= 0.7, 'with the detected face and its score');

  const dbFile = join(dataDir, 'faces.db');
  const Database = (await import('better-sqlite3')).default;
  const ro = new Database(dbFile, { readonly: true });
  const sealed = (ro.prepare('SELECT sealed FROM templates').get() as { sealed: Buffer }).sealed;
  ro.close();
  const del = await r.cmd('person.delete', { id: 'obama' });
  t.equal(del.result.facesRemoved, 1);
  t.equal((await r.cmd('vision.status')).result.templates, 0);
  const files = readdirSync(dataDir).filter((f) => f.startsWith('faces.db'));
  for (const f of files) t.notOk(readFileSync(join(dataDir, f)).includes(sealed.subarray(12, 60)), `${f}: no trace of the sealed template`);
  if (existsSync(`${dbFile}-wal`)) t.equal(statSync(`${dbFile}-wal`).size, 0, 'WAL truncated');
  t.ok(r.records('audit').some((a) => a.type === 'face.removed' && a.data.personId === 'obama'));
});

t.test('a person who is not enrolled gets no decision, only a rate-limited unknown-face event', async (t) => {
  // The camera's video appears only once biden is enrolled: frames analysed before the
  // enrolment finished would give an unknown-face event with no template to compare
  // (nearest: null), and the 60 s rate limit would keep it the only one.
  const video = join(tempDir('ee-latecam-'), 'gate.mp4');
  const r = await faceRig({ camera: { source: { kind: 'file', path: video }, fps: 10, reconnectMinMs: 200, reconnectMaxMs: 1000 }, events: { unknownIntervalS: 60, snapshot: true } });
  t.teardown(() => r.stop());
  const decisions: VisionDecisionEvent[] = [];
  r.g.bus.on('vision.decision', (d) => decisions.push(d));
  const up = await r.cmd('person.upsert', { id: 'biden', kind: 'resident', doorGroups: ['residents'], faces: { photos: [b64(join(FACES(), 'biden', '1.jpg'))] } });
  t.equal(up.result.faces.accepted, 1);
  symlinkSync(VIDEO(), video);
  await waitFor(() => r.records('event').some((e) => e.type === 'face.unknown'), 60000, 'an unknown-face event');
  // Keep watching for as long as the whole clip lasts once more.
  const analysed = () => r.g.services.get('vision')!.status().counters.unknown ?? 0;
  const before = analysed();
  await waitFor(() => analysed() >= before + 6, 60000, 'six more analysed frames');
  t.same(decisions, [], 'no door decision');
  t.notOk(
    r.records('access').some((a) => a.data.credential === 'face'),
    'no face access event',
  );
  const unknown = r.records('event').filter((e) => e.type === 'face.unknown');
  t.equal(unknown.length, 1, 'rate-limited to one event');
  const u = unknown[0]!.data;
  t.notOk(u.nearest !== null && isMatch(resolveModels(Value.Default(VisionSchema, { enabled: true }) as any).metric, u.nearest, u.threshold), `nearest template ${u.nearest} is not a match at ${u.threshold}`);
  const snap = Buffer.from(unknown[0]!.data.snapshot, 'base64');
  t.ok(snap.length > 0 && snap.length <= 24576 && snap.subarray(0, 2).toString('hex') === 'ffd8', `small JPEG snapshot (${snap.length} B)`);
  t.equal(r.gpio.history(17).filter((h) => h.value === true).length, 0, 'the gate never opened');
});

t.test('a missing or corrupt model file: face access unavailable and says why; doors unaffected', async (t) => {
  const empty = tempDir('ee-nomodels-');
  const r = await faceRig({ modelsDir: empty, camera: camera() });
  t.teardown(() => r.stop());
  const h = r.g.healthReport().vision!;
  t.equal(h.ok, false);
  t.match(h.message, /face access unavailable: face models not usable in .*face_detection_yunet_2023mar\.onnx missing.*npm run models/);
  t.ok(
    r.records('alarm').some((a) => a.type === 'vision.unavailable'),
    'an alarm record',
  );
  t.equal(r.g.healthReport().doors!.ok, true, 'doors healthy');
  const unlock = await r.cmd('door.unlock', { doorId: 'gate' });
  t.ok(unlock.ok, 'doors still work');
  const up = await r.cmd('person.upsert', { id: 'x', kind: 'resident', doorGroups: ['residents'], faces: { photos: [b64(join(FACES(), 'obama', '2.jpg'))] } });
  t.ok(up.ok, 'person stored');
  t.match(up.result.faces, { available: true, accepted: 0, rejected: [{ code: 'models_unavailable' }] });
  t.match((await r.cmd('vision.status')).result, { available: false, problem: /missing/ });
  // Biometric data can still be enrolled as embeddings and deleted while the models are broken.
  const emb = await r.cmd('person.upsert', { id: 'y', kind: 'resident', doorGroups: ['residents'], faces: { embeddings: [Array.from({ length: resolveModels(Value.Default(VisionSchema, { enabled: true }) as any).models.recognizer.embedding.dim }, (_, i) => Math.cos(i) / 10)] } });
  t.match(emb.result.faces, { accepted: 1, templates: 1 });
  t.equal((await r.cmd('person.delete', { id: 'y' })).result.facesRemoved, 1);

  // A wrong hash: every file linked from the real directory except a damaged detector.
  const bad = tempDir('ee-badmodels-');
  const src = modelsDir();
  for (const f of readdirSync(src).filter((f) => f.endsWith('.onnx'))) symlinkSync(join(src, f), join(bad, f));
  const yunet = join(bad, 'face_detection_yunet_2023mar.onnx');
  const bytes = readFileSync(yunet);
  bytes[1000] = bytes[1000]! ^ 0xff;
  unlinkSync(yunet);
  writeFileSync(yunet, bytes);
  const r2 = await faceRig({ modelsDir: bad, camera: camera() });
  t.teardown(() => r2.stop());
  t.match(r2.g.healthReport().vision, { ok: false, message: /face_detection_yunet_2023mar\.onnx has a wrong sha256/ });
  t.ok((await r2.cmd('door.unlock', { doorId: 'gate' })).ok, 'doors still work');
});
