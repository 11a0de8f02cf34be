// Pure parts of the face pipeline: geometry (Umeyama, warps), detector decoding, pose,
// decision logic, template search and sealing. No models needed.
import t from 'tap';
import Database from 'better-sqlite3';
import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { umeyama, invertAffine, warpAffine, resize, letterboxTensor, chipQuality, type Point, type RgbImage } from '../../edge/vision/image.js';
import { decodeYunet, nms, type Face } from '../../edge/vision/detect.js';
import { pose, geometryProblem, chipProblem, significantFaces } from '../../edge/vision/quality.js';
import { Confirmer, Cooldown, RateLimit } from '../../edge/vision/decision.js';
import { TemplateStore } from '../../edge/vision/templates.js';
import { loadOrCreateKey, seal, open } from '../../edge/vision/sealing.js';
import { ffmpegArgs, describeSource } from '../../drivers/camera/camera.js';

const limits = { minFacePx: 40, maxYaw: 0.35, maxRollDeg: 20, minSharpness: 140, minBrightness: 40 };
const NAMES = ['right_eye', 'left_eye', 'nose_tip', 'right_mouth_corner', 'left_mouth_corner'] as const;

function face(landmarks: Point[], size = 100): Face {
  return { box: [0, 0, size, size], score: 0.9, landmarks, landmarkNames: NAMES };
}

t.test('umeyama recovers an exact similarity transform and its inverse', async (t) => {
  const src: Point[] = [
    [10, 20],
    [60, 22],
    [35, 50],
    [15, 80],
    [55, 78],
  ];
  const ang = 0.3,
    k = 1.7,
    tx = 12,
    ty = -5;
  const dst = src.map(([x, y]) => [k * (Math.cos(ang) * x - Math.sin(ang) * y) + tx, k * (Math.sin(ang) * x + Math.cos(ang) * y) + ty] as Point);
  const m = umeyama(src, dst);
  t.ok(Math.abs(m[0] - k * Math.cos(ang)) < 1e-9 && Math.abs(m[3] - k * Math.sin(ang)) < 1e-9, 'rotation and scale');
  t.ok(Math.abs(m[2] - tx) < 1e-9 && Math.abs(m[5] - ty) < 1e-9, 'translation');
  const inv = invertAffine(m);
  const [x, y] = dst[2]!;
  t.ok(Math.abs(inv[0] * x + inv[1] * y + inv[2] - src[2]![0]) < 1e-9, 'inverse maps back');
  t.throws(
    () =>
      umeyama(
        [
          [1, 1],
          [1, 1],
        ],
        [
          [0, 0],
          [1, 1],
        ],
      ),
    /degenerate/,
  );
});

t.test('warpAffine samples bilinearly with zero borders; resize averages when shrinking', async (t) => {
  const img: RgbImage = { width: 2, height: 1, data: Uint8Array.from([0, 0, 0, 200, 100, 50]) };
  const half = warpAffine(img, [1, 0, 0.5, 0, 1, 0], 1, 1);
  t.same([...half.data], [100, 50, 25], 'midpoint between the two pixels');
  const out = warpAffine(img, [1, 0, 5, 0, 1, 0], 1, 1);
  t.same([...out.data], [0, 0, 0], 'outside the image is zero');
  const big: RgbImage = { width: 4, height: 4, data: new Uint8Array(48).map((_, i) => (Math.floor(i / 3) % 2 ? 255 : 0)) };
  const small = resize(big, 2, 2);
  t.same([...small.data.subarray(0, 3)], [128, 128, 128], 'area average of a 2x2 block');
});

t.test('letterboxTensor places, pads and scales per the manifest input spec', async (t) => {
  const img: RgbImage = { width: 2, height: 1, data: Uint8Array.from([10, 20, 30, 40, 50, 60]) };
  const nchwBgr = letterboxTensor(img, 4, 1, [1, 2], { layout: 'NCHW', colour: 'BGR', scaling: { mean: [0, 0, 0], std: [1, 1, 1] } });
  t.equal(nchwBgr[2 * 4 + 1], 30, 'B first at (1,2)');
  t.equal(nchwBgr[16 + 2 * 4 + 2], 50, 'G plane at (2,2)');
  t.equal(nchwBgr[32 + 2 * 4 + 1], 10, 'R last');
  t.equal(nchwBgr[0], 0, 'padding is pixel 0');
  const nhwc = letterboxTensor(img, 2, 1, [0, 0], { layout: 'NHWC', colour: 'RGB', scaling: { mean: [127.5, 127.5, 127.5], std: [127.5, 127.5, 127.5] } }, 0);
  t.ok(Math.abs(nhwc[0]! - (10 / 127.5 - 1)) < 1e-6, 'RGB scaled to [-1,1]');
  t.equal(nhwc[6], -1, 'padding pixel 0 → -1');
});

