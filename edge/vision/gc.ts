// Bounding the dead ArrayBuffers of the camera pipeline.
//
// V8 frees an ArrayBuffer's memory (it lives outside the JS heap) only when a garbage
// collection finds the buffer dead, and it starts a collection for external memory only
// after it has grown by about 64 MB since the last one. The vision pipeline makes
// short-lived buffers at camera rate — ffmpeg's pipe chunks on the main thread (0.9 MB per
// 640×480 frame), onnxruntime's output copies in the inference worker (0.6 MB per YuNet
// run) — while allocating little on the JS heap, so collections are rare and each isolate
// carried 20–40 MB of dead buffers (measured: gateway RSS swinging 220–290 MB).
//
// `ExternalGarbageBound` collects when the isolate's ArrayBuffer memory has grown by
// `limitBytes` since the last collection. In the worker (a ~10 MB heap, not the gateway's
// event loop) a full collection takes a few ms; on the main thread only a minor one
// (scavenge, ~1 ms: the pipe chunks die young) is used.
//
// Node exposes no collector without --expose-gc, a V8 flag the unit does not pass (it
// would put `gc` on every global): the flag is set at run time and the function taken from
// a fresh context, so only this module holds it. Without it (an embedder refusing
// the flag) the bound is simply not enforced.
import v8 from 'node:v8';
import vm from 'node:vm';

type GcFn = (options?: { type?: 'major' | 'minor'; execution?: 'sync' | 'async' }) => void;

let cached: GcFn | null | undefined;

function collector(): GcFn | null {
  if (cached !== undefined) return cached;
  try {
    v8.setFlagsFromString('--expose-gc');
    const fn = vm.runInNewContext('gc') as unknown;
    cached = typeof fn === 'function' ? (fn as GcFn) : null;
  } catch {
    cached = null;
  }
  return cached;
}

export class ExternalGarbageBound {
  private base = process.memoryUsage().arrayBuffers;
  private readonly gc = collector();
  collections = 0;

  constructor(
    private readonly limitBytes: number,
    private readonly type: 'major' | 'minor',
  ) {}

  get enforced(): boolean {
    return this.gc !== null;
  }

  /** Collect now (after a rare, large allocation such as a decoded enrolment photo). */
  collect(type: 'major' | 'minor' = this.type): void {
    if (!this.gc) return;
    this.gc({ type });
    this.collections++;
    this.base = process.memoryUsage().arrayBuffers;
  }

  /** Collect if the isolate's ArrayBuffers grew by more than the limit since the last collection. */
  check(): void {
    if (!this.gc) return;
    const ab = process.memoryUsage().arrayBuffers;
    if (ab - this.base <= this.limitBytes) {
      // Follow decreases (natural collections), so the bound is relative to the live set.
      if (ab < this.base) this.base = ab;
      return;
    }
    this.gc({ type: this.type });
    this.collections++;
    this.base = process.memoryUsage().arrayBuffers;
  }
}
