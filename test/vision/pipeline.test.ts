// The per-frame pipeline (edge/vision/pipeline.ts) against a fake inference client that
// returns scripted analyses: K distinct frames within the window, repeats, liveness,
// cooldown, the unknown-face event rate limit, and a failed request. A real template store
// (SQLite in memory), a fixed cosine threshold, a hand-driven clock; no models, no camera.
import t from 'tap';
import Database from 'better-sqlite3';
import pino from 'pino';
import { Value } from '@sinclair/typebox/value';
import { VisionSchema } from '../../edge/vision/schema.js';
import { FacePipeline, type FrameAnalyzer, type VisionDecisionEvent } from '../../edge/vision/pipeline.js';
import { TemplateStore } from '../../edge/vision/templates.js';
import { createVisionMetrics } from '../../edge/vision/metrics.js';
import { Metrics } from '../../edge/observability/metrics.js';
import type { AnalyzeResult } from '../../edge/vision/worker.js';
import type { AccessRequest } from '../../edge/doors/api.js';
import type { Frame } from '../../drivers/camera/camera.js';

const DIM = 8;
const unit = (k: number, x = 1): number[] => Array.from({ length: DIM }, (_, i) => (i === k ? x : 0));
/** Person a's enrolled template: axis 0. Person b: axis 1. */
const A = unit(0);
const B = unit(1);
/**
 * The i-th look of person a: axis 0 plus a small tilt that differs from frame to frame
 * (cosine ≈ 0.96 to a's template, ≤ 0.92 between two looks: never a repeat at 0.995).
 */
function lookOfA(i: number): Float32Array {
  const e = [...A];
  e[2 + (i % 5)] = (Math.floor(i / 5) % 2 ? -1 : 1) * (0.3 + 0.02 * Math.floor(i / 10));
  return Float32Array.from(e);
}
/** A stranger: along an axis nobody is enrolled on (cosine 0 to a and b). */
const stranger = (i: number): Float32Array => Float32Array.from(unit(7, 1).map((v, k) => (k === 2 + (i % 5) ? 0.2 : v)));

type Step = { embedding: Float32Array; liveness?: number } | { fail: string };

/** The inference client's interface, answering from a script; `calls` counts the requests. */
class FakeInference implements FrameAnalyzer {
  calls = 0;
  livenessAsked: boolean[] = [];
  constructor(private readonly script: Step[]) {}
  async analyzeFrame(_img: unknown, _limits: unknown, liveness: boolean): Promise<AnalyzeResult> {
    this.calls++;
    this.livenessAsked.push(liveness);
    const s = this.script.shift();
    if (!s) throw new Error('script exhausted');
    if ('fail' in s) throw new Error(s.fail);
    const box: [number, number, number, number] = [100, 80, 120, 120];
    return {
      faces: [{ box, score: 0.98 }],
      subject: { box, score: 0.98, embedding: s.embedding, ...(s.liveness !== undefined ? { liveness: s.liveness } : {}) },
      timings: { detect: 10, embed: 5, total: 20 },
    };
  }
}

interface Rig {
  pipeline: FacePipeline;
  inference: FakeInference;
  decisions: AccessRequest[];
  emitted: VisionDecisionEvent[];
  records: Array<{ stream: string; type: string; data: any }>;
  counters(): Record<string, number>;
  events(kind: string, sent: boolean): Promise<number>;
  /** Feed the next frame at frame time `mono` (ms); clock.monotonic follows it. */
  frame(mono: number): Promise<void>;
}

