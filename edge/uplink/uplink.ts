// The MQTT uplink: connects (MQTT 5 or 3.1.1, TLS / mutual TLS, user/password), keeps a
// retained birth/will status, receives commands, and drains the outbox.
//
// Draining: records are published in batches (many records per message) with QoS 1 and
// deleted from the outbox only on PUBACK. On every (re)connect each stream is split at
// its current last sequence number: what is newer is *live* and goes out at once;
// what is older is the *backlog*, drained in sequence order behind the live data, with
// telemetry limited to `backfillRecordsPerSecond` so a day-long outage does not swamp
// the uplink. Critical streams (access, alarms, results) are never rate-limited.
// Messages carry `backfill: true|false`; per-stream sequence numbers let the platform
// merge both flows and detect gaps.
//
// Reconnects: exponential back-off with equal jitter (edge/backoff.ts), forever. An unreachable broker is
// a logged state, never an exit: the outbox keeps buffering.
import { maskUrlPassword } from '../config/redact.js';
import type { MqttClient, IClientOptions } from 'mqtt';
import { requireCjs } from '../cjs.js';
import { backoffDelay } from '../backoff.js';
import { readFileSync } from 'node:fs';
import { v7 as uuidv7 } from 'uuid';
import type { Logger } from 'pino';
import type { Outbox } from '../outbox/outbox.js';
import { STREAMS, STREAM_NAMES, type StreamName } from '../outbox/streams.js';
import type { Metrics } from '../observability/metrics.js';
import type { Clock } from '../clock.js';
import type { EventBus } from '../bus.js';
import type { GatewayConfig } from '../config/core.js';
import type { Secret } from '../config/secret.js';
import { topicsFor, SCHEMA_VERSION, type Topics } from './topics.js';

const mqtt = requireCjs('mqtt') as typeof import('mqtt');

export interface UplinkOptions {
  config: GatewayConfig;
  secrets: ReadonlyMap<string, Secret>;
  outbox: Outbox;
  clock: Clock;
  log: Logger;
  bus: EventBus;
  metrics: Metrics;
  /** Extra fields of the birth message (version, config revision…). */
  birthInfo: () => Record<string, unknown>;
  onCommand: (payload: Buffer) => void;
}

interface Cursor {
  /** Last seq handed to the broker in the live flow. */
  live: number;
  /** Last seq handed to the broker in the backlog flow. */
  backlog: number;
  /** Split point fixed at connect: seq ≤ watermark is backlog. */
  watermark: number;
}

export class Uplink {
  readonly topics: Topics;
  private client: MqttClient | undefined;
  private connected = false;
  private stopping = false;
  private generation = 0;
  private inflight = 0;
  private maxInflight: number;
  private failures = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private pumpTimer: NodeJS.Timeout | undefined;
  private pumping = false;
  private cursors = new Map<StreamName, Cursor>();
  private tokens = 0;
  private tokensAt = 0;
  private connectedSince = 0;
  /** Birth and command subscription wait until the gateway has started every module. */
  private ready = false;
  private lastError: string | undefined;
  private readonly idle: Array<() => void> = [];
  private readonly m;

  constructor(private readonly o: UplinkOptions) {
    const c = o.config;
    this.topics = topicsFor(c.uplink.topicPrefix, c.site.id, c.gateway.id);
    this.maxInflight = c.uplink.maxInflight;
    this.m = {
      connected: o.metrics.gauge({ name: 'estate_uplink_connected', help: '1 when the MQTT uplink is connected' }),
      reconnects: o.metrics.counter({ name: 'estate_uplink_reconnects_total', help: 'MQTT connection attempts after a loss' }),
      messages: o.metrics.counter({ name: 'estate_uplink_messages_total', help: 'MQTT messages acknowledged by the broker', labelNames: ['stream'] }),
      records: o.metrics.counter({ name: 'estate_uplink_records_total', help: 'Records acknowledged by the broker', labelNames: ['stream', 'flow'] }),
      publishErrors: o.metrics.counter({ name: 'estate_uplink_publish_errors_total', help: 'Publishes that failed (will be retried)' }),
    };
  }

  isConnected(): boolean {
    return this.connected;
  }

  state(): { connected: boolean; since: number; inflight: number; lastError?: string; url: string; failures: number } {
    return { connected: this.connected, since: this.connectedSince, inflight: this.inflight, url: maskUrlPassword(this.o.config.uplink.url), failures: this.failures, ...(this.lastError ? { lastError: this.lastError } : {}) };
  }

