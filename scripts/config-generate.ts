// npm run config:generate — regenerate what is derived from the config schema:
// config.example.yaml (documentation, committed; a test fails when it is out of date) and
// edge/config/validator.generated.cjs (the validator the gateway runs; git-ignored, also
// written by the build, the pack and before every test run).
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderExampleConfig } from '../edge/config/example.js';
import { writeConfigValidator } from '../edge/config/validator-source.js';

writeFileSync(new URL('../config.example.yaml', import.meta.url), renderExampleConfig());
writeConfigValidator(fileURLToPath(new URL('..', import.meta.url)));
console.log('config.example.yaml and edge/config/validator.generated.cjs written');
