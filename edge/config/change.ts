// Applying a configuration change: the one code path of the console's apply
// (POST /api/config/apply) and of the platform's `config.apply` / `config.rollback`
// commands. Validation is ConfigFile.candidate (the same schema, checks and secret
// resolution as the service's start); writing is ConfigFile.write (backup + marker +
// atomic replace); the confirm-or-rollback watch on the next start is ApplyGuard, run by
// the fleet module for either source. The revision history records every change.
import { isMap, parseDocument, type Document } from 'yaml';
import { revisionOf } from './load.js';
import type { ConfigFile, EditResult } from './apply.js';
import type { ConfigHistory } from './history.js';
import type { GatewayConfig } from './core.js';

export interface ApplyRequest {
  file: ConfigFile;
  history?: ConfigHistory;
  candidate: EditResult & { ok: true; yaml: string; config: GatewayConfig };
  runningRevision: string;
  health: Record<string, { ok: boolean }>;
  user: string;
  source: 'console' | 'mqtt';
  now: number;
  commandId?: string;
  why?: string;
  confirmWithinS?: number;
  /** Modules that must be healthy again even if they are not now (the uplink, for a change pushed over it). */
  mustBeHealthy?: readonly string[];
}

export interface Applied {
  revision: string;
  previousRevision: string;
}

/** Write a validated candidate and record it; the caller asks for the restart once it has answered. */
export function applyChange(r: ApplyRequest): Applied {
  const revision = revisionOf(r.candidate.config);
  const healthyBefore = [
    ...new Set([
      ...Object.entries(r.health)
        .filter(([, h]) => h.ok)
        .map(([k]) => k),
      ...(r.mustBeHealthy ?? []),
    ]),
  ];
  // The running text is kept under its revision first, so config.rollback can return to it.
  try {
    r.history?.keepText(r.runningRevision, r.file.text());
  } catch {
    /* history is a convenience: a full disk must not stop an apply that the file write below may still manage */
  }
  r.file.write(r.candidate.yaml, {
    newRevision: revision,
    previousRevision: r.runningRevision,
    user: r.user,
    at: r.now,
    healthyBefore,
    source: r.source,
    ...(r.commandId ? { commandId: r.commandId } : {}),
    ...(r.why ? { why: r.why } : {}),
    ...(r.confirmWithinS ? { confirmWithinS: r.confirmWithinS } : {}),
  });
  try {
    r.history?.keepText(revision, r.candidate.yaml);
    r.history?.add({ revision, previousRevision: r.runningRevision, at: r.now, user: r.user, source: r.source, ...(r.commandId ? { commandId: r.commandId } : {}), ...(r.why ? { reason: r.why } : {}), status: 'pending' });
  } catch {
    /* as above */
  }
  return { revision, previousRevision: r.runningRevision };
}

/**
 * A JSON merge patch (RFC 7386) applied to the config file's document, keeping its
 * comments and layout: objects merge, `null` removes a key (its default applies),
 * anything else (arrays included) replaces. The file is what produces the running
 * effective config, so this is the patch of the running config as far as the file says it.
 */
export function mergePatchText(text: string, patch: Record<string, unknown>): string {
  const doc = parseDocument(text);
  if (!isMap(doc.contents)) doc.contents = doc.createNode({}) as never;
  mergeInto(doc, [], patch);
  return doc.toString();
}

function mergeInto(doc: Document, path: string[], patch: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(patch)) {
    const at = [...path, k];
    if (v === null) {
      doc.deleteIn(at);
    } else if (typeof v === 'object' && !Array.isArray(v)) {
      if (!isMap(doc.getIn(at, true))) doc.setIn(at, doc.createNode({}));
      mergeInto(doc, at, v as Record<string, unknown>);
    } else {
      doc.setIn(at, v);
    }
  }
}

/** Paths of inline `{ value }` secrets in what came over the wire ("***" masks excepted: they are restored from the file). */
export function plaintextSecrets(node: unknown, path: string[] = [], out: string[] = []): string[] {
  if (node === null || typeof node !== 'object' || out.length > 20) return out;
  if (Array.isArray(node)) {
    node.forEach((v, i) => plaintextSecrets(v, [...path, String(i)], out));
    return out;
  }
  const o = node as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 1 && keys[0] === 'value' && typeof o.value === 'string' && o.value !== '***') out.push(path.join('.'));
  else for (const k of keys) plaintextSecrets(o[k], [...path, k], out);
  return out;
}
