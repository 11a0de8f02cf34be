// npm run build — the production bundle the unit runs (dist/bundle/edge/main.js).
//
// Why bundle: on a box with a 60 MB budget, Node's per-module cost dominates. The app
// is ~300 ES modules once TypeBox (≈200 .mjs files) and uuid are counted; each module
// costs a module record, its own compile and source string, and the malloc'd memory of
// instantiating the graph, most of which glibc keeps. Measured on this machine: TypeBox
// imported as its 200 ES modules 57 MB RSS, the same exports bundled into one file
// 44 MB (bare node 42.7 MB).
//
// What is bundled: the app's own code and the pure-ESM packages it imports. What is
// not: CommonJS packages (native addons such as better-sqlite3, serialport, sharp,
// onnxruntime-node; ajv, whose compiled validators require() its runtime; pino, mqtt,
// fastify…): they load from node_modules with require() as before (edge/cjs.ts).
// Capability modules stay lazy: each dynamic import() becomes its own chunk, loaded
// only when the config asks for the capability. The vision worker is a second entry
// beside main.js, where the inference client looks for it (./worker.js).
import { build } from 'esbuild';
import { readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
const OUT = join(REPO, 'dist', 'bundle', 'edge');

/** Packages bundled into the app; every other dependency stays external. */
const BUNDLED = new Set(['@sinclair/typebox', 'uuid']);

export async function bundle(outdir = OUT): Promise<void> {
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { dependencies: Record<string, string> };
  const external = Object.keys(pkg.dependencies)
    .filter((d) => !BUNDLED.has(d))
    .flatMap((d) => [d, `${d}/*`]);
  rmSync(outdir, { recursive: true, force: true });
  const result = await build({
    absWorkingDir: REPO,
    entryPoints: { main: 'edge/main.ts', worker: 'edge/vision/worker.ts' },
    outdir,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    external,
    // Comments and whitespace cost heap (V8 keeps every module's source); names stay
    // readable so stack traces in the journal still say where.
    minifyWhitespace: true,
    minifySyntax: true,
    sourcemap: false,
    legalComments: 'none',
    logLevel: 'warning',
    metafile: true,
  });
  const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
  process.stdout.write(`bundle: ${Object.keys(result.metafile.outputs).length} files, ${(bytes / 1024).toFixed(0)} KB in ${outdir}\n`);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  bundle(process.argv[2] ? resolve(process.argv[2]) : OUT).catch((err: unknown) => {
    process.stderr.write(`bundle failed: ${String(err)}\n`);
    process.exit(1);
  });
}
