// Checks the schema cannot express (cross-field rules). Each returns its problems as
// "path: reason" lines. The core's own are here; each capability declares its own in
// its descriptor, and they are collected from the list (edge/capabilities.ts).
import type { ConfigCheck } from './core.js';
import type { CapabilityDescriptor } from '../capability.js';
import { CAPABILITIES } from '../capabilities.js';

export type { ConfigCheck };

const uplinkChecks: ConfigCheck = (c) => {
  const p: string[] = [];
  if (c.uplink.reconnectMaxMs < c.uplink.reconnectMinMs) p.push('uplink.reconnectMaxMs: must be ≥ uplink.reconnectMinMs');
  if ((c.uplink.tls.cert === undefined) !== (c.uplink.tls.key === undefined)) p.push('uplink.tls: cert and key must be given together (mutual TLS)');
  if (c.uplink.password !== undefined && c.uplink.username === undefined) p.push('uplink.password: needs uplink.username');
  return p;
};

/** The core's checks, then each capability's, in list order. */
export function checksOf(capabilities: readonly CapabilityDescriptor[]): ConfigCheck[] {
  return [uplinkChecks, ...capabilities.flatMap((c) => c.checks ?? [])];
}

/** Each capability's warnings (settings that load but look wrong), in list order. */
export function warningsOf(capabilities: readonly CapabilityDescriptor[]): ConfigCheck[] {
  return capabilities.flatMap((c) => c.warnings ?? []);
}

export const semanticChecks: ConfigCheck[] = checksOf(CAPABILITIES);

/** Settings that load but look wrong: check-config prints them, the service logs them; they never stop a start. */
export const configWarnings: ConfigCheck[] = warningsOf(CAPABILITIES);
