// MQTT side of the fleet tool: the fleet's view from retained status, and one command per
// gateway waited to its result record. Not loaded by the gateway.
import mqtt, { type MqttClient } from 'mqtt';
import { matchGlob, type Outcome, type Target } from './rollout.js';

export interface GatewayStatus extends Target {
  state: string;
  version?: string;
  configRevision?: number | string;
  uptimeS?: number;
  ts?: number;
}

export class FleetClient {
  readonly status = new Map<string, GatewayStatus>();
  private waiters = new Map<string, (r: { ok: boolean; error?: { code?: string; message?: string } }) => void>();
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
    await c.subscribeAsync([`${prefix}/+/+/status`, `${prefix}/+/+/up/result`], { qos: 1 });
    return f;
  }

  private onMessage(topic: string, payload: Buffer): void {
    const parts = topic.split('/');
    let body: any;
    try {
      body = JSON.parse(payload.toString());
    } catch {
      return; // not ours; the tool never crashes on a foreign payload
    }
    if (parts.length === 4 && parts[3] === 'status' && body && typeof body === 'object') {
      const [, site = '', gateway = ''] = parts;
      this.status.set(`${site}/${gateway}`, { site, gateway, state: String(body.state), version: body.version, configRevision: body.configRevision, uptimeS: body.uptimeS, ts: body.ts });
    } else if (parts[4] === 'result' && Array.isArray(body?.records)) {
      for (const r of body.records) {
        const w = r?.data?.commandId && this.waiters.get(r.data.commandId);
        if (w) w(r.data);
      }
    }
  }

  /** Retained status arrives right after subscribing; give it a moment to settle. */
  async list(site = '*', gateway = '*', settleMs = 500): Promise<GatewayStatus[]> {
    await new Promise((r) => setTimeout(r, settleMs));
    return [...this.status.values()].filter((s) => matchGlob(site, s.site) && matchGlob(gateway, s.gateway)).sort((a, b) => `${a.site}/${a.gateway}`.localeCompare(`${b.site}/${b.gateway}`));
  }

  /** Send `name` with a derived id and wait for its result record (the terminal outcome of an exec). */
  async exec(t: Target, id: string, name: string, args: Record<string, unknown>, timeoutMs = 30_000): Promise<Outcome> {
    const res = new Promise<Outcome>((resolve) => {
      const timer = setTimeout(() => {
        this.waiters.delete(id);
        resolve({ state: 'timeout', detail: `no result within ${timeoutMs} ms` });
      }, timeoutMs);
      this.waiters.set(id, (r) => {
        clearTimeout(timer);
        this.waiters.delete(id);
        resolve(r.ok ? { state: 'done' } : { state: 'failed', detail: `${r.error?.code ?? 'error'}: ${r.error?.message ?? ''}` });
      });
    });
    const ts = Date.now();
    await this.c.publishAsync(`${this.prefix}/${t.site}/${t.gateway}/cmd`, JSON.stringify({ v: 1, id, name, args, ts, expiresAt: ts + timeoutMs }), { qos: 1 });
    return res;
  }

  async close(): Promise<void> {
    await this.c.endAsync();
  }
}
