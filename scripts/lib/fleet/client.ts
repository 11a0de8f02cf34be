// MQTT side of the fleet tool: the fleet's view from retained status, one command per
// gateway waited to its result record, and the outcome of a change (config.apply,
// gateway.upgrade) waited on the event and alarm streams. Not loaded by the gateway.
import mqtt, { type MqttClient } from 'mqtt';
import { matchGlob, type Outcome, type Target } from './rollout.js';

export interface GatewayStatus extends Target {
  state: string;
  version?: string;
  configRevision?: string;
  uptimeS?: number;
  ts?: number;
}

interface CommandResult {
  ok: boolean;
  commandId: string;
  duplicate?: boolean;
  result?: any;
  error?: { code?: string; message?: string; details?: unknown };
}

/** An outcome record of a change: config.confirmed / config.rolled_back (keyed by the
 * command id), upgrade.committed / upgrade.rolled_back / upgrade.failed (keyed by the job
 * id, which is the gateway.upgrade command's id). */
interface ChangeOutcome {
  type: string;
  data: Record<string, any>;
}

const OUTCOME_TYPES = new Set(['config.confirmed', 'config.rolled_back', 'upgrade.committed', 'upgrade.rolled_back', 'upgrade.failed']);

/** Bytes the tool put on the wire and took off it per gateway (payload and topic, not MQTT framing). */
export interface WireCount {
  sent: number;
  received: number;
}

export class FleetClient {
  readonly status = new Map<string, GatewayStatus>();
  readonly wire = new Map<string, WireCount>();
  private results = new Map<string, CommandResult[]>();
  private outcomes = new Map<string, ChangeOutcome>();
  private progress = new Map<string, { phase: string; pct: number }>();
  private listeners = new Set<() => void>();
  private constructor(
    private readonly c: MqttClient,
    readonly prefix: string,
  ) {}

  /** Credentials come from the environment (FLEET_MQTT_USERNAME / FLEET_MQTT_PASSWORD), never printed. */
  static async connect(url: string, prefix = 'estate', opts: { ca?: Buffer } = {}): Promise<FleetClient> {
    const c = await mqtt.connectAsync(url, {
      protocolVersion: 5,
      connectTimeout: 10_000,
      reconnectPeriod: 500,
      ...(process.env.FLEET_MQTT_USERNAME ? { username: process.env.FLEET_MQTT_USERNAME } : {}),
      ...(process.env.FLEET_MQTT_PASSWORD ? { password: process.env.FLEET_MQTT_PASSWORD } : {}),
      ...(opts.ca ? { ca: opts.ca } : {}),
    });
    const f = new FleetClient(c, prefix);
    c.on('message', (topic, payload) => f.onMessage(topic, payload));
    // Only the streams a rollout reads: a busy estate's telemetry would be most of the bytes.
    await c.subscribeAsync(
      ['status', 'up/result', 'up/event', 'up/alarm'].map((s) => `${prefix}/+/+/${s}`),
      { qos: 1 },
    );
    return f;
  }

  private count(site: string, gateway: string, k: keyof WireCount, n: number): void {
    const key = `${site}/${gateway}`;
    const w = this.wire.get(key) ?? { sent: 0, received: 0 };
    w[k] += n;
    this.wire.set(key, w);
  }

