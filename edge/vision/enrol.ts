// Enrolment: the `faces` service (contract in api.ts). Each photo is size-checked,
// decoded by sharp in the image helper process (imaging.ts; never by hand, never in the
// gateway), analysed by the inference worker with the enrolment quality gates, and either
// becomes an encrypted template or is rejected with a reason code; ready-made embeddings
// are checked for length and finiteness. Photos are thrown away after embedding unless the
// config says to keep them (encrypted, time-limited).
import type { FaceEnrolResult, FaceRejection, FaceWarning, FacesApi } from './api.js';
import type { TemplateStore } from './templates.js';
import type { InferenceClient } from './inference.js';
import { cosine } from './policy.js';
import type { QualityLimits } from './quality.js';
import { ImagingError, type DecodeResult, type ImageHelper } from './imaging.js';

/** Photos are analysed at most this large (long side): plenty for a 150 px chip, and bounded memory. */
const ANALYSIS_MAX_SIDE = 1600;
/** Kept photos (privacy.keepPhotos) are re-encoded this small. */
const KEEP = { maxSide: 640, quality: 85 };

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
  /** Decodes the photos (sharp, in its own process). */
  imaging: ImageHelper;
  /** Why photos cannot be analysed right now (models missing…), if so. */
  unavailable: () => string | undefined;
  limits: EnrolLimits;
  dim: () => number | undefined;
  keepPhotos: boolean;
  /** Called once per photo/embedding with its outcome code ("accepted" or a rejection code). */
  count: (outcome: string) => void;
  audit: (type: string, data: Record<string, unknown>) => void;
  /**
   * The door's current match threshold and metric: a new template this close to another
   * person is reported (close_to_existing). Absent: no check.
   */
  matchThreshold?: () => { metric: 'euclidean' | 'cosine'; threshold: number } | undefined;
  /** Why `bytes` more templates would not fit the disk budget (templates are never evicted); undefined when they fit. */
  room?: (bytes: number) => string | undefined;
}

/** Two photos this similar (cosine) are the same picture: the second adds nothing (diversity check). */
const SAME_PICTURE = 0.995;
/** Fewer templates than this get a `few_photos` warning. */
const RECOMMENDED_TEMPLATES = 3;

export class EnrolError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'EnrolError';
  }
}

/**
 * Check the bytes, then have the image helper decode the photo to RGB (EXIF orientation
 * applied), refusing oversize and non-images before any pixel is decoded. A photo that
 * hangs or crashes the decoder is not an image we can use; a helper that cannot run is
 * the box's problem (analysis_failed), a full queue a busy one.
 */
export async function decodePhoto(imaging: ImageHelper, buf: Buffer, l: Pick<EnrolLimits, 'maxPhotoBytes' | 'maxPhotoPixels'>, keep: boolean): Promise<DecodeResult | { ok: false; code: 'busy' | 'analysis_failed'; message: string }> {
  if (buf.length > l.maxPhotoBytes) return { ok: false, code: 'too_large', message: `photo is ${buf.length} bytes, at most ${l.maxPhotoBytes}` };
  try {
    return await imaging.decode(buf, { maxPixels: l.maxPhotoPixels, maxSide: ANALYSIS_MAX_SIDE, ...(keep ? { keep: KEEP } : {}) });
  } catch (err) {
    const reason = err instanceof ImagingError ? err.reason : 'failed';
    const message = `image could not be decoded: ${(err as Error).message}`;
    if (reason === 'busy') return { ok: false, code: 'busy', message };
    if (reason === 'timeout' || reason === 'crashed') return { ok: false, code: 'not_an_image', message };
    return { ok: false, code: 'analysis_failed', message };
  }
}

export class Enroller implements FacesApi {
  constructor(private readonly d: EnrolDeps) {}

  count(personId?: string): number {
    return this.d.store()?.count(personId) ?? 0;
  }

