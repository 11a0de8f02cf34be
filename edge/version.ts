import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { appRoot } from './paths.js';

/**
 * The package version, read once from the app root's package.json (source, dist/, bundle
 * or release). ESTATE_EDGE_VERSION overrides it for a release whose entry runs another
 * tree's code (the upgrade tests' small releases run this checkout, test/upgrade/).
 */
export const VERSION: string = (() => {
  if (process.env.ESTATE_EDGE_VERSION) return process.env.ESTATE_EDGE_VERSION;
  try {
    return (JSON.parse(readFileSync(join(appRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    return '0.0.0';
  }
})();
