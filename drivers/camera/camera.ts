// Door camera: the system ffmpeg (Debian package; never a downloaded binary) decodes an
// RTSP stream (Hikvision/Dahua IP cameras), a V4L2 USB camera or a video file (the
// simulator twin: looped at its real rate) into raw RGB/BGR frames of a fixed size and
// rate on a pipe.
//
// fluent-ffmpeg is archived upstream: it is used only in this file, so replacing it
// touches nothing else. The rest of the gateway sees `Camera`: frame and state events,
// `take()` for the newest frame, and stats.
//
// Newest frame only: frames are read off the pipe as fast as ffmpeg writes them (so
// ffmpeg never blocks and nothing queues in the pipe); a frame not taken before the next
// one arrives is dropped and counted. Frame buffers are recycled (a dropped frame's at
// once, a taken frame's when the consumer hands it back with `release()`), so a camera
// at 10 fps does not leave 9 MB/s of dead buffers for the garbage collector; a consumer
// that never releases simply gets fresh buffers. A stream with no frame for `staleMs`, or with
// bit-identical frames for `frozenMs`, is restarted with exponential back-off.
import { EventEmitter } from 'node:events';
import ffmpeg from 'fluent-ffmpeg';
import { backoffDelay } from '../../edge/backoff.js';
import { killWhenSpawned } from './ffmpeg-adapter.js';
import type { Readable } from 'node:stream';

export type CameraSource = { kind: 'rtsp'; url: string; transport?: 'tcp' | 'udp' } | { kind: 'v4l2'; device: string } | { kind: 'file'; path: string };

export interface CameraOptions {
  source: CameraSource;
  width: number;
  height: number;
  fps: number;
  pixelFormat?: 'rgb24' | 'bgr24';
  staleMs: number;
  frozenMs: number;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  /** Default: "ffmpeg" on PATH. */
  ffmpegPath?: string;
  /** Wall clock (UTC ms) for frame timestamps. */
  now?: () => number;
}

export interface Frame {
  data: Buffer;
  width: number;
  height: number;
  pixelFormat: 'rgb24' | 'bgr24';
  seq: number;
  /** UTC ms when the frame came off the pipe. */
  at: number;
  /** performance.now() when the frame came off the pipe (latency measurements). */
  mono: number;
}

export type CameraStateName = 'idle' | 'connecting' | 'streaming' | 'stalled' | 'frozen' | 'failed' | 'stopped';

export interface CameraState {
  state: CameraStateName;
  /** Why it is in this state (last ffmpeg error line, watchdog reason). */
  reason?: string;
  since: number;
}

export interface CameraStats {
  state: CameraStateName;
  reason?: string;
  frames: number;
  dropped: number;
  restarts: number;
  decodeErrors: number;
  lastFrameAt: number | null;
  /** Frames per second over the last few seconds. */
  fps: number;
}

export interface CameraEvents {
  frame: [Frame];
  state: [CameraState];
}

/** A safe description of the source for logs (RTSP credentials masked). */
export function describeSource(s: CameraSource): string {
  if (s.kind === 'rtsp') return maskCredentials(s.url);
  return s.kind === 'v4l2' ? s.device : s.path;
}

/** Hide user:password in any URL of a text (ffmpeg error lines repeat the input URL). */
export function maskCredentials(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/)[^@/\s]*@/gi, '$1***@');
}

/** ffmpeg input and output arguments for a source (exported for tests and docs). */
export function ffmpegArgs(o: CameraOptions): { input: string; inputOptions: string[]; outputOptions: string[] } {
  const s = o.source;
  let inputOptions: string[];
  let input: string;
  if (s.kind === 'rtsp') {
    input = s.url;
    // -timeout (µs): give up a silent socket instead of hanging; our watchdog backs it up.
    inputOptions = ['-rtsp_transport', s.transport ?? 'tcp', '-timeout', String(Math.round(o.staleMs * 1000)), '-fflags', 'nobuffer', '-flags', 'low_delay'];
  } else if (s.kind === 'v4l2') {
    input = s.device;
    inputOptions = ['-f', 'v4l2', '-framerate', String(Math.max(1, Math.round(o.fps)))];
  } else {
    input = s.path;
    // -re: real-time rate, like a camera; -stream_loop -1: forever.
    inputOptions = ['-re', '-stream_loop', '-1'];
  }
  const outputOptions = [
    '-an',
    '-sn',
    // Whatever the camera sends (wrong resolution included), the pipeline gets this size and rate.
    '-vf',
    `fps=${o.fps},scale=${o.width}:${o.height}:flags=bilinear`,
    '-pix_fmt',
    o.pixelFormat ?? 'rgb24',
    '-f',
    'rawvideo',
  ];
  // One decoder thread and one filter thread: a 640×480 sub-stream at ≤ 25 fps needs no
  // more, and every extra thread holds its own frame buffers (measured: ffmpeg RSS 68 → 62 MB,
  // of which ~43 MB are the shared libraries' pages).
  return { input, inputOptions: ['-hide_banner', '-loglevel', 'error', '-nostdin', '-threads', '1', '-filter_threads', '1', ...inputOptions], outputOptions };
}

