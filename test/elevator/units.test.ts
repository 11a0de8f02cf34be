// The elevator blocker's parts without camera or model: the hold decision, the CenterNet
// and NanoDet decodings and the e-bike rule, the input tensor, the relay's drive modes on the GPIO simulator with what a
// watchdog relay module would do, and the prompt files.
import t from 'tap';
import { readFileSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { HoldDecision } from '../../edge/elevator/decision.js';
import { decodeCenternet, decodeNanodet, findEbike, toInputTensor, type Detection } from '../../edge/elevator/detector.js';
import { HoldRelay, WatchdogRelayModel } from '../../edge/elevator/relay.js';
import { chimeWav, preparePrompt, SimulatedPlayer, DEFAULT_PROMPT_ZH } from '../../edge/elevator/audio.js';
import { SimulatedGpio } from '../../drivers/gpio/simulated.js';
import { VirtualTime } from '../../drivers/gpio/virtual-time.js';
import { tempDir } from '../helpers/gateway.js';

t.test('K-of-N: one stray detection never holds; k of n holds', async (t) => {
  const d = new HoldDecision({ k: 3, n: 5, releaseK: 0, minHoldMs: 5000, overrideMs: 60_000 });
  t.equal(d.frame(true, 0), undefined);
  for (let i = 1; i <= 6; i++) t.equal(d.frame(false, i * 100), undefined, 'a single positive among negatives');
  t.equal(d.frame(true, 1000), undefined);
  t.equal(d.frame(false, 1100), undefined);
  t.equal(d.frame(true, 1200), undefined, '2 of 5');
  t.same(d.frame(true, 1300), { kind: 'hold', at: 1300 }, '3 of 5 holds');
  t.ok(d.holding);
});

t.test('hysteresis and minimum hold: a missed frame does not release; release only when gone and after minHold', async (t) => {
  const d = new HoldDecision({ k: 3, n: 5, releaseK: 1, minHoldMs: 5000, overrideMs: 60_000 });
  for (let i = 0; i < 3; i++) d.frame(true, i * 100);
  t.ok(d.holding);
  t.equal(d.frame(false, 300), undefined, 'one miss');
  t.equal(d.frame(false, 400), undefined, 'two misses: still 3 of 5 positive');
  t.equal(d.frame(false, 500), undefined, '1 of 5 positive, but within minHold');
  t.equal(d.frame(false, 600), undefined);
  t.ok(d.holding, 'held for the minimum time');
  t.equal(d.frame(false, 5100), undefined, '4.9 s after the hold began: still within minHold');
  t.same(d.frame(false, 5200), { kind: 'release', at: 5200, reason: 'gone' });
  t.notOk(d.holding);
});

t.test('override releases at once and ignores detections for overrideMs; reset on camera loss', async (t) => {
  const d = new HoldDecision({ k: 2, n: 3, releaseK: 0, minHoldMs: 10_000, overrideMs: 30_000 });
  d.frame(true, 0);
  d.frame(true, 100);
  t.ok(d.holding);
  t.same(d.override(200), { kind: 'release', at: 200, reason: 'override' });
  for (let i = 0; i < 10; i++) t.equal(d.frame(true, 300 + i * 100), undefined, 'ignored during the override');
  t.equal(d.frame(true, 30_200), undefined);
  t.same(d.frame(true, 30_300), { kind: 'hold', at: 30_300 }, 'detections count again after it');
  t.same(d.reset(30_400, 'camera_lost'), { kind: 'release', at: 30_400, reason: 'camera_lost' });
  t.equal(d.positives, 0, 'no stale window survives');
  t.throws(() => new HoldDecision({ k: 3, n: 2, releaseK: 0, minHoldMs: 0, overrideMs: 0 }), /k=3 must be in 1..n=2/);
  t.throws(() => new HoldDecision({ k: 2, n: 3, releaseK: 2, minHoldMs: 0, overrideMs: 0 }), /releaseK=2 must be below k=2/);
});

function maps(input: number, peaks: Array<{ c: number; x: number; y: number; v: number; wh: [number, number, number, number] }>) {
  const g = input / 4;
  const heat = new Float32Array(80 * g * g);
  const wh = new Float32Array(4 * g * g);
  for (const p of peaks) {
    heat[p.c * g * g + p.y * g + p.x] = p.v;
    // A neighbour slightly lower: the 3×3 peak test must keep only the peak.
    if (p.x + 1 < g) heat[p.c * g * g + p.y * g + p.x + 1] = p.v * 0.9;
    for (let k = 0; k < 4; k++) wh[k * g * g + p.y * g + p.x] = p.wh[k];
  }
  return { heat, wh };
}

t.test('CenterNet decoding: peaks only, stride-4 boxes scaled to the frame, the three classes', async (t) => {
  const { heat, wh } = maps(320, [
    { c: 3, x: 40, y: 40, v: 0.8, wh: [60, 50, 60, 70] },
    { c: 1, x: 10, y: 10, v: 0.5, wh: [8, 8, 8, 8] },
    { c: 2, x: 20, y: 20, v: 0.9, wh: [8, 8, 8, 8] }, // car: not decoded
  ]);
  const dets = decodeCenternet(heat, wh, { input: 320, stride: 4, minScore: 0.3, frame: { width: 640, height: 480 } });
  t.equal(dets.length, 2, 'motorcycle and bicycle, not the neighbour cells, not the car');
  t.equal(dets[0]!.cls, 'motorcycle');
  t.same(dets[0]!.box, { x: (160 - 60) * 2, y: (160 - 50) * 1.5, w: 120 * 2, h: 120 * 1.5 });
  t.equal(dets[1]!.cls, 'bicycle');
  t.throws(() => decodeCenternet(new Float32Array(10), wh, { input: 320, stride: 4, minScore: 0.3, frame: { width: 1, height: 1 } }), /expected/);
});

/** NanoDet maps with every cell at score 0 and uniform box logits, then `cells` set (level = index into strides). */
function nanoMaps(input: number, strides: number[], cells: { level: number; x: number; y: number; c: number; v: number; bins?: number[][] }[]) {
  const n = strides.reduce((s, st) => s + (input / st) ** 2, 0);
  const scores = new Float32Array(n * 80);
  const boxes = new Float32Array(n * 44);
  for (const p of cells) {
    const g = input / strides[p.level]!;
    const first = strides.slice(0, p.level).reduce((s, st) => s + (input / st) ** 2, 0);
    const i = first + p.y * g + p.x;
    scores[i * 80 + p.c] = p.v;
    // One-hot-ish logits: bin k of side s gets 20 (softmax ≈ 1 there).
    p.bins?.forEach((bs, side) => bs.forEach((logit, k) => (boxes[i * 44 + side * 11 + k] = logit)));
  }
  return { scores, boxes };
}
const hot = (k: number): number[] => Array.from({ length: 11 }, (_, j) => (j === k ? 20 : 0));

t.test('NanoDet decoding: GFL distances in strides from the cell centre, per-level grids, per-class NMS, the three classes', async (t) => {
  const strides = [8, 16, 32];
  const { scores, boxes } = nanoMaps(320, strides, [
    // A motorcycle on the stride-32 grid, cell (5, 4): centre (176, 144); sides 3, 2, 3, 4 strides.
    { level: 2, x: 5, y: 4, c: 3, v: 0.8, bins: [hot(3), hot(2), hot(3), hot(4)] },
    // The same object, weaker, on the stride-16 grid: suppressed by NMS (same box, same class).
    { level: 1, x: 10, y: 8, c: 3, v: 0.6, bins: [hot(6), hot(4), hot(6), hot(8)] },
    // A bicycle on the stride-8 grid overlapping it: another class, kept.
    { level: 0, x: 21, y: 17, c: 1, v: 0.5, bins: [hot(4), hot(4), hot(4), hot(4)] },
    { level: 0, x: 2, y: 2, c: 2, v: 0.9, bins: [hot(1), hot(1), hot(1), hot(1)] }, // car: not decoded
    { level: 0, x: 30, y: 30, c: 0, v: 0.1 }, // below the threshold
  ]);
  const dets = decodeNanodet(scores, boxes, { input: 320, strides, regMax: 10, minScore: 0.3, frame: { width: 640, height: 480 } });
  t.same(
    dets.map((d) => d.cls),
    ['motorcycle', 'bicycle'],
  );
  const m = dets[0]!.box;
  const close = (a: number, b: number) => Math.abs(a - b) < 1e-3;
  t.ok(close(m.x, (176 - 96) * 2) && close(m.y, (144 - 64) * 1.5) && close(m.w, 192 * 2) && close(m.h, 192 * 1.5), `box ${JSON.stringify(m)}`);
  // Spread logits: the distance is the expectation, not the arg-max (bins 2 and 4 equally → 3).
  const two = Array.from({ length: 11 }, (_, j) => (j === 2 || j === 4 ? 20 : 0));
  const spread = nanoMaps(320, strides, [{ level: 2, x: 5, y: 4, c: 0, v: 0.9, bins: [two, two, two, two] }]);
  const p = decodeNanodet(spread.scores, spread.boxes, { input: 320, strides, regMax: 10, minScore: 0.3, frame: { width: 320, height: 320 } })[0]!;
  t.ok(close(p.box.x, 176 - 96) && close(p.box.w, 192), `expectation: ${JSON.stringify(p.box)}`);
  // NMS off (IoU 1): the weaker duplicate comes back.
  t.equal(decodeNanodet(scores, boxes, { input: 320, strides, regMax: 10, minScore: 0.3, nmsIou: 1, frame: { width: 640, height: 480 } }).length, 3);
  t.throws(() => decodeNanodet(new Float32Array(10), boxes, { input: 320, strides, regMax: 10, minScore: 0.3, frame: { width: 1, height: 1 } }), /expected/);
});

t.test('the e-bike rule: motorcycle above score and size; bicycles, people and small or bicycle-shadowed motorcycles do not count', async (t) => {
  const frame = { width: 640, height: 480 };
  const rule = { minScore: 0.35, minAreaFraction: 0.02 };
  const det = (cls: Detection['cls'], score: number, box: Detection['box']): Detection => ({ cls, score, box });
  const big = { x: 100, y: 100, w: 200, h: 250 };
  t.ok(findEbike([det('motorcycle', 0.6, big)], rule, frame));
  t.notOk(findEbike([det('bicycle', 0.9, big), det('person', 0.9, big)], rule, frame), 'bicycle and person');
  t.notOk(findEbike([det('motorcycle', 0.3, big)], rule, frame), 'low score');
  t.notOk(findEbike([det('motorcycle', 0.9, { x: 0, y: 0, w: 40, h: 40 })], rule, frame), 'far away (0.5 % of the frame)');
  t.notOk(findEbike([det('bicycle', 0.8, big), det('motorcycle', 0.5, { ...big, x: 110 })], rule, frame), 'the same object scored higher as a bicycle');
});

t.test('input tensor: NCHW RGB 0–255 from RGB and BGR frames', async (t) => {
  const data = new Uint8Array([10, 20, 30, 10, 20, 30, 10, 20, 30, 10, 20, 30]);
  const rgb = toInputTensor({ data, width: 2, height: 2, pixelFormat: 'rgb24' }, 4);
  t.same([rgb[0], rgb[16], rgb[32]], [10, 20, 30]);
  const bgr = toInputTensor({ data, width: 2, height: 2, pixelFormat: 'bgr24' }, 4);
  t.same([bgr[0], bgr[16], bgr[32]], [30, 20, 10]);
  // NanoDet's input: BGR planes, (v − mean) / std per network channel (mean/std in B, G, R order).
  const norm = { colour: 'BGR' as const, mean: [1, 2, 3], std: [1, 2, 3] };
  const n1 = toInputTensor({ data, width: 2, height: 2, pixelFormat: 'rgb24' }, 4, undefined, norm);
  t.same([n1[0], n1[16], n1[32]], [29, 9, 7 / 3].map(Math.fround), 'RGB frame → B, G, R planes');
  const n2 = toInputTensor({ data, width: 2, height: 2, pixelFormat: 'bgr24' }, 4, undefined, norm);
  t.same([n2[0], n2[16], n2[32]], [9, 9, 9].map(Math.fround), 'BGR frame kept in order');
});

t.test('relay, pulse drive: toggles while held, stops and goes low on release; the watchdog module drops after the edges stop', async (t) => {
  const vt = new VirtualTime(1_767_225_600_000);
  const gpio = new SimulatedGpio({ timers: vt });
  const relay = new HoldRelay({ pin: 20, activeLow: true, drive: 'pulse', pulseMs: 100, label: 'car A' }, vt);
  await relay.open(gpio);
  t.equal(gpio.raw(20), true, 'opened released: active-low line high');
  const hw = new WatchdogRelayModel('pulse', 350);
  gpio.onOutput = (line, c) => line === 20 && hw.edge(c.value, c.at);
  relay.hold();
  vt.advance(1000);
  t.ok(relay.pulses >= 10, `pulses while held (${relay.pulses})`);
  t.ok(hw.energised(vt.now()), 'the watchdog relay holds the car');
  // The process stops driving (what a SIGKILL or a frozen loop looks like from the pin):
  // no release() call at all, the timers simply stop.
  const frozenAt = vt.now();
  // biome-ignore lint/complexity/useLiteralKeys: the relay's private timer, stopped on purpose (TypeScript allows bracket access to private members, not dot access)
  relay['t'].clearInterval(relay['timer']);
  t.ok(hw.energised(frozenAt + 300), 'still held within the watchdog time');
  t.notOk(hw.energised(frozenAt + 400), 'released by the hardware once the edges stop');
  relay.release();
  t.equal(gpio.level(20), false, 'released line logical low');
});

t.test('relay, level drive: active while held, released on release and on close', async (t) => {
  const vt = new VirtualTime(1_767_225_600_000);
  const gpio = new SimulatedGpio({ timers: vt });
  const relay = new HoldRelay({ pin: 21, activeLow: false, drive: 'level', pulseMs: 100, label: 'car B' }, vt);
  await relay.open(gpio);
  relay.hold();
  t.equal(gpio.level(21), true);
  relay.release();
  t.equal(gpio.level(21), false);
  relay.hold();
  relay.close();
  t.equal(gpio.raw(21), false, 'closed released');
  t.notOk(gpio.inUse(21));
});

t.test('prompt: the chime is a valid PCM WAV; the zh-CN prompt is synthesised once by espeak-ng', async (t) => {
  const w = chimeWav();
  t.equal(w.toString('ascii', 0, 4), 'RIFF');
  t.equal(w.toString('ascii', 8, 15), 'WAVEfmt');
  t.equal(w.readUInt32LE(40), w.length - 44);
  const dir = tempDir('ee-elevator-audio-');
  const espeak = spawnSync('espeak-ng', ['--version'], { stdio: 'ignore' });
  t.notOk(espeak.error, 'espeak-ng installed (Debian package espeak-ng, in .ci/run)');
  const p = preparePrompt({ text: DEFAULT_PROMPT_ZH, voice: 'cmn', dir });
  t.equal(p.kind, 'speech', p.note ?? 'speech');
  t.equal(readFileSync(p.file).toString('ascii', 0, 4), 'RIFF');
  const again = preparePrompt({ text: DEFAULT_PROMPT_ZH, voice: 'cmn', dir });
  t.equal(again.file, p.file, 'made once');
  const none = preparePrompt({ text: 'x', voice: 'cmn', dir, espeak: '/nonexistent/espeak-ng' });
  t.equal(none.kind, 'chime');
  t.match(none.note, /espeak-ng could not synthesise/);
  t.ok(existsSync(join(dir, 'prompt-chime.wav')));
  t.throws(() => preparePrompt({ file: join(dir, 'missing.wav'), text: 'x', voice: 'cmn', dir }), /does not exist/);
  const sim = new SimulatedPlayer('plughw:1,0');
  sim.play(p.file, 123);
  t.same(sim.played, [{ file: p.file, device: 'plughw:1,0', at: 123 }]);
  const aplay = spawnSync('aplay', ['-q', '-D', 'null', p.file]);
  t.equal(aplay.status, 0, `aplay (alsa-utils) plays the prompt to the null device: ${String(aplay.stderr ?? aplay.error)}`);
});
