// The camera driver with the real system ffmpeg: the looped video as a camera (the
// simulator twin) at a size and rate other than the file's, newest-frame-only delivery,
// and the watchdog: a frozen stream, a stalled one, a dead RTSP camera, a corrupt file.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { Camera, type CameraOptions, type CameraStateName } from '../../drivers/camera/camera.js';
import { VIDEO, waitFor } from './helpers.js';

const base = { width: 320, height: 240, fps: 10, staleMs: 3000, frozenMs: 30000, reconnectMinMs: 200, reconnectMaxMs: 800 };

function cam(t: { teardown: (fn: () => void) => void }, o: Partial<CameraOptions> & Pick<CameraOptions, 'source'>) {
  const c = new Camera({ ...base, ...o });
  const states: CameraStateName[] = [];
  c.on('state', (s) => states.push(s.state));
  t.teardown(() => c.stop());
  return { c, states };
}

t.test('video file as a camera: frames of the configured size and rate, newest frame only', async (t) => {
  const { c, states } = cam(t, { source: { kind: 'file', path: VIDEO() } });
  const seen: number[] = [];
  c.on('frame', (f) => {
    t.equal(f.data.length, 320 * 240 * 3, 'scaled to 320x240 RGB (the file is 640x480)');
    seen.push(f.seq);
  });
  c.start();
  await waitFor(() => seen.length >= 12, 20000, '12 frames');
  // Do not take frames for a while: they are replaced, never queued.
  const before = c.stats().dropped;
  const seqBefore = seen.at(-1)!;
  await waitFor(() => seen.at(-1)! >= seqBefore + 5, 10000, '5 more frames');
  const taken = c.take()!;
  t.equal(taken.seq, seen.at(-1), 'take() gives the newest frame');
  t.equal(c.take(), undefined, 'and nothing older after it');
  t.ok(c.stats().dropped >= before + 4, `frames not taken were dropped (${c.stats().dropped})`);
  t.ok(states.includes('connecting') && states.includes('streaming'));
  const s = c.stats();
  t.ok(s.fps >= 5 && s.fps <= 12, `about 10 fps (${s.fps})`);
  c.stop();
  t.equal(c.state().state, 'stopped');
  t.equal(c.stats().restarts, 0);
});

t.test('a frozen stream (identical frames) is restarted', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ee-cam-'));
  const still = join(dir, 'still.mp4');
  execFileSync('ffmpeg', ['-hide_banner', '-loglevel', 'error', '-f', 'lavfi', '-i', 'color=c=gray:s=160x120:r=10:d=2', '-pix_fmt', 'yuv420p', still]);
  const { c, states } = cam(t, { source: { kind: 'file', path: still }, width: 160, height: 120, frozenMs: 1000 });
  c.start();
  await waitFor(() => states.includes('frozen'), 15000, 'frozen state');
  t.match(c.state().reason ?? c.stats().reason ?? '', /identical frames/);
  await waitFor(() => c.stats().restarts >= 1 && c.state().state === 'streaming', 15000, 'restart');
  t.pass('restarted after the freeze');
});

t.test('a stalled stream (no frames) is restarted', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ee-cam-'));
  const fifo = join(dir, 'stall.y4m');
  execFileSync('mkfifo', [fifo]);
  const { c, states } = cam(t, { source: { kind: 'file', path: fifo }, width: 64, height: 48, staleMs: 800, frozenMs: 60000, reconnectMinMs: 60000 });
  c.start();
  // A y4m stream that sends five frames, then nothing while staying open.
  // Opened off the event loop: opening a FIFO for writing blocks until ffmpeg opens it.
  const fh = await open(fifo, 'w');
  t.teardown(() => fh.close());
  await fh.write('YUV4MPEG2 W64 H48 F10:1 Ip A1:1 C420jpeg\n');
  for (let i = 0; i < 5; i++) await fh.write(Buffer.concat([Buffer.from('FRAME\n'), Buffer.alloc(64 * 48 * 1.5, i * 40)]));
  await waitFor(() => states.includes('stalled'), 15000, 'stalled state');
  t.match(c.state().reason, /no frame/);
  t.equal(c.stats().restarts, 1, 'a restart is scheduled (with back-off)');
});

t.test('a dead RTSP camera: failed state with the reason (credentials masked), keeps reconnecting', async (t) => {
  // A port that accepts and closes at once: the camera is "there" but not an RTSP server.
  const srv = createServer((s) => s.destroy());
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => srv.close());
  const port = (srv.address() as { port: number }).port;
  const { c, states } = cam(t, { source: { kind: 'rtsp', url: `rtsp://admin:pw@127.0.0.1:${port}/Streaming/Channels/102` }, reconnectMinMs: 100, reconnectMaxMs: 400 });
  c.start();
  await waitFor(() => c.stats().restarts >= 3, 20000, 'three reconnects');
  t.ok(states.includes('failed'));
  t.notMatch(JSON.stringify(c.stats()), /pw@/, 'credentials never in the state');
  t.ok(c.stats().frames === 0);
});

// Two kinds of bad media, each with what the camera must do about it (measured: the
// damaged file yields ~120 decode errors/s with frames still coming and no restart; the
// garbage file makes ffmpeg exit at once, ~3 restarts/s at this back-off, no frame).
t.test('a damaged file: decode errors are counted and the frames that decode keep coming, no restart', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ee-cam-'));
  const bad = join(dir, 'bad.mp4');
  const v = readFileSync(VIDEO());
  // Header kept, most of the media data overwritten.
  const broken = Buffer.from(v);
  for (let i = 4096; i < broken.length; i += 7) broken[i] = (broken[i]! * 31 + 7) & 0xff;
  writeFileSync(bad, broken.subarray(0, Math.floor(broken.length / 2)));
  const { c } = cam(t, { source: { kind: 'file', path: bad }, reconnectMinMs: 100, reconnectMaxMs: 200 });
  c.start();
  await waitFor(() => c.stats().decodeErrors > 0 && c.stats().frames > 0, 20000, 'decode errors counted and a frame');
  const first = c.stats();
  await waitFor(() => c.stats().frames > first.frames && c.stats().decodeErrors > first.decodeErrors, 20000, 'more frames and more decode errors');
  const s = c.stats();
  t.equal(s.state, 'streaming', 'still streaming');
  t.ok(s.decodeErrors > first.decodeErrors, `decode errors counted: ${first.decodeErrors} → ${s.decodeErrors}`);
  t.ok(s.frames > first.frames, `frames go on: ${first.frames} → ${s.frames}`);
});

t.test('a file that is not video: the camera fails with the reason, retries with back-off, never streams', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ee-cam-'));
  const bad = join(dir, 'garbage.mp4');
  const b = Buffer.alloc(65536);
  for (let i = 0; i < b.length; i++) b[i] = (i * 2654435761) >>> 24;
  writeFileSync(bad, b);
  const { c, states } = cam(t, { source: { kind: 'file', path: bad }, reconnectMinMs: 100, reconnectMaxMs: 200 });
  const reasons: string[] = [];
  c.on('state', (st) => {
    if (st.state === 'failed') reasons.push(st.reason ?? '');
  });
  c.start();
  await waitFor(() => c.stats().restarts >= 3, 20000, 'three restarts');
  const s = c.stats();
  t.equal(s.frames, 0, 'no frame');
  t.ok(states.includes('failed'), 'reported failed');
  t.notOk(states.includes('streaming'), 'never streaming');
  t.ok(reasons.length > 0 && reasons.every((r) => /Invalid data found/.test(r)), `each failure names ffmpeg's reason: ${reasons[0]}`);
});