t.test('YuNet decoding follows the OpenCV formula and NMS keeps the best box', async (t) => {
  const cols = 2; // 16 px input, stride 8
  const n = cols * cols;
  const out: Record<string, { data: Float32Array }> = {
    cls_8: { data: new Float32Array(n) },
    obj_8: { data: new Float32Array(n) },
    bbox_8: { data: new Float32Array(n * 4) },
    kps_8: { data: new Float32Array(n * 10) },
  };
  out.cls_8!.data[3] = 0.81;
  out.obj_8!.data[3] = 1;
  out.bbox_8!.data.set([0.5, 0.25, Math.log(2), 0], 12);
  out.kps_8!.data.set([0, 0, 1, 0, 0.5, 0.5, 0, 1, 1, 1], 30);
  const dec = { kind: 'yunet' as const, heads: [{ stride: 8, cls: 'cls_8', obj: 'obj_8', bbox: 'bbox_8', kps: 'kps_8' }], decode: '' };
  const faces = decodeYunet(out, dec, 16, NAMES, 0.7, { scale: 0.5, pad: [0, 0] });
  t.equal(faces.length, 1);
  const f = faces[0]!;
  t.ok(Math.abs(f.score - 0.9) < 1e-6, 'score = sqrt(cls*obj)');
  // cell (r=1, c=1): cx = (1+0.5)*8 = 12, w = 2*8 = 16 → x0 = 4 → /0.5 = 8;
  // cy = (1+0.25)*8 = 10, h = 8 → y0 = 6 → /0.5 = 12
  t.same(
    f.box.map((v) => Math.round(v * 1000) / 1000),
    [8, 12, 32, 16],
  );
  t.same(f.landmarks[1], [32, 16], 'landmark (c+1)*8/0.5, r*8/0.5');
  t.equal(decodeYunet(out, dec, 16, NAMES, 0.95, { scale: 1, pad: [0, 0] }).length, 0, 'below threshold');
  const a: Face = { ...f, score: 0.9 };
  const b: Face = { ...f, box: [9, 14, 32, 16], score: 0.8 };
  const c: Face = { ...f, box: [100, 100, 10, 10], score: 0.75 };
  t.same(
    nms([b, a, c], 0.3).map((x) => x.score),
    [0.9, 0.75],
  );
});

t.test('pose and quality gates give the enrolment reason codes', async (t) => {
  const frontal = face([
    [30, 40],
    [70, 40],
    [50, 60],
    [35, 80],
    [65, 80],
  ]);
  t.ok(Math.abs(pose(frontal)!.yaw) < 1e-9);
  t.equal(geometryProblem(frontal, limits), undefined);
  const turned = face([
    [30, 40],
    [70, 40],
    [68, 60],
    [35, 80],
    [65, 80],
  ]);
  t.equal(geometryProblem(turned, limits)?.code, 'not_frontal', 'nose near one eye');
  const tilted = face([
    [30, 40],
    [60, 70],
    [40, 65],
    [20, 80],
    [50, 100],
  ]);
  t.match(geometryProblem(tilted, limits), { code: 'not_frontal', message: /tilted 45°/ });
  t.equal(
    geometryProblem(
      face(
        [
          [30, 40],
          [70, 40],
          [50, 60],
          [35, 80],
          [65, 80],
        ],
        30,
      ),
      limits,
    )?.code,
    'face_too_small',
  );
  t.equal(chipProblem({ sharpness: 500, brightness: 20 }, limits)?.code, 'too_dark');
  t.equal(chipProblem({ sharpness: 50, brightness: 120 }, limits)?.code, 'too_blurred');
  t.equal(chipProblem({ sharpness: 500, brightness: 120 }, limits), undefined);
  const big = face(
    [
      [0, 0],
      [1, 0],
      [0.5, 0.5],
      [0, 1],
      [1, 1],
    ],
    100,
  );
  t.equal(significantFaces([big, { ...big, box: [0, 0, 30, 30] }]).length, 1, 'a small background face does not count');
  t.equal(significantFaces([big, { ...big, box: [0, 0, 80, 80] }]).length, 2);
});

