// Cross-field checks of the `console` section.
import type { ConfigCheck } from '../config/core.js';

export const consoleChecks: ConfigCheck = (c) => {
  const p: string[] = [];
  const k = c.console;
  if (!k.enabled) return p;
  if ((k.tls.cert === undefined) !== (k.tls.key === undefined)) p.push('console.tls: cert and key must be given together (or neither, for a self-signed certificate)');
  if (!k.tls.enabled && (k.tls.cert !== undefined || k.tls.key !== undefined)) p.push('console.tls: cert/key given but console.tls.enabled is false');
  if (c.http.enabled && k.port !== 0 && k.port === c.http.port && (k.host === c.http.host || k.host === '0.0.0.0' || c.http.host === '0.0.0.0' || k.host === '::' || c.http.host === '::')) p.push(`console.port: ${k.port} is already used by http.port (health and metrics)`);
  return p;
};
