// The pages' static files, served from memory: read once at start, compressed once
// (brotli and gzip), answered with an ETag. The whole web/ directory is a few tens of
// KiB, so this costs less memory than a file-serving plugin with its own caches, and
// every response is compressed without a compression plugin in the request path.
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { dirname, join, extname, relative, sep } from 'node:path';
import { appPath, appRoot } from '../paths.js';
import { brotliCompressSync, gzipSync, constants } from 'node:zlib';
import { createHash } from 'node:crypto';
import { fileURLToPath, pathToFileURL } from 'node:url';

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
 * first render in one script: scripts/console-page.ts), found beside its own code so the
 * two are always of the same build. Run from the source tree (tsx, the tests) or from tsc's
 * output, the console builds the same page in memory from its TypeScript source
 * (edge/console/web) with esbuild, a development tool that only those runs have. The
 * bundle falls back to that too if its page is missing.
 */
export async function consoleAssets(): Promise<{ assets: Map<string, Asset>; page: string }> {
  if (typeof __CONSOLE_PAGE__ === 'string') {
    const built = join(dirname(fileURLToPath(import.meta.url)), __CONSOLE_PAGE__);
    if (existsSync(join(built, 'index.html'))) return { assets: loadAssets(built), page: built };
  }
  // A specifier the bundler does not follow: the builder (and esbuild) must not end up in
  // the production bundle, whose page is built beforehand.
  // Run by tsx, the builder's source; from tsc's output, its compiled form (dist/scripts).
  const builder = import.meta.url.endsWith('.ts') ? join(appRoot(), 'scripts', 'console-page.ts') : appPath('scripts/console-page.js');
  let mod: { buildConsolePage: () => Promise<Map<string, Uint8Array>> };
  try {
    mod = (await import(pathToFileURL(builder).href)) as typeof mod;
  } catch (err) {
    throw new Error(`console web page: no built page and cannot build one (${builder}: ${(err as Error).message})`);
  }
  return { assets: assetsOf(await mod.buildConsolePage()), page: `built in memory by ${builder}` };
}

/** The assets of a built page's directory (the production bundle's console-web/). */
export function loadAssets(dir: string): Map<string, Asset> {
  const files = new Map<string, Uint8Array>();
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else files.set(`/${relative(dir, p).split(sep).join('/')}`, readFileSync(p));
    }
  };
  walk(dir);
  return assetsOf(files);
}

/** Each file with its type, ETag and compressed forms; files of other types are not served. */
export function assetsOf(files: Map<string, Uint8Array>): Map<string, Asset> {
  const out = new Map<string, Asset>();
  for (const [path, bytes] of files) {
    const type = TYPES[extname(path)];
    if (!type) continue;
    const raw = Buffer.from(bytes);
    out.set(path, {
      type,
      raw,
      etag: `"${createHash('sha256').update(raw).digest('base64url').slice(0, 16)}"`,
      br: brotliCompressSync(raw, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }),
      gzip: gzipSync(raw, { level: 9 }),
    });
  }
  return out;
}

/** Bytes a browser downloads for the given asset paths with brotli. */
export function compressedWeight(assets: Map<string, Asset>, paths: string[] = [...assets.keys()]): number {
  return paths.reduce((n, p) => n + (assets.get(p)?.br.length ?? 0), 0);
}
