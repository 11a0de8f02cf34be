// Enrolment: the `faces` service (contract in api.ts). Each photo is size-checked,
// decoded by sharp (never by hand), analysed by the inference worker with the enrolment
// quality gates, and either becomes an encrypted template or is rejected with a reason
// code; ready-made embeddings are checked for length and finiteness. Photos are thrown
// away after embedding unless the config says to keep them (encrypted, time-limited).
import sharp from 'sharp';
import type { FaceEnrolResult, FaceRejection, FacesApi } from './api.js';
import type { TemplateStore } from './templates.js';
import type { InferenceClient } from './inference.js';
import type { QualityLimits } from './quality.js';
import type { RgbImage } from './image.js';

/** Photos are analysed at most this large (long side): plenty for a 150 px chip, and bounded memory. */
const ANALYSIS_MAX_SIDE = 1600;

export interface EnrolLimits {
  quality: QualityLimits;
  maxPhotoBytes: number;
  maxPhotoPixels: number;
  maxPhotosPerRequest: number;
  maxTemplatesPerPerson: number;
}

export interface EnrolDeps {
  store: () => TemplateStore | undefined;
  inference: () => InferenceClient | undefined;
  /** Why photos cannot be analysed right now (models missing…), if so. */
  unavailable: () => string | undefined;
  limits: EnrolLimits;
  dim: () => number | undefined;
  keepPhotos: boolean;
  /** Called once per photo/embedding with its outcome code ("accepted" or a rejection code). */
  count: (outcome: string) => void;
  audit: (type: string, data: Record<string, unknown>) => void;
}

export class EnrolError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'EnrolError';
  }
}

type Decoded = { ok: true; img: RgbImage; scale: number } | { ok: false; code: string; message: string };

/** Check the bytes and decode to RGB (EXIF orientation applied), refusing oversize and non-images before any pixel is decoded. */
export async function decodePhoto(buf: Buffer, l: Pick<EnrolLimits, 'maxPhotoBytes' | 'maxPhotoPixels'>): Promise<Decoded> {
  if (buf.length > l.maxPhotoBytes) return { ok: false, code: 'too_large', message: `photo is ${buf.length} bytes, at most ${l.maxPhotoBytes}` };
  let meta: Awaited<ReturnType<ReturnType<typeof sharp>["metadata"]>>;
  try {
    meta = await sharp(buf, { failOn: 'error', limitInputPixels: l.maxPhotoPixels }).metadata();
  } catch (err) {
    const msg = (err as Error).message;
    if (/pixel limit/i.test(msg)) return { ok: false, code: 'too_large', message: `photo has more than ${l.maxPhotoPixels} pixels` };
    return { ok: false, code: 'not_an_image', message: `not a decodable image: ${msg.slice(0, 120)}` };
  }
  if (!meta.format || !['jpeg', 'png', 'webp'].includes(meta.format)) return { ok: false, code: 'not_an_image', message: `unsupported image format ${meta.format ?? 'unknown'} (JPEG or PNG expected)` };
  const w = meta.width ?? 0;
  const h = meta.height ?? 0;
  if (w * h > l.maxPhotoPixels) return { ok: false, code: 'too_large', message: `photo is ${w}x${h}, more than ${l.maxPhotoPixels} pixels` };
  if (w < 16 || h < 16) return { ok: false, code: 'face_too_small', message: `photo is only ${w}x${h}` };
  try {
    const { data, info } = await sharp(buf, { failOn: 'error', limitInputPixels: l.maxPhotoPixels })
      .rotate()
      .resize({ width: ANALYSIS_MAX_SIDE, height: ANALYSIS_MAX_SIDE, fit: 'inside', withoutEnlargement: true })
      .toColourspace('srgb')
      .removeAlpha()
      .raw()
      .toBuffer({ resolveWithObject: true });
    const oriented = (meta.orientation ?? 1) >= 5 ? h : w;
    return { ok: true, img: { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height }, scale: info.width / oriented };
  } catch (err) {
    return { ok: false, code: 'not_an_image', message: `image could not be decoded: ${(err as Error).message.slice(0, 120)}` };
  }
}

export class Enroller implements FacesApi {
  constructor(private readonly d: EnrolDeps) {}

  count(personId?: string): number {
    return this.d.store()?.count(personId) ?? 0;
  }

  async remove(personId: string): Promise<number> {
    const store = this.d.store();
    if (!store) throw new EnrolError('faces_unavailable', 'template store is not open');
    const n = store.remove(personId);
    this.d.audit('face.removed', { personId, removed: n });
    return n;
  }

