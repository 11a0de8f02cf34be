// Live updates for the pages: Server-Sent Events fed from the gateway's event bus.
// Every browser tab holds one EventSource; the hub serialises each bus event once and
// writes it to every client. A periodic "status" event carries the figures that have no
// bus event of their own (outbox depth, oldest record age), only while someone watches.
//
// A stream is only as good as the session it was opened with. Events are sent in small
// batches, and before each batch (and each status or keep-alive tick) every client's
// session is looked up again — without sliding its expiry, so an open tab alone does not
// keep a session alive: a session that ended (logout, password or role change, account
// deleted, expired) closes its streams with a final `end` event, and what a client may
// see follows the session's current role. Logout and account changes also close the
// streams at once (endSession / endUser), without waiting for the next batch.
//
// Streams are capped per user and in total; when the total is reached, a user with fewer
// streams than the busiest one gets that one's oldest stream, so one user with many tabs
// never keeps another user out.
//
// The last events are also kept in a small ring (newest last) for the dashboard's
// "last events" list and the doors' event log, so a page opened now shows the recent past.
import type { ServerResponse } from 'node:http';
import type { BusEvents, EventBus } from '../bus.js';
import type { Role } from './accounts.js';
import type { LiveBusEventName, LiveEvent, LiveEventName } from './api-types.js';

// The kept and sent event is the API's (api-types.ts), so the pages read what the hub keeps.
export type { LiveEvent };

/** The session a stream belongs to, as checked before each batch. */
export interface LiveSession {
  id: string;
  user: string;
  role: Role;
}

interface Client {
  res: ServerResponse;
  session: LiveSession;
  openedAt: number;
}

export interface LiveOptions {
  bus: EventBus;
  now: () => number;
  /** Bus events forwarded to the pages and kept in the ring. */
  events: ReadonlyArray<keyof BusEvents & LiveBusEventName>;
  /** Of those, the ones forwarded live but not kept (telemetry would push every event out of the ring). */
  transient?: ReadonlyArray<keyof BusEvents>;
  /** Figures pushed periodically while clients are connected. */
  status: () => unknown;
  /** The session now (not sliding its expiry), or undefined when it has ended. */
  session: (id: string) => LiveSession | undefined;
  /** Which event types a role may see (personal data is not for every role). */
  allowed: (role: Role, type: string) => boolean;
  /** Something went wrong inside the hub (logged by the owner; never thrown). */
  onError?: (err: unknown, what: string) => void;
  statusIntervalMs?: number;
  /** How long events wait to be sent together (one session check per client per batch). */
  batchMs?: number;
  maxClients?: number;
  maxPerUser?: number;
  ringSize?: number;
}

export type AttachResult = { ok: true; closed?: 'busiest_oldest' } | { ok: false; reason: 'too_many_streams' };

export class LiveHub {
  private readonly clients = new Set<Client>();
  private readonly ring: LiveEvent[] = [];
  private readonly unsubscribe: Array<() => void> = [];
  private pending: Array<{ type: string; chunk: string }> = [];
  private batchTimer: NodeJS.Timeout | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  private heartbeat: NodeJS.Timeout | undefined;
  private seq = 0;

  constructor(private readonly o: LiveOptions) {}

  start(): void {
    for (const name of this.o.events) {
      // Event names of modules that are not part of this build simply never fire.
      this.unsubscribe.push(this.o.bus.on(name, (data: unknown) => this.publish(name, data)));
    }
    // Comment lines keep proxies and phones from closing an idle stream.
    this.heartbeat = setInterval(() => this.guard('keep-alive', () => this.tick(': keep-alive\n\n')), 20_000).unref();
  }

  stop(): void {
    for (const u of this.unsubscribe.splice(0)) u();
    for (const t of [this.statusTimer, this.heartbeat, this.batchTimer]) if (t) clearInterval(t);
    this.statusTimer = this.heartbeat = this.batchTimer = undefined;
    this.pending = [];
    for (const c of [...this.clients]) this.close(c, 'stopping');
  }

  clientCount(): number {
    return this.clients.size;
  }

