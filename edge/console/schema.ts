// Config section `console`: the technician web console served by the gateway itself.
import { Type, type Static } from '@sinclair/typebox';
import { Section } from '../config/types.js';

export const ConsoleTlsSchema = Section(
  {
    enabled: Type.Boolean({ default: false, description: 'Serve the console over HTTPS (recommended on a shared network).' }),
    cert: Type.Optional(Type.String({ minLength: 1, description: 'PEM certificate file. Without cert/key a self-signed certificate is generated on first start and kept in gateway.dataDir/console-tls/.' })),
    key: Type.Optional(Type.String({ minLength: 1, description: 'PEM private key file of the certificate (keep it 0600).' })),
  },
  { description: 'HTTPS for the console.', default: {} },
);

export const ConsoleSchema = Section(
  {
    enabled: Type.Boolean({ default: true, description: 'Serve the technician web console.' }),
    host: Type.String({ minLength: 1, default: '0.0.0.0', description: 'Listen address (0.0.0.0 = every interface, so a phone on the local network reaches it).' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 8080, description: 'Listen port (0 = any free port).' }),
    tls: ConsoleTlsSchema,
    hostNames: Type.Array(Type.String({ minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?\\.?$', description: 'A DNS name, e.g. gate.estate.lan.' }), {
      default: [],
      maxItems: 32,
      description:
        "Further DNS names the console is reached by (e.g. a name in the estate's DNS). Besides these it answers only to IP addresses, localhost and this box's hostname (and hostname.local); a request under any other name is refused, so a web page cannot reach the box through a name of its own (DNS rebinding).",
    }),
    sessionTtlMin: Type.Integer({ minimum: 5, maximum: 10080, default: 480, description: 'A session ends after this many minutes without a request.' }),
    lockoutAttempts: Type.Integer({
      minimum: 3,
      maximum: 100,
      default: 5,
      description: 'Wrong passwords in a row for one account from one client address before that account is locked for that address; the same number of different user names from one address locks the address, and 4 times as many for one account from any addresses lock the account.',
    }),
    lockoutMin: Type.Integer({ minimum: 1, maximum: 1440, default: 15, description: 'How long a lockout lasts, in minutes.' }),
    maxUploadKB: Type.Integer({ minimum: 64, maximum: 32768, default: 4096, description: 'Largest upload (face photo, config file) in KiB.' }),
    applyHealthGraceS: Type.Integer({
      minimum: 10,
      maximum: 3600,
      default: 90,
      description: 'After a config change applied from the console, the gateway must be healthy within this many seconds or the previous config is restored.',
    }),
  },
  { description: 'Technician web console (HTTP/HTTPS on the local network).', default: {} },
);

export type ConsoleConfig = Static<typeof ConsoleSchema>;

// The section's place in the gateway's config type (edge/config/core.ts).
declare module '../config/core.js' {
  interface CapabilitySections {
    console: ConsoleConfig;
  }
}
