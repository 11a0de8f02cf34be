// npm run config:example — regenerate config.example.yaml from the schema.
import { writeFileSync } from 'node:fs';
import { renderExampleConfig } from '../edge/config/example.js';

writeFileSync(new URL('../config.example.yaml', import.meta.url), renderExampleConfig());
console.log('config.example.yaml written');