  /** Open streams per user (for the health detail and tests). */
  perUser(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const c of this.clients) out[c.session.user] = (out[c.session.user] ?? 0) + 1;
    return out;
  }

  recent(filter: (e: LiveEvent) => boolean = () => true, limit = 100): LiveEvent[] {
    return this.ring.filter(filter).slice(-limit);
  }

  /** Record an event that did not come from the bus (console audit, config apply). */
  publish(type: LiveEventName, data: unknown): void {
    const ev: LiveEvent = { type, at: this.o.now(), data };
    // Widened to read: console-side events (audit, config apply) are never transient.
    if (!(this.o.transient as readonly string[] | undefined)?.includes(type)) {
      this.ring.push(ev);
      const size = this.o.ringSize ?? 300;
      if (this.ring.length > size) this.ring.splice(0, this.ring.length - size);
    }
    if (this.clients.size === 0) return;
    let chunk: string;
    try {
      chunk = `id: ${++this.seq}\nevent: bus\ndata: ${JSON.stringify(ev)}\n\n`;
    } catch (err) {
      this.o.onError?.(err, `serialising ${type}`);
      return;
    }
    this.pending.push({ type, chunk });
    this.batchTimer ??= setTimeout(() => this.guard('batch', () => this.flush()), this.o.batchMs ?? 100).unref();
  }

  /** Take over a response as an event stream for a session (false: refused, nothing written). */
  attach(res: ServerResponse, session: LiveSession): AttachResult {
    let closed: 'busiest_oldest' | undefined;
    const counts = this.perUser();
    const own = counts[session.user] ?? 0;
    if (own >= (this.o.maxPerUser ?? 4)) return { ok: false, reason: 'too_many_streams' };
    if (this.clients.size >= (this.o.maxClients ?? 40)) {
      // Full: a user with fewer streams than the busiest one takes that one's oldest
      // (fair share; the closed tab, reconnecting, is then refused, not bounced back).
      const [busiest, n] = Object.entries(counts).sort((a, b) => b[1] - a[1])[0] ?? ['', 0];
      if (own + 1 >= n) return { ok: false, reason: 'too_many_streams' };
      this.close([...this.clients].find((c) => c.session.user === busiest)!, 'replaced');
      closed = 'busiest_oldest';
    }
    res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    const client: Client = { res, session, openedAt: this.o.now() };
    this.clients.add(client);
    // A write to a connection the phone dropped must not become an uncaught 'error'.
    res.on('error', () => this.forget(client));
    res.on('close', () => this.forget(client));
    this.write(client, `retry: 3000\n\n`);
    this.sendStatus(client);
    this.statusTimer ??= setInterval(() => this.guard('status', () => this.tick()), this.o.statusIntervalMs ?? 5000).unref();
    return closed ? { ok: true, closed } : { ok: true };
  }

  /** A session ended (logout): its streams close now. */
  endSession(id: string, reason = 'session_ended'): void {
    for (const c of [...this.clients]) if (c.session.id === id) this.close(c, reason);
  }

  /** Every session of a user ended (password or role change, account deleted). */
  endUser(user: string, reason = 'session_ended'): void {
    const lower = user.toLowerCase();
    for (const c of [...this.clients]) if (c.session.user.toLowerCase() === lower) this.close(c, reason);
  }

  private guard(what: string, fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.o.onError?.(err, what);
    }
  }

  /** The clients whose session still holds, each with its role now; the others are closed. */
  private live(): Client[] {
    const out: Client[] = [];
    for (const c of [...this.clients]) {
      let s: LiveSession | undefined;
      try {
        s = this.o.session(c.session.id);
      } catch (err) {
        this.o.onError?.(err, 'session check');
        s = undefined;
      }
      if (!s || s.user !== c.session.user) {
        this.close(c, 'session_ended');
        continue;
      }
      c.session = s;
      out.push(c);
    }
    return out;
  }

  private flush(): void {
    this.batchTimer = undefined;
    const batch = this.pending;
    this.pending = [];
    if (!batch.length) return;
    for (const c of this.live()) {
      const chunk = batch
        .filter((e) => this.o.allowed(c.session.role, e.type))
        .map((e) => e.chunk)
        .join('');
      if (chunk) this.write(c, chunk);
    }
  }

  private tick(comment?: string): void {
    const clients = this.live();
    for (const c of clients) comment ? this.write(c, comment) : this.sendStatus(c);
    if (this.clients.size === 0 && this.statusTimer) {
      clearInterval(this.statusTimer);
      this.statusTimer = undefined;
    }
  }

  private sendStatus(c: Client): void {
    let body: string;
    try {
      body = JSON.stringify(this.o.status());
    } catch (err) {
      body = JSON.stringify({ error: String(err) });
    }
    this.write(c, `event: status\ndata: ${body}\n\n`);
  }

  private write(c: Client, chunk: string): void {
    // A client that does not read (phone asleep) is dropped instead of buffering for ever.
    if (c.res.writableLength > 1_000_000 || c.res.destroyed) {
      c.res.destroy();
      this.forget(c);
      return;
    }
    c.res.write(chunk);
  }

  /** Tell the page why (it then shows the login), and end the stream. */
  private close(c: Client, reason: string): void {
    this.forget(c);
    if (!c.res.destroyed && !c.res.writableEnded) {
      c.res.write(`event: end\ndata: ${JSON.stringify({ reason })}\n\n`);
      c.res.end();
    }
  }

  private forget(c: Client): void {
    this.clients.delete(c);
    if (this.clients.size === 0) {
      if (this.statusTimer) clearInterval(this.statusTimer);
      this.statusTimer = undefined;
    }
  }
}
