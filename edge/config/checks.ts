// Checks the schema cannot express (cross-field rules). Each returns its problems as
// "path: reason" lines. Capability modules append their own checks here.
import type { GatewayConfig } from './schema.js';
import { doorsChecks } from '../doors/checks.js';
import { metersChecks, metersWarnings } from '../meters/checks.js';
import { visionChecks } from '../vision/checks.js';
import { consoleChecks } from '../console/checks.js';

export type ConfigCheck = (config: GatewayConfig) => string[];

const uplinkChecks: ConfigCheck = (c) => {
  const p: string[] = [];
  if (c.uplink.reconnectMaxMs < c.uplink.reconnectMinMs) p.push('uplink.reconnectMaxMs: must be ≥ uplink.reconnectMinMs');
  if ((c.uplink.tls.cert === undefined) !== (c.uplink.tls.key === undefined))
    p.push('uplink.tls: cert and key must be given together (mutual TLS)');
  if (c.uplink.password !== undefined && c.uplink.username === undefined) p.push('uplink.password: needs uplink.username');
  return p;
};

export const semanticChecks: ConfigCheck[] = [uplinkChecks, metersChecks, doorsChecks, visionChecks, consoleChecks];

/** Settings that load but look wrong: check-config prints them, the service logs them; they never stop a start. */
export const configWarnings: ConfigCheck[] = [metersWarnings];
