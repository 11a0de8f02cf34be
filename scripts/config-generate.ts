// npm run config:generate — regenerate what is derived from the config schema:
// config.example.yaml (documentation) and edge/config/validator.generated.cjs (the validator
// the gateway runs). A test fails when either is out of date.
import { writeFileSync } from 'node:fs';
import { renderExampleConfig } from '../edge/config/example.js';
import { GENERATED_VALIDATOR, renderConfigValidator } from '../edge/config/validator-source.js';

writeFileSync(new URL('../config.example.yaml', import.meta.url), renderExampleConfig());
writeFileSync(new URL(`../${GENERATED_VALIDATOR}`, import.meta.url), renderConfigValidator());
console.log('config.example.yaml and edge/config/validator.generated.cjs written');
