// The gateway validates its configuration with Ajv code generated ahead of time
// (edge/config/validator.generated.cjs: git-ignored, written before the test run by tap's
// `before` script, scripts/config-validator.ts, and by the build and the pack). It must be
// exactly what Ajv makes from the current schema, and behave like a validator compiled at run time.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { GENERATED_VALIDATOR, renderConfigValidator } from '../../edge/config/validator-source.js';
import { validateConfig } from '../../edge/config/load.js';
import { GatewayConfigSchema } from '../../edge/config/schema.js';
import { simulatedEstateConfig } from '../../edge/config/embedded.js';

const require = createRequire(import.meta.url);

t.test('the generated validator is generated from the current schema', async (t) => {
  t.equal(readFileSync(new URL(`../../${GENERATED_VALIDATOR}`, import.meta.url), 'utf8'), renderConfigValidator(), 'stale: run `npm run config:generate` (the test run regenerates it before the first file)');
});

t.test('it agrees with a validator compiled at run time: verdicts, defaults, errors', async (t) => {
  const { Ajv } = require('ajv') as typeof import('ajv');
  const runtime = new Ajv({ allErrors: true, useDefaults: true, strict: false }).compile(GatewayConfigSchema);
  const generated = require(`../../${GENERATED_VALIDATOR}`) as typeof runtime;
  const cases: Array<[string, unknown, boolean]> = [
    ['minimal', { site: { id: 's' }, gateway: { id: 'g' }, uplink: { url: 'mqtt://127.0.0.1:1883' } }, true],
    ['simulated estate', simulatedEstateConfig(), true],
    ['wrong types, an unknown key, a bad enum', { site: { id: 5 }, gateway: { id: 'g', colour: 'red' }, uplink: { url: 'mqtt://x', protocolVersion: 7 }, log: { level: 'loud' } }, false],
    ['bad meter bus', { site: { id: 's' }, gateway: { id: 'g' }, uplink: { url: 'mqtt://x' }, meters: { buses: [{ id: 'b', protocol: 'smoke-signals' }] } }, false],
    ['not a mapping', { site: [] }, false],
  ];
  for (const [name, input, valid] of cases) {
    const a = structuredClone(input);
    const b = structuredClone(input);
    t.equal(generated(a), valid, `${name}: generated verdict`);
    t.equal(runtime(b), valid, `${name}: run-time verdict`);
    t.same(a, b, `${name}: same defaults filled in`);
    t.same(generated.errors ?? null, runtime.errors ?? null, `${name}: same errors`);
  }
  // What the service reports for one of them, through load.ts's descriptions.
  const { problems } = validateConfig({ site: { id: 's' }, gateway: { id: 'g', colour: 'red' }, uplink: { url: 'mqtt://x' }, log: { level: 'loud' } });
  t.ok(problems.includes('gateway.colour: unknown key'), problems.join(' | '));
  t.ok(
    problems.some((p) => p.startsWith('log.level: must be one of')),
    problems.join(' | '),
  );
});
