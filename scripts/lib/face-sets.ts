// Face photo sets for the evaluation harness and the large-gallery tests: a directory of
// identity folders (DIR/<identity>/<photo>.jpg), each photo run through the product's own
// analysis path (detect → quality → align → embed, worker.ts `analyze`), with the
// embeddings cached per recognizer and file (path, size, mtime) so a second run of the
// harness does not redo the CPU work.
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, resolve, dirname } from 'node:path';
import { createHash } from 'node:crypto';
import sharp from 'sharp';
import type { Engine } from '../../edge/vision/engine.js';
import { analyze } from '../../edge/vision/worker.js';
import type { QualityLimits } from '../../edge/vision/quality.js';

export interface FacePhoto {
  identity: string;
  file: string;
  /** Absent when the photo was refused (no face, quality); see `problem`. */
  embedding?: Float32Array;
  problem?: string;
  /** Analysis time of the photo (detect → embed), ms. */
  ms: number;
}

/** identity → photo paths (sorted); only folders with at least one image. */
export function listSet(dir: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  if (!existsSync(dir)) throw new Error(`face set ${dir} does not exist`);
  for (const id of readdirSync(dir).sort()) {
    const p = join(dir, id);
    if (!statSync(p).isDirectory()) continue;
    const files = readdirSync(p)
      .filter((f) => /\.(jpe?g|png|webp)$/i.test(f))
      .sort()
      .map((f) => join(p, f));
    if (files.length) out.set(id, files);
  }
  return out;
}

/** Decode like the enrolment path (EXIF orientation applied, long side ≤ 1600 px). */
export async function decode(file: string): Promise<{ data: Uint8Array; width: number; height: number }> {
  const { data, info } = await sharp(file).rotate().resize({ width: 1600, height: 1600, fit: 'inside', withoutEnlargement: true }).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data.buffer, data.byteOffset, data.length), width: info.width, height: info.height };
}

type CacheFile = Record<string, { e?: number[]; p?: string; ms: number }>;

/** Embed every photo of a set with `engine` (recognizer `recognizerId`), using/refreshing the cache file if given. */
export async function embedSet(engine: Engine, recognizerId: string, dir: string, limits: QualityLimits, cacheDir?: string): Promise<FacePhoto[]> {
  const set = listSet(dir);
  const cachePath = cacheDir ? join(cacheDir, `${recognizerId}-${createHash('sha256').update(resolve(dir)).digest('hex').slice(0, 12)}.json`) : undefined;
  const cache: CacheFile = cachePath && existsSync(cachePath) ? (JSON.parse(readFileSync(cachePath, 'utf8')) as CacheFile) : {};
  const out: FacePhoto[] = [];
  let dirty = false;
  for (const [identity, files] of set) {
    for (const file of files) {
      const st = statSync(file);
      const key = `${file}\u0000${st.size}\u0000${st.mtimeMs}\u0000${JSON.stringify(limits)}`;
      let c = cache[key];
      if (!c) {
        const t = performance.now();
        const r = await analyze(engine, { image: await decode(file), mode: 'frame', limits, liveness: false });
        const emb = r.subject?.embedding;
        c = { ms: performance.now() - t, ...(emb ? { e: Array.from(emb) } : { p: r.problem?.code ?? 'no_embedding' }) };
        cache[key] = c;
        dirty = true;
      }
      out.push({ identity, file, ms: c.ms, ...(c.e ? { embedding: Float32Array.from(c.e) } : { problem: c.p ?? 'no_embedding' }) });
    }
  }
  if (cachePath && dirty) {
    mkdirSync(dirname(cachePath), { recursive: true });
    writeFileSync(cachePath, JSON.stringify(cache));
  }
  return out;
}

export { cosine } from '../../edge/vision/policy.js';

export function euclidean(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i]! - b[i]!) ** 2;
  return Math.sqrt(s);
}