  private clientOptions(): IClientOptions {
    const u = this.o.config.uplink;
    const read = (p: string | undefined) => (p === undefined ? undefined : readFileSync(p));
    const opts: IClientOptions = {
      protocolVersion: u.protocolVersion,
      clientId: u.clientId ?? `${this.o.config.site.id}-${this.o.config.gateway.id}`,
      keepalive: u.keepaliveS,
      connectTimeout: u.connectTimeoutMs,
      reconnectPeriod: 0, // we run our own back-off with jitter
      clean: true,
      resubscribe: false,
      queueQoSZero: false,
      // mqtt-packet otherwise pre-builds a Buffer for every 16-bit number (65,536 of them):
      // ~8 MB of heap on a box with a 60 MB budget, to save a 2-byte allocation per packet.
      writeCache: false,
      will: {
        topic: this.topics.status,
        payload: Buffer.from(JSON.stringify({ v: SCHEMA_VERSION, state: 'offline', site: this.o.config.site.id, gateway: this.o.config.gateway.id, reason: 'connection lost' })),
        qos: 1,
        retain: true,
      },
    };
    if (u.username !== undefined) opts.username = u.username;
    const pw = this.o.secrets.get('uplink.password');
    if (pw) opts.password = pw.reveal();
    const ca = read(u.tls.ca);
    const cert = read(u.tls.cert);
    const key = read(u.tls.key);
    if (ca) opts.ca = ca;
    if (cert) opts.cert = cert;
    if (key) opts.key = key;
    const pass = this.o.secrets.get('uplink.tls.keyPassphrase');
    if (pass) (opts as Record<string, unknown>).passphrase = pass.reveal();
    opts.rejectUnauthorized = u.tls.rejectUnauthorized;
    if (u.tls.servername) (opts as Record<string, unknown>).servername = u.tls.servername;
    return opts;
  }

  start(): void {
    this.stopping = false;
    this.connect();
  }

  private connect(): void {
    if (this.stopping) return;
    let opts: IClientOptions;
    try {
      opts = this.clientOptions();
    } catch (err) {
      // e.g. a TLS file went missing: keep buffering and retry, loudly.
      this.lastError = `cannot prepare connection: ${(err as Error).message}`;
      this.o.log.error({ err: this.lastError }, 'uplink cannot connect');
      this.scheduleReconnect();
      return;
    }
    const client = mqtt.connect(this.o.config.uplink.url, opts);
    this.client = client;
    const gen = ++this.generation;
    client.on('connect', (connack) => {
      if (gen !== this.generation) return;
      const rm = (connack as { properties?: { receiveMaximum?: number } }).properties?.receiveMaximum;
      this.maxInflight = Math.max(1, Math.min(this.o.config.uplink.maxInflight, rm ?? Infinity));
      this.onConnected(client, gen);
    });
    client.on('message', (_topic, payload) => {
      if (gen !== this.generation) return;
      try {
        this.o.onCommand(payload);
      } catch (err) {
        this.o.log.error({ err }, 'command handler threw');
      }
    });
    client.on('error', (err) => {
      if (gen !== this.generation) return;
      this.lastError = err.message;
      // Repeated connection errors are summarised by scheduleReconnect; details at debug.
      this.o.log.debug({ err: err.message, url: maskUrlPassword(this.o.config.uplink.url) }, 'uplink error');
    });
    client.on('close', () => {
      if (gen !== this.generation) return;
      this.onLost(client);
    });
  }

  private onConnected(client: MqttClient, gen: number): void {
    this.connected = true;
    this.failures = 0;
    this.lastError = undefined;
    this.connectedSince = this.o.clock.now();
    this.inflight = 0;
    this.m.connected.set(1);
    this.o.log.info({ url: maskUrlPassword(this.o.config.uplink.url), maxInflight: this.maxInflight }, 'uplink connected');
    this.o.bus.emit('uplink.state', { connected: true, since: this.connectedSince });
    if (this.ready) this.announce(client, gen);
    // Acks queued before the loss must land before we compute where to resume.
    this.o.outbox.flush();
    for (const s of STREAM_NAMES) {
      const last = this.o.outbox.lastSeq(s);
      this.cursors.set(s, { live: last, backlog: 0, watermark: last });
    }
    this.tokens = 0;
    this.tokensAt = this.o.clock.monotonic();
    this.pump();
  }

  /**
   * The gateway has registered every command: subscribe to commands and publish the
   * retained `online` birth. Until then the backlog drains but nobody is told we are
   * online, so no command can arrive for a module that is not there yet.
   */
  setReady(): void {
    if (this.ready) return;
    this.ready = true;
    if (this.connected && this.client) this.announce(this.client, this.generation);
  }

