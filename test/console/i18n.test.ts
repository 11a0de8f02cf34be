// Every string key the pages use exists in both languages, and both languages have the
// same keys (the i18n table is the one place the console's words live).
import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const web = 'edge/console/web';
const src = readFileSync(join(web, 'i18n.js'), 'utf8');
const block = (lang: string) => {
  const start = src.indexOf(`  ${lang}: {`);
  const end = src.indexOf('\n  },', start);
  return new Set([...src.slice(start, end).matchAll(/'([\w.]+)':/g)].map((m) => m[1]!));
};

t.test('same keys in Chinese and English', async (t) => {
  const zh = block('zh');
  const en = block('en');
  t.ok(zh.size > 100, `${zh.size} keys`);
  t.same([...zh].filter((k) => !en.has(k)), [], 'missing in English');
  t.same([...en].filter((k) => !zh.has(k)), [], 'missing in Chinese');
});

t.test('every key used by a page exists', async (t) => {
  const zh = block('zh');
  const files = ['app.js', 'lib.js', ...readdirSync(join(web, 'pages')).map((f) => `pages/${f}`)];
  const used = new Set<string>();
  for (const f of files) for (const m of readFileSync(join(web, f), 'utf8').matchAll(/\bt\('([\w.]+)'/g)) used.add(m[1]!);
  // Keys built at run time: page names, roles, person kinds, door states.
  for (const p of ['dashboard', 'meters', 'doors', 'people', 'camera', 'config', 'system', 'users']) used.add(`nav.${p}`);
  for (const r of ['viewer', 'technician', 'admin']) used.add(`role.${r}`);
  for (const k of ['resident', 'staff', 'visitor']) used.add(`people.${k}`);
  for (const s of ['locked', 'unlocked', 'open', 'closed', 'unknown']) used.add(`door.${s}`);
  t.same([...used].filter((k) => !zh.has(k)), [], 'used but not defined');
});
