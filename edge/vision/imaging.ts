// Photo decoding and JPEG encoding in a short-lived helper process.
//
// sharp (libvips) is the decoder trusted with untrusted enrolment photos and the encoder
// of snapshots, but once loaded into a process it stays there: libvips' code pages, its
// thread pool and what its allocations leave in malloc's arenas (measured: +16 MB RSS to
// load sharp, ~+21 MB after one photo decode), for the life of the gateway, while it is
// needed only for a rare enrolment or snapshot. So the gateway never loads it: requests go
// to a child process, started on demand and ended after `idleMs` without work. It
// is the vision worker entry (worker.ts) started with IMAGING_ARG, the one extra file
// the production bundle has beside main.js. A photo that crashes or hangs the decoder
// takes down only the helper; the request fails (timeout/crashed) and the next one gets
// a fresh helper. Requests run one at a time; `maxQueued` may wait, more are refused.
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { RgbImage } from './image.js';

/** argv marker that turns the vision worker entry into the image helper process. */
export const IMAGING_ARG = '--estate-edge-imaging';

export type DecodeProblem = { ok: false; code: 'too_large' | 'not_an_image' | 'face_too_small'; message: string };
export type DecodeResult = { ok: true; img: RgbImage; scale: number; keep?: Buffer } | DecodeProblem;

export interface DecodeOptions {
  /** Refused (too_large) above this many pixels, read from the header before decoding. */
  maxPixels: number;
  /** The decoded copy is reduced to fit this long side. */
  maxSide: number;
  /** Also return a JPEG of the decoded photo at most this large (kept photos). */
  keep?: { maxSide: number; quality: number };
}

export interface JpegOptions {
  /** Qualities tried in order until the JPEG fits `maxBytes` (the first one without a cap). */
  qualities: number[];
  maxBytes?: number;
  /** Reduced to fit this long side first (never enlarged). */
  maxSide?: number;
}

export type ImagingRequest = ({ op: 'decode'; id: number; bytes: Buffer } & DecodeOptions) | ({ op: 'jpeg'; id: number; image: RgbImage } & JpegOptions);
export type ImagingResponse = { id: number; ok: true; result: DecodeResult | Buffer | null } | { id: number; ok: false; message: string };

/** Why a request got no answer: the helper is busy, stopped or failed to start, hung, crashed, or the operation threw. */
export type ImagingFailure = 'busy' | 'unavailable' | 'timeout' | 'crashed' | 'failed';

export class ImagingError extends Error {
  constructor(
    readonly reason: ImagingFailure,
    message: string,
  ) {
    super(message);
    this.name = 'ImagingError';
  }
}

export interface ImagingOptions {
  /** The helper ends after this long without a request (ms). */
  idleMs?: number;
  /** A request unanswered for this long: the helper is killed and the request fails. */
  timeoutMs?: number;
  /** Requests allowed to wait behind the running one; more are refused (busy). */
  maxQueued?: number;
}

interface Job {
  req: ImagingRequest;
  resolve: (v: unknown) => void;
  reject: (e: Error) => void;
}

/**
 * How to start the helper: the compiled worker entry beside this module (bundle or tsc
 * output), or under tsx (tests, dev) the TypeScript entry with tsx's loader. Its V8 heap
 * stays small: pixels live in Buffers, outside it.
 */
function helperEntry(): { file: string; execArgv: string[] } {
  const self = import.meta.url;
  const heap = ['--max-semi-space-size=1', '--max-old-space-size=64'];
  if (!self.endsWith('.ts')) return { file: fileURLToPath(new URL('./worker.js', self)), execArgv: heap };
  return { file: fileURLToPath(new URL('./worker.ts', self)), execArgv: [...heap, '--import', import.meta.resolve('tsx')] };
}

export class ImageHelper {
  private child: ChildProcess | undefined;
  private readonly queue: Job[] = [];
  private current: (Job & { child: ChildProcess; timer: NodeJS.Timeout; failure?: ImagingError }) | undefined;
  private idleTimer: NodeJS.Timeout | undefined;
  private nextId = 1;
  private stopped = false;
  private stderr = '';
  /** Helper processes started so far. */
  spawns = 0;

  constructor(private readonly opts: ImagingOptions = {}) {}

  /** Check and decode a photo to RGB (EXIF orientation applied), reduced to `maxSide`. */
  decode(bytes: Buffer, o: DecodeOptions): Promise<DecodeResult> {
    return this.run({ op: 'decode', id: 0, bytes, ...o }) as Promise<DecodeResult>;
  }

  /** Encode RGB pixels as JPEG; undefined when no quality fits `maxBytes`. */
  async jpeg(image: RgbImage, o: JpegOptions): Promise<Buffer | undefined> {
    return ((await this.run({ op: 'jpeg', id: 0, image, ...o })) as Buffer | null) ?? undefined;
  }

