// The gateway's malloc_trim addon (edge/native/): built by npm ci from binding.gyp, it gives
// the pages of freed chunks that glibc keeps inside its heaps back to the OS; a missing
// addon is reported, never thrown.
import t from 'tap';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MALLOC_TRIM_ADDON, trimMalloc } from '../../edge/native/malloc-trim.js';
import { REPO } from '../../scripts/lib/unit.js';

t.test('the addon is built and trims in this process', async (t) => {
  t.ok(existsSync(join(REPO, MALLOC_TRIM_ADDON)), `${MALLOC_TRIM_ADDON} built by npm ci`);
  const r = trimMalloc();
  t.equal(r.ok, true, JSON.stringify(r));
  if (r.ok) {
    t.type(r.released, 'boolean');
    t.ok(r.ms >= 0 && r.ms < 1000, `took ${r.ms.toFixed(2)} ms`);
  }
});

t.test('a missing addon is reported with the reason, every time, without throwing', async (t) => {
  const missing = join(tmpdir(), 'no-such-dir', 'malloc_trim.node');
  const r1 = trimMalloc(missing);
  t.equal(r1.ok, false);
  if (!r1.ok) t.match(r1.reason, /^cannot load .*no-such-dir/);
  t.same(trimMalloc(missing), r1, 'the same answer on the next call');
});

t.test('a file that is not the addon is reported', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ee-trim-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bogus = join(dir, 'malloc_trim.node');
  writeFileSync(bogus, 'not an ELF file');
  const r = trimMalloc(bogus);
  t.equal(r.ok, false);
  if (!r.ok) t.match(r.reason, /^cannot load /);
});

// The effect, in a child with the unit's malloc settings: 3000 buffers of 48 KB (below the
// unit's 1 MB mmap threshold, so they live in the heap), every other one freed. free()
// returns nothing (the holes sit between live chunks); malloc_trim returns their pages.
t.test('freed chunks between live ones: resident after free(), returned by trimMalloc()', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ee-trim-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const script = join(dir, 'holes.ts');
  writeFileSync(
    script,
    `import { readFileSync } from 'node:fs';
import { trimMalloc } from ${JSON.stringify(pathToFileURL(join(REPO, 'edge/native/malloc-trim.ts')).href)};
const rss = () => Number(/VmRSS:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
const gc = (globalThis as unknown as { gc: () => void }).gc;
gc();
const base = rss();
const keep: Buffer[] = [];
let drop: Buffer[] | null = [];
for (let i = 0; i < 3000; i++) {
  const b = Buffer.allocUnsafeSlow(48 * 1024);
  b.fill(i & 255);
  (i % 2 ? keep : drop).push(b);
}
const full = rss();
drop = null;
gc();
gc();
const freed = rss();
const r = trimMalloc();
const trimmed = rss();
console.log(JSON.stringify({ base, full, freed, trimmed, r, kept: keep.length }));
`,
  );
  const p = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', script], {
    encoding: 'utf8',
    cwd: REPO,
    env: { ...process.env, MALLOC_MMAP_THRESHOLD_: '1048576', MALLOC_ARENA_MAX: '2' },
    timeout: 60_000,
  });
  t.equal(p.status, 0, p.stderr);
  const m = JSON.parse(p.stdout.trim().split('\n').pop()!) as { base: number; full: number; freed: number; trimmed: number; r: { ok: boolean; released?: boolean }; kept: number };
  t.comment(`RSS MB: start ${m.base.toFixed(1)}, 3000 × 48 KB ${m.full.toFixed(1)}, half freed ${m.freed.toFixed(1)}, trimmed ${m.trimmed.toFixed(1)}`);
  t.ok(m.full - m.base > 120, 'the buffers are resident');
  t.ok(m.freed - m.base > 120, 'free() alone returned (almost) nothing: the holes are between live chunks');
  t.equal(m.r.ok, true, 'the addon loaded in the child');
  t.equal(m.r.released, true, 'malloc_trim says it released memory');
  t.ok(m.freed - m.trimmed > 50, `trimMalloc() returned ${(m.freed - m.trimmed).toFixed(1)} MB of the ~70 MB freed`);
  t.ok(m.trimmed - m.base > 60, 'the live half stays');
});
