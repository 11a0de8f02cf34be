// Main-thread side of the inference worker: starts it, sends it frames and photos, and
// bounds what waits for it. A camera frame is only sent when no frame is in flight (the
// caller keeps just the newest one meanwhile); photos queue up to a limit and are refused
// beyond it. A worker that crashes is replaced; a request it does not answer in time fails
// (the worker is kept, see below); pending requests fail cleanly.
//
// A worker is never terminated while it loads the models or runs a request: onnxruntime-node finishes a
// session creation on its own thread and calls back into the worker's environment, and
// when that environment is gone the callback throws a Napi::Error that nothing can catch
// (std::terminate: measured, the gateway process aborts with status 134). A load that has
// to be abandoned is told to close instead: the worker releases whatever it loaded and
// ends once onnxruntime returns, and only then is a failed load reported, so two workers
// never load at once.
import { Worker } from 'node:worker_threads';
import { EventEmitter } from 'node:events';
import { backoffDelay } from '../backoff.js';
import type { EngineOptions } from './engine.js';
import type { AnalyzeRequest, AnalyzeResult, WorkerRequest, WorkerResponse } from './worker.js';
import type { RgbImage } from './image.js';
import type { QualityLimits } from './quality.js';

export class BusyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BusyError';
  }
}

interface Pending {
  resolve: (r: AnalyzeResult) => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout;
  kind: 'frame' | 'photo';
  /** Already failed as timed out; the worker's late answer only frees the slot. */
  abandoned?: boolean;
}

export interface InferenceOptions {
  engine: EngineOptions;
  /** Photos allowed to wait (beyond it: BusyError). */
  maxQueuedPhotos: number;
  /**
   * A request unanswered for this long fails (the caller moves on). The worker is not
   * terminated for it: a run in flight would call back into a dead environment and abort
   * the process (measured under arm64 emulation). Its slot stays taken until it answers,
   * so a slow worker is not buried under more frames.
   */
  requestTimeoutMs?: number;
}

/**
 * Worker entry: the compiled .js in production. Under tsx (tests, dev) the worker does
 * not inherit the TypeScript loader, so a tiny ESM bootstrap registers it first.
 */
export function workerEntry(): URL {
  const self = import.meta.url;
  if (!self.endsWith('.ts')) return new URL('./worker.js', self);
  const tsx = import.meta.resolve('tsx/esm/api');
  const src = `import { register } from ${JSON.stringify(tsx)}; register(); await import(${JSON.stringify(new URL('./worker.ts', self).href)});`;
  return new URL(`data:text/javascript,${encodeURIComponent(src)}`);
}

export class InferenceClient extends EventEmitter {
  private worker: Worker | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private photos = 0;
  private frames = 0;
  private frameSlot: SharedArrayBuffer | undefined;
  private stopped = false;
  /** The current worker is creating its sessions: it must not be terminated (see the top of the file). */
  private loading = false;
  livenessAvailable = false;
  restarts = 0;

  private constructor(private readonly opts: InferenceOptions) {
    super();
  }

  /** Start the worker and create the sessions; rejects with the reason when a model cannot be loaded. */
  static async start(opts: InferenceOptions): Promise<InferenceClient> {
    const c = InferenceClient.create(opts);
    await c.load();
    return c;
  }

  /**
   * A client with no worker yet: load() starts one. The caller holds the client while the
   * load runs, so it can stop() it (a gateway stopping during a slow load).
   */
  static create(opts: InferenceOptions): InferenceClient {
    return new InferenceClient(opts);
  }

  /**
   * Start a worker and load the models. Resolves when the sessions are ready; rejects with
   * the load error (or the worker's exit) only after that worker has ended. Takes as long
   * as the load takes: the caller decides what "too slow" means and reports it meanwhile.
   */
  load(): Promise<void> {
    if (this.worker) return Promise.reject(new Error('inference worker already running'));
    if (this.stopped) return Promise.reject(new Error('inference worker stopped'));
    return this.spawn();
  }

  /** A worker is running or loading. */
  get started(): boolean {
    return this.worker !== undefined;
  }

  private spawn(): Promise<void> {
    // No resourceLimits: V8 lets the process-wide --max-semi-space-size and
    // --max-old-space-size of the unit override a worker's own heap limits (measured: a
    // 1.5 MB young generation still grew to 2 × 2 MB semi-spaces).
    const w = new Worker(workerEntry());
    this.worker = w;
    this.loading = true;
    return new Promise<void>((resolve, reject) => {
      let ready = false;
      // The first reason a load failed; reported once the worker has ended.
      let failure: Error | undefined;
      const loadFailed = (err: Error): void => {
        failure ??= err;
        this.loading = false;
      };
      w.on('message', (msg: WorkerResponse) => {
        if (msg.op === 'loading') this.emit('loading');
        else if (msg.op === 'ready') {
          ready = true;
          this.loading = false;
          this.livenessAvailable = msg.liveness;
          // Stopped meanwhile: the queued close releases the sessions just made.
          if (this.stopped) reject(new Error('inference worker stopped'));
          else resolve();
        } else if (msg.op === 'init_failed') {
          // The worker released what it had loaded; close lets it end by itself.
          loadFailed(new Error(msg.message));
          w.postMessage({ op: 'close' } satisfies WorkerRequest);
        } else this.settle(msg);
      });
      w.on('error', (err) => {
        // An exception on the worker thread (a Napi::Error included) ends that thread only;
        // with this listener it never reaches the gateway's uncaughtException handler.
        if (!ready) loadFailed(err instanceof Error ? err : new Error(String(err)));
        this.emit('crash', err);
      });
      w.on('exit', (code) => {
        if (!ready) reject(failure ?? new Error(`inference worker exited while loading the models (code ${code})`));
        // stop() has let go of it already: nothing to fail or replace.
        if (this.worker !== w) return;
        this.worker = undefined;
        this.loading = false;
        this.failAll(new Error(`inference worker exited (code ${code})`));
        if (ready && !this.stopped) this.respawn();
      });
      w.postMessage({ op: 'init', options: this.opts.engine } satisfies WorkerRequest);
    });
  }

