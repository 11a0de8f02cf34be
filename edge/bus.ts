// A small typed event bus. Modules add their own events by augmenting `BusEvents`
// (declaration merging), so this file never has to know about meters, doors or faces:
//
//   declare module '../bus.js' { interface BusEvents { 'door.state': DoorState } }
//
// Listener errors are caught and logged: one broken listener must not take down the
// emitter (a meter poll loop or a door controller).
import { EventEmitter } from 'node:events';

// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface BusEvents {
  'uplink.state': { connected: boolean; since: number; reason?: string };
  'outbox.evicted': { count: number; bytes: number };
  'gateway.ready': { startedAt: number };
  'gateway.stopping': { reason: string };
  /** A configuration change was confirmed or rolled back (edge/fleet's guard). */
  'config.outcome': { status: 'confirmed' | 'rolled_back'; user: string; revision: string; previousRevision: string; reason?: string };
}

/** The core's own events, forwarded live to the console (capabilities declare theirs in their descriptor). */
export const CORE_LIVE_EVENTS = ['uplink.state', 'outbox.evicted', 'gateway.ready', 'gateway.stopping'] as const satisfies readonly (keyof BusEvents)[];

export type BusListener<K extends keyof BusEvents> = (payload: BusEvents[K]) => void;

export class EventBus {
  private readonly emitter = new EventEmitter();
  constructor(private readonly onListenerError: (event: string, err: unknown) => void = () => {}) {
    this.emitter.setMaxListeners(100);
  }

  emit<K extends keyof BusEvents>(event: K, payload: BusEvents[K]): void {
    for (const listener of this.emitter.listeners(event as string)) {
      try {
        (listener as BusListener<K>)(payload);
      } catch (err) {
        this.onListenerError(event as string, err);
      }
    }
  }

  /** Subscribe; returns the function that unsubscribes. */
  on<K extends keyof BusEvents>(event: K, listener: BusListener<K>): () => void {
    this.emitter.on(event as string, listener);
    return () => this.emitter.off(event as string, listener);
  }

  listenerCount(event: keyof BusEvents): number {
    return this.emitter.listenerCount(event as string);
  }
}
