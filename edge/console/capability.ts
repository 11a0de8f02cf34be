// The technician console (local web UI). Listed last: it wires itself to the services,
// commands and events of the capabilities started before it.
import { defineCapability } from '../capability.js';
import { ConsoleSchema } from './schema.js';
import { consoleChecks } from './checks.js';

export const consoleCapability = defineCapability({
  name: 'console',
  config: { key: 'console', schema: ConsoleSchema },
  checks: [consoleChecks],
  wanted: (c) => c.console.enabled,
  // Fastify is loaded only when the console is on.
  load: async () => (await import('./module.js')).consoleModule,
  doctor: async () => (await import('./doctor.js')).consoleDoctor,
});
