// The doors capability: locks, contacts, exit buttons and readers over GPIO, the local
// access decision, and the people it knows.
import { defineCapability } from '../capability.js';
import { DoorsSchema } from './schema.js';
import { doorsChecks } from './checks.js';

export const doorsCapability = defineCapability({
  name: 'doors',
  config: { key: 'doors', schema: DoorsSchema },
  checks: [doorsChecks],
  wanted: (c) => c.doors.doors.length > 0,
  load: async () => (await import('./module.js')).createDoorsModule,
  doctor: async () => (await import('./doctor.js')).doorsDoctor,
  events: [
    { name: 'door.state', role: 'viewer' },
    { name: 'door.alarm', role: 'viewer' },
    { name: 'door.pinWait', role: 'viewer' },
    // Who was let in where: personal data.
    { name: 'access.decision', role: 'technician' },
  ],
  pages: [
    { id: 'doors', what: 'door access', service: 'access' },
    { id: 'people', what: 'people (door access)', service: 'access', configuredByCommands: true },
  ],
});
