// Main-thread side of the object detector: an inference worker (edge/vision/worker.ts,
// the same entry as face access) that loads only the object detector. One frame in flight
// per client; the caller keeps the newest frame meanwhile. A worker that dies fails the
// request in flight and is restarted on the next request (the module treats a failed
// frame as "no decision": the window does not move).
//
// The worker is never terminated while onnxruntime runs in it (see edge/vision/inference.ts:
// a session callback into a dead worker aborts the process); stop() asks it to close.
import { Worker } from 'node:worker_threads';
import { workerEntry } from '../vision/inference.js';
import type { WorkerRequest, WorkerResponse } from '../vision/worker.js';
import type { ObjectEngineOptions, ObjectsResult } from './objects-engine.js';

export class ObjectClient {
  private worker: Worker | undefined;
  private ready: Promise<void> | undefined;
  private pending: { id: number; resolve: (r: ObjectsResult) => void; reject: (e: Error) => void; timer: NodeJS.Timeout } | undefined;
  private nextId = 1;
  /** The frame handed to the worker (shared memory, reused). */
  private slot: SharedArrayBuffer | undefined;
  restarts = 0;
  stopped = false;

  constructor(
    private readonly opts: ObjectEngineOptions,
    private readonly timeoutMs = 10_000,
  ) {}

  get busy(): boolean {
    return this.pending !== undefined;
  }

  /** Start the worker and load the model; rejects with the reason. */
  start(): Promise<void> {
    if (this.ready) return this.ready;
    const w = new Worker(workerEntry(), { stdout: false, stderr: false });
    this.worker = w;
    this.ready = new Promise<void>((resolve, reject) => {
      w.on('message', (m: WorkerResponse) => {
        if (m.op === 'ready') resolve();
        else if (m.op === 'init_failed') reject(new Error(m.message));
        else if (m.op === 'objects-result' || m.op === 'failed') {
          const p = this.pending;
          if (!p || p.id !== m.id) return;
          clearTimeout(p.timer);
          this.pending = undefined;
          if (m.op === 'objects-result') p.resolve(m.result);
          else p.reject(new Error(m.message));
        }
      });
      const dead = (why: string) => {
        reject(new Error(why));
        if (this.worker === w) {
          this.worker = undefined;
          this.ready = undefined;
          if (!this.stopped) this.restarts++;
        }
        const p = this.pending;
        if (p) {
          clearTimeout(p.timer);
          this.pending = undefined;
          p.reject(new Error(why));
        }
      };
      w.on('error', (e) => dead(`object detector worker failed: ${e.message}`));
      w.on('exit', (code) => dead(`object detector worker exited (${code})`));
    });
    w.postMessage({ op: 'objects-init', options: this.opts } satisfies WorkerRequest);
    return this.ready;
  }

  async detect(image: { data: Uint8Array; width: number; height: number; pixelFormat: 'rgb24' | 'bgr24' }): Promise<ObjectsResult> {
    if (this.stopped) throw new Error('object detector stopped');
    if (this.pending) throw new Error('object detector busy');
    await this.start();
    const w = this.worker;
    if (!w) throw new Error('object detector worker gone');
    const id = this.nextId++;
    return new Promise<ObjectsResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        // Not terminated (onnxruntime may be mid-run): the late answer is dropped by id.
        if (this.pending?.id === id) this.pending = undefined;
        reject(new Error(`object detector did not answer within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.pending = { id, resolve, reject, timer };
      // The pixels go through one SharedArrayBuffer that the worker reads in place (one frame
      // in flight: it is rewritten only after the answer), as face access does
      // (inference.ts analyzeFrame): a cloned 0.9 MB frame per message is garbage in both
      // isolates that their collectors free late. A copy all the same: the camera recycles its buffers.
      const n = image.data.length;
      if (!this.slot || this.slot.byteLength < n) this.slot = new SharedArrayBuffer(n);
      const data = new Uint8Array(this.slot, 0, n);
      data.set(image.data);
      w.postMessage({ op: 'objects', id, image: { data, width: image.width, height: image.height, pixelFormat: image.pixelFormat } } satisfies WorkerRequest);
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    const w = this.worker;
    if (!w) return;
    await this.ready?.catch(() => {});
    await new Promise<void>((resolve) => {
      w.once('exit', () => resolve());
      w.postMessage({ op: 'close' } satisfies WorkerRequest);
    });
  }
}
