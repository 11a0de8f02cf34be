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
// bundleConsolePage): the bundled gateway serves it, code run from the source tree serves
// the page's source modules.
import { build, type Plugin } from 'esbuild';
import { copyFileSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeConfigValidator } from '../edge/config/validator-source.js';

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
const WEB = join(REPO, 'edge', 'console', 'web');

/**
 * The console's page as the box serves it to a phone (edge/console/web is its source):
 *
 * - app.js: everything the first render runs — the shell, lib.js, i18n.js and the
 *   dashboard — in one minified file. As separate modules each is a request, a compile and
 *   a module instantiation on the phone's main thread before the dashboard can be drawn.
 * - pages/<page>.js: every other page, minified, still loaded only when opened. What they
 *   share with the shell (lib.js, i18n.js: the session, the language, the primed data) is
 *   imported from ../app.js, the same module instance; a page importing any other module
 *   of the shell fails the build rather than getting a second copy of it.
 * - style.css minified; index.html without the source tree's modulepreload links (one
 *   script now); other files (icon) as they are.
 */
export async function bundleConsolePage(outdir: string, src = WEB): Promise<void> {
  rmSync(outdir, { recursive: true, force: true });
  const common = { absWorkingDir: REPO, bundle: true, format: 'esm', target: 'es2020', minify: true, legalComments: 'none', logLevel: 'warning', metafile: true } as const;
  // The shell: lib.js and i18n.js re-exported for the pages; pages' dynamic imports stay.
  const lazyPages: Plugin = {
    name: 'lazy-pages',
    setup(b) {
      b.onResolve({ filter: /^\.\/pages\// }, (a) => (a.kind === 'dynamic-import' ? { path: a.path, external: true } : undefined));
    },
  };
  const shell = await build({
    ...common,
    stdin: { contents: "export * from './lib.js';\nexport * from './i18n.js';\nimport './app.js';\n", resolveDir: src, sourcefile: 'console-page.js', loader: 'js' },
    outfile: join(outdir, 'app.js'),
    plugins: [lazyPages],
  });
  const inShell = new Set(Object.keys(shell.metafile.inputs).map((f) => resolve(REPO, f)));
  const shared = new Set([join(src, 'lib.js'), join(src, 'i18n.js')]);
  const fromShell: Plugin = {
    name: 'from-shell',
    setup(b) {
      b.onResolve({ filter: /^\./ }, (a) => {
        const target = resolve(a.resolveDir, a.path);
        if (shared.has(target)) return { path: '../app.js', external: true };
        if (inShell.has(target)) return { errors: [{ text: `${a.path} is part of app.js: pages share the shell's code only through lib.js and i18n.js` }] };
        return undefined;
      });
    },
  };
  const pages = readdirSync(join(src, 'pages')).filter((f) => f.endsWith('.js') && !inShell.has(join(src, 'pages', f)));
  await build({ ...common, entryPoints: pages.map((f) => join(src, 'pages', f)), outdir: join(outdir, 'pages'), plugins: [fromShell] });
  await build({ ...common, entryPoints: [join(src, 'style.css')], outfile: join(outdir, 'style.css'), bundle: false });
  const html = readFileSync(join(src, 'index.html'), 'utf8').replace(/^<link rel="modulepreload"[^>]*>\n/gm, '');
  if (!html.includes('<script type="module" src="/app.js"></script>') || html.includes('modulepreload')) throw new Error('console page: index.html does not load /app.js as expected');
  writeFileSync(join(outdir, 'index.html'), html);
  for (const f of readdirSync(src)) if (!['.js', '.css', '.html', ''].includes(extname(f))) copyFileSync(join(src, f), join(outdir, f));
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  bundle(process.argv[2] ? resolve(process.argv[2]) : OUT).catch((err: unknown) => {
    process.stderr.write(`bundle failed: ${String(err)}\n`);
    process.exit(1);
  });
}
