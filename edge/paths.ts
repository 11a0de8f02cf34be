// Where the app's own files are, whichever way it runs: from the source tree (tsx),
// from tsc's dist/, from the production bundle (dist/bundle/edge/) or from an installed
// release (/opt/estate-edge/current). Files that are not code (console web assets, meter
// profiles, the model manifest) are looked up from the app root, never relative to the
// module asking: bundling moves code, not data.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/** The nearest directory above this module holding estate-edge's package.json. */
export function appRoot(): string {
  if (root !== undefined) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === 'estate-edge') return (root = dir);
      } catch {
        /* not ours: keep looking */
      }
    }
    const up = dirname(dir);
    if (up === dir) return (root = process.cwd());
    dir = up;
  }
}

/**
 * A shipped data path given from the source tree's root (e.g. `drivers/profiles`): the
 * source copy when it exists, else the copy a release keeps beside its compiled code
 * under dist/ (scripts/pack.sh). Returns the first candidate when neither exists, so
 * error messages name the expected place.
 */
export function appPath(rel: string): string {
  const candidates = [join(appRoot(), rel), join(appRoot(), 'dist', rel)];
  return candidates.find((c) => existsSync(c)) ?? candidates[0]!;
}
