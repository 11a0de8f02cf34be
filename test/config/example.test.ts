import t from 'tap';
import { readFileSync } from 'node:fs';
import { renderExampleConfig } from '../../edge/config/example.js';
import { parseConfig } from '../../edge/config/load.js';

t.test('config.example.yaml is generated from the schema and up to date', async (t) => {
  const committed = readFileSync(new URL('../../config.example.yaml', import.meta.url), 'utf8');
  t.equal(committed, renderExampleConfig(), 'run `npm run config:generate` after changing the schema');
});

t.test('the example is itself a valid configuration, and documents every key', async (t) => {
  const text = renderExampleConfig();
  const loaded = parseConfig(text, 'config.example.yaml');
  t.equal(loaded.config.site.id, 'CHANGE-ME');
  // Every top-level section of the schema appears.
  for (const section of Object.keys(loaded.config)) t.match(text, new RegExp(`^${section}:`, 'm'), `section ${section}`);
  t.match(text, /# password: \{ env: NAME \}/, 'secret references are shown');
});