  /** The helper's pid while it runs (diagnostics, tests). */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** End the helper now and refuse further requests. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.idleTimer);
    const err = new ImagingError('unavailable', 'image helper stopped');
    for (const j of this.queue.splice(0)) j.reject(err);
    const c = this.child;
    if (this.current) this.current.failure = err;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const exited = new Promise((r) => c.once('exit', r));
    hold(c, true); // an idle helper holds nothing open: keep the loop alive until it is really gone
    c.kill('SIGKILL');
    await exited;
  }

  private run(req: ImagingRequest): Promise<unknown> {
    if (this.stopped) return Promise.reject(new ImagingError('unavailable', 'image helper stopped'));
    if (this.current && this.queue.length >= (this.opts.maxQueued ?? 8)) return Promise.reject(new ImagingError('busy', `${this.queue.length} image requests already waiting`));
    return new Promise((resolve, reject) => {
      this.queue.push({ req: { ...req, id: this.nextId++ }, resolve, reject });
      this.next();
    });
  }

  private next(): void {
    if (this.current || this.stopped) return;
    const job = this.queue.shift();
    if (!job) {
      this.idle();
      return;
    }
    clearTimeout(this.idleTimer);
    let child: ChildProcess;
    try {
      child = this.child ?? this.spawn();
    } catch (err) {
      job.reject(new ImagingError('unavailable', `image helper could not start: ${(err as Error).message}`));
      return this.next();
    }
    hold(child, true);
    const timer = setTimeout(() => {
      if (this.current?.req !== job.req) return;
      this.current.failure = new ImagingError('timeout', `image helper did not answer within ${this.opts.timeoutMs ?? 30_000} ms`);
      child.kill('SIGKILL');
    }, this.opts.timeoutMs ?? 30_000);
    this.current = { ...job, child, timer };
    try {
      child.send(job.req);
    } catch (err) {
      this.current.failure = new ImagingError('unavailable', `image helper unreachable: ${(err as Error).message}`);
      child.kill('SIGKILL');
    }
  }

  private spawn(): ChildProcess {
    const { file, execArgv } = helperEntry();
    const c = fork(file, [IMAGING_ARG], { execArgv, serialization: 'advanced', stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    this.child = c;
    this.spawns++;
    this.stderr = '';
    c.stderr?.on('data', (d: Buffer) => (this.stderr = (this.stderr + d.toString()).slice(-1000)));
    c.on('message', (msg: ImagingResponse) => {
      const cur = this.current;
      if (!cur || cur.child !== c || cur.req.id !== msg.id) return;
      this.finish(msg.ok ? undefined : new ImagingError('failed', msg.message), msg.ok ? msg.result : undefined);
    });
    // A failed spawn (EAGAIN, ENOMEM…) emits 'error' and then, usually, 'exit'.
    c.on('error', (err) => this.gone(c, new ImagingError('unavailable', `image helper could not start: ${err.message}`)));
    c.on('exit', (code, signal) => {
      const why = this.stderr.trim().split('\n').at(-1);
      this.gone(c, new ImagingError('crashed', `image helper ended (${signal ?? `exit ${code}`})${why ? `: ${why.slice(0, 200)}` : ''}`));
    });
    return c;
  }

  /** The helper process is gone: the request it held fails (with the reason already known, if any). */
  private gone(c: ChildProcess, err: ImagingError): void {
    if (this.child === c) this.child = undefined;
    const cur = this.current;
    if (cur?.child === c) this.finish(cur.failure ?? err);
  }

  private finish(err: Error | undefined, result?: unknown): void {
    const cur = this.current!;
    clearTimeout(cur.timer);
    this.current = undefined;
    if (err) cur.reject(cur.failure ?? err);
    else cur.resolve(result);
    this.next();
  }

  /** Nothing to do: let the helper hold nothing open, and end it after idleMs. */
  private idle(): void {
    const c = this.child;
    if (!c) return;
    hold(c, false);
    clearTimeout(this.idleTimer);
    this.idleTimer = setTimeout(() => {
      if (this.current || this.child !== c) return;
      this.child = undefined;
      // The helper exits when its IPC channel closes.
      if (c.connected) c.disconnect();
      else c.kill('SIGKILL');
    }, this.opts.idleMs ?? 3000);
    this.idleTimer.unref();
  }
}

/** Whether the helper (process, IPC channel, stderr pipe) keeps the event loop alive: only while it has work. */
function hold(c: ChildProcess, on: boolean): void {
  const handles = [c, c.channel, c.stderr] as Array<{ ref?: () => void; unref?: () => void } | null | undefined>;
  for (const h of handles) (on ? h?.ref : h?.unref)?.call(h);
}
