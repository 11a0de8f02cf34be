// The voice prompt of a held car: a WAV file played through ALSA with `aplay` (Debian
// package alsa-utils), repeated while the car is held. The simulator twin records what
// would have been played (tests, `npm start` without a sound card).
//
// The default prompt is zh-CN speech synthesised once into the data directory with
// `espeak-ng -v cmn` (Debian package espeak-ng, offline) from the configured text; a
// configured `file` replaces it (a professionally recorded prompt). Neither downloads
// anything. When neither espeak-ng nor a file is there, the prompt falls back to a
// generated two-tone chime (a WAV written by this file) and the doctor says so.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync, renameSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join } from 'node:path';

export const DEFAULT_PROMPT_ZH = '电梯内禁止电动车进入，请将电动车推出电梯。';

export interface PlayRecord {
  file: string;
  device: string;
  at: number;
}

export interface AudioPlayer {
  readonly kind: 'aplay' | 'simulated';
  /** Start playing; a play still running is left to finish (no overlap). Errors are reported, never thrown. */
  play(file: string, at: number): void;
  stop(): void;
  readonly played: readonly PlayRecord[];
  readonly failures: number;
  readonly lastError: string | undefined;
}

export class AplayPlayer implements AudioPlayer {
  readonly kind = 'aplay' as const;
  readonly played: PlayRecord[] = [];
  failures = 0;
  lastError: string | undefined;
  private child: ChildProcess | undefined;
  constructor(
    private readonly device: string,
    private readonly aplay = 'aplay',
  ) {}

  play(file: string, at: number): void {
    if (this.child) return;
    const c = spawn(this.aplay, ['-q', '-D', this.device, file], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.child = c;
    let err = '';
    c.stderr?.on('data', (d: Buffer) => void (err = (err + d.toString()).slice(-500)));
    c.on('error', (e) => {
      this.failures++;
      this.lastError = `aplay: ${e.message}`;
    });
    c.on('close', (code) => {
      if (this.child === c) this.child = undefined;
      if (code !== 0 && code !== null) {
        this.failures++;
        this.lastError = `aplay exited ${code}: ${err.trim()}`;
      }
    });
    this.played.push({ file, device: this.device, at });
    if (this.played.length > 100) this.played.shift();
  }

  stop(): void {
    this.child?.kill('SIGTERM');
    this.child = undefined;
  }
}

export class SimulatedPlayer implements AudioPlayer {
  readonly kind = 'simulated' as const;
  readonly played: PlayRecord[] = [];
  readonly failures = 0;
  readonly lastError = undefined;
  constructor(private readonly device = 'simulated') {}
  play(file: string, at: number): void {
    this.played.push({ file, device: this.device, at });
    if (this.played.length > 1000) this.played.shift();
  }
  stop(): void {}
}

/** A 16-bit mono PCM WAV of two tones (the chime used when no speech prompt can be made). */
export function chimeWav(rate = 16000): Buffer {
  const tones = [
    [880, 0.25],
    [660, 0.35],
  ] as const;
  const samples = tones.reduce((s, [, d]) => s + Math.round(d * rate), 0);
  const buf = Buffer.alloc(44 + samples * 2);
  buf.write('RIFF', 0);
  buf.writeUInt32LE(36 + samples * 2, 4);
  buf.write('WAVEfmt ', 8);
  buf.writeUInt32LE(16, 16);
  buf.writeUInt16LE(1, 20);
  buf.writeUInt16LE(1, 22);
  buf.writeUInt32LE(rate, 24);
  buf.writeUInt32LE(rate * 2, 28);
  buf.writeUInt16LE(2, 32);
  buf.writeUInt16LE(16, 34);
  buf.write('data', 36);
  buf.writeUInt32LE(samples * 2, 40);
  let o = 44;
  for (const [f, d] of tones) {
    const n = Math.round(d * rate);
    for (let i = 0; i < n; i++) {
      const env = Math.min(1, i / 160, (n - i) / 160);
      buf.writeInt16LE(Math.round(Math.sin((2 * Math.PI * f * i) / rate) * 12000 * env), o);
      o += 2;
    }
  }
  return buf;
}

export interface PromptResult {
  file: string;
  kind: 'file' | 'speech' | 'chime';
  note?: string;
}

/**
 * The prompt file to play: the configured file; else zh-CN speech from `text` synthesised
 * with espeak-ng into `dir` (named by a hash of text and voice, so it is made once);
 * else a chime.
 */
export function preparePrompt(o: { file?: string | undefined; text: string; voice: string; dir: string; espeak?: string }): PromptResult {
  if (o.file !== undefined) {
    if (!existsSync(o.file)) throw new Error(`elevator prompt file ${o.file} does not exist`);
    return { file: o.file, kind: 'file' };
  }
  mkdirSync(o.dir, { recursive: true });
  const h = createHash('sha256').update(`${o.voice}\n${o.text}`).digest('hex').slice(0, 16);
  const speech = join(o.dir, `prompt-${h}.wav`);
  if (existsSync(speech)) return { file: speech, kind: 'speech' };
  const tmp = `${speech}.part`;
  const r = spawnSync(o.espeak ?? 'espeak-ng', ['-v', o.voice, '-w', tmp, o.text], { timeout: 20_000, encoding: 'utf8' });
  if (r.status === 0 && existsSync(tmp)) {
    renameSync(tmp, speech);
    return { file: speech, kind: 'speech' };
  }
  const chime = join(o.dir, 'prompt-chime.wav');
  mkdirSync(dirname(chime), { recursive: true });
  writeFileSync(chime, chimeWav());
  const why = r.error ? r.error.message : `exit ${r.status}: ${String(r.stderr).trim()}`;
  return { file: chime, kind: 'chime', note: `espeak-ng could not synthesise the prompt (${why}); playing a chime instead — install espeak-ng or configure elevator.prompt.file` };
}
