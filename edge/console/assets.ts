// The pages' static files, served from memory: read once at start, compressed once
// (brotli and gzip), answered with an ETag. The whole web/ directory is a few tens of
// KiB, so this costs less memory than a file-serving plugin with its own caches, and
// every response is compressed without a compression plugin in the request path.
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { dirname, join, extname, relative, sep } from 'node:path';
import { appPath } from '../paths.js';
import { brotliCompressSync, gzipSync, constants } from 'node:zlib';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
};

export interface Asset {
  type: string;
  etag: string;
  raw: Buffer;
  br: Buffer;
  gzip: Buffer;
}

// Set only in the production bundle (scripts/bundle.ts): where its built page is, relative
// to the bundle's code.
declare const __CONSOLE_PAGE__: string | undefined;

/**
 * The page as served. The production bundle serves the page built with it (minified, the
 * first render in one script: scripts/bundle.ts), found beside its own code so the two are
 * always of the same build. Run from the source tree (tsx, the tests) or from tsc's output,
 * the console serves the page's source modules: edge/console/web from the app root (the
 * source tree, or dist/ in a release, scripts/pack.sh). The bundle falls back to them too
 * if its page is missing.
 */
export function webDir(): string {
  if (typeof __CONSOLE_PAGE__ === 'string') {
    const built = join(dirname(fileURLToPath(import.meta.url)), __CONSOLE_PAGE__);
    if (existsSync(join(built, 'index.html'))) return built;
  }
  const dir = appPath('edge/console/web');
  if (!existsSync(dir)) throw new Error(`console web assets not found (looked in ${dir})`);
  return dir;
}

export function loadAssets(dir = webDir()): Map<string, Asset> {
  const out = new Map<string, Asset>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else {
        const type = TYPES[extname(name)];
        if (!type) continue;
        const raw = readFileSync(p);
        out.set(`/${relative(dir, p).split(sep).join('/')}`, {
          type,
          raw,
          etag: `"${createHash('sha256').update(raw).digest('base64url').slice(0, 16)}"`,
          br: brotliCompressSync(raw, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }),
          gzip: gzipSync(raw, { level: 9 }),
        });
      }
    }
  };
  walk(dir);
  return out;
}

/** Bytes a browser downloads for the given asset paths with brotli. */
export function compressedWeight(assets: Map<string, Asset>, paths: string[] = [...assets.keys()]): number {
  return paths.reduce((n, p) => n + (assets.get(p)?.br.length ?? 0), 0);
}
