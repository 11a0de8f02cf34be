// The config validator, generated ahead of time into edge/config/validator.generated.cjs
// (git-ignored: never committed). Written by `npm run build` and scripts/pack.sh (through
// scripts/bundle.ts), before every test run (scripts/config-validator.ts, tap's `before` in
// .taprc) and by `npm run config:generate`; test/config/validator.test.ts checks it is
// current and agrees with a validator compiled at run time.
//
// Why ahead of time: compiling the whole configuration schema with Ajv at start costs the
// box ~200 ms and, more importantly, ~6 MB of resident memory for the first tens of
// seconds (Ajv's code generator allocates heavily, and V8 only gives the heap back when its
// memory reducer runs, ~40 s later). Measured on the idle core with the unit's flags:
// RSS 73.6 MB for the first 40 s with the run-time compile, 68 MB with this module (and
// the reducer then runs after ~10 s). The generated code is Ajv's own standalone output for
// the same schema and options, so the errors are the same objects load.ts already describes.
//
// The output is CommonJS loaded with require() from the app root (load.ts), not a .ts
// module: TypeScript's flow analysis gives up on a function this large and then silently
// turns it off for the whole program (implicit-any errors everywhere else).
//
// Not imported by the service: only by the generator script and the test.
import { renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { GatewayConfigSchema } from './schema.js';
import { CONFIG_VALIDATOR_FILE } from './load.js';

const require = createRequire(import.meta.url);

/** Options of the one config validator (load.ts describes its errors). */
const OPTIONS = { allErrors: true, useDefaults: true, strict: false } as const;

/** Where the generated validator lives, from the app root (edge/paths.ts appPath). */
export const GENERATED_VALIDATOR = CONFIG_VALIDATOR_FILE;

/** The CommonJS module text of the generated validator. */
export function renderConfigValidator(): string {
  const { Ajv } = require('ajv') as typeof import('ajv');
  const standaloneCode = (require('ajv/dist/standalone/index.js') as typeof import('ajv/dist/standalone/index.js')).default;
  const ajv = new Ajv({ ...OPTIONS, code: { source: true, lines: true } });
  const code = standaloneCode(ajv, ajv.compile(GatewayConfigSchema));
  return ['// GENERATED from edge/config/schema.ts (Ajv standalone code, options in', '// edge/config/validator-source.ts) by the build, the test run or `npm run config:generate`.', '// Not committed (git-ignored); do not edit.', code, ''].join('\n');
}

/**
 * Writes the generated validator under `root` (the repository: the source tree's copy,
 * which scripts/pack.sh ships beside the compiled code). Atomically: test files running in
 * parallel may be loading it.
 */
export function writeConfigValidator(root: string): string {
  const file = join(root, GENERATED_VALIDATOR);
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, renderConfigValidator());
  renameSync(tmp, file);
  return file;
}
