// The face models' load, in the background: check the files, start an inference worker
// and wait for its sessions. A load slower than the timeout is reported (and still used
// when it ends); a load that fails (a file missing or corrupt, onnxruntime refusing it,
// the worker dying) is retried with a back-off that never gives up, so the technician's
// fixed file is picked up without a restart. A retry failing the same way stays quiet.
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import { backoffDelay } from '../backoff.js';
import type { VisionStatus } from './api.js';
import { InferenceClient } from './inference.js';
import { ModelsUnavailable, verifyModelFiles, type ResolvedModels } from './models.js';
import type { VisionMetrics } from './metrics.js';

export type LoadState = NonNullable<VisionStatus['modelLoad']>;

export interface ModelLoaderOptions {
  models: ResolvedModels;
  threads: number;
  maxQueuedPhotos: number;
  requestTimeoutMs: number;
  /** A load still running after this is reported as slow. */
  timeoutMs: number;
  retryMinMs: number;
  retryMaxMs: number;
  clock: Pick<Clock, 'now'>;
  log: Logger;
  metrics: Pick<VisionMetrics, 'loadFailures'>;
  /** A load problem not reported before (the module logs it and raises the alarm). */
  report(message: string, attempt: number): void;
  /** The models are loaded in `client`; `recovered` when earlier attempts had failed or overrun. */
  loaded(client: InferenceClient, recovered: boolean): void;
}

export class ModelLoader {
  private current: LoadState = { state: 'loading', attempts: 0, failures: 0, since: 0 };
  /** Why the models are not loaded (slow or failed load); cleared once they are. */
  private loadProblem: string | undefined;
  /** The last load problem reported: a retry failing the same way stays quiet. */
  private reported: string | undefined;
  private client: InferenceClient | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private slowTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  private settle: (() => void) | undefined;
  /** Resolves at the first outcome: loaded, failed, or slower than the timeout. */
  readonly firstOutcome: Promise<void>;

  constructor(private readonly opts: ModelLoaderOptions) {
    this.firstOutcome = new Promise<void>((resolve) => (this.settle = resolve));
  }

  get state(): LoadState {
    return this.current;
  }

  get problem(): string | undefined {
    return this.loadProblem;
  }

  /** The inference client, once one is loading or loaded (not ready until the load ends). */
  get inference(): InferenceClient | undefined {
    return this.client;
  }

  start(): void {
    this.attempt().catch((err) => this.opts.log.error({ err: String(err) }, 'face model load: unexpected failure'));
  }

  /** Stops retrying; the caller stops the inference client. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.slowTimer);
  }

  /**
   * One load of the models: check the files, then start a worker and wait for its sessions.
   * Never rejects: a failure is reported and the next attempt scheduled.
   */
  private async attempt(): Promise<void> {
    if (this.stopped) return;
    const o = this.opts;
    this.current = { ...this.current, state: this.loadProblem ? this.current.state : 'loading', attempts: this.current.attempts + 1, since: o.clock.now() };
    let client: InferenceClient | undefined;
    // From the first byte read: on a cold SD card the hash check is part of the slowness.
    // Reported, not abandoned: stopping a worker in the middle of its load would abort the
    // process (inference.ts), and on a slow box the next attempt would be just as slow.
    this.slowTimer = setTimeout(() => this.failed('timeout', `face models not loaded within ${o.timeoutMs / 1000} s (vision.modelLoadTimeoutS); still loading`, false), o.timeoutMs);
    this.slowTimer.unref();
    const r = o.models;
    try {
      await verifyModelFiles(r);
      if (this.stopped) return;
      client = InferenceClient.create({
        engine: { models: r.models, dir: r.dir, threads: o.threads, detectThreshold: r.detectThreshold },
        maxQueuedPhotos: o.maxQueuedPhotos,
        requestTimeoutMs: o.requestTimeoutMs,
      });
      this.client = client;
      await client.load();
    } catch (err) {
      clearTimeout(this.slowTimer);
      if (this.client === client) this.client = undefined;
      if (this.stopped) return;
      const files = err instanceof ModelsUnavailable;
      this.failed(files ? 'files' : 'load', files ? (err as Error).message : `inference worker: ${(err as Error)?.message ?? String(err)}`, true);
      this.scheduleRetry();
      return;
    }
    clearTimeout(this.slowTimer);
    if (this.stopped) return;
    const recovered = this.loadProblem !== undefined;
    this.loadProblem = undefined;
    this.reported = undefined;
    this.current = { ...this.current, state: 'ready', since: o.clock.now() };
    o.loaded(client, recovered);
    this.settle?.();
  }

  private failed(reason: 'files' | 'load' | 'timeout', message: string, retry: boolean): void {
    const o = this.opts;
    this.loadProblem = message;
    this.current = { ...this.current, state: reason === 'timeout' ? 'slow' : 'failed', failures: this.current.failures + 1, lastError: message };
    o.metrics.loadFailures.inc({ reason });
    if (message !== this.reported) {
      this.reported = message;
      o.report(message, this.current.attempts);
    } else o.log.debug({ problem: message, attempts: this.current.attempts }, 'face model load failed again');
    if (retry) o.log.info({ inS: seconds(this.retryDelayMs()) }, 'face models: retrying the load');
    this.settle?.();
  }

  private retryDelayMs(): number {
    return backoffDelay(this.current.failures - 1, { minMs: this.opts.retryMinMs, maxMs: this.opts.retryMaxMs });
  }

  private scheduleRetry(): void {
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.start();
    }, this.retryDelayMs());
    this.retryTimer.unref();
  }
}

export function seconds(ms: number): number {
  return Math.round(ms / 100) / 10;
}
