// Platform-side helpers of the upgrade tests: the box's retained status, its events and
// alarms, and commands answered through the real broker.
import { readFileSync } from 'node:fs';
import type { Platform } from '../helpers/subscriber.js';
import { signRelease } from '../../edge/upgrade/signature.js';
import type { Manifest } from './harness.js';

export const BASE = 'estate/t-site/t-gw';

export function lastStatus(p: Platform): { state: string; version?: string } | undefined {
  const s = p.raw.filter((m) => m.topic === `${BASE}/status`).at(-1);
  return s ? JSON.parse(s.payload.toString()) : undefined;
}

export async function online(p: Platform, version: string, timeoutMs = 60_000): Promise<void> {
  await p.waitFor(
    () => {
      const s = lastStatus(p);
      return s?.state === 'online' && s.version === version;
    },
    timeoutMs,
    `retained status online with version ${version}`,
  );
}

export function upgradeArgs(m: Manifest, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { version: m.version, sha256: m.sha256, size: m.size, signature: m.signature, ...extra };
}

/** The outcome record (event or alarm stream) of a job. */
export function outcome(p: Platform, jobId: string): { type: string; stream: string; data: any } | undefined {
  return p.records().find((r) => ['upgrade.committed', 'upgrade.rolled_back', 'upgrade.failed'].includes(r.type) && r.data.jobId === jobId);
}

export async function waitOutcome(p: Platform, jobId: string, timeoutMs = 90_000): Promise<{ type: string; stream: string; data: any }> {
  await p.waitFor(() => outcome(p, jobId) !== undefined, timeoutMs, `outcome of upgrade ${jobId}`);
  return outcome(p, jobId)!;
}

/** A correctly signed manifest for any fields (to reach the checks after the signature). */
export function signedFor(keyFile: string, f: { version: string; sha256: string; size: number }): Manifest {
  return { ...f, commit: 'x', arch: process.arch, file: '', signature: signRelease(f, readFileSync(keyFile, 'utf8')) };
}
