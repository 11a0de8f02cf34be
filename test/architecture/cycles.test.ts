// No import cycles in the service, type-only imports included: each capability folder
// depends on the core below it (config types, ConfigCheck, the module contract), never
// the other way round, and the core reaches the capabilities only through the one list
// of descriptors (edge/capabilities.ts). The scanner is test/architecture/import-graph.ts.
import t from 'tap';
import { mkdtempSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { findCycles, formatCycle, importGraph, staticSpecifiers } from './import-graph.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

t.test('the scanner sees every kind of static import, and not lazy import()', async (t) => {
  const text = [
    "import { a } from './a.js';",
    "import type { B } from '../b.js';",
    'import {',
    '  c,',
    '  type C,',
    "} from './c.js';",
    "export { d } from './d.js';",
    "export type { E } from './e.js';",
    "import './f.js';",
    "declare module '../g.js' { interface X { y: 1 } }",
    "import { Type } from '@sinclair/typebox';",
    "const lazy = () => import('./lazy.js');",
    "// import { commented } from './commented.js';",
  ].join('\n');
  t.same(staticSpecifiers(text).sort(), ['../b.js', '../g.js', './a.js', './c.js', './d.js', './e.js', './f.js']);
});

t.test('a type-only cycle is found and printed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'cycles-'));
  mkdirSync(join(dir, 'config'));
  mkdirSync(join(dir, 'meters'));
  writeFileSync(join(dir, 'config/schema.ts'), "import { M } from '../meters/schema.js';\nexport type Config = { m: M };\n");
  writeFileSync(join(dir, 'config/checks.ts'), "import type { Config } from './schema.js';\nimport { metersChecks } from '../meters/checks.js';\nexport type ConfigCheck = (c: Config) => string[];\n");
  writeFileSync(join(dir, 'meters/schema.ts'), 'export type M = number;\n');
  writeFileSync(join(dir, 'meters/checks.ts'), "import type { ConfigCheck } from '../config/checks.js';\nexport const metersChecks: ConfigCheck = () => [];\n");
  const cycles = findCycles(importGraph([dir])).map((c) => formatCycle(c, dir));
  t.same(cycles, ['config/checks.ts → meters/checks.ts → config/checks.ts']);
});

t.test('edge/ has no import cycle (type-only imports included)', async (t) => {
  const graph = importGraph([join(ROOT, 'edge')]);
  t.ok(graph.size > 100, `scanned ${graph.size} files`);
  const cycles = findCycles(graph).map((c) => formatCycle(c, ROOT));
  t.same(cycles, [], cycles.length ? `import cycles:\n  ${cycles.join('\n  ')}` : 'no cycle');
});
