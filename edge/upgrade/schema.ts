// Config section `upgrade`: where releases live (A/B under <root>/opt/estate-edge), the
// fleet's public signing key, the CA for HTTPS downloads, and how long a new version has
// to prove itself healthy before it is rolled back.
import { Type, type Static } from '@sinclair/typebox';
import { Section } from '../config/types.js';

export const UpgradeSchema = Section(
  {
    enabled: Type.Boolean({ default: true, description: 'Accept gateway.upgrade from the platform (signed releases only).' }),
    root: Type.String({ default: '/', description: 'Root prefix of the install (releases in <root>/opt/estate-edge/releases); only tests and image builds change it.' }),
    publicKeyFile: Type.Optional(Type.String({ description: "The fleet's Ed25519 public key (PEM) releases must be signed with. Default <root>/etc/estate-edge/fleet-signing.pub." })),
    caFile: Type.Optional(Type.String({ description: 'PEM CA for HTTPS downloads. Default: uplink.tls.ca, else the system CAs.' })),
    commitTimeoutS: Type.Integer({ minimum: 10, maximum: 3600, default: 180, description: 'A new version must report READY, reach the broker and pass its self-test within this time, else the previous version is started again.' }),
  },
  { description: 'Signed remote upgrades (gateway.upgrade).', default: {} },
);

export type UpgradeConfig = Static<typeof UpgradeSchema>;

declare module '../config/core.js' {
  interface CapabilitySections {
    upgrade: UpgradeConfig;
  }
}
