// Build and start a real Gateway for a test: real SQLite files in a temp dir, a real
// broker URL, config validated through the same path as the service.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { finish, type LoadedConfig } from '../../edge/config/load.js';
import { Gateway } from '../../edge/gateway.js';
import type { ModuleFactory } from '../../edge/module.js';
import type { Clock } from '../../edge/clock.js';

export type DeepPartial<T> = { [K in keyof T]?: T[K] extends object ? DeepPartial<T[K]> | T[K] : T[K] };

export function tempDir(prefix = 'ee-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

function merge(a: Record<string, unknown>, b: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...a };
  for (const [k, v] of Object.entries(b)) {
    out[k] = v && typeof v === 'object' && !Array.isArray(v) && out[k] && typeof out[k] === 'object' ? merge(out[k] as Record<string, unknown>, v as Record<string, unknown>) : v;
  }
  return out;
}

/** A validated config: site "t-site", gateway "t-gw", temp dataDir, http on a free port, plus overrides. */
export function testConfig(overrides: Record<string, unknown> = {}, env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const base = {
    site: { id: 't-site' },
    gateway: { id: 't-gw', dataDir: tempDir() },
    log: { level: 'warn' },
    http: { port: 0 },
    uplink: { url: 'mqtt://127.0.0.1:1', reconnectMinMs: 100, reconnectMaxMs: 1000, lingerMs: 5 },
  };
  return finish(merge(base, overrides), 'test', env);
}

export const silentLog = pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export async function startGateway(overrides: Record<string, unknown> = {}, opts: { modules?: ModuleFactory[]; clock?: Clock; loaded?: LoadedConfig } = {}): Promise<Gateway> {
  const loaded = opts.loaded ?? testConfig(overrides);
  const g = new Gateway({ loaded, log: silentLog, modules: opts.modules ?? [], ...(opts.clock ? { clock: opts.clock } : {}) });
  await g.start();
  return g;
}