  private announce(client: MqttClient, gen: number): void {
    client.subscribe(this.topics.cmd, { qos: 1 }, (err) => {
      if (err && gen === this.generation) this.o.log.error({ err: err.message }, 'cannot subscribe to the command topic');
      // Online only once commands can reach us.
      else if (gen === this.generation) void this.publishStatus('online');
    });
  }

  private onLost(client: MqttClient): void {
    const was = this.connected;
    this.connected = false;
    this.inflight = 0;
    this.generation++;
    this.m.connected.set(0);
    // Our listeners stay (they ignore an old generation); mqtt.js's own listeners must
    // stay too, or its connack timer is never cleared and fires an error later.
    client.end(true);
    if (was) {
      this.o.log.warn({ url: maskUrlPassword(this.o.config.uplink.url), err: this.lastError }, 'uplink lost: buffering in the outbox');
      this.o.bus.emit('uplink.state', { connected: false, since: this.o.clock.now(), ...(this.lastError ? { reason: this.lastError } : {}) });
    }
    for (const fn of this.idle.splice(0)) fn();
    this.scheduleReconnect();
  }

  private scheduleReconnect(): void {
    if (this.stopping || this.reconnectTimer) return;
    const u = this.o.config.uplink;
    // Equal jitter: between half and all of min(max, min × 2^failures), so a thousand boxes
    // do not reconnect to the broker in step.
    const delay = backoffDelay(this.failures, { minMs: u.reconnectMinMs, maxMs: u.reconnectMaxMs, jitter: 'equal' });
    this.failures++;
    if (this.failures === 1 || this.failures % 10 === 0) this.o.log.warn({ attempt: this.failures, delayMs: delay, url: maskUrlPassword(u.url), err: this.lastError }, 'broker unreachable: will retry (data is buffered)');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      this.m.reconnects.inc();
      this.connect();
    }, delay);
  }

  private publishStatus(state: 'online' | 'offline', reason?: string): Promise<void> {
    const client = this.client;
    if (!client || !this.connected) return Promise.resolve();
    const payload = JSON.stringify({ v: SCHEMA_VERSION, id: uuidv7(), state, ts: this.o.clock.now(), site: this.o.config.site.id, gateway: this.o.config.gateway.id, ...(reason ? { reason } : {}), ...this.o.birthInfo() });
    return new Promise((resolve) => client.publish(this.topics.status, payload, { qos: 1, retain: true }, () => resolve()));
  }

  /** The outbox has new committed records: publish now or after the linger time. */
  notify(streams: ReadonlySet<StreamName>): void {
    if (!this.connected) return;
    const u = this.o.config.uplink;
    for (const s of streams) {
      const c = this.cursors.get(s);
      // A full batch (or a critical record) goes at once; otherwise wait briefly for more.
      if (!c || !STREAMS[s].evictable || this.o.outbox.lastSeq(s) - c.live >= u.batchMaxRecords) {
        setImmediate(() => this.pump());
        return;
      }
    }
    if (!this.pumpTimer) this.pumpTimer = setTimeout(() => this.pump(), u.lingerMs);
  }

  /** Publish as much as the in-flight window allows: live first, then backlog. */
  private pump(): void {
    if (this.pumpTimer) {
      clearTimeout(this.pumpTimer);
      this.pumpTimer = undefined;
    }
    if (!this.connected || this.pumping || this.stopping) return;
    this.pumping = true;
    try {
      const u = this.o.config.uplink;
      for (const s of STREAM_NAMES) {
        const c = this.cursors.get(s)!;
        while (this.inflight < this.maxInflight) {
          const recs = this.o.outbox.read(s, c.live, Number.MAX_SAFE_INTEGER, u.batchMaxRecords, u.batchMaxBytes);
          if (recs.length === 0) break;
          c.live = recs[recs.length - 1]!.seq;
          this.send(s, recs, false);
        }
      }
      const rate = u.backfillRecordsPerSecond;
      const now = this.o.clock.monotonic();
      if (rate > 0) {
        this.tokens = Math.min(rate, this.tokens + ((now - this.tokensAt) / 1000) * rate);
        this.tokensAt = now;
      }
      let waitingForTokens = false;
      for (const s of STREAM_NAMES) {
        const c = this.cursors.get(s)!;
        const limited = rate > 0 && STREAMS[s].evictable;
        while (this.inflight < this.maxInflight && c.backlog < c.watermark) {
          let max = u.batchMaxRecords;
          if (limited) {
            if (this.tokens < Math.min(max, 1)) {
              waitingForTokens = true;
              break;
            }
            max = Math.max(1, Math.min(max, Math.floor(this.tokens)));
          }
          const recs = this.o.outbox.read(s, c.backlog, c.watermark, max, u.batchMaxBytes);
          if (recs.length === 0) {
            c.backlog = c.watermark;
            break;
          }
          c.backlog = recs[recs.length - 1]!.seq;
          if (limited) this.tokens -= recs.length;
          this.send(s, recs, true);
        }
      }
      if (waitingForTokens && !this.pumpTimer) {
        const need = Math.min(u.batchMaxRecords, rate);
        this.pumpTimer = setTimeout(() => this.pump(), Math.max(10, Math.ceil((1000 * Math.max(1, need - this.tokens)) / rate)));
      }
    } catch (err) {
      this.o.log.error({ err }, 'uplink pump failed');
    } finally {
      this.pumping = false;
    }
    if (this.inflight === 0) for (const fn of this.idle.splice(0)) fn();
  }

  private send(stream: StreamName, recs: Array<{ seq: number; body: string }>, backfill: boolean): void {
    const client = this.client!;
    const gen = this.generation;
    // The callback keeps only numbers: the records themselves become garbage at once
    // instead of surviving (and being promoted) while the message is in flight.
    const first = recs[0]!.seq;
    const last = recs[recs.length - 1]!.seq;
    const count = recs.length;
    const cfg = this.o.config;
    const payload = `{"v":${SCHEMA_VERSION},"site":${JSON.stringify(cfg.site.id)},"gateway":${JSON.stringify(cfg.gateway.id)},"stream":"${stream}","backfill":${backfill},"sentAt":${this.o.clock.now()},"records":[${recs.map((r) => r.body).join(',')}]}`;
    this.inflight++;
    client.publish(this.topics.up(stream), payload, { qos: 1 }, (err) => {
      if (!err) {
        // An ack is an ack, even from an earlier connection: the broker has the records.
        this.o.outbox.ack(stream, first, last);
        this.m.messages.inc({ stream });
        this.m.records.inc({ stream, flow: backfill ? 'backfill' : 'live' }, count);
      } else {
        this.m.publishErrors.inc();
      }
      if (gen !== this.generation) return;
      this.inflight--;
      this.pump();
    });
  }

  /** Resolves when nothing is in flight (or the link is down), or after `timeoutMs`. */
  drain(timeoutMs: number): Promise<void> {
    if (!this.connected || this.inflight === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const t = setTimeout(resolve, timeoutMs);
      this.idle.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  /**
   * Graceful stop: no more commands (unsubscribe), publish what is in flight, the
   * retained `offline` status with the reason, then a normal DISCONNECT (reason code 0),
   * which tells the broker to discard the will: the retained status then says why the
   * gateway went away instead of "connection lost".
   */
  async stop(timeoutMs = 3000, reason = 'shutdown'): Promise<void> {
    const bounded = <T>(p: Promise<T>, ms: number) => Promise.race([p, new Promise<void>((r) => setTimeout(r, ms).unref())]);
    const client0 = this.client;
    // A connection attempt in flight (SIGTERM during start-up): let it finish, so it can
    // end with a DISCONNECT; cutting it after the broker accepted CONNECT fires the will.
    if (client0 && !this.connected && !client0.disconnecting && !this.reconnectTimer) await bounded(new Promise<void>((r) => (client0.once('connect', () => setImmediate(r)), client0.once('close', () => r()))), 1500);
    if (client0 && this.connected && this.ready) await bounded(new Promise<void>((r) => client0.unsubscribe(this.topics.cmd, () => r())), 1000);
    this.o.outbox.flush();
    await this.drain(timeoutMs);
    this.stopping = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    if (this.pumpTimer) clearTimeout(this.pumpTimer);
    this.reconnectTimer = this.pumpTimer = undefined;
    const client = this.client;
    if (!client) return;
    const wasConnected = this.connected;
    if (wasConnected) await bounded(this.publishStatus('offline', reason), 1000);
    this.generation++;
    this.connected = false;
    this.m.connected.set(0);
    // Our 'error' listener stays attached: a late mqtt.js error (e.g. "connack timeout" of
    // an attempt still connecting) must not become an uncaught exception.
    let ended = false;
    if (wasConnected) {
      const props = this.o.config.uplink.protocolVersion === 5 ? { reasonCode: 0, properties: { reasonString: reason.slice(0, 100) } } : {};
      await bounded(new Promise<void>((resolve) => client.end(false, props, () => ((ended = true), resolve()))), 1500);
    }
    if (!ended) await bounded(new Promise<void>((resolve) => client.end(true, {}, () => resolve())), 1500);
    // A broker that never answered: do not keep the socket (and the process) alive.
    client.stream?.destroy();
  }
}