  private onMessage(topic: string, payload: Buffer): void {
    const parts = topic.split('/');
    const [, site = '', gateway = ''] = parts;
    this.count(site, gateway, 'received', payload.length + topic.length);
    let body: any;
    try {
      body = JSON.parse(payload.toString());
    } catch {
      return; // not ours; the tool never crashes on a foreign payload
    }
    if (!body || typeof body !== 'object') return;
    if (parts.length === 4 && parts[3] === 'status') {
      this.status.set(`${site}/${gateway}`, {
        site,
        gateway,
        state: String(body.state),
        ...(typeof body.version === 'string' ? { version: body.version } : {}),
        ...(body.configRevision !== undefined ? { configRevision: String(body.configRevision) } : {}),
        ...(typeof body.uptimeS === 'number' ? { uptimeS: body.uptimeS } : {}),
        ...(typeof body.ts === 'number' ? { ts: body.ts } : {}),
      });
    } else if (parts[3] === 'up' && Array.isArray(body.records)) {
      for (const r of body.records) {
        const d = r?.data;
        if (!d || typeof d !== 'object') continue;
        if (parts[4] === 'result' && typeof d.commandId === 'string') {
          this.results.set(d.commandId, [...(this.results.get(d.commandId) ?? []), d as CommandResult]);
        } else if (OUTCOME_TYPES.has(r.type)) {
          const key = r.type.startsWith('config.') ? d.commandId : d.jobId;
          // The first outcome counts: a redelivered record (at-least-once) says the same.
          if (typeof key === 'string' && !this.outcomes.has(key)) this.outcomes.set(key, { type: r.type, data: d });
        } else if (r.type === 'upgrade.progress' && typeof d.jobId === 'string') {
          this.progress.set(d.jobId, { phase: String(d.phase), pct: Number(d.pct) });
        }
      }
    }
    for (const l of this.listeners) l();
  }

  /** Resolves once `pred` returns a value, or with undefined after `timeoutMs`. */
  private when<T>(pred: () => T | undefined, timeoutMs: number): Promise<T | undefined> {
    return new Promise((resolve) => {
      const now = pred();
      if (now !== undefined) return resolve(now);
      const done = (v: T | undefined) => {
        clearTimeout(timer);
        this.listeners.delete(check);
        resolve(v);
      };
      const check = () => {
        const v = pred();
        if (v !== undefined) done(v);
      };
      const timer = setTimeout(() => done(undefined), timeoutMs);
      this.listeners.add(check);
    });
  }

  /** Retained status arrives right after subscribing; give it a moment to settle. */
  async list(site = '*', gateway = '*', settleMs = 500): Promise<GatewayStatus[]> {
    await new Promise((r) => setTimeout(r, settleMs));
    return [...this.status.values()].filter((s) => matchGlob(site, s.site) && matchGlob(gateway, s.gateway)).sort((a, b) => `${a.site}/${a.gateway}`.localeCompare(`${b.site}/${b.gateway}`));
  }

  /** Upgrade progress last reported for a job (for the live table). */
  progressOf(jobId: string): { phase: string; pct: number } | undefined {
    return this.progress.get(jobId);
  }

  /** Publish a command; resolves with its result record (the first one), or undefined on timeout. */
  async send(t: Target, id: string, name: string, args: Record<string, unknown>, timeoutMs: number): Promise<CommandResult | undefined> {
    const waiting = this.when(() => this.results.get(id)?.[0], timeoutMs);
    const ts = Date.now();
    const topic = `${this.prefix}/${t.site}/${t.gateway}/cmd`;
    const payload = JSON.stringify({ v: 1, id, name, args, ts, expiresAt: ts + timeoutMs });
    this.count(t.site, t.gateway, 'sent', payload.length + topic.length);
    await this.c.publishAsync(topic, payload, { qos: 1 });
    return waiting;
  }

  /** Send `name` with a derived id and wait for its result record (the terminal outcome of an exec). */
  async exec(t: Target, id: string, name: string, args: Record<string, unknown>, timeoutMs = 30_000): Promise<Outcome> {
    const r = await this.send(t, id, name, args, timeoutMs);
    if (!r) return { state: 'timeout', detail: `no result within ${timeoutMs} ms` };
    return r.ok ? { state: 'done' } : { state: 'failed', detail: describe(r) };
  }

