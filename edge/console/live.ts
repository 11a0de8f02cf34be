// Live updates for the pages: Server-Sent Events fed from the gateway's event bus.
// Every browser tab holds one EventSource; the hub serialises each bus event once and
// writes it to every client. A periodic "status" event carries the figures that have no
// bus event of their own (outbox depth, oldest record age), only while someone watches.
//
// The last events are also kept in a small ring (newest last) for the dashboard's
// "last events" list and the doors' event log, so a page opened now shows the recent past.
import type { ServerResponse } from 'node:http';
import type { BusEvents, EventBus } from '../bus.js';

export interface LiveEvent {
  /** Bus event name, e.g. "door.state". */
  type: string;
  /** UTC ms when the console saw it. */
  at: number;
  data: unknown;
}

interface Client {
  res: ServerResponse;
  user: string;
  /** Which event types this client may see (personal data is not for every role). */
  allowed: (type: string) => boolean;
}

export interface LiveOptions {
  bus: EventBus;
  now: () => number;
  /** Bus events forwarded to the pages and kept in the ring. */
  events: readonly string[];
  /** Of those, the ones forwarded live but not kept (telemetry would push every event out of the ring). */
  transient?: readonly string[];
  /** Figures pushed periodically while clients are connected. */
  status: () => unknown;
  statusIntervalMs?: number;
  maxClients?: number;
  ringSize?: number;
}

export class LiveHub {
  private readonly clients = new Set<Client>();
  private readonly ring: LiveEvent[] = [];
  private readonly unsubscribe: Array<() => void> = [];
  private statusTimer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private seq = 0;

  constructor(private readonly o: LiveOptions) {}

  start(): void {
    for (const name of this.o.events) {
      // Event names of modules that are not part of this build simply never fire.
      this.unsubscribe.push(this.o.bus.on(name as keyof BusEvents, (data: unknown) => this.publish(name, data)));
    }
    // Comment lines keep proxies and phones from closing an idle stream.
    this.heartbeat = setInterval(() => this.broadcast(': keep-alive\n\n'), 20_000).unref();
  }

  stop(): void {
    for (const u of this.unsubscribe.splice(0)) u();
    if (this.statusTimer) clearInterval(this.statusTimer);
    if (this.heartbeat) clearInterval(this.heartbeat);
    this.statusTimer = undefined;
    for (const c of this.clients) c.res.end();
    this.clients.clear();
  }

  clientCount(): number {
    return this.clients.size;
  }

  recent(filter: (e: LiveEvent) => boolean = () => true, limit = 100): LiveEvent[] {
    return this.ring.filter(filter).slice(-limit);
  }

  /** Record an event that did not come from the bus (console audit, config apply). */
  publish(type: string, data: unknown): void {
    const ev: LiveEvent = { type, at: this.o.now(), data };
    if (!this.o.transient?.includes(type)) {
      this.ring.push(ev);
      const size = this.o.ringSize ?? 300;
      if (this.ring.length > size) this.ring.splice(0, this.ring.length - size);
    }
    this.broadcast(`id: ${++this.seq}\nevent: bus\ndata: ${JSON.stringify(ev)}\n\n`, type);
  }

  /** Take over a response as an event stream. Returns false when too many are open. */
  attach(res: ServerResponse, user: string, allowed: (type: string) => boolean = () => true): boolean {
    if (this.clients.size >= (this.o.maxClients ?? 20)) return false;
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    const client: Client = { res, user, allowed };
    this.clients.add(client);
    res.on('close', () => {
      this.clients.delete(client);
      if (this.clients.size === 0 && this.statusTimer) {
        clearInterval(this.statusTimer);
        this.statusTimer = undefined;
      }
    });
    res.write(`retry: 3000\n\n`);
    this.sendStatus(client);
    this.statusTimer ??= setInterval(() => {
      for (const c of this.clients) this.sendStatus(c);
    }, this.o.statusIntervalMs ?? 5000).unref();
    return true;
  }

  private sendStatus(c: Client): void {
    let body: string;
    try {
      body = JSON.stringify(this.o.status());
    } catch (err) {
      body = JSON.stringify({ error: String(err) });
    }
    c.res.write(`event: status\ndata: ${body}\n\n`);
  }

  private broadcast(chunk: string, type?: string): void {
    for (const c of this.clients) {
      if (type !== undefined && !c.allowed(type)) continue;
      // A client that does not read (phone asleep) is dropped instead of buffering for ever.
      if (c.res.writableLength > 1_000_000) {
        c.res.destroy();
        this.clients.delete(c);
        continue;
      }
      c.res.write(chunk);
    }
  }
}
