// Staged rollout engine for the fleet tool (issue 18 part 4). Transport-free on purpose:
// the MQTT side (sending a command, waiting for its terminal outcome) is injected as
// `runStep`, so the ordering and halting rules are unit-testable without a broker.
// Not loaded by the gateway.
import { createHash } from 'node:crypto';

export interface Target {
  site: string;
  gateway: string;
}

export type Terminal = 'confirmed' | 'committed' | 'done' | 'rolled_back' | 'failed' | 'timeout';
export type JobState = 'untouched' | 'running' | Terminal;

export interface Outcome {
  state: Terminal;
  detail?: string;
}

export interface JobRow extends Target {
  state: JobState;
  commandId: string;
  detail?: string;
  batch: number; // 0 = canary
}

export interface RolloutOptions {
  batch: number; // gateways per batch after the canary (≥ 1)
  /** Gateways in the canary batch (default 1; 0 = no canary: straight to batches). */
  canary?: number;
  /** Stable identity of the change (e.g. sha256 of the patch + name). */
  changeKey: string;
  runStep: (t: Target, commandId: string) => Promise<Outcome>;
  onChange?: (rows: readonly JobRow[]) => void;
}

export interface RolloutReport {
  halted: boolean;
  haltedAt?: Target;
  rows: JobRow[];
}

const OK: ReadonlySet<JobState> = new Set(['confirmed', 'committed', 'done']);

/** A command id derived from the change and the target: a re-run of the tool after it
 * crashed sends the same id, and the gateway answers a repeated id with the original
 * result (`duplicate: true`) instead of applying it again. */
export function commandId(changeKey: string, t: Target): string {
  const h = createHash('sha256').update(`${changeKey}\n${t.site}\n${t.gateway}`).digest('hex');
  return `fleet-${h.slice(0, 32)}`;
}

export function matchGlob(glob: string, s: string): boolean {
  const re = new RegExp(
    `^${glob
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*/g, '.*')
      .replace(/\?/g, '.')}$`,
  );
  return re.test(s);
}

/** Canary (the first `canary` targets, default one) first, then batches of `batch` run concurrently; the first non-success outcome
 * halts the rollout after its batch settles (commands already sent in that batch cannot
 * be recalled); every later gateway stays `untouched` and is reported. */
export async function rollout(targets: readonly Target[], o: RolloutOptions): Promise<RolloutReport> {
  if (!Number.isInteger(o.batch) || o.batch < 1) throw new Error(`--batch must be an integer ≥ 1, got ${o.batch}`);
  const canary = o.canary ?? 1;
  if (!Number.isInteger(canary) || canary < 0) throw new Error(`--canary must be an integer ≥ 0, got ${o.canary}`);
  const sorted = [...targets].sort((a, b) => `${a.site}/${a.gateway}`.localeCompare(`${b.site}/${b.gateway}`));
  const rows: JobRow[] = sorted.map((t, i) => ({
    ...t,
    state: 'untouched',
    commandId: commandId(o.changeKey, t),
    batch: i < canary ? 0 : 1 + Math.floor((i - canary) / o.batch),
  }));
  const emit = () => o.onChange?.(rows);
  const batches = new Map<number, JobRow[]>();
  for (const r of rows) batches.set(r.batch, [...(batches.get(r.batch) ?? []), r]);
  let haltedAt: Target | undefined;
  for (const b of [...batches.keys()].sort((x, y) => x - y)) {
    const group = batches.get(b) ?? [];
    await Promise.all(
      group.map(async (r) => {
        r.state = 'running';
        emit();
        let out: Outcome;
        try {
          out = await o.runStep({ site: r.site, gateway: r.gateway }, r.commandId);
        } catch (e) {
          out = { state: 'failed', detail: e instanceof Error ? e.message : String(e) };
        }
        r.state = out.state;
        r.detail = out.detail;
        if (!OK.has(out.state) && !haltedAt) haltedAt = { site: r.site, gateway: r.gateway };
        emit();
      }),
    );
    if (haltedAt) break;
  }
  return { halted: haltedAt !== undefined, haltedAt, rows };
}