function rig(script: Step[], over: { match?: Record<string, unknown>; liveness?: Record<string, unknown>; events?: Record<string, unknown> } = {}): Rig {
  const cfg = Value.Default(VisionSchema, {
    enabled: true,
    doorId: 'gate',
    match: { confirmFrames: 3, windowMs: 1000, minFrameGapMs: 100, maxRepeatSimilarity: 0.995, cooldownS: 10, ...over.match },
    liveness: { enabled: false, ...over.liveness },
    events: { unknownIntervalS: 30, spoofIntervalS: 30, snapshot: true, ...over.events },
  }) as any;
  const store = new TemplateStore({ db: new Database(':memory:'), key: Buffer.alloc(32, 3), model: 'm', dim: DIM, metric: 'cosine', l2Normalise: true, now: () => 1 });
  store.add('a', [A], { replace: false, source: 'embedding', maxPerPerson: 5 });
  store.add('b', [B], { replace: false, source: 'embedding', maxPerPerson: 5 });
  const clock = { mono: 0, now: () => 1_700_000_000_000 + clock.mono, monotonic: () => clock.mono, synced: () => true };
  const decisions: AccessRequest[] = [];
  const emitted: VisionDecisionEvent[] = [];
  const records: Rig['records'] = [];
  const access = {
    decide: (req: AccessRequest) => {
      decisions.push(req);
      return { granted: true, reason: 'granted', doorId: req.doorId, personId: req.personId, credential: req.credential, decidedAt: clock.now() };
    },
    person: () => undefined,
  };
  const reg = new Metrics({ defaultMetrics: false });
  const metrics = createVisionMetrics(reg, { available: () => true, templates: () => store.count(), camera: () => undefined });
  const inference = new FakeInference(script);
  const pipeline = new FacePipeline({
    cfg,
    inference,
    store,
    policy: { metric: 'cosine', fixedThreshold: 0.6, strangerRate: 1e-3, margin: 0.05 },
    models: { metric: 'cosine', livenessThreshold: 0.5 },
    clock,
    services: { get: ((name: string) => (name === 'access' ? access : undefined)) as any },
    bus: { emit: ((event: string, payload: VisionDecisionEvent) => void (event === 'vision.decision' && emitted.push(payload))) as any },
    outbox: {
      append: (async (r: { stream: string; type: string; data: any }) => {
        records.push(r);
        return {};
      }) as any,
    },
    log: pino({ level: 'silent' }),
    metrics,
    faceJpeg: async () => Buffer.from('jpeg'),
  });
  let seq = 0;
  return {
    pipeline,
    inference,
    decisions,
    emitted,
    records,
    counters: () => metrics.counters(),
    async events(kind, sent) {
      const m = (await reg.registry.getSingleMetric('estate_vision_events_total')!.get()).values.find((v) => v.labels.kind === kind && v.labels.sent === String(sent));
      return m?.value ?? 0;
    },
    async frame(mono) {
      clock.mono = mono;
      const f: Frame = { data: Buffer.alloc(2 * 2 * 3), width: 2, height: 2, pixelFormat: 'rgb24', seq: ++seq, at: clock.now(), mono };
      await pipeline.analyse(f);
      // Let an event's snapshot and outbox append finish.
      await new Promise((r) => setImmediate(r));
    },
  };
}

const looks = (n: number, from = 0): Step[] => Array.from({ length: n }, (_, i) => ({ embedding: lookOfA(from + i) }));

t.test('K distinct frames of one person within the window ask the door once', async (t) => {
  const r = rig(looks(3));
  await r.frame(0);
  await r.frame(200);
  t.equal(r.decisions.length, 0, 'two frames of K=3: the door is not asked yet');
  await r.frame(400);
  t.equal(r.decisions.length, 1, 'the third frame confirms');
  t.match(r.decisions[0], { doorId: 'gate', credential: 'face', personId: 'a', requestedBy: 'camera', evidence: { metric: 'cosine', frames: 3, threshold: 0.6, searched: 2 } });
  const score = r.decisions[0]?.score ?? 0;
  t.ok(score > 0.9, `score ${score} is the similarity`);
  t.match(r.emitted, [{ doorId: 'gate', personId: 'a', granted: true, reason: 'granted' }], 'vision.decision emitted');
  t.same(r.counters(), { match: 3 });
  t.same(r.pipeline.lastAnalysis?.faces, [{ box: [100, 80, 120, 120], score: 0.98 }]);
});

t.test('frames spread wider than the window do not add up to K', async (t) => {
  const r = rig(looks(4));
  await r.frame(0);
  await r.frame(600);
  await r.frame(1200);
  t.equal(r.decisions.length, 0, '0, 600, 1200 ms: the first fell out of the 1000 ms window');
  await r.frame(1400);
  t.equal(r.decisions.length, 1, '600, 1200, 1400 ms: three within the window');
});

t.test('a repeated frame (a still picture, a frozen stream) does not count towards K', async (t) => {
  const still = lookOfA(0);
  const r = rig([...Array.from({ length: 6 }, () => ({ embedding: still })), ...looks(2, 1)]);
  for (let i = 0; i < 6; i++) await r.frame(i * 150);
  t.equal(r.decisions.length, 0, 'six frames of one embedding are one frame of evidence');
  t.same(r.counters(), { match: 1, repeat: 5 });
  await r.frame(900);
  await r.frame(1000);
  t.equal(r.decisions.length, 1, 'two frames that differ complete K');
});

t.test('frames closer than minFrameGapMs are repeats', async (t) => {
  const r = rig(looks(4));
  await r.frame(0);
  await r.frame(50);
  await r.frame(90);
  t.equal(r.decisions.length, 0);
  t.same(r.counters(), { match: 1, repeat: 2 });
  await r.frame(200);
  t.equal(r.decisions.length, 0, 'two counted so far');
});

