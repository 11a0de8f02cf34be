// `npm run models -- [--from DIR] [--check] [--only id,id] [--dest DIR] [--manifest FILE] [--offline] [--timeout-ms N]`
// Installs the face models listed in models/manifest.json into models/ (see docs/models.md),
// or with --check only verifies what is installed. Exit status: 0 when every required
// model is in place and verified, 1 otherwise, 2 for bad usage or an invalid manifest.
import { parseArgs } from 'node:util';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadManifest, defaultModelsDir, ManifestError } from '../models/manifest.js';
import { checkModels, installModels, requiredModelIds } from '../models/install.js';

const USAGE = `usage: npm run models -- [--from DIR] [--check] [--only ID,ID] [--dest DIR] [--manifest FILE] [--offline] [--timeout-ms N]
  --from DIR        mirror directory holding the model files (e.g. a USB stick, ../shared/models)
  --check           only verify the installed files (OK / BAD / missing); install nothing
  --only ID,ID      restrict to these model ids (all of them are then required)
  --dest DIR        install directory (default: the models/ directory holding the manifest)
  --manifest FILE   manifest to use (default: models/manifest.json)
  --offline         skip upstream URLs (npm and the mirror are still used)
  --timeout-ms N    timeout of one URL download (default 20000)`;

async function main(): Promise<number> {
  let args;
  try {
    args = parseArgs({
      options: {
        from: { type: 'string' },
        check: { type: 'boolean', default: false },
        only: { type: 'string' },
        dest: { type: 'string' },
        manifest: { type: 'string' },
        offline: { type: 'boolean', default: false },
        'timeout-ms': { type: 'string' },
        help: { type: 'boolean', default: false },
      },
      strict: true,
      allowPositionals: false,
    }).values;
  } catch (e) {
    console.error(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args.help) {
    console.log(USAGE);
    return 0;
  }
  const timeoutMs = args['timeout-ms'] !== undefined ? Number(args['timeout-ms']) : undefined;
  if (timeoutMs !== undefined && !(Number.isInteger(timeoutMs) && timeoutMs > 0)) {
    console.error(`--timeout-ms must be a positive integer\n${USAGE}`);
    return 2;
  }
  let manifest;
  try {
    manifest = loadManifest(args.manifest ?? join(defaultModelsDir(), 'manifest.json'));
  } catch (e) {
    console.error(e instanceof ManifestError ? e.message : String(e));
    return 2;
  }
  const dest = resolve(args.dest ?? defaultModelsDir());
  const only = args.only
    ?.split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  const from = args.from !== undefined ? resolve(args.from) : undefined;
  if (from !== undefined && !existsSync(from)) {
    // Not fatal: the other sources may still work, but say so plainly.
    console.error(`models: mirror directory ${from} does not exist; trying the other sources`);
  }
  const required = new Set(only ?? requiredModelIds(manifest));

  try {
    if (args.check) {
      const results = await checkModels(manifest, dest, only);
      for (const r of results) {
        const hash = r.sha256 !== undefined ? `  sha256 ${r.sha256}` : '';
        console.log(`${r.status.padEnd(7)} ${r.file}${hash}${r.status === 'BAD' ? `  (expected ${manifest.models[r.id]!.sha256})` : ''}`);
      }
      const bad = results.filter((r) => r.status !== 'OK' && required.has(r.id));
      if (bad.length > 0) {
        console.error(`models: ${bad.length} required model(s) missing or bad: ${bad.map((r) => r.file).join(', ')} — run npm run models -- --from DIR`);
        return 1;
      }
      return 0;
    }
    const results = await installModels({
      manifest,
      dest,
      ...(from !== undefined ? { from } : {}),
      ...(only ? { only } : {}),
      offline: args.offline,
      ...(timeoutMs !== undefined ? { urlTimeoutMs: timeoutMs } : {}),
      log: (line) => console.log(`models: ${line}`),
    });
    const failed = results.filter((r) => r.status === 'failed');
    const requiredFailed = failed.filter((r) => r.required);
    for (const r of failed) {
      console.error(`models: ${r.required ? 'REQUIRED' : 'optional'} model ${r.id} (${r.file}) could not be obtained:\n  ${r.attempts.join('\n  ') || 'no source configured'}`);
    }
    if (requiredFailed.length > 0) {
      console.error(`models: FAILED — ${requiredFailed.length} required model(s) missing: ${requiredFailed.map((r) => r.file).join(', ')}`);
      return 1;
    }
    console.log(`models: ${results.length - failed.length}/${results.length} model(s) in place in ${dest}`);
    return 0;
  } catch (e) {
    console.error(`models: ${(e as Error).message}`);
    return 2;
  }
}

// `npm run models -- --check | head`: a closed pipe is not an error worth a stack trace.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw e;
});
process.exitCode = await main();
