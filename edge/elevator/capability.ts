// The elevator e-bike blocker: a camera per elevator car, a COCO object detector in an
// inference worker, a door-hold relay (safe state released) and a voice prompt.
import { defineCapability } from '../capability.js';
import { ElevatorSchema } from './schema.js';
import { elevatorChecks, elevatorWarnings } from './checks.js';

export const elevatorCapability = defineCapability({
  name: 'elevator',
  config: { key: 'elevator', schema: ElevatorSchema },
  checks: [elevatorChecks],
  warnings: [elevatorWarnings],
  wanted: (c) => c.elevator.cars.length > 0,
  load: async () => (await import('./module.js')).createElevatorModule,
  doctor: async () => (await import('./doctor.js')).elevatorDoctor,
  events: [
    { name: 'elevator.state', role: 'viewer' },
    { name: 'elevator.ebike', role: 'viewer' },
    { name: 'elevator.alarm', role: 'viewer' },
  ],
  pages: [{ id: 'elevator', what: 'elevator e-bike blocker', service: 'elevator' }],
});