t.test('a face below the liveness threshold is refused however well it matches', async (t) => {
  const r = rig(
    Array.from({ length: 6 }, (_, i) => ({ embedding: lookOfA(i), liveness: 0.2 })),
    { liveness: { enabled: true } },
  );
  for (let i = 0; i < 6; i++) await r.frame(i * 200);
  t.equal(r.decisions.length, 0, 'no door request');
  t.same(r.counters(), { spoof: 6 });
  t.ok(r.inference.livenessAsked.every(Boolean), 'liveness was asked for');
  const spoofs = r.records.filter((x) => x.type === 'face.spoof');
  t.equal(spoofs.length, 1, 'K spoof frames raise one event; the next K are rate-limited');
  t.match(spoofs[0], { stream: 'event', data: { doorId: 'gate', liveness: 0.2, threshold: 0.5, suppressed: 0, snapshot: Buffer.from('jpeg').toString('base64') } });
  t.equal(await r.events('spoof', false), 1);
});

t.test('a live face above the threshold is decided, with its liveness in the evidence', async (t) => {
  const r = rig(
    Array.from({ length: 3 }, (_, i) => ({ embedding: lookOfA(i), liveness: 0.9 })),
    { liveness: { enabled: true } },
  );
  for (let i = 0; i < 3; i++) await r.frame(i * 200);
  t.equal(r.decisions.length, 1);
  t.match(r.decisions[0], { evidence: { liveness: 0.9 } });
});

t.test('after a decision the person is ignored for the cooldown, then decided again', async (t) => {
  const r = rig(looks(9), { match: { cooldownS: 10 } });
  for (const ms of [0, 200, 400]) await r.frame(ms);
  t.equal(r.decisions.length, 1);
  for (const ms of [600, 800, 1000]) await r.frame(ms);
  t.equal(r.decisions.length, 1, 'confirmed again within 10 s: not asked again');
  t.equal(r.counters().cooldown, 1, 'counted as cooldown');
  for (const ms of [10_500, 10_700, 10_900]) await r.frame(ms);
  t.equal(r.decisions.length, 2, 'after the cooldown the door is asked again');
  t.equal(r.emitted.length, 2);
});

t.test('unknown faces: one event per interval, the suppressed ones counted in the next', async (t) => {
  const r = rig(
    Array.from({ length: 9 }, (_, i) => ({ embedding: stranger(i) })),
    { events: { unknownIntervalS: 30 } },
  );
  for (const ms of [0, 200, 400]) await r.frame(ms);
  let unknown = r.records.filter((x) => x.type === 'face.unknown');
  t.equal(unknown.length, 1, 'K unknown frames: one event');
  t.match(unknown[0], { stream: 'event', data: { doorId: 'gate', nearest: Number, threshold: 0.6, searched: 2, suppressed: 0 } });
  for (const ms of [600, 800, 1000]) await r.frame(ms);
  unknown = r.records.filter((x) => x.type === 'face.unknown');
  t.equal(unknown.length, 1, 'the next K within 30 s: suppressed');
  t.equal(await r.events('unknown', false), 1, 'the suppression is counted');
  for (const ms of [31_000, 31_200, 31_400]) await r.frame(ms);
  unknown = r.records.filter((x) => x.type === 'face.unknown');
  t.equal(unknown.length, 2, 'after the interval: the next event');
  t.match(unknown[1], { data: { suppressed: 1 } }, 'reporting the one suppressed');
  t.equal(r.decisions.length, 0, 'a stranger never reaches the door');
  t.same(r.counters(), { unknown: 9 });
});

t.test('a failed or timed-out request drops the frame, is counted, and the next frames go on', async (t) => {
  const r = rig([{ embedding: lookOfA(0) }, { fail: 'inference request not answered within 30 s' }, { fail: 'inference worker exited (code 1)' }, ...looks(2, 1)]);
  await r.frame(0);
  const before = r.pipeline.lastAnalysis;
  await t.resolves(r.frame(200), 'a failed request does not reject');
  await r.frame(400);
  t.equal(r.counters().error, 2, 'each failure counted as error');
  t.equal(r.pipeline.lastAnalysis, before, 'a failed frame leaves the last analysis as it was');
  t.equal(r.decisions.length, 0);
  await r.frame(600);
  await r.frame(800);
  t.equal(r.inference.calls, 5, 'every frame was sent');
  t.equal(r.decisions.length, 1, 'the pipeline went on: three good frames within the window confirm');
  t.same(r.counters(), { match: 3, error: 2 });
});

t.test('the threshold in force follows the gallery', async (t) => {
  const r = rig([]);
  t.equal(r.pipeline.currentThreshold(), 0.6, 'fixed threshold');
});
