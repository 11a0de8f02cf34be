// The console's page as the box serves it to a phone, built by esbuild from its TypeScript
// source (edge/console/web, type-checked by its own tsconfig: npm run typecheck):
//
// - app.js: everything the first render runs — the shell, lib.ts, i18n.ts and the
//   dashboard — in one minified file. As separate modules each is a request, a compile and
//   a module instantiation on the phone's main thread before the dashboard can be drawn.
// - pages/<page>.js: every other page, minified, still loaded only when opened. What they
//   share with the shell (lib.ts, i18n.ts: the session, the language, the primed data) is
//   imported from ../app.js, the same module instance; a page importing any other module
//   of the shell fails the build rather than getting a second copy of it.
// - style.css minified; index.html as it is (one script); other files (icon) as they are.
//
// scripts/bundle.ts writes it beside the production bundle; the console run from the
// source tree or from tsc's output (tests, npm run doctor, tsc's dist/) builds it in memory
// at start (edge/console/assets.ts), so no built JavaScript lives in the source tree.
import { build, type Plugin, type BuildOptions } from 'esbuild';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, extname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(fileURLToPath(new URL('.', import.meta.url)), '..');
/** The page's source; from tsc's output (dist/scripts) the source tree is two levels up still. */
export const WEB =
  [join(REPO, 'edge', 'console', 'web'), join(REPO, '..', 'edge', 'console', 'web')].find((d) => {
    try {
      return readdirSync(d).includes('app.ts');
    } catch {
      return false;
    }
  }) ?? join(REPO, 'edge', 'console', 'web');

/** The page's files by path ('/app.js', '/pages/meters.js', …) → their bytes. */
export type PageFiles = Map<string, Uint8Array>;

/** Builds the page in memory; with outdir, also writes it there (replacing what was there). */
export async function buildConsolePage(src = WEB, outdir?: string): Promise<PageFiles> {
  const files: PageFiles = new Map();
  // esbuild writes nothing: its output paths are under this (never created) directory.
  const out = join(src, '.page');
  const keep = (r: { outputFiles?: Array<{ path: string; contents: Uint8Array }> }) => {
    for (const f of r.outputFiles ?? []) files.set(`/${relative(out, f.path).split(sep).join('/')}`, f.contents);
  };
  const common = { absWorkingDir: src, bundle: true, format: 'esm', target: 'es2020', minify: true, legalComments: 'none', logLevel: 'warning', metafile: true, write: false } satisfies BuildOptions;
  // The shell: lib.ts and i18n.ts re-exported for the pages; pages' dynamic imports stay
  // (as the .js files they are built to).
  const lazyPages: Plugin = {
    name: 'lazy-pages',
    setup(b) {
      b.onResolve({ filter: /^\.\/pages\// }, (a) => (a.kind === 'dynamic-import' ? { path: a.path, external: true } : undefined));
    },
  };
  const shell = await build({
    ...common,
    stdin: { contents: "export * from './lib.ts';\nexport * from './i18n.ts';\nimport './app.ts';\n", resolveDir: src, sourcefile: 'console-page.ts', loader: 'ts' },
    outfile: join(out, 'app.js'),
    plugins: [lazyPages],
  });
  keep(shell);
  const inShell = new Set(Object.keys(shell.metafile.inputs).map((f) => resolve(src, f)));
  const shared = new Set([join(src, 'lib.ts'), join(src, 'i18n.ts')]);
  const fromShell: Plugin = {
    name: 'from-shell',
    setup(b) {
      b.onResolve({ filter: /^\./ }, (a) => {
        // The sources import each other as .js (TypeScript's rule); the files are .ts.
        const target = resolve(a.resolveDir, a.path).replace(/\.js$/, '.ts');
        if (shared.has(target)) return { path: '../app.js', external: true };
        if (inShell.has(target)) return { errors: [{ text: `${a.path} is part of app.js: pages share the shell's code only through lib.ts and i18n.ts` }] };
        return undefined;
      });
    },
  };
  const pages = readdirSync(join(src, 'pages')).filter((f) => f.endsWith('.ts') && !inShell.has(join(src, 'pages', f)));
  keep(await build({ ...common, entryPoints: pages.map((f) => join(src, 'pages', f)), outdir: join(out, 'pages'), plugins: [fromShell] }));
  keep(await build({ ...common, entryPoints: [join(src, 'style.css')], outfile: join(out, 'style.css'), bundle: false }));
  const html = readFileSync(join(src, 'index.html'), 'utf8');
  if (!html.includes('<script type="module" src="/app.js"></script>') || html.includes('modulepreload')) throw new Error('console page: index.html does not load /app.js as expected');
  files.set('/index.html', new TextEncoder().encode(html));
  for (const f of readdirSync(src)) if (!['.ts', '.js', '.css', '.html', '.json', ''].includes(extname(f))) files.set(`/${f}`, readFileSync(join(src, f)));
  if (outdir) {
    rmSync(outdir, { recursive: true, force: true });
    for (const [p, bytes] of files) {
      const target = join(outdir, ...p.slice(1).split('/'));
      mkdirSync(dirname(target), { recursive: true });
      writeFileSync(target, bytes);
    }
  }
  return files;
}

/** The page written to outdir (scripts/bundle.ts: beside the production bundle). */
export async function bundleConsolePage(outdir: string, src = WEB): Promise<void> {
  await buildConsolePage(src, outdir);
}
