// The image helper process (edge/vision/imaging.ts): sharp decodes and encodes in a
// child started on demand and ended when idle, so libvips never loads into the gateway;
// a helper that hangs or crashes fails only its request (mapped to not_an_image at
// enrolment), a full queue is busy, and an idle helper holds no process open.
import t from 'tap';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImageHelper, ImagingError } from '../../edge/vision/imaging.js';
import { decodePhoto } from '../../edge/vision/enrol.js';
import { REPO, sharedMedia } from '../models/shared.js';

const obama1 = readFileSync(join(sharedMedia(), 'faces', 'obama', '1.jpg'));
const limits = { maxPhotoBytes: 6291456, maxPhotoPixels: 24000000 };
const decodeOpts = { maxPixels: 24000000, maxSide: 1600 };
const libvipsIn = (pid: number | string) => readFileSync(`/proc/${pid}/maps`, 'utf8').includes('libvips');
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
/** Resolve when `pred` holds, polling every 20 ms; reject after `ms`. */
async function until(pred: () => boolean, ms: number, what: string): Promise<void> {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

t.test('decodes in its own process: libvips is mapped there, not here', async (t) => {
  const h = new ImageHelper();
  t.teardown(() => h.stop());
  const r = await h.decode(obama1, decodeOpts);
  if (!r.ok) throw new Error(r.message);
  const pid = h.pid!;
  t.ok(pid && pid !== process.pid, `helper pid ${pid}`);
  t.ok(libvipsIn(pid), 'libvips is loaded in the helper');
  // Checked before this test file loads sharp itself (below).
  t.notOk(libvipsIn('self'), 'libvips is not loaded in the calling process');
  t.ok(r.img.width > 0 && r.img.height > 0 && r.img.data.length === r.img.width * r.img.height * 3, `RGB ${r.img.width}x${r.img.height}`);
  t.equal(r.scale, 1, 'not reduced (under 1600 px)');
  t.equal(h.spawns, 1);
  await h.decode(obama1, decodeOpts);
  t.equal(h.spawns, 1, 'the running helper serves the next request');
});

t.test('limits and rejections are the enrolment codes', async (t) => {
  const sharp = (await import('sharp')).default;
  const h = new ImageHelper();
  t.teardown(() => h.stop());
  const big = await sharp({ create: { width: 3000, height: 2000, channels: 3, background: { r: 90, g: 90, b: 90 } } })
    .jpeg()
    .toBuffer();
  const r = await h.decode(big, decodeOpts);
  t.match(r, { ok: true, img: { width: 1600, height: 1067 } }, 'reduced to 1600 px');
  t.ok(r.ok && Math.abs(r.scale - 1600 / 3000) < 1e-9, 'scale from original to analysed pixels');
  // EXIF orientation 6 (rotate 90°): the decoded image is upright, the scale is relative to the oriented width.
  const rotated = await sharp({ create: { width: 400, height: 200, channels: 3, background: '#888' } })
    .jpeg()
    .withMetadata({ orientation: 6 })
    .toBuffer();
  t.match(await h.decode(rotated, decodeOpts), { ok: true, img: { width: 200, height: 400 }, scale: 1 }, 'EXIF orientation applied');
  t.match(await h.decode(big, { ...decodeOpts, maxPixels: 5_000_000 }), { ok: false, code: 'too_large' }, 'pixel cap from the header');
  t.match(await h.decode(Buffer.from('not an image at all'), decodeOpts), { ok: false, code: 'not_an_image' });
  t.match(await h.decode(obama1.subarray(0, 3000), decodeOpts), { ok: false, code: 'not_an_image' }, 'truncated JPEG');
  const tiff = await sharp({ create: { width: 64, height: 64, channels: 3, background: '#888' } })
    .tiff()
    .toBuffer();
  t.match(await h.decode(tiff, decodeOpts), { ok: false, code: 'not_an_image', message: /tiff/ }, 'a format other than JPEG/PNG/WebP');
  const tiny = await sharp({ create: { width: 12, height: 12, channels: 3, background: '#888' } })
    .png()
    .toBuffer();
  t.match(await h.decode(tiny, decodeOpts), { ok: false, code: 'face_too_small' });
  const kept = await h.decode(big, { ...decodeOpts, keep: { maxSide: 640, quality: 85 } });
  t.ok(kept.ok && kept.keep, 'a JPEG to keep');
  if (kept.ok && kept.keep) t.match(await sharp(kept.keep).metadata(), { format: 'jpeg', width: 640, height: 427 });
  // Enrolment's own byte cap is checked before the helper is asked.
  t.match(await decodePhoto(h, Buffer.alloc(limits.maxPhotoBytes + 1), limits, false), { ok: false, code: 'too_large' });
});

t.test('JPEG encoding: reduced to maxSide, quality lowered until it fits', async (t) => {
  const sharp = (await import('sharp')).default;
  const h = new ImageHelper();
  t.teardown(() => h.stop());
  const dec = await h.decode(obama1, decodeOpts);
  if (!dec.ok) throw new Error(dec.message);
  const full = await h.jpeg(dec.img, { qualities: [80] });
  t.match(await sharp(full!).metadata(), { format: 'jpeg', width: dec.img.width, height: dec.img.height });
  const small = await h.jpeg(dec.img, { maxSide: 160, qualities: [75, 60, 45, 30, 20], maxBytes: 4000 });
  const m = await sharp(small!).metadata();
  t.ok(small!.length <= 4000 && Math.max(m.width!, m.height!) === 160, `${small!.length} B, ${m.width}x${m.height}`);
  t.equal(await h.jpeg(dec.img, { maxSide: 160, qualities: [90], maxBytes: 100 }), undefined, 'nothing fits: undefined');
});

t.test('a hung or crashed helper fails its request only; enrolment calls the photo not_an_image', async (t) => {
  const h = new ImageHelper({ timeoutMs: 1 });
  t.teardown(() => h.stop());
  await t.rejects(h.decode(obama1, decodeOpts), { name: 'ImagingError', reason: 'timeout' });
  t.match(await decodePhoto(h, obama1, limits, false), { ok: false, code: 'not_an_image', message: /did not answer/ });

  const h2 = new ImageHelper();
  t.teardown(() => h2.stop());
  await h2.decode(obama1, decodeOpts);
  const pending = h2.decode(obama1, decodeOpts);
  process.kill(h2.pid!, 'SIGKILL');
  await t.rejects(pending, { name: 'ImagingError', reason: 'crashed', message: /SIGKILL/ });
  t.match(await h2.decode(obama1, decodeOpts), { ok: true }, 'the next request gets a fresh helper');
  t.equal(h2.spawns, 2);
});

t.test('a full queue is busy; a stopped helper is unavailable', async (t) => {
  const h = new ImageHelper({ maxQueued: 1 });
  const running = h.decode(obama1, decodeOpts);
  const queued = h.decode(obama1, decodeOpts);
  await t.rejects(h.decode(obama1, decodeOpts), { name: 'ImagingError', reason: 'busy' });
  t.match(await running, { ok: true });
  t.match(await queued, { ok: true });
  const more = h.decode(obama1, decodeOpts);
  await h.stop();
  await t.rejects(more, { name: 'ImagingError', reason: 'unavailable' });
  await t.rejects(h.decode(obama1, decodeOpts), ImagingError);
  const busy = new ImageHelper({ maxQueued: 0 });
  const first = busy.decode(obama1, decodeOpts);
  t.match(await decodePhoto(busy, obama1, limits, false), { ok: false, code: 'busy' });
  await first;
  await busy.stop();
});

t.test('an idle helper ends by itself and holds nothing open', async (t) => {
  const h = new ImageHelper({ idleMs: 200 });
  t.teardown(() => h.stop());
  await h.decode(obama1, decodeOpts);
  const pid = h.pid!;
  const idleFrom = Date.now();
  t.ok(alive(pid));
  // The helper's own exit, observed: the process gone and the helper knowing it.
  await until(() => !alive(pid) && h.pid === undefined, 10_000, 'the idle helper to exit');
  const idle = Date.now() - idleFrom;
  t.ok(idle >= 150, `exited after idleMs, not before (${idle} ms, idleMs 200)`);
  t.notOk(alive(pid), 'exited after idleMs');
  t.equal(h.pid, undefined);
  await h.decode(obama1, decodeOpts);
  t.equal(h.spawns, 2, 'started again on demand');

  // A process that used the helper and has nothing else to do exits at once, not after idleMs.
  const script = `import { ImageHelper } from ${JSON.stringify(join(REPO, 'edge/vision/imaging.ts'))};
    import { readFileSync } from 'node:fs';
    const h = new ImageHelper({ idleMs: 60000 });
    const r = await h.decode(readFileSync(${JSON.stringify(join(sharedMedia(), 'faces', 'obama', '1.jpg'))}), { maxPixels: 1e7, maxSide: 800 });
    console.log(r.ok);`;
  const t0 = Date.now();
  const out = await new Promise<string>((resolve, reject) => execFile(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: REPO, timeout: 50_000 }, (err, stdout) => (err ? reject(err) : resolve(stdout))));
  t.equal(out.trim(), 'true');
  t.ok(Date.now() - t0 < 30_000, `exited after ${Date.now() - t0} ms (idleMs 60 s)`);
});
