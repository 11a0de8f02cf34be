#!/usr/bin/env node
// The `estate-edge` entry (node dist/bundle/edge/main.js, tsx edge/main.ts): holds
// SIGTERM/SIGINT first, then loads the CLI (edge/cli.ts) and everything it needs, so a
// stop during that second of loading is a clean stop too (edge/signals.ts).
import { holdSignals } from './signals.js';

const invoked = process.argv[1] ?? '';
if (/[\\/]edge[\\/]main\.(ts|js)$/.test(invoked)) {
  holdSignals();
  import('./cli.js').then(
    ({ main, EXIT_CRASH }) =>
      main(process.argv.slice(2)).then(
        (code) => setTimeout(() => process.exit(code), 50),
        (err) => {
          process.stderr.write(`estate-edge: ${String(err?.stack ?? err)}\n`);
          process.exit(EXIT_CRASH);
        },
      ),
    (err) => {
      process.stderr.write(`estate-edge: cannot load: ${String(err?.stack ?? err)}\n`);
      process.exit(1);
    },
  );
}
