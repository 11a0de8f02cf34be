import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { appRoot } from './paths.js';

/** The package version, read once from the app root's package.json (source, dist/, bundle or release). */
export const VERSION: string = (() => {
  try {
    return (JSON.parse(readFileSync(join(appRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();
