// The charging capability: e-bike charging piles, each port metered and switched, cut
// when full, on over-power, after a maximum time, and all at once on smoke or heat.
import { defineCapability } from '../capability.js';
import { ChargingSchema } from './schema.js';
import { chargingChecks, chargingWarnings } from './checks.js';

export const chargingCapability = defineCapability({
  name: 'charging',
  config: { key: 'charging', schema: ChargingSchema },
  checks: [chargingChecks],
  warnings: [chargingWarnings],
  wanted: (c) => c.charging.enabled && c.charging.piles.length > 0,
  load: async () => (await import('./module.js')).chargingModule,
  doctor: async () => (await import('./doctor.js')).chargingDoctor,
  events: [
    { name: 'charging.port', role: 'viewer' },
    { name: 'charging.session', role: 'viewer' },
    { name: 'charging.alarm', role: 'viewer' },
  ],
  pages: [{ id: 'charging', what: 'charging-pile supervision', service: 'charging' }],
});
