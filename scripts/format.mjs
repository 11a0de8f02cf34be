#!/usr/bin/env node
// npm run format — formats the code and applies Biome's safe fixes (biome.jsonc), then
// checks what is left, as `npm run lint` and the test run do.
//
// The first run after issue 17's branches are merged is the one formatting commit: it also
// deletes biome.jsonc's TRANSITIONAL entries (the formatter held off the existing code,
// optional-chain fixes held off code other branches were rewriting) and applies those
// fixes (`!a || !a.b` → `!a?.b`; Biome marks them unsafe only because `a?.b` differs from
// `a && a.b` for a falsy non-null `a` in value, not in truth). After it, that step is a no-op.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const CONFIG = new URL('../biome.jsonc', import.meta.url);
const BIOME = ['node_modules/@biomejs/biome/bin/biome'];
const run = (...args) => spawnSync(process.execPath, [...BIOME, ...args], { stdio: 'inherit' }).status;

const text = readFileSync(CONFIG, 'utf8');
const stripped = text.replace(/^[ \t]*\/\/ TRANSITIONAL-BEGIN[\s\S]*?\/\/ TRANSITIONAL-END[^\n]*\n/m, '');
if (stripped !== text) {
  writeFileSync(CONFIG, stripped);
  console.log('format: biome.jsonc: transitional entries removed (formatter on for all code)');
  run('lint', '--write', '--unsafe', '--only=complexity/useOptionalChain', '.');
}
run('check', '--write', '.');
const status = run('check', '--error-on-warnings', '.');
if (status !== 0) console.log('format: findings remain (above): fix them by hand, then `npm run lint`');
process.exit(status ?? 1);