  async enrol(personId: string, input: { photos?: Buffer[]; embeddings?: number[][]; replace?: boolean }): Promise<FaceEnrolResult> {
    const store = this.d.store();
    if (!store) throw new EnrolError('faces_unavailable', this.d.unavailable() ?? 'template store is not open');
    const photos = input.photos ?? [];
    const embeddings = input.embeddings ?? [];
    const l = this.d.limits;
    if (photos.length + embeddings.length > l.maxPhotosPerRequest)
      throw new EnrolError('too_many_faces', `${photos.length + embeddings.length} photos/embeddings in one request, at most ${l.maxPhotosPerRequest}`);
    const rejected: FaceRejection[] = [];
    const accepted: Float32Array[] = [];
    const keep: Buffer[] = [];
    const reject = (index: number, code: string, message: string) => {
      rejected.push({ index, code, message });
      this.d.count(code);
    };
    // Photos are numbered first, then embeddings: index = position in photos, or photos.length + position in embeddings.
    for (let i = 0; i < photos.length; i++) {
      const r = await this.photo(photos[i]!);
      if ('code' in r) reject(i, r.code, `photo ${i}: ${r.message}`);
      else {
        accepted.push(r.embedding);
        if (this.d.keepPhotos) keep.push(r.keep);
        this.d.count('accepted');
      }
    }
    const dim = this.d.dim();
    embeddings.forEach((e, j) => {
      const index = photos.length + j;
      if (dim === undefined) return reject(index, 'bad_embedding', `embedding ${j}: recognizer unknown (models unavailable), cannot check it`);
      if (!Array.isArray(e) || e.length !== dim) return reject(index, 'bad_embedding', `embedding ${j}: ${Array.isArray(e) ? e.length : 'no'} values, expected ${dim}`);
      if (!e.every((x) => typeof x === 'number' && Number.isFinite(x))) return reject(index, 'bad_embedding', `embedding ${j}: contains a value that is not a finite number`);
      if (e.every((x) => x === 0)) return reject(index, 'bad_embedding', `embedding ${j}: all zeros`);
      accepted.push(Float32Array.from(e));
      this.d.count('accepted');
    });
    // A replace that brings no usable template keeps the old ones: a bad photo must not lock a resident out.
    let templates = store.count(personId);
    if (accepted.length > 0) {
      const source = photos.length && embeddings.length ? 'mixed' : photos.length ? 'photo' : 'embedding';
      templates = store.add(personId, accepted, { replace: input.replace === true, source, maxPerPerson: l.maxTemplatesPerPerson });
      for (const k of keep) store.addPhoto(personId, k);
    }
    this.d.audit('face.enrolled', { personId, accepted: accepted.length, rejected: rejected.map((r) => ({ index: r.index, code: r.code })), templates, replace: input.replace === true });
    return { accepted: accepted.length, rejected, templates };
  }

  private async photo(buf: Buffer): Promise<{ embedding: Float32Array; keep: Buffer } | { code: string; message: string }> {
    if (!Buffer.isBuffer(buf)) return { code: 'not_an_image', message: 'not binary image data' };
    const why = this.d.unavailable();
    const inf = this.d.inference();
    if (why || !inf) return { code: 'models_unavailable', message: why ?? 'face analysis is not running' };
    const dec = await decodePhoto(buf, this.d.limits);
    if (!dec.ok) return dec;
    // Size limits are in original photo pixels; the analysed copy may be smaller.
    const q = this.d.limits.quality;
    const limits = { ...q, minFacePx: q.minFacePx * dec.scale };
    let r;
    try {
      r = await inf.analyzePhoto(dec.img, limits);
    } catch (err) {
      return { code: (err as Error).name === 'BusyError' ? 'busy' : 'analysis_failed', message: (err as Error).message };
    }
    if (r.problem) return r.problem;
    const emb = r.subject?.embedding;
    if (!emb) return { code: 'analysis_failed', message: 'no embedding produced' };
    const keep = this.d.keepPhotos
      ? await sharp(Buffer.from(dec.img.data.buffer, dec.img.data.byteOffset, dec.img.data.length), { raw: { width: dec.img.width, height: dec.img.height, channels: 3 } })
          .resize({ width: 640, height: 640, fit: 'inside', withoutEnlargement: true })
          .jpeg({ quality: 85 })
          .toBuffer()
      : Buffer.alloc(0);
    return { embedding: emb, keep };
  }
}
