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
//
// The config validator (Ajv's code for the schema, edge/config/validator-source.ts) is
// generated here too, into the source tree (git-ignored), where appPath() finds it and
// scripts/pack.sh copies it beside the compiled code.
//
// The console's page is built here too, into console-web/ beside the code (see
// scripts/console-page.ts): the bundled gateway serves it; code run from the source tree
// builds the same page in memory at start.
import { build, type Plugin } from 'esbuild';
import { readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeConfigValidator } from '../edge/config/validator-source.js';
import { bundleConsolePage } from './console-page.js';

export { bundleConsolePage };

const REPO = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
const OUT = join(REPO, 'dist', 'bundle', 'edge');

/** Packages bundled into the app; every other dependency stays external. */
const BUNDLED = new Set(['@sinclair/typebox', 'uuid']);

/** The package a bare import specifier names ('@scope/name/sub' → '@scope/name'). */
export function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0]!;
}

/**
 * Fails the build when the app imports a package that is only a devDependency: the
 * release's node_modules is the production tree (scripts/pack.sh), so such an import would
 * either be bundled silently (carrying build-only code such as protobufjs or face-api into
 * the box) or, left external, fail on the box. Type-only imports are erased before this.
 */
export function noDevDependencies(pkg: { dependencies?: Record<string, string>; devDependencies?: Record<string, string> }): Plugin {
  const prod = new Set(Object.keys(pkg.dependencies ?? {}));
  const dev = new Set(Object.keys(pkg.devDependencies ?? {}).filter((d) => !prod.has(d)));
  return {
    name: 'no-dev-dependencies',
    setup(b) {
      b.onResolve({ filter: /^[^./]/ }, (a) => {
        const name = packageOf(a.path);
        if (!dev.has(name)) return undefined;
        return { errors: [{ text: `${a.path} is a devDependency (${name}), not in the release's production tree: imported from ${a.importer}` }] };
      });
    },
  };
}

export async function bundle(outdir = OUT): Promise<void> {
  const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies?: Record<string, string> };
  const external = Object.keys(pkg.dependencies)
    .filter((d) => !BUNDLED.has(d))
    .flatMap((d) => [d, `${d}/*`]);
  writeConfigValidator(REPO);
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
    plugins: [noDevDependencies(pkg)],
    // Tells the console (edge/console/assets.ts) where this bundle's built page is.
    define: { __CONSOLE_PAGE__: JSON.stringify(CONSOLE_PAGE) },
  });
  const bytes = Object.values(result.metafile.outputs).reduce((n, o) => n + o.bytes, 0);
  process.stdout.write(`bundle: ${Object.keys(result.metafile.outputs).length} files, ${(bytes / 1024).toFixed(0)} KB in ${outdir}\n`);
  await bundleConsolePage(join(outdir, CONSOLE_PAGE));
}

/** The console page's directory inside the bundle's output directory. */
export const CONSOLE_PAGE = 'console-web';

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  bundle(process.argv[2] ? resolve(process.argv[2]) : OUT).catch((err: unknown) => {
    process.stderr.write(`bundle failed: ${String(err)}\n`);
    process.exit(1);
  });
}
