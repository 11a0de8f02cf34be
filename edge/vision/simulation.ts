// Face access in the built-in simulated estate: the camera is the shared demo video
// played in a loop (the camera driver's simulator twin), at the estate gate. Only when
// the face models are installed and the video is there; otherwise the simulated estate
// simply runs without face access.
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { defaultModelsDir, loadManifest, requiredModelIds } from '../../models/manifest.js';

export const SIM_VIDEO = '../shared/media/video/obama_portrait_zoom_640x480.mp4';

/** Whether the manifest's required models are installed (by size: the full hash check runs at module start). */
export function modelsInstalled(dir = defaultModelsDir()): boolean {
  try {
    const m = loadManifest(join(dir, 'manifest.json'));
    return requiredModelIds(m).every((id) => {
      const e = m.models[id]!;
      const p = join(dir, e.file);
      return existsSync(p) && statSync(p).size > 0;
    });
  } catch {
    return false;
  }
}

export function simulatedVisionConfig(doorId: string, video = SIM_VIDEO): Record<string, unknown> | undefined {
  if (!existsSync(resolve(video)) || !modelsInstalled()) return undefined;
  return { enabled: true, doorId, camera: { source: { kind: 'file', path: video }, fps: 5 } };
}
