// The contract between the composition root (gateway.ts) and each capability module
// (uplink, meters, doors, vision, console). A module gets everything it may use in its
// ModuleContext; it never reaches for globals or for another module's internals.
// Modules that must call each other do it through `services` (typed by augmenting
// `Services`) or through commands and bus events.
import type { Logger } from 'pino';
import type { EventBus } from './bus.js';
import type { Clock } from './clock.js';
import type { Outbox } from './outbox/outbox.js';
import type { CommandRegistry } from './commands/registry.js';
import type { Metrics } from './observability/metrics.js';
import type { GatewayConfig } from './config/core.js';
import type { Secret } from './config/secret.js';
import type { Db } from './store/sqlite.js';

export interface ModuleHealth {
  ok: boolean;
  /** One line a technician can act on when not ok ("serial port /dev/rs485-1 missing"). */
  message?: string;
  detail?: Record<string, unknown>;
}

export interface GatewayModule {
  readonly name: string;
  start(): Promise<void> | void;
  stop(): Promise<void> | void;
  health?(): ModuleHealth;
  /**
   * Synchronous last-resort hook, run on a crash (uncaught exception) before the process
   * exits: put hardware in its safe state (doors). Must not do I/O beyond that.
   */
  emergencyStop?(): void;
}

/** Typed services modules offer each other. Modules augment this interface. */
// eslint-disable-next-line @typescript-eslint/no-empty-interface
export interface Services {}

export class ServiceRegistry {
  private readonly map = new Map<string, unknown>();
  provide<K extends keyof Services>(name: K, service: Services[K]): void {
    this.map.set(name as string, service);
  }
  get<K extends keyof Services>(name: K): Services[K] | undefined {
    return this.map.get(name as string) as Services[K] | undefined;
  }
  /** Whether a service of that name is provided (a descriptor names its page's service as a string). */
  has(name: string): boolean {
    return this.map.has(name);
  }
}

/** The on-disk ring of the process's log lines (edge/observability/logfile.ts), as the modules read it. */
export interface LogRingReader {
  readonly maxBytes: number;
  read(q: { since?: number | string; level?: string; limit?: number }): { lines: Array<Record<string, unknown>>; truncated: boolean; ringBytes: number };
  flush(): void;
  readonly dropped: number;
}

export interface ModuleContext {
  config: GatewayConfig;
  secrets: ReadonlyMap<string, Secret>;
  /** Where the config came from (file path or "embedded"). */
  configSource: string;
  configRevision: string;
  log: Logger;
  bus: EventBus;
  clock: Clock;
  outbox: Outbox;
  commands: CommandRegistry;
  metrics: Metrics;
  /** The gateway's state database (people, accounts, command ids…); not the outbox. */
  stateDb: Db;
  dataDir: string;
  /** Report a write the disk refused (SQLITE_FULL/ENOSPC): the disk guard frees its reserve and turns health degraded. */
  storage?: {
    writeFailed(err: unknown): void;
    /** Why `bytes` more of data that is never evicted (face templates…) would not fit the disk budget; undefined when it fits. */
    roomFor?(bytes: number): string | undefined;
    /** Put a module's own database under the disk guard (WAL bounded, freed pages returned); returns the undo, to call before closing it. */
    guard?(name: string, db: Db, path: string): () => void;
  };
  services: ServiceRegistry;
  version: string;
  /** Health of every module, for dashboards (console, /healthz). */
  healthReport(): Record<string, ModuleHealth>;
  /** The on-disk ring of this process's log lines (set by the service; absent in tests that build a Gateway directly). */
  logRing?: LogRingReader;
  /**
   * Ask the service to restart. `process` (the default): the process exits and systemd
   * starts it again (after the unit's RestartSec) — needed for a new release, or when an
   * operator asks for a real restart. `reload`: the gateway stops and starts again inside
   * this process from the config file, with no RestartSec wait and no code reload — for a
   * config change, so the meters and doors are back in about a second.
   */
  requestRestart(reason: string, how?: RestartHow): void;
}

export type RestartHow = 'process' | 'reload';

/** A module factory returns undefined when its capability is not configured. */
export type ModuleFactory = (ctx: ModuleContext) => GatewayModule | undefined;
