#!/usr/bin/env node
// Runs the tap suite and ends with the totals on a line of their own, as CI reads them:
//   N passed, N failed
// Counts leaf assertions (a subtest's own summary line is not counted again). tap's raw
// TAP stream is parsed with tap-parser and echoed, so the log still shows every test.
// Extra arguments go to tap (e.g. a file list).
//
// The whole suite (no file list, or --lint with one) starts with the lint: `biome check` (lint + format check,
// no writes; biome.jsonc), counted as one test in the totals, so a finding fails the run
// and is named in the Failed list. `npm run lint` runs the same check, `npm run format`
// fixes what can be fixed.
import { spawn, spawnSync } from 'node:child_process';
import { Parser } from 'tap-parser';

const forceLint = process.argv.includes('--lint');
const files = process.argv.slice(2).filter((a) => a !== '--lint');
let passed = 0;
let failed = 0;
let skipped = 0;
const failures = [];

if (forceLint || !files.some((a) => !a.startsWith('-'))) {
  const lint = spawnSync(process.execPath, ['node_modules/@biomejs/biome/bin/biome', 'check', '--error-on-warnings', '--colors=off', '.'], { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  process.stdout.write(`${lint.stdout}${lint.stderr}`);
  if (lint.status === 0) {
    passed++;
    process.stdout.write('lint: ok (biome check)\n');
  } else {
    failed++;
    failures.push('lint: biome check found problems (above); `npm run lint` shows them, `npm run format` fixes formatting and safe fixes');
    process.stdout.write('lint: FAILED (biome check, above)\n');
  }
}

const args = ['tap', '--reporter=tap', ...files];
const child = spawn('npx', args, { stdio: ['ignore', 'pipe', 'inherit'] });

function attach(parser, path) {
  let childPending = false;
  parser.on('child', (c) => {
    childPending = true;
    attach(c, [...path, c.name]);
  });
  parser.on('assert', (a) => {
    if (childPending) {
      childPending = false;
      // The subtest's summary point: count it only if it failed with no failing leaf
      // (e.g. a file that crashed or timed out before reporting).
      if (!a.ok && !a.skip && !a.todo && !failures.some((f) => f.startsWith([...path, a.name].join(' > ')))) {
        failed++;
        failures.push([...path, a.name].join(' > ') + ' (subtest failed)');
      }
      return;
    }
    if (a.skip || a.todo) skipped++;
    else if (a.ok) passed++;
    else {
      failed++;
      failures.push([...path, a.name].join(' > '));
    }
  });
}

const parser = new Parser();
attach(parser, []);
child.stdout.on('data', (d) => {
  process.stdout.write(d);
  parser.write(d);
});
child.on('close', (code) => {
  parser.end();
  if (failures.length) {
    process.stdout.write('\nFailed:\n');
    for (const f of failures) process.stdout.write(`  - ${f}\n`);
  }
  if (code !== 0 && failed === 0) {
    failed = 1;
    process.stdout.write(`\ntap exited with status ${code}\n`);
  }
  process.stdout.write(`\n${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}\n`);
  process.exit(failed > 0 ? 1 : 0);
});
