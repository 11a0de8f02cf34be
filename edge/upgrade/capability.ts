// The upgrade capability: signed A/B upgrades pushed by the platform (gateway.upgrade),
// downloaded over HTTPS or received in chunks over MQTT, committed only once the new
// version is healthy, else rolled back (docs/deploy.md, "Signed upgrades").
import { defineCapability } from '../capability.js';
import { UpgradeSchema } from './schema.js';

export const upgradeCapability = defineCapability({
  name: 'upgrade',
  config: { key: 'upgrade', schema: UpgradeSchema },
  // Always loaded when enabled, even on a box that never receives an upgrade: its start
  // is where a new version commits itself, or where a rolled back one is reported.
  wanted: (c) => c.upgrade.enabled,
  load: async () => (await import('./module.js')).createUpgradeModule,
});
