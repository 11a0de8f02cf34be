// A small static scanner of the TypeScript sources' import graph, for the cycle test.
//
// Edges are every static dependency a file declares on another source file of the
// repository: `import … from`, `import type … from`, `export … from`, `export type … from`,
// side-effect `import '…'` and module augmentation (`declare module '…'`). Type-only
// imports count: a type cycle is still a cycle of knowledge between two folders.
//
// Not edges: `import('…')` expressions. They are how a capability descriptor names its
// module without loading it (`load: () => import('./module.js')`: a box without a camera
// never loads onnxruntime), so they are resolved only after every static module has been
// evaluated and cannot take part in an initialisation cycle.
//
// Only relative specifiers are followed ('./x.js' → './x.ts'); packages are leaves.
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const STATIC_FROM = /^[ \t]*(?:import|export)\s+(?:type\s+)?[^'";]*?\sfrom\s*['"]([^'"]+)['"]/gm;
const SIDE_EFFECT = /^[ \t]*import\s*['"]([^'"]+)['"]/gm;
const AUGMENT = /^[ \t]*declare\s+module\s+['"]([^'"]+)['"]/gm;

/** The relative specifiers a source text depends on statically (type-only included). */
export function staticSpecifiers(text: string): string[] {
  const out: string[] = [];
  for (const re of [STATIC_FROM, SIDE_EFFECT, AUGMENT]) for (const m of text.matchAll(re)) out.push(m[1]!);
  return out.filter((s) => s.startsWith('.'));
}

function resolveSpecifier(from: string, spec: string): string | undefined {
  const base = resolve(dirname(from), spec);
  for (const candidate of [base.replace(/\.js$/, '.ts'), base.replace(/\.mjs$/, '.mts'), base, `${base}.ts`, join(base, 'index.ts')]) {
    if (/\.(ts|mts)$/.test(candidate) && existsSync(candidate) && statSync(candidate).isFile()) return candidate;
  }
  return undefined;
}

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (/\.(ts|mts)$/.test(name) && !name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

/** The import graph reached from every .ts file under `roots` (absolute paths → their dependencies). */
export function importGraph(roots: string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  const todo = roots.flatMap((r) => tsFiles(r));
  while (todo.length) {
    const file = todo.pop()!;
    if (graph.has(file)) continue;
    const deps = [
      ...new Set(
        staticSpecifiers(readFileSync(file, 'utf8'))
          .map((s) => resolveSpecifier(file, s))
          .filter((d): d is string => d !== undefined),
      ),
    ];
    graph.set(file, deps);
    for (const d of deps) if (!graph.has(d)) todo.push(d);
  }
  return graph;
}

/** Every elementary cycle found by a depth-first walk (one per back edge), each as a list of files, first = last. */
export function findCycles(graph: Map<string, string[]>): string[][] {
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const cycles: string[][] = [];
  const seen = new Set<string>();
  const visit = (node: string) => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      const s = state.get(next);
      if (s === 'open') {
        const cycle = [...stack.slice(stack.indexOf(next)), next];
        // The same cycle reached from another entry point is reported once.
        const ring = cycle.slice(0, -1);
        const start = ring.indexOf([...ring].sort()[0]!);
        const key = [...ring.slice(start), ...ring.slice(0, start)].join(' → ');
        if (!seen.has(key)) {
          seen.add(key);
          cycles.push(cycle);
        }
      } else if (s === undefined) visit(next);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of [...graph.keys()].sort()) if (!state.has(node)) visit(node);
  return cycles;
}

export function formatCycle(cycle: string[], root: string): string {
  return cycle.map((f) => relative(root, f)).join(' → ');
}