t.test('chip sharpness falls with blur', async (t) => {
  const n = 150;
  const data = new Uint8Array(n * n * 3);
  for (let y = 0; y < n; y++) for (let x = 0; x < n; x++) data.fill(((x >> 2) + (y >> 2)) % 2 ? 220 : 30, (y * n + x) * 3, (y * n + x) * 3 + 3);
  const sharp = chipQuality({ width: n, height: n, data });
  const flat = chipQuality({ width: n, height: n, data: new Uint8Array(n * n * 3).fill(128) });
  t.ok(sharp.sharpness > 1000, `checkerboard is sharp (${Math.round(sharp.sharpness)})`);
  t.equal(flat.sharpness, 0);
  t.equal(Math.round(flat.brightness), 128);
});

t.test('Confirmer needs K agreeing frames within the window; Cooldown and RateLimit', async (t) => {
  const c = new Confirmer(3, 1000);
  t.equal(c.observe('a', 0), undefined);
  t.equal(c.observe('a', 100), undefined);
  t.equal(c.observe('b', 200), undefined, 'disagreement breaks the streak');
  t.equal(c.observe('b', 300), undefined);
  t.equal(c.observe('b', 400), 'b', 'three in a row');
  t.equal(c.observe('b', 500), undefined, 'streak restarts after a confirmation');
  t.equal(c.observe('b', 1600), undefined, 'old frames fall out of the window');
  t.equal(c.observe('b', 1700), undefined);
  t.equal(c.observe('b', 1800), 'b');
  const cd = new Cooldown(1000);
  cd.start('a', 0);
  t.ok(cd.active('a', 999));
  t.notOk(cd.active('a', 1000));
  t.notOk(cd.active('b', 0));
  const rl = new RateLimit(() => 1000);
  t.ok(rl.allow('unknown', 0));
  t.notOk(rl.allow('unknown', 10));
  t.notOk(rl.allow('unknown', 20));
  t.ok(rl.allow('spoof', 20), 'kinds are independent');
  t.ok(rl.allow('unknown', 1000));
  t.equal(rl.takeSuppressed('unknown'), 2);
});

t.test('template store: sealed at rest, exact 1:N search, per-person limit, key checks', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ee-vision-'));
  const keyFile = join(dir, 'keys', 'faces.key');
  const key = loadOrCreateKey(keyFile);
  t.equal(statSync(keyFile).mode & 0o777, 0o600, 'key file 0600');
  t.equal(statSync(join(dir, 'keys')).mode & 0o777, 0o700, 'key dir 0700');
  t.same(loadOrCreateKey(keyFile), key, 'the same key is read back');
  const db = new Database(join(dir, 'faces.db'));
  db.pragma('journal_mode = WAL');
  const store = new TemplateStore({ db, key, model: 'm', dim: 4, metric: 'euclidean', l2Normalise: false, now: () => 1 });
  t.ok(store.keyMatches());
  store.add(
    'alice',
    [
      [1, 0, 0, 0],
      [0.9, 0.1, 0, 0],
    ],
    { replace: false, source: 'embedding', maxPerPerson: 10 },
  );
  store.add('bob', [[0, 1, 0, 0]], { replace: false, source: 'embedding', maxPerPerson: 10 });
  const m = store.search(Float32Array.from([0.95, 0.05, 0, 0]))!;
  t.equal(m.personId, 'alice');
  t.ok(Math.abs(m.score - Math.hypot(0.05, 0.05)) < 1e-6, 'distance to the closest template of that person');
  t.equal(m.runnerUp?.personId, 'bob');
  t.equal(
    store.add(
      'bob',
      [
        [0, 0, 1, 0],
        [0, 0, 0, 1],
      ],
      { replace: false, source: 'embedding', maxPerPerson: 2 },
    ),
    2,
    'oldest dropped beyond the limit',
  );
  t.equal(store.search(Float32Array.from([0, 1, 0, 0]))!.personId, 'alice', "bob's dropped template is gone from memory too");
  // Sealed: the float bytes of the embedding do not appear in the database.
  const raw = db.prepare("SELECT sealed FROM templates WHERE person_id = 'alice'").all() as Array<{ sealed: Buffer }>;
  const plain = Buffer.from(Float32Array.from([1, 0, 0, 0]).buffer);
  t.notOk(
    raw.some((r) => r.sealed.includes(plain)),
    'no plaintext embedding at rest',
  );
  const back = open(key, raw[0]!.sealed, 'alice\u0000m');
  t.same(
    [0, 4, 8, 12].map((o) => back.readFloatLE(o)),
    [1, 0, 0, 0],
    'opens with the key and the right person',
  );
  t.throws(() => open(key, raw[0]!.sealed, 'bob\u0000m'), 'a row moved to another person does not open');
  const reloaded = new TemplateStore({ db, key, model: 'm', dim: 4, metric: 'euclidean', l2Normalise: false, now: () => 1 });
  t.equal(reloaded.count(), 4, 'loaded back from SQLite');
  t.equal(reloaded.unreadable, 0);
  const other = new TemplateStore({ db, key: Buffer.alloc(32, 7), model: 'm', dim: 4, metric: 'euclidean', l2Normalise: false, now: () => 1 });
  t.notOk(other.keyMatches(), 'a different key file is detected');
  t.equal(other.unreadable, 4, 'and nothing decrypts with it');
  t.equal(store.remove('alice'), 2);
  t.equal(store.count('alice'), 0);
  t.equal(store.search(Float32Array.from([1, 0, 0, 0]))!.personId, 'bob');
  t.equal((db.prepare("SELECT count(*) AS n FROM templates WHERE person_id = 'alice'").get() as { n: number }).n, 0);
  writeFileSync(join(dir, 'short.key'), Buffer.alloc(5));
  t.throws(() => loadOrCreateKey(join(dir, 'short.key')), /5 bytes/);
  const sealed = seal(key, Buffer.from('x'), 'a');
  sealed[sealed.length - 1]! ^= 1;
  t.throws(() => open(key, sealed, 'a'), 'tampered ciphertext is refused');
  db.close();
});

