// Giving freed native memory back to the OS, on demand (glibc's malloc_trim).
//
// Why: glibc returns freed memory to the OS only from the top of a heap. Loading the face
// models frees ~15-20 MB of onnxruntime's temporary buffers, and whether those chunks end
// up at a heap's top (returned) or below live data (kept resident for the life of the
// process) depends on thread and arena timing at start: about one start in 15 settled
// 10-20 MB higher (bench:vision, docs/face-access.md). malloc_trim(0) releases the pages
// inside every free chunk of every arena; measured on the gateway running face access:
// 192.6 → 182.8 MB and 189.5 → 181.1 MB in those starts, ±1 MB in the usual ones.
//
// The call walks all arenas under their locks (a few ms for ~100 MB of heap), so it is
// made at the moments memory was just freed in bulk (after the models load, after an
// enrolment), not per frame. Where the addon is missing (a build without a compiler, a
// C library without malloc_trim) the gateway runs on; callers say why once.
import { requireCjs } from '../cjs.js';
import { appPath } from '../paths.js';

/** The compiled addon (binding.gyp), relative to the app root. */
export const MALLOC_TRIM_ADDON = 'build/Release/malloc_trim.node';

export type TrimResult = { ok: true; released: boolean; ms: number } | { ok: false; reason: string };

const loaded = new Map<string, { trim(): boolean | null } | string>();

function addon(file: string): { trim(): boolean | null } | string {
  let a = loaded.get(file);
  if (a === undefined) {
    try {
      a = requireCjs(file) as { trim(): boolean | null };
      if (typeof a.trim !== 'function') a = `${file} has no trim()`;
    } catch (err) {
      a = `cannot load ${file}: ${(err as Error).message.split('\n')[0]}`;
    }
    loaded.set(file, a);
  }
  return a;
}

/** Release freed malloc memory of the whole process to the OS (all threads' arenas). */
export function trimMalloc(file: string = appPath(MALLOC_TRIM_ADDON)): TrimResult {
  const a = addon(file);
  if (typeof a === 'string') return { ok: false, reason: a };
  const t0 = performance.now();
  const released = a.trim();
  if (released === null) return { ok: false, reason: 'this C library has no malloc_trim' };
  return { ok: true, released, ms: performance.now() - t0 };
}
