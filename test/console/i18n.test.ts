// Every string key the pages use exists in both languages, and both languages have the
// same keys (the i18n table is the one place the console's words live).
import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const web = 'edge/console/web';
const src = readFileSync(join(web, 'i18n.ts'), 'utf8');
const block = (lang: string) => {
  const start = src.indexOf(`  ${lang}: {`);
  const end = src.indexOf('\n  },', start);
  return new Set([...src.slice(start, end).matchAll(/'([\w.]+)':/g)].map((m) => m[1]!));
};

t.test('same keys in Chinese and English', async (t) => {
  const zh = block('zh');
  const en = block('en');
  t.ok(zh.size > 100, `${zh.size} keys`);
  t.same(
    [...zh].filter((k) => !en.has(k)),
    [],
    'missing in English',
  );
  t.same(
    [...en].filter((k) => !zh.has(k)),
    [],
    'missing in Chinese',
  );
});

t.test('every key used by a page exists', async (t) => {
  const zh = block('zh');
  const files = ['app.ts', 'lib.ts', ...readdirSync(join(web, 'pages')).map((f) => `pages/${f}`)];
  const used = new Set<string>();
  for (const f of files) for (const m of readFileSync(join(web, f), 'utf8').matchAll(/\bt\('([\w.]+)'/g)) used.add(m[1]!);
  // Keys built at run time: page names, roles, person kinds, door states.
  for (const p of ['dashboard', 'meters', 'doors', 'people', 'camera', 'config', 'system', 'users', 'account']) used.add(`nav.${p}`);
  for (const r of ['viewer', 'technician', 'admin']) used.add(`role.${r}`);
  for (const k of ['resident', 'staff', 'visitor']) used.add(`people.${k}`);
  for (const s of ['locked', 'unlocked', 'open', 'closed', 'unknown']) used.add(`door.${s}`);
  t.same(
    [...used].filter((k) => !zh.has(k)),
    [],
    'used but not defined',
  );
});

t.test('every configuration key has a Chinese name and help (the form is drawn from them)', async (t) => {
  const { GatewayConfigSchema } = await import('../../edge/config/schema.js');
  // A browser module (checked by its own tsconfig, edge/console/web): imported by a path
  // this project's compiler does not follow (tsx loads the .ts).
  const zhModule = '../../edge/console/web/schema-zh.js';
  const { SCHEMA_ZH } = (await import(zhModule)) as { SCHEMA_ZH: Record<string, [string, string]> };
  const paths: string[] = [];
  const walk = (s: any, path: string) => {
    // eslint-disable-line @typescript-eslint/no-explicit-any
    if (!s || typeof s !== 'object') return;
    if (path) paths.push(path);
    if (s.properties) for (const [k, v] of Object.entries(s.properties)) walk(v, path ? `${path}.${k}` : k);
    if (s.type === 'array' && s.items) walk(s.items, `${path}[]`);
    for (const alt of s.anyOf ?? []) if (alt.properties) walk(alt, path);
  };
  walk(GatewayConfigSchema, '');
  t.ok(paths.length > 200, `${paths.length} keys`);
  t.same(
    [...new Set(paths)].filter((p) => !SCHEMA_ZH[p]),
    [],
    'keys without a Chinese entry',
  );
  t.same(
    Object.keys(SCHEMA_ZH).filter((p) => !paths.includes(p)),
    [],
    'entries for keys that do not exist',
  );
  const han = /[\u4e00-\u9fff]/;
  t.same(
    Object.entries(SCHEMA_ZH).filter(([, [name, help]]) => !han.test(name + help) || !help),
    [],
    'each entry in Chinese, with help',
  );
});
