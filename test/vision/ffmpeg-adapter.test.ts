// drivers/camera/ffmpeg-adapter.ts: what the camera relies on in fluent-ffmpeg beyond its
// documented API (command.ffmpegProc: unset before the spawn, the ChildProcess from just
// before 'start' until the process ends). Run against the system ffmpeg; a fluent-ffmpeg
// of another shape fails here with the version and the field named.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { ChildProcess } from 'node:child_process';
import ffmpeg from 'fluent-ffmpeg';
import { ffmpegProcess, fluentFfmpegVersion, killWhenSpawned, type FfmpegCommand } from '../../drivers/camera/ffmpeg-adapter.js';

const haveFfmpeg = spawnSync('ffmpeg', ['-version']).status === 0;
const version = fluentFfmpegVersion();
const shape = (what: string) => `fluent-ffmpeg ${version}: ${what} (drivers/camera/ffmpeg-adapter.ts relies on command.ffmpegProc)`;

/** An endless synthetic stream to a null sink. */
const endless = (): FfmpegCommand => ffmpeg('testsrc=size=64x48:rate=5').inputOptions(['-f', 'lavfi', '-nostdin']).outputOptions(['-f', 'null']).output('-');

t.test(`fluent-ffmpeg ${version}: ffmpegProc lifecycle`, { skip: haveFfmpeg ? false : 'needs ffmpeg' }, async (t) => {
  t.match(version, /^\d+\.\d+\.\d+/, 'version read from the package');
  const cmd = endless();
  t.equal(ffmpegProcess(cmd), undefined, shape('no process before run()'));
  const started = new Promise<ChildProcess | undefined>((res) => cmd.once('start', () => res(ffmpegProcess(cmd))));
  const ended = new Promise<void>((res) => cmd.once('error', () => res()).once('end', () => res()));
  cmd.run();
  t.equal(ffmpegProcess(cmd), undefined, shape('the spawn is asynchronous (after probing), not inside run()'));
  const proc = await started;
  t.ok(proc instanceof ChildProcess, shape('ffmpegProc is the ChildProcess when "start" is emitted'));
  t.type(proc?.pid, 'number', shape('with a pid'));
  cmd.kill('SIGKILL');
  await ended;
  t.equal(ffmpegProcess(cmd), undefined, shape('ffmpegProc deleted once the process ended'));
});

t.test('killWhenSpawned: a command stopped before its spawn is killed when it starts', { skip: haveFfmpeg ? false : 'needs ffmpeg' }, async (t) => {
  const cmd = endless();
  let kills = 0;
  const ended = new Promise<string>((res) => cmd.once('error', (e: Error) => res(e.message)).once('end', () => res('end')));
  cmd.run();
  killWhenSpawned(cmd, () => {
    kills++;
    cmd.kill('SIGKILL');
  });
  t.equal(kills, 1, 'kill tried at once (a no-op before the spawn)');
  t.match(await ended, /SIGKILL/, 'the endless ffmpeg was killed');
  t.equal(kills, 2, 'and again on "start"');

  const running = endless();
  const runEnded = new Promise<string>((res) => running.once('error', (e: Error) => res(e.message)).once('end', () => res('end')));
  await new Promise<void>((res) => running.once('start', () => res()).run());
  let n = 0;
  killWhenSpawned(running, () => {
    n++;
    running.kill('SIGKILL');
  });
  t.match(await runEnded, /SIGKILL/, 'a running ffmpeg is killed now');
  t.equal(n, 1, 'once');
});

t.test('a command of another shape is reported, not taken for a process', async (t) => {
  const fake = Object.assign(ffmpeg(), { ffmpegProc: 42 });
  t.throws(() => ffmpegProcess(fake), new RegExp(`fluent-ffmpeg ${version.replace(/\./g, '\\.')}: command\\.ffmpegProc is not a ChildProcess`));
  let killed = 0;
  killWhenSpawned(fake, () => killed++);
  t.equal(killed, 1, 'killWhenSpawned still kills (and does not throw in the camera)');
});