  async setGateUpdates(personId: string, consent: boolean): Promise<{ gateUpdates: boolean; learnedRemoved: number }> {
    const store = this.d.store();
    if (!store) throw new EnrolError('faces_unavailable', this.d.unavailable() ?? 'template store is not open');
    const was = store.gateConsent(personId);
    const removed = store.setGateConsent(personId, consent);
    // Consent to process sensitive personal information is itself audited (PIPL art. 29).
    if (was !== consent || removed) this.d.audit(consent ? 'face.consent_given' : 'face.consent_withdrawn', { personId, ...(consent ? {} : { learnedRemoved: removed }) });
    return { gateUpdates: consent, learnedRemoved: removed };
  }

  gateUpdates(personId: string): { gateUpdates: boolean; learned: number } {
    const store = this.d.store();
    return { gateUpdates: store?.gateConsent(personId) ?? false, learned: store?.learned(personId).count ?? 0 };
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
    if (photos.length + embeddings.length > l.maxPhotosPerRequest) throw new EnrolError('too_many_faces', `${photos.length + embeddings.length} photos/embeddings in one request, at most ${l.maxPhotosPerRequest}`);
    // Templates are never evicted like telemetry: refuse before analysing rather than grow
    // the data directory past its budget. A sealed row is dim × 4 bytes + IV, tag and row
    // overhead, written twice (database and WAL).
    const noRoom = this.d.room?.((photos.length + embeddings.length) * ((this.d.dim() ?? 512) * 4 + 256) * 2);
    if (noRoom) {
      this.d.count('disk_budget');
      throw new EnrolError('disk_budget', noRoom);
    }
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
      else if (accepted.some((e) => cosine(e, r.embedding) >= SAME_PICTURE)) reject(i, 'duplicate_photo', `photo ${i}: the same picture as another photo of this request (several different photos — other days, light, slight turns — recognise better)`);
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
    const warnings: FaceWarning[] = [];
    const m = accepted.length ? this.d.matchThreshold?.() : undefined;
    if (m) {
      // Another person whom the new templates would match at the door: the margin rule will
      // refuse both as ambiguous, or worse, one may pass for the other.
      const others = new Set(store.persons().filter((p) => p !== personId));
      let worst: { personId: string; score: number } | undefined;
      for (const e of accepted) {
        const hit = others.size ? store.search(e, others) : undefined;
        if (!hit) continue;
        const close = m.metric === 'euclidean' ? hit.score < m.threshold : hit.score >= m.threshold;
        if (close && (!worst || (m.metric === 'euclidean' ? hit.score < worst.score : hit.score > worst.score))) worst = { personId: hit.personId, score: hit.score };
      }
      if (worst)
        warnings.push({
          code: 'close_to_existing',
          otherPersonId: worst.personId,
          score: Math.round(worst.score * 1000) / 1000,
          message: `the new face matches ${worst.personId} (${m.metric} ${worst.score.toFixed(3)}, threshold ${m.threshold.toFixed(3)}): a twin or a duplicate record? The door will refuse both as ambiguous; give them a second factor`,
        });
    }
    if (accepted.length && templates < RECOMMENDED_TEMPLATES) warnings.push({ code: 'few_photos', message: `${templates} template(s): enrol at least ${RECOMMENDED_TEMPLATES} different photos for reliable recognition` });
    this.d.audit('face.enrolled', {
      personId,
      accepted: accepted.length,
      rejected: rejected.map((r) => ({ index: r.index, code: r.code })),
      templates,
      replace: input.replace === true,
      ...(warnings.length ? { warnings: warnings.map((w) => ({ code: w.code, ...(w.otherPersonId ? { otherPersonId: w.otherPersonId } : {}) })) } : {}),
    });
    return { accepted: accepted.length, rejected, templates, ...(warnings.length ? { warnings } : {}) };
  }

  private async photo(buf: Buffer): Promise<{ embedding: Float32Array; keep: Buffer } | { code: string; message: string }> {
    if (!Buffer.isBuffer(buf)) return { code: 'not_an_image', message: 'not binary image data' };
    const why = this.d.unavailable();
    const inf = this.d.inference();
    if (why || !inf) return { code: 'models_unavailable', message: why ?? 'face analysis is not running' };
    const dec = await decodePhoto(this.d.imaging, buf, this.d.limits, this.d.keepPhotos);
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
    return { embedding: emb, keep: dec.keep ?? Buffer.alloc(0) };
  }
}
