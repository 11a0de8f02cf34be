// Fleet operations: what the platform does to a box it cannot visit — remote
// configuration (config.apply / config.rollback / config.history, confirmed only when the
// box is healthy again with its uplink, else rolled back by the box itself) and remote
// diagnostics (doctor.run, logs.get, metrics.get, gateway.restart). Always on: a box
// that cannot be reconfigured remotely is a site visit. The watch that confirms or rolls
// back an apply runs here for the console's applies too (one code path).
import type { TSchema } from '@sinclair/typebox';
import { defineCapability } from '../capability.js';

// No config section of its own (never: no key in the config type).
export const fleetCapability = defineCapability<never, TSchema>({
  name: 'fleet',
  wanted: () => true,
  load: async () => (await import('./module.js')).fleetModule,
});
