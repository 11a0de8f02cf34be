// faces.db inside the one disk budget: the template store and its WAL count toward
// gateway.diskBudgetMB like every other file, the WAL stays bounded through a large
// enrolment, and when the templates are what fills the budget, enrolment is refused with a
// clear code rather than growing the data directory past the budget (templates cannot be
// evicted like telemetry). Real gateway, real sealed TemplateStore, a real small tmpfs.
import t from 'tap';
import { statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { startGateway } from '../helpers/gateway.js';
import { createDoorsModule } from '../../edge/doors/module.js';
import { createVisionModule } from '../../edge/vision/module.js';
import { SimulatedGpio } from '../../drivers/gpio/simulated.js';
import { dataDirUsage } from '../../edge/store/disk.js';
import { modelsDir, waitFor } from '../vision/helpers.js';
import { mountTmpfs } from './tmpfs.js';

const BUDGET_MB = 8;

t.test('faces.db and its WAL count toward the disk budget; enrolment stops at the budget with a clear code', async (t) => {
  const fs = mountTmpfs(16);
  t.teardown(() => fs.unmount());
  const dataDir = join(fs.dir, 'data');
  const gpio = new SimulatedGpio({});
  const g = await startGateway(
    {
      gateway: { id: 'fb', dataDir, diskBudgetMB: BUDGET_MB, diskReserveMB: 1 },
      uplink: { enabled: false },
      doors: { gpio: { backend: 'simulated' }, groups: [{ id: 'residents', doors: ['gate'] }], doors: [{ id: 'gate', lock: { pin: 17 }, unlockMs: 500 }] },
      vision: { enabled: true, doorId: 'gate', modelsDir: modelsDir(), camera: { source: { kind: 'file', path: '/nonexistent.mp4' } }, enrolment: { maxPhotosPerRequest: 50 } },
    },
    { modules: [(ctx) => createDoorsModule(ctx, { backend: gpio }), createVisionModule] },
  );
  t.teardown(() => g.stop());
  const faces = g.services.get('faces')!;
  await waitFor(
    () => {
      try {
        faces.count();
        return g.services.get('vision')!.status().models !== undefined;
      } catch {
        return false;
      }
    },
    60_000,
    'face access ready',
  );
  const dim = 512;
  let seed = 7;
  const rnd = () => (seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) / 2 ** 32 - 0.5;
  const emb = () => Array.from({ length: dim }, rnd);
  let ok = 0;
  let refused: { code?: string; message: string } | undefined;
  let maxWal = 0;
  let maxUsed = 0;
  for (let i = 0; i < 4000 && !refused; i++) {
    const r = await g.commands.execute('person.upsert', { id: `p${i}`, kind: 'resident', doorGroups: ['residents'], faces: { embeddings: [emb(), emb(), emb()] } }, { id: `c${i}`, source: 'local', receivedAt: Date.now() });
    const res = r.result as { ok: boolean; result?: { faces?: { accepted?: number; error?: string } }; error?: { code: string; message: string } };
    if (!res.ok) refused = { code: res.error?.code, message: res.error?.message ?? '' };
    else if (res.result?.faces?.error) refused = { message: res.result.faces.error };
    else if (res.result?.faces?.accepted === 3) ok++;
    const wal = join(dataDir, 'faces.db-wal');
    if (existsSync(wal)) maxWal = Math.max(maxWal, statSync(wal).size);
    if (i % 25 === 0) maxUsed = Math.max(maxUsed, dataDirUsage(dataDir).total);
  }
  maxUsed = Math.max(maxUsed, dataDirUsage(dataDir).total);
  const usage = dataDirUsage(dataDir);
  t.comment(
    `figures: ${ok} persons × 3 templates enrolled; faces.db ${(((usage.entries.get('faces.db') ?? 0) + (usage.entries.get('faces.db-wal') ?? 0)) / 1048576).toFixed(2)} MB with WAL; WAL max ${(maxWal / 1048576).toFixed(2)} MB; data dir peak ${(maxUsed / 1048576).toFixed(2)} MB of ${BUDGET_MB} MB; refused: ${JSON.stringify(refused)}`,
  );
  t.ok(usage.entries.has('faces.db'), 'faces.db is counted in the budget accounting');
  // The guard's WAL limit is 1/16 of the budget (0.5 MB here): a checkpoint's worth above it at most.
  t.ok(maxWal <= 1048576, `faces.db WAL bounded by the disk guard (max ${(maxWal / 1048576).toFixed(2)} MB for a ${BUDGET_MB} MB budget)`);
  t.ok(refused !== undefined, 'enrolment is refused once the templates fill the budget');
  t.match(refused?.message ?? '', /budget|disk/i, `the refusal says why: ${refused?.message}`);
  t.ok(maxUsed <= BUDGET_MB * 1048576 * 1.05, `data dir peak ${(maxUsed / 1048576).toFixed(2)} MB within the ${BUDGET_MB} MB budget (+5 %)`);
  // Doors still decide (state.db writes have room: the reserve).
  const d = g.services.get('access')!.decide({ doorId: 'gate', credential: 'face', personId: 'p0', score: 0.9 });
  t.equal(d.granted, true, 'a door decision still goes through at the budget');
});
