// The console's browser code (edge/console/web) keeps one direction: pages import the
// shell (lib.ts: h(), api(), the session; i18n.ts), never the reverse — the shell names its
// pages only in its page registry, through lazy import() (app.ts PAGES, the dashboard's
// static import excepted: it is part of the first render). The browser code imports from
// the server only the type-only API contract (edge/console/api-types.ts), and it is
// TypeScript: a .js file under edge/console/web would be served untyped (the page is built
// from the .ts sources in memory or beside the bundle, never into the source tree).
import t from 'tap';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { staticSpecifiers } from './import-graph.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const WEB = join(ROOT, 'edge', 'console', 'web');

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
}
const rel = (p: string) => relative(WEB, p).split('\\').join('/');
const target = (from: string, spec: string) => rel(resolve(dirname(from), spec).replace(/\.js$/, '.ts'));

/** Shell modules' static imports of a page (the registry's entry for the dashboard allowed). */
export function shellImportsOfPages(sources: Record<string, string>): string[] {
  const out: string[] = [];
  for (const [file, text] of Object.entries(sources)) {
    if (file.startsWith('pages/')) continue;
    for (const spec of staticSpecifiers(text)) {
      const to = rel(resolve(WEB, dirname(file), spec).replace(/\.js$/, '.ts'));
      if (to.startsWith('pages/') && !(file === 'app.ts' && to === 'pages/dashboard.ts')) out.push(`${file} → ${to}`);
    }
  }
  return out;
}

const sources = Object.fromEntries(
  files(WEB)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => [rel(f), readFileSync(f, 'utf8')]),
);

t.test('the check finds a shell module importing a page', async (t) => {
  t.same(shellImportsOfPages({ 'lib.ts': "import { eventLine } from './pages/dashboard.js';\n", 'app.ts': "import * as d from './pages/dashboard.js';\nconst m = () => import('./pages/meters.js');\n" }), ['lib.ts → pages/dashboard.ts']);
  t.same(shellImportsOfPages({ 'app.ts': "import { x } from './pages/meters.js';\n" }), ['app.ts → pages/meters.ts'], 'only the dashboard may be imported statically, by app.ts');
});

t.test('no shell module imports a page (pages are reached through the registry only)', async (t) => {
  t.ok(
    Object.keys(sources).some((f) => f.startsWith('pages/')),
    'pages found',
  );
  t.same(shellImportsOfPages(sources), []);
});

t.test('pages import only the shell, other pages or the API types; the browser code imports from the server only api-types.ts, type-only', async (t) => {
  const bad: string[] = [];
  for (const [file, text] of Object.entries(sources)) {
    const from = join(WEB, file);
    for (const spec of staticSpecifiers(text)) {
      const to = target(from, spec);
      if (to.startsWith('..')) {
        if (to !== '../api-types.ts') bad.push(`${file} → ${to}: only ../api-types.ts may be imported from outside the page`);
        else if (!new RegExp(`import\\s+type\\s+[^;]*['"]${spec.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}['"]`).test(text)) bad.push(`${file} → ${to}: import it with \`import type\``);
      }
    }
  }
  t.same(bad, []);
  // api-types.ts itself imports nothing (it is the contract both sides compile against).
  t.same(staticSpecifiers(readFileSync(join(ROOT, 'edge', 'console', 'api-types.ts'), 'utf8')), [], 'api-types.ts imports nothing');
});

t.test('no JavaScript under edge/console/web: the browser code is TypeScript', async (t) => {
  const js = files(WEB).filter((f) => /\.(m|c)?js$/.test(f));
  t.same(js.map(rel), [], 'convert it to .ts (edge/console/web/tsconfig.json checks it)');
  t.ok(sources['app.ts'] && sources['lib.ts'] && sources['i18n.ts'] && sources['schema-zh.ts'], 'the shell and its tables are there as .ts');
});
