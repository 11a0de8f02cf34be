// The image helper process (see imaging.ts): sharp's decode and encode operations, and
// the loop answering the gateway's requests over the IPC channel. Only this process
// ever loads sharp; it exits when the gateway closes the channel (idle, or gone).
import type SharpModule from 'sharp';
import { requireCjs } from '../cjs.js';
import type { DecodeOptions, DecodeResult, ImagingRequest, ImagingResponse, JpegOptions } from './imaging.js';
import type { RgbImage } from './image.js';

let loaded: typeof SharpModule | undefined;

function sharp(): typeof SharpModule {
  if (!loaded) {
    loaded = requireCjs('sharp') as typeof SharpModule;
    // libvips' operation cache only helps when the same images are processed again.
    loaded.cache(false);
  }
  return loaded;
}

/** Check and decode a photo to RGB (EXIF orientation applied), refusing oversize and non-images before any pixel is decoded. */
export async function decodePhoto(buf: Buffer, o: DecodeOptions): Promise<DecodeResult> {
  const s = sharp();
  const input = { failOn: 'error', limitInputPixels: o.maxPixels } as const;
  let meta: Awaited<ReturnType<ReturnType<typeof s>['metadata']>>;
  try {
    meta = await s(buf, input).metadata();
  } catch (err) {
    const msg = (err as Error).message;
    if (/pixel limit/i.test(msg)) return { ok: false, code: 'too_large', message: `photo has more than ${o.maxPixels} pixels` };
    return { ok: false, code: 'not_an_image', message: `not a decodable image: ${msg.slice(0, 120)}` };
  }
  if (!meta.format || !['jpeg', 'png', 'webp'].includes(meta.format)) return { ok: false, code: 'not_an_image', message: `unsupported image format ${meta.format ?? 'unknown'} (JPEG or PNG expected)` };
  const w = meta.width ?? 0;
  const h = meta.height ?? 0;
  if (w * h > o.maxPixels) return { ok: false, code: 'too_large', message: `photo is ${w}x${h}, more than ${o.maxPixels} pixels` };
  if (w < 16 || h < 16) return { ok: false, code: 'face_too_small', message: `photo is only ${w}x${h}` };
  try {
    const { data, info } = await s(buf, input).rotate().resize({ width: o.maxSide, height: o.maxSide, fit: 'inside', withoutEnlargement: true }).toColourspace('srgb').removeAlpha().raw().toBuffer({ resolveWithObject: true });
    const oriented = (meta.orientation ?? 1) >= 5 ? h : w;
    const img = { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
    const keep = o.keep ? await encodeJpeg(img, { maxSide: o.keep.maxSide, qualities: [o.keep.quality] }) : undefined;
    return { ok: true, img, scale: info.width / oriented, ...(keep ? { keep } : {}) };
  } catch (err) {
    return { ok: false, code: 'not_an_image', message: `image could not be decoded: ${(err as Error).message.slice(0, 120)}` };
  }
}

/** RGB pixels as JPEG, reduced to `maxSide`; the first quality that fits `maxBytes`, or undefined. */
export async function encodeJpeg(img: RgbImage, o: JpegOptions): Promise<Buffer | undefined> {
  const s = sharp();
  let raw = { data: Buffer.from(img.data.buffer, img.data.byteOffset, img.data.length), width: img.width, height: img.height };
  if (o.maxSide !== undefined && Math.max(img.width, img.height) > o.maxSide) {
    const r = await s(raw.data, { raw: { width: img.width, height: img.height, channels: 3 } })
      .resize({ width: o.maxSide, height: o.maxSide, fit: 'inside', withoutEnlargement: true })
      .raw()
      .toBuffer({ resolveWithObject: true });
    raw = { data: r.data, width: r.info.width, height: r.info.height };
  }
  for (const quality of o.qualities) {
    const jpeg = await s(raw.data, { raw: { width: raw.width, height: raw.height, channels: 3 } })
      .jpeg({ quality })
      .toBuffer();
    if (o.maxBytes === undefined || jpeg.length <= o.maxBytes) return jpeg;
  }
  return undefined;
}

async function handle(req: ImagingRequest): Promise<ImagingResponse> {
  try {
    if (req.op === 'decode') return { id: req.id, ok: true, result: await decodePhoto(req.bytes, req) };
    return { id: req.id, ok: true, result: (await encodeJpeg(req.image, req)) ?? null };
  } catch (err) {
    return { id: req.id, ok: false, message: (err as Error)?.message ?? String(err) };
  }
}

/** Answer requests until the gateway closes the channel. */
export function serve(): void {
  const send = process.send?.bind(process);
  if (!send) throw new Error('the image helper must be started by the gateway (no IPC channel)');
  process.on('message', (req: ImagingRequest) => void handle(req).then((res) => send(res)));
  process.on('disconnect', () => process.exit(0));
}