  private respawn(): void {
    this.restarts++;
    // 0.5 s doubling up to 30 s; `restarts` counts every respawn of this client's life.
    const delay = backoffDelay(this.restarts - 1, { minMs: 500, maxMs: 30_000 });
    setTimeout(() => {
      if (this.stopped) return;
      this.spawn().then(
        () => this.emit('restarted'),
        (err) => {
          this.emit('crash', err);
          if (!this.stopped && !this.worker) this.respawn();
        },
      );
    }, delay).unref();
  }

  private settle(msg: Extract<WorkerResponse, { id: number }>): void {
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    if (p.kind === 'photo') this.photos--;
    else this.frames--;
    if (p.abandoned) return;
    if (msg.op === 'result') p.resolve(msg.result);
    else if (msg.op === 'failed') p.reject(new Error(msg.message));
    else p.reject(new Error(`unexpected worker answer ${msg.op}`));
  }

  private failAll(err: Error): void {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      if (!p.abandoned) p.reject(err);
      this.pending.delete(id);
    }
    this.photos = 0;
    this.frames = 0;
  }

  get ready(): boolean {
    return this.worker !== undefined && !this.loading && !this.stopped;
  }

  /** A frame is being analysed (the caller should hold the next one back). */
  get frameInFlight(): boolean {
    return this.frames > 0;
  }

  /**
   * Analyse a camera frame. Its pixels are copied into one SharedArrayBuffer that the
   * worker reads in place (one frame in flight at a time), instead of being cloned into
   * a fresh buffer per message: 10 fps of cloned 0.9 MB frames is garbage the worker's
   * collector frees late, tens of MB of RSS. The caller may reuse `img.data` at once.
   */
  analyzeFrame(img: RgbImage, limits: QualityLimits, liveness: boolean): Promise<AnalyzeResult> {
    if (this.frames > 0) return Promise.reject(new BusyError('a frame is already being analysed'));
    const n = img.data.length;
    if (!this.frameSlot || this.frameSlot.byteLength < n) this.frameSlot = new SharedArrayBuffer(n);
    const data = new Uint8Array(this.frameSlot, 0, n);
    data.set(img.data);
    return this.request('frame', { mode: 'frame', image: { data, width: img.width, height: img.height }, limits, liveness });
  }

  analyzePhoto(img: RgbImage, limits: QualityLimits): Promise<AnalyzeResult> {
    if (this.photos >= this.opts.maxQueuedPhotos) return Promise.reject(new BusyError(`${this.photos} photos already waiting for analysis`));
    return this.request('photo', { mode: 'photo', image: img, limits, liveness: false });
  }

  private request(kind: 'frame' | 'photo', req: Omit<AnalyzeRequest, 'op' | 'id'>): Promise<AnalyzeResult> {
    const w = this.worker;
    if (!w || this.stopped) return Promise.reject(new Error('inference worker not running'));
    const id = this.nextId++;
    if (kind === 'photo') this.photos++;
    else this.frames++;
    return new Promise<AnalyzeResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        const p = this.pending.get(id);
        if (!p || p.abandoned) return;
        p.abandoned = true;
        this.emit('timeout', id);
        p.reject(new Error(`inference request not answered within ${(this.opts.requestTimeoutMs ?? 30_000) / 1000} s`));
      }, this.opts.requestTimeoutMs ?? 30_000);
      timer.unref();
      this.pending.set(id, { resolve, reject, timer, kind });
      w.postMessage({ op: 'analyze', id, ...req } satisfies WorkerRequest);
    });
  }

  /** Ask the worker to release its sessions and end; terminate it if it does not within `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    this.stopped = true;
    const w = this.worker;
    this.worker = undefined;
    // A request in flight (answered or abandoned): its run must return before the worker ends.
    const busy = this.pending.size > 0;
    this.failAll(new Error('inference worker stopped'));
    if (!w) return;
    const exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
    w.postMessage({ op: 'close' } satisfies WorkerRequest);
    // A worker still loading ends once its session creations return (its close waits behind
    // the init); terminating it earlier would abort the whole process.
    // The same holds for a request in flight: its run returns, then the close is read.
    const timer = setTimeout(() => {
      if (!this.loading && !busy) void w.terminate();
    }, graceMs);
    await exited;
    clearTimeout(timer);
  }
}
