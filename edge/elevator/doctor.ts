// `estate-edge doctor` for the elevator blocker: the object detector is installed with its
// hash, each car's camera is there, the relay GPIO is usable, and the prompt can be played
// (aplay present; espeak-ng present or a prompt file configured).
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { defaultModelsDir, getModel, loadManifest } from '../../models/manifest.js';
import { chooseGpioBackend, SYSFS_ROOT } from '../../drivers/gpio/select.js';
import { redactUrl, tcpReachable, type DoctorCheck } from '../doctor-kit.js';

const has = (tool: string, arg = '--version'): boolean => {
  const r = spawnSync(tool, [arg], { stdio: 'ignore', timeout: 5000 });
  return r.error === undefined;
};

export const elevatorModelCheck: DoctorCheck = {
  id: 'elevator-model',
  label: '电梯电动车识别模型 object detector',
  run(ctx) {
    const e = ctx.config.elevator;
    if (!e || e.cars.length === 0) return ctx.add('SKIP', 'no elevator cars configured');
    try {
      const m = getModel(loadManifest(join(defaultModelsDir(), 'manifest.json')), e.model, 'object-detector');
      const file = join(e.modelsDir ?? defaultModelsDir(), m.file);
      if (!existsSync(file)) return ctx.add('FAIL', `${file} missing: npm run models -- --only ${e.model}`);
      const sha = createHash('sha256').update(readFileSync(file)).digest('hex');
      ctx.add(sha === m.sha256 ? 'OK' : 'FAIL', `${m.file} sha256 ${sha === m.sha256 ? 'OK' : `${sha} ≠ ${m.sha256}`}`);
    } catch (err) {
      ctx.add('FAIL', (err as Error).message);
    }
  },
};

export const elevatorCameraCheck: DoctorCheck = {
  id: 'elevator-camera',
  label: '电梯摄像头 elevator cameras',
  async run(ctx) {
    const e = ctx.config.elevator;
    if (!e || e.cars.length === 0) return ctx.add('SKIP', 'no elevator cars configured');
    for (const car of e.cars) {
      const src = car.camera.source;
      const where = `car ${car.id}`;
      if (src.kind === 'v4l2') ctx.device(`${where} camera`, src.device ?? '/dev/video0', () => ctx.listDevices(/^video\d+$/));
      else if (src.kind === 'file') ctx.add(src.path && existsSync(src.path) ? 'WARN' : 'FAIL', `${where}: simulated camera, video file ${src.path ?? '(not set)'}${src.path && existsSync(src.path) ? '' : ' missing'}`);
      else {
        let u: URL;
        try {
          u = new URL(src.url ?? '');
        } catch {
          ctx.add('FAIL', `${where}: camera URL not set or invalid`);
          continue;
        }
        const port = Number(u.port || (u.protocol === 'rtsps:' ? 322 : 554));
        const err = await tcpReachable(u.hostname, port, ctx.timeoutMs);
        ctx.add(err ? 'FAIL' : 'OK', `${where} ${redactUrl(src.url ?? '')}: ${err ?? `TCP ${u.hostname}:${port} reachable`}`);
      }
    }
  },
};

export const elevatorRelayCheck: DoctorCheck = {
  id: 'elevator-relay',
  label: '电梯门保持继电器 door-hold relays',
  run(ctx) {
    const e = ctx.config.elevator;
    if (!e || e.cars.length === 0) return ctx.add('SKIP', 'no elevator cars configured');
    const backend = chooseGpioBackend({ backend: e.gpio.backend, sysfsRoot: e.gpio.sysfsRoot ?? SYSFS_ROOT });
    if (backend === 'simulated') ctx.add('WARN', `${e.cars.length} car relay(s) on simulated GPIO: no elevator is held`);
    else if (backend === 'sysfs') ctx.add(existsSync(join(e.gpio.sysfsRoot, 'export')) ? 'OK' : 'FAIL', `sysfs GPIO at ${e.gpio.sysfsRoot}`);
    else if (!ctx.listDevices(/^gpiochip\d+$/).length) ctx.add('FAIL', 'no GPIO character device and no sysfs GPIO: the relays cannot be driven');
    else ctx.add('OK', 'GPIO character device present');
    for (const car of e.cars) if (car.relay.drive === 'level') ctx.add('WARN', `car ${car.id}: relay drive "level" is not released by the hardware if the gateway is killed; use "pulse" with a watchdog relay module`);
  },
};

export const elevatorAudioCheck: DoctorCheck = {
  id: 'elevator-audio',
  label: '电梯语音提示 voice prompt',
  run(ctx) {
    const e = ctx.config.elevator;
    if (!e || e.cars.length === 0) return ctx.add('SKIP', 'no elevator cars configured');
    if (e.prompt.player === 'simulated') ctx.add('WARN', 'prompt player simulated: nothing is played');
    else ctx.add(has('aplay') ? 'OK' : 'FAIL', has('aplay') ? `aplay present (device ${e.prompt.device})` : 'aplay missing: apt-get install alsa-utils');
    if (e.prompt.file) ctx.add(existsSync(e.prompt.file) ? 'OK' : 'FAIL', `prompt file ${e.prompt.file}${existsSync(e.prompt.file) ? '' : ' missing'}`);
    else ctx.add(has('espeak-ng') ? 'OK' : 'WARN', has('espeak-ng') ? `espeak-ng present: prompt synthesised with voice ${e.prompt.voice}` : 'espeak-ng missing and no prompt file: a chime is played instead of speech (apt-get install espeak-ng)');
  },
};

export const elevatorDoctor: readonly DoctorCheck[] = [elevatorModelCheck, elevatorCameraCheck, elevatorRelayCheck, elevatorAudioCheck];
