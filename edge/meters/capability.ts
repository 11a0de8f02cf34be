// The meters capability: RS-485 meter reading (Modbus, DL/T 645, CJ/T 188).
import { defineCapability } from '../capability.js';
import { MetersSchema } from './schema.js';
import { metersChecks, metersWarnings } from './checks.js';

export const metersCapability = defineCapability({
  name: 'meters',
  config: { key: 'meters', schema: MetersSchema },
  checks: [metersChecks],
  warnings: [metersWarnings],
  wanted: (c) => c.meters.enabled && c.meters.buses.length > 0,
  load: async () => (await import('./module.js')).metersModule,
  doctor: async () => (await import('./doctor.js')).metersDoctor,
  events: [
    { name: 'meter.reading', role: 'viewer', transient: true },
    { name: 'meter.device', role: 'viewer' },
  ],
  pages: [{ id: 'meters', what: 'meter reading', service: 'meters' }],
});