t.test('cosine search on normalised vectors', async (t) => {
  const db = new Database(':memory:');
  const store = new TemplateStore({ db, key: Buffer.alloc(32, 1), model: 'm', dim: 2, metric: 'cosine', l2Normalise: true, now: () => 1 });
  store.add('a', [[2, 0]], { replace: false, source: 'embedding', maxPerPerson: 5 });
  store.add('b', [[0, 3]], { replace: false, source: 'embedding', maxPerPerson: 5 });
  const m = store.search(Float32Array.from([1, 0.1]))!;
  t.equal(m.personId, 'a');
  t.ok(m.score > 0.99 && m.score <= 1.0001);
});

t.test('ffmpeg arguments per source; credentials masked in logs', async (t) => {
  const base = { width: 640, height: 480, fps: 10, staleMs: 5000, frozenMs: 30000, reconnectMinMs: 1000, reconnectMaxMs: 30000 };
  const rtsp = ffmpegArgs({ ...base, source: { kind: 'rtsp', url: 'rtsp://admin:secret@192.0.2.10:554/Streaming/Channels/102' } });
  t.match(rtsp.inputOptions.join(' '), /-rtsp_transport tcp/);
  t.match(rtsp.outputOptions.join(' '), /fps=10,scale=640:480/);
  t.match(rtsp.outputOptions.join(' '), /-pix_fmt rgb24 -f rawvideo/);
  t.equal(describeSource({ kind: 'rtsp', url: 'rtsp://admin:secret@192.0.2.10:554/x' }), 'rtsp://***@192.0.2.10:554/x');
  t.match(ffmpegArgs({ ...base, source: { kind: 'v4l2', device: '/dev/video0' } }).inputOptions.join(' '), /-f v4l2 -framerate 10/);
  t.match(ffmpegArgs({ ...base, source: { kind: 'file', path: 'a.mp4' } }).inputOptions.join(' '), /-re -stream_loop -1/);
});

t.test('1:N search equals a brute-force scan (best person and runner-up) on random templates', async (t) => {
  const db = new Database(':memory:');
  const dim = 128;
  const store = new TemplateStore({ db, key: Buffer.alloc(32, 5), model: 'm', dim, metric: 'euclidean', l2Normalise: false, now: () => 1 });
  let seed = 42;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff - 0.5) * 0.3;
  const rows: Array<{ p: string; v: Float32Array }> = [];
  for (let p = 0; p < 60; p++) {
    const vs = Array.from({ length: 3 }, () => Float32Array.from({ length: dim }, rnd));
    store.add(`p${p}`, vs, { replace: false, source: 'embedding', maxPerPerson: 10 });
    for (const v of vs) rows.push({ p: `p${p}`, v });
  }
  for (let k = 0; k < 20; k++) {
    const q = Float32Array.from({ length: dim }, rnd);
    const best = new Map<string, number>();
    for (const r of rows) {
      const dist = Math.sqrt(r.v.reduce((s, x, i) => s + (x - q[i]!) ** 2, 0));
      best.set(r.p, Math.min(best.get(r.p) ?? Infinity, dist));
    }
    const ranked = [...best].sort((a, b) => a[1] - b[1]);
    const m = store.search(q)!;
    t.equal(m.personId, ranked[0]![0]);
    t.ok(Math.abs(m.score - ranked[0]![1]) < 1e-5);
    t.equal(m.runnerUp?.personId, ranked[1]![0]);
    t.ok(Math.abs(m.runnerUp!.score - ranked[1]![1]) < 1e-5);
  }
});
