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
