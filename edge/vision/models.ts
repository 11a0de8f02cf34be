// Which models the pipeline runs and with which thresholds: the manifest's defaults,
// the config's choices over them, and a verification of every file (present, sha256
// accepted by the manifest) before any session is created. A problem here makes face
// access unavailable with a message saying exactly which file and why; it never takes
// the rest of the gateway down.
import { acceptedHashes, defaultModelsDir, getModel, loadManifest, type ModelManifest } from '../../models/manifest.js';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { EngineModels } from './engine.js';
import type { VisionConfig } from './schema.js';

export interface ResolvedModels {
  manifest: ModelManifest;
  models: EngineModels;
  /** Manifest ids of every selected model. */
  ids: string[];
  dir: string;
  recognizerId: string;
  detectThreshold: number;
  matchThreshold: number;
  metric: 'euclidean' | 'cosine';
  l2Normalise: boolean;
  livenessThreshold: number;
}

export class ModelsUnavailable extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelsUnavailable';
  }
}

/** The models and thresholds the config selects from the manifest (no file access beyond the manifest). */
export function resolveModels(cfg: VisionConfig, manifestDir = defaultModelsDir()): ResolvedModels {
  let manifest: ModelManifest;
  try {
    manifest = loadManifest(`${manifestDir}/manifest.json`);
  } catch (err) {
    throw new ModelsUnavailable((err as Error).message);
  }
  const dir = cfg.modelsDir ?? manifestDir;
  const ids = {
    detector: cfg.models.detector ?? manifest.defaults.detector,
    recognizer: cfg.models.recognizer ?? manifest.defaults.recognizer,
    // An empty list means the manifest's ensemble: no liveness is `liveness.enabled: false`, never an accident.
    liveness: cfg.liveness.enabled ? (cfg.models.liveness?.length ? cfg.models.liveness : manifest.defaults.liveness) : [],
    closeUp: cfg.models.detector === undefined ? manifest.defaults.closeUpDetector : undefined,
  };
  let models: EngineModels;
  try {
    const closeUpDetector = ids.closeUp !== undefined ? getModel(manifest, ids.closeUp, 'detector') : undefined;
    models = {
      detector: getModel(manifest, ids.detector, 'detector'),
      recognizer: getModel(manifest, ids.recognizer, 'recognizer'),
      liveness: ids.liveness.map((id) => getModel(manifest, id, 'liveness')),
      ...(closeUpDetector ? { closeUpDetector } : {}),
    };
  } catch (err) {
    throw new ModelsUnavailable(`model selection: ${(err as Error).message}`);
  }
  const rec = models.recognizer;
  const live = models.liveness[0];
  return {
    manifest,
    models,
    dir,
    ids: [ids.detector, ids.recognizer, ...ids.liveness, ...(ids.closeUp !== undefined ? [ids.closeUp] : [])],
    recognizerId: ids.recognizer,
    detectThreshold: cfg.detectThreshold ?? models.detector.scoreThreshold,
    matchThreshold: cfg.match.threshold ?? rec.matching.threshold,
    metric: rec.matching.metric,
    l2Normalise: rec.matching.l2Normalise,
    livenessThreshold: cfg.liveness.threshold ?? live?.classifier.threshold ?? 0.5,
  };
}

/**
 * Check every selected file (present, sha256 accepted by the manifest); throws
 * ModelsUnavailable naming each bad file. Hashing here rather than through the
 * installer's checkModels keeps the installer (and its ONNX builder) out of the gateway.
 */
export async function verifyModelFiles(r: ResolvedModels): Promise<void> {
  const problems: string[] = [];
  for (const id of r.ids) {
    const e = r.manifest.models[id]!;
    const path = join(r.dir, e.file);
    if (!existsSync(path)) {
      problems.push(`${e.file} missing`);
      continue;
    }
    const h = createHash('sha256');
    await pipeline(createReadStream(path), h);
    const sha = h.digest('hex');
    if (!acceptedHashes(e).includes(sha)) problems.push(`${e.file} has a wrong sha256 (${sha.slice(0, 12)}…)`);
  }
  if (problems.length) throw new ModelsUnavailable(`face models not usable in ${r.dir}: ${problems.join('; ')} — run "npm run models" (or npm run models -- --from <mirror>)`);
}

/** Whether `score` (distance or similarity, per metric) is a match at `threshold`. */
export function isMatch(metric: 'euclidean' | 'cosine', score: number, threshold: number): boolean {
  return metric === 'euclidean' ? score < threshold : score >= threshold;
}