function killQuietly(cmd: ReturnType<typeof ffmpeg>): void {
  try {
    cmd.kill('SIGKILL');
  } catch {
    /* already gone */
  }
}

/** Cheap frame fingerprint for frozen-stream detection (a strided FNV-1a over the bytes). */
function fingerprint(buf: Buffer): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < buf.length; i += 61) {
    h ^= buf[i]!;
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

export class Camera extends EventEmitter<CameraEvents> {
  private cmd: ReturnType<typeof ffmpeg> | undefined;
  private out: Readable | undefined;
  private readonly frameBytes: number;
  private buf: Buffer;
  private filled = 0;
  private seq = 0;
  private latest: Frame | undefined;
  private taken = true;
  /** The consumer has released `latest` (it is recycled once a newer frame replaces it). */
  private latestReleased = false;
  /** Buffers of taken frames not yet released (weak: a consumer that never releases leaks nothing). */
  private readonly outstanding = new WeakSet<Buffer>();
  private readonly pool: Buffer[] = [];
  private st: CameraState;
  private failures = 0;
  private streamingSince = 0;
  private startedAt = 0;
  private lastFrameMono = 0;
  private lastFingerprint = -1;
  private sameSince = 0;
  private watchdog: NodeJS.Timeout | undefined;
  private retry: NodeJS.Timeout | undefined;
  private generation = 0;
  private readonly recent: number[] = [];
  private readonly counters = { frames: 0, dropped: 0, restarts: 0, decodeErrors: 0 };
  private lastFrameAt: number | null = null;
  private readonly now: () => number;

  constructor(readonly opts: CameraOptions) {
    super();
    this.frameBytes = opts.width * opts.height * 3;
    this.buf = Buffer.allocUnsafe(this.frameBytes);
    this.now = opts.now ?? Date.now;
    this.st = { state: 'idle', since: this.now() };
  }

  start(): void {
    if (this.watchdog) return;
    this.watchdog = setInterval(() => this.check(), Math.max(100, Math.min(1000, this.opts.staleMs / 4)));
    this.watchdog.unref();
    this.spawn();
  }

  /** Newest frame not yet taken (frames replaced before being taken were counted as dropped). */
  take(): Frame | undefined {
    if (this.taken) return undefined;
    this.taken = true;
    return this.latest;
  }

  /**
   * Hand a taken frame's buffer back for reuse: its data must not be read afterwards.
   * Releasing is optional (an unreleased buffer is garbage-collected).
   */
  release(f: Frame): void {
    if (f === this.latest) {
      this.latestReleased = true;
      return;
    }
    if (!this.outstanding.has(f.data)) return;
    this.outstanding.delete(f.data);
    this.recycle(f.data);
  }

  private recycle(buf: Buffer): void {
    if (buf.length === this.frameBytes && this.pool.length < 2) this.pool.push(buf);
  }

  /** The newest frame, taken or not (console snapshot). Synchronous use only, or copy it: its buffer is recycled once it is replaced. */
  peek(): Frame | undefined {
    return this.latest;
  }

  state(): CameraState {
    return this.st;
  }

  stats(): CameraStats {
    const mono = performance.now();
    while (this.recent.length && mono - this.recent[0]! > 5000) this.recent.shift();
    const span = this.recent.length > 1 ? (this.recent[this.recent.length - 1]! - this.recent[0]!) / 1000 : 0;
    return {
      state: this.st.state,
      ...(this.st.reason ? { reason: this.st.reason } : {}),
      ...this.counters,
      lastFrameAt: this.lastFrameAt,
      fps: span > 0 ? Math.round(((this.recent.length - 1) / span) * 10) / 10 : 0,
    };
  }

  private setState(state: CameraStateName, reason?: string): void {
    if (this.st.state === state && this.st.reason === reason) return;
    this.st = { state, since: this.now(), ...(reason ? { reason } : {}) };
    this.emit('state', this.st);
  }

  private spawn(): void {
    const gen = ++this.generation;
    const a = ffmpegArgs(this.opts);
    this.filled = 0;
    this.lastFingerprint = -1;
    this.startedAt = performance.now();
    this.setState('connecting', describeSource(this.opts.source));
    let lastErr = '';
    const cmd = ffmpeg(a.input).inputOptions(a.inputOptions).outputOptions(a.outputOptions);
    if (this.opts.ffmpegPath) cmd.setFfmpegPath(this.opts.ffmpegPath);
    cmd.on('stderr', (line: string) => {
      if (gen !== this.generation) return;
      this.counters.decodeErrors++;
      lastErr = maskCredentials(line.trim()).slice(0, 300);
    });
    cmd.on('error', (err: Error) => {
      if (gen !== this.generation) return;
      this.restart('failed', lastErr || maskCredentials(err.message.split('\n')[0] ?? '') || 'ffmpeg failed');
    });
    cmd.on('end', () => {
      if (gen !== this.generation) return;
      this.restart('failed', lastErr || 'stream ended');
    });
    const out = cmd.pipe() as Readable;
    out.on('data', (chunk: Buffer) => {
      if (gen === this.generation) this.onData(chunk);
    });
    out.on('error', () => {
      /* reported through the command's error event */
    });
    this.cmd = cmd;
    this.out = out;
  }

  private onData(chunk: Buffer): void {
    let off = 0;
    while (off < chunk.length) {
      const n = Math.min(this.frameBytes - this.filled, chunk.length - off);
      chunk.copy(this.buf, this.filled, off, off + n);
      this.filled += n;
      off += n;
      if (this.filled === this.frameBytes) {
        this.onFrame(this.buf);
        // The finished buffer now belongs to the frame; decode into a free one.
        this.buf = this.pool.pop() ?? Buffer.allocUnsafe(this.frameBytes);
        this.filled = 0;
      }
    }
  }

  private onFrame(data: Buffer): void {
    const mono = performance.now();
    const prev = this.latest;
    if (prev) {
      // Never taken (dropped), or taken and already released: nobody holds it any more.
      if (!this.taken || this.latestReleased) this.recycle(prev.data);
      else this.outstanding.add(prev.data);
    }
    this.latestReleased = false;
    if (!this.taken) this.counters.dropped++;
    const fp = fingerprint(data);
    if (fp !== this.lastFingerprint) {
      this.lastFingerprint = fp;
      this.sameSince = mono;
    }
    this.latest = { data, width: this.opts.width, height: this.opts.height, pixelFormat: this.opts.pixelFormat ?? 'rgb24', seq: ++this.seq, at: this.now(), mono };
    this.taken = false;
    this.counters.frames++;
    this.lastFrameMono = mono;
    this.lastFrameAt = this.latest.at;
    this.recent.push(mono);
    if (this.recent.length > 300) this.recent.shift();
    if (this.st.state !== 'streaming') {
      this.streamingSince = mono;
      this.setState('streaming');
    }
    // Back-off resets only after a stretch of healthy streaming, not on one lucky frame.
    if (this.failures > 0 && mono - this.streamingSince > 10_000) this.failures = 0;
    this.emit('frame', this.latest);
  }

  private check(): void {
    const mono = performance.now();
    if (this.st.state === 'streaming') {
      if (mono - this.lastFrameMono > this.opts.staleMs) this.restart('stalled', `no frame for ${Math.round((mono - this.lastFrameMono) / 1000)} s`);
      else if (mono - this.sameSince > this.opts.frozenMs) this.restart('frozen', `identical frames for ${Math.round((mono - this.sameSince) / 1000)} s`);
    } else if (this.st.state === 'connecting' && mono - this.startedAt > Math.max(this.opts.staleMs, 3000) * 2) {
      this.restart('stalled', `no frame within ${Math.round((mono - this.startedAt) / 1000)} s of connecting`);
    }
  }

  private kill(): void {
    this.generation++;
    const cmd = this.cmd;
    this.cmd = undefined;
    this.out?.removeAllListeners('data');
    this.out = undefined;
    if (cmd) {
      cmd.removeAllListeners('stderr');
      cmd.on('error', () => {});
      // fluent-ffmpeg spawns ffmpeg asynchronously (after probing its capabilities): a
      // command stopped before that would spawn later and run forever (a looped file
      // never ends). Kill it when it starts (ffmpeg-adapter.ts).
      killWhenSpawned(cmd, () => killQuietly(cmd));
    }
  }

  private restart(state: CameraStateName, reason: string): void {
    this.kill();
    this.setState(state, reason);
    if (!this.watchdog) return;
    const delay = backoffDelay(this.failures, { minMs: this.opts.reconnectMinMs, maxMs: this.opts.reconnectMaxMs });
    this.failures++;
    this.counters.restarts++;
    if (this.retry) clearTimeout(this.retry);
    this.retry = setTimeout(() => {
      this.retry = undefined;
      if (this.watchdog) this.spawn();
    }, delay);
    this.retry.unref();
  }

  stop(): void {
    if (this.watchdog) clearInterval(this.watchdog);
    this.watchdog = undefined;
    if (this.retry) clearTimeout(this.retry);
    this.retry = undefined;
    this.kill();
    this.setState('stopped');
  }
}
