// Everything drivers/camera/camera.ts relies on in fluent-ffmpeg beyond its documented
// API, in one place (fluent-ffmpeg is archived upstream: a fork or a replacement must keep
// this behaviour, and test/vision/ffmpeg-adapter.test.ts says so loudly if it does not).
//
// fluent-ffmpeg spawns ffmpeg asynchronously (after probing its capabilities), and says
// whether it has done so only through the undocumented `ffmpegProc` field of the command:
// set to the ChildProcess just before the 'start' event, deleted when the process has
// ended. The camera needs to know, because a command killed before the spawn would spawn
// later and run forever (a looped file never ends).
import type { ChildProcess } from 'node:child_process';
import type Ffmpeg from 'fluent-ffmpeg';
import { requireCjs } from '../../edge/cjs.js';

export type FfmpegCommand = ReturnType<typeof Ffmpeg>;

/** The version of the installed fluent-ffmpeg, for messages. */
export function fluentFfmpegVersion(): string {
  try {
    return (requireCjs('fluent-ffmpeg/package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** The running ffmpeg process of a command: undefined before the spawn and after it ended. */
export function ffmpegProcess(cmd: FfmpegCommand): ChildProcess | undefined {
  const proc = (cmd as unknown as { ffmpegProc?: unknown }).ffmpegProc;
  if (proc === undefined) return undefined;
  const p = proc as Partial<ChildProcess>;
  if (typeof p !== 'object' || proc === null || typeof p.kill !== 'function') throw new Error(`fluent-ffmpeg ${fluentFfmpegVersion()}: command.ffmpegProc is not a ChildProcess (drivers/camera/ffmpeg-adapter.ts relies on it)`);
  return proc as ChildProcess;
}

/**
 * Kill a command's ffmpeg now if it runs, or as soon as fluent-ffmpeg spawns it. `kill`
 * (command.kill, documented) is also called at once when the field says "not spawned":
 * it does nothing then, and should a release rename the field, a running ffmpeg is still
 * killed rather than left waiting for a 'start' that has already happened.
 */
export function killWhenSpawned(cmd: FfmpegCommand, kill: () => void): void {
  let running = false;
  try {
    running = ffmpegProcess(cmd) !== undefined;
  } catch {
    /* a changed shape (the adapter test reports it): kill now and on start */
  }
  kill();
  if (!running) cmd.once('start', kill);
}