  /**
   * config.apply, then the box's own verdict: `confirmed` when it came back healthy with
   * the new config (uplink included), `rolled_back` when it put the old one back. A
   * refusal (invalid, revision conflict…) is `failed` with nothing changed on the box.
   */
  async applyConfig(t: Target, id: string, args: { patch?: unknown; yaml?: string; baseRevision: string; confirmWithinS: number; reason?: string }, timeoutMs: number): Promise<Outcome> {
    const outcome = this.when(() => this.outcomes.get(id), timeoutMs);
    const r = await this.send(t, id, 'config.apply', args, Math.min(timeoutMs, 30_000));
    if (!r) return { state: 'timeout', detail: 'config.apply not answered' };
    if (!r.ok) return { state: 'failed', detail: describe(r) };
    if (r.duplicate) {
      // A re-run (the tool stopped mid-rollout): the box answered this id before and will
      // not apply it again, and its outcome went out then. Its history knows what became of it.
      const h = await this.send(t, `${id}-history-${Date.now().toString(36)}`, 'config.history', {}, 30_000);
      const entry = (h?.ok ? (h.result?.entries as Array<{ commandId?: string; status: string; revision: string; previousRevision?: string; rollbackReason?: string }>) : undefined)?.find((e) => e.commandId === id);
      if (entry?.status === 'confirmed') return { state: 'confirmed', detail: `revision ${entry.revision} (confirmed before)` };
      if (entry?.status === 'rolled_back') return { state: 'rolled_back', detail: `back to ${entry.previousRevision}: ${entry.rollbackReason ?? 'unhealthy'} (before)` };
    }
    const o = await outcome;
    if (!o) return { state: 'timeout', detail: `no config.confirmed or config.rolled_back within ${Math.round(timeoutMs / 1000)} s (revision ${r.result?.revision})` };
    if (o.type === 'config.confirmed') return { state: 'confirmed', detail: `revision ${o.data.revision}` };
    return { state: 'rolled_back', detail: `back to ${o.data.previousRevision}: ${o.data.reason ?? 'unhealthy'}` };
  }

  /**
   * gateway.upgrade (HTTPS download by the box, or chunks over MQTT sent here), then the
   * outcome: `committed`, `rolled_back` (the new release did not prove healthy; the old one
   * runs again) or `failed` (refused or broken before the switch).
   */
  async upgrade(t: Target, id: string, args: Record<string, unknown>, o: { tarball?: Buffer; chunkBytes?: number; timeoutMs: number; onChunk?: (sent: number, total: number) => void }): Promise<Outcome> {
    const outcome = this.when(() => this.outcomes.get(id), o.timeoutMs);
    const r = await this.send(t, id, 'gateway.upgrade', args, 30_000);
    if (!r) return { state: 'timeout', detail: 'gateway.upgrade not answered' };
    if (!r.ok) return { state: 'failed', detail: describe(r) };
    if (args.chunked === true) {
      if (!o.tarball) throw new Error('chunked upgrade without the tarball');
      const size = o.chunkBytes ?? 256 * 1024;
      const total = Math.ceil(o.tarball.length / size);
      // A job resumed after the tool or the box restarted names what it still needs.
      const missing: number[] = Array.isArray(r.result?.missing) && r.result.missing.length > 0 ? r.result.missing : Array.from({ length: total }, (_, i) => i);
      if (r.result?.status === 'waiting_chunks') {
        let sent = 0;
        for (const i of missing) {
          const chunkId = `${id}-c${i}`;
          const data = o.tarball.subarray(i * size, (i + 1) * size).toString('base64');
          // One chunk at a time, each answered: the box writes each durably before it answers.
          let cr: CommandResult | undefined;
          for (let attempt = 1; attempt <= 3 && !cr; attempt++) cr = await this.send(t, attempt === 1 ? chunkId : `${chunkId}-r${attempt}`, 'gateway.upgrade.chunk', { jobId: id, index: i, total, data }, 20_000);
          if (!cr) return { state: 'timeout', detail: `chunk ${i} of ${total} not answered` };
          if (!cr.ok) return { state: 'failed', detail: `chunk ${i}: ${describe(cr)}` };
          o.onChunk?.(++sent, missing.length);
        }
      }
    }
    const out = await outcome;
    if (!out) return { state: 'timeout', detail: `no upgrade outcome within ${Math.round(o.timeoutMs / 1000)} s (last ${JSON.stringify(this.progress.get(id) ?? {})})` };
    if (out.type === 'upgrade.committed') return { state: 'committed', detail: `${out.data.from} → ${out.data.version}` };
    return { state: out.type === 'upgrade.rolled_back' ? 'rolled_back' : 'failed', detail: `${out.data.code ?? ''}: ${out.data.reason ?? ''}`.trim() };
  }

  async close(): Promise<void> {
    await this.c.endAsync();
  }
}

function describe(r: CommandResult): string {
  return `${r.error?.code ?? 'error'}: ${r.error?.message ?? ''}`;
}
