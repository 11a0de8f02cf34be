// Writes edge/config/validator.generated.cjs, the Ajv code the gateway validates its
// config with (edge/config/validator-source.ts). It is generated, not committed: tap runs
// this before any test file (.taprc `before`), so `npm test` and `npx tap test/x.test.ts`
// both see the current schema; the build and pack do it through scripts/bundle.ts.
import { fileURLToPath } from 'node:url';
import { writeConfigValidator } from '../edge/config/validator-source.js';

writeConfigValidator(fileURLToPath(new URL('..', import.meta.url)));
