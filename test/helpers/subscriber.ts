// A platform-side MQTT subscriber that collects what the gateway publishes, and can
// send commands the way the central platform does.
import mqtt, { type MqttClient } from 'mqtt';

export interface UpMessage {
  topic: string;
  /** When it arrived (Date.now()). */
  at: number;
  body: { v: number; stream: string; backfill: boolean; records: Array<{ id: string; seq: number; ts: number; type: string; data: any }> } & Record<string, unknown>;
}

export class Platform {
  readonly messages: UpMessage[] = [];
  readonly raw: Array<{ topic: string; payload: Buffer; retain: boolean; at: number }> = [];
  private constructor(readonly client: MqttClient) {}

  static async connect(url: string, topic = 'estate/#', clientId = `platform-${Math.random().toString(16).slice(2)}`): Promise<Platform> {
    // A loaded CI machine can miss one CONNACK: retry a few times before failing the test.
    let client: MqttClient | undefined;
    for (let attempt = 1; !client; attempt++) {
      try {
        client = await mqtt.connectAsync(url, { clientId, protocolVersion: 5, reconnectPeriod: 200, connectTimeout: 10_000 });
      } catch (err) {
        if (attempt >= 3) throw err;
      }
    }
    const p = new Platform(client);
    client.on('message', (t, payload, packet) => {
      const at = Date.now();
      p.raw.push({ topic: t, payload, retain: packet.retain, at });
      if (t.includes('/up/')) {
        try {
          p.messages.push({ topic: t, at, body: JSON.parse(payload.toString()) });
        } catch {
          /* not ours */
        }
      }
    });
    await client.subscribeAsync(topic, { qos: 1 });
    return p;
  }

  records(stream?: string) {
    return this.messages.filter((m) => stream === undefined || m.body.stream === stream).flatMap((m) => m.body.records.map((r) => ({ ...r, stream: m.body.stream, backfill: m.body.backfill, at: m.at })));
  }

  /** Wait until `pred` holds, polling; bounded. */
  async waitFor(pred: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!pred()) {
      if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async command(base: string, name: string, args: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Promise<any> {
    const id = (extra.id as string) ?? `cmd-${Math.random().toString(16).slice(2)}`;
    await this.client.publishAsync(`${base}/cmd`, JSON.stringify({ v: 1, id, name, args, ts: Date.now(), ...extra }), { qos: 1 });
    let found: any;
    await this.waitFor(() => (found = this.records('result').find((r) => r.data.commandId === id)) !== undefined, 10_000, `result of ${name}`);
    return found.data;
  }

  async close(): Promise<void> {
    await this.client.endAsync(true);
  }
}

export async function waitFor(pred: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
