// `estate-edge doctor` for face access: the camera is there (v4l2 device accessible,
// RTSP host reachable, or the simulated video file present) and every model file in
// the manifest has its hash, the ones the config selects being required.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultModelsDir, loadManifest } from '../../models/manifest.js';
import { redactUrl, tcpReachable, type DoctorCheck } from '../doctor-kit.js';

export const cameraCheck: DoctorCheck = {
  id: 'camera',
  label: '摄像头 camera',
  async run(ctx) {
    const v = ctx.config.vision;
    if (v?.enabled !== true) return ctx.add('SKIP', 'face access (vision) not enabled');
    const src = v.camera.source;
    if (src.kind === 'v4l2') {
      if (!src.device) ctx.add('FAIL', 'vision.camera.source.device: not set');
      else ctx.device('vision.camera.source.device', src.device, () => ctx.listDevices(/^video\d+$/));
      return;
    }
    if (src.kind === 'file') {
      const present = src.path !== undefined && existsSync(src.path);
      return ctx.add(present ? 'WARN' : 'FAIL', `simulated camera: video file ${src.path ?? '(not set)'}${present ? '' : ' missing'}`);
    }
    if (!src.url) return ctx.add('FAIL', 'vision.camera.source.url: not set');
    let u: URL;
    try {
      u = new URL(src.url);
    } catch {
      return ctx.add('FAIL', `vision.camera.source.url ${redactUrl(src.url)}: not a URL`);
    }
    const port = Number(u.port || (u.protocol === 'rtsps:' ? 322 : 554));
    const err = await tcpReachable(u.hostname, port, ctx.timeoutMs);
    ctx.add(err ? 'FAIL' : 'OK', `${redactUrl(src.url)}: ${err ?? `TCP ${u.hostname}:${port} reachable`}`);
  },
};

export const modelsCheck: DoctorCheck = {
  id: 'models',
  label: '人脸模型 models',
  run(ctx) {
    const v = ctx.config.vision;
    const enabled = v?.enabled === true;
    const dir = v?.modelsDir ?? defaultModelsDir();
    const manifestPath = join(dir, 'manifest.json');
    if (!existsSync(manifestPath)) return ctx.add(enabled ? 'FAIL' : 'SKIP', `no model manifest at ${manifestPath}`);
    let manifest;
    try {
      manifest = loadManifest(manifestPath);
    } catch (err) {
      return ctx.add(
        'FAIL',
        String((err as Error).message)
          .split('\n')
          .slice(0, 3)
          .join('; '),
      );
    }
    // What the pipeline would load (edge/vision/models.ts resolveModels): the config's choices over the manifest's defaults.
    const needed = new Set<string>();
    if (enabled) {
      needed.add(v.models?.detector ?? manifest.defaults.detector);
      needed.add(v.models?.recognizer ?? manifest.defaults.recognizer);
      if (v.liveness?.enabled !== false) for (const id of v.models?.liveness?.length ? v.models.liveness : manifest.defaults.liveness) needed.add(id);
    }
    let present = 0;
    for (const [id, m] of Object.entries(manifest.models)) {
      const file = join(dir, m.file);
      if (!existsSync(file)) {
        if (needed.has(id)) ctx.add('FAIL', `${id} (${m.file}): not installed, and vision needs it (npm run models, or the offline pack)`);
        continue;
      }
      present++;
      // Models are a few MB: a synchronous read keeps the doctor simple.
      const sha = createHash('sha256').update(readFileSync(file)).digest('hex');
      if (sha !== m.sha256) ctx.add('FAIL', `${id} (${m.file}): sha256 ${sha.slice(0, 12)}… does not match the manifest's ${m.sha256.slice(0, 12)}… (corrupt or wrong file)`);
      else ctx.add('OK', `${id} (${m.file}) sha256 matches`);
    }
    for (const id of needed) if (!manifest.models[id]) ctx.add('FAIL', `${id}: named in the config but not in ${manifestPath}`);
    if (!present && !enabled) ctx.add('SKIP', `no models installed in ${dir} (vision disabled)`);
  },
};

export const visionDoctor: readonly DoctorCheck[] = [cameraCheck, modelsCheck];
