// The composition root: builds every part from the validated config, starts them in
// order and stops them in reverse. Nothing else wires parts together.
//
// Start order: state db → outbox → commands → uplink → capability modules → status
// reporter → /healthz. A capability that fails to start is logged and reported as
// unhealthy, and the gateway runs on without it: a broken camera must not take the doors
// or the meters down with it.
import { join, resolve } from 'node:path';
import { ensureDir } from './store/dirs.js';
import { DiskGuard } from './store/disk.js';
import type { Logger } from 'pino';
import { EventBus } from './bus.js';
import { SystemClock, type Clock } from './clock.js';
import { openDatabase, type Db } from './store/sqlite.js';
import { Outbox } from './outbox/outbox.js';
import { STREAM_NAMES } from './outbox/streams.js';
import { CommandRegistry } from './commands/registry.js';
import { registerCoreCommands } from './commands/core.js';
import { Uplink } from './uplink/uplink.js';
import { Metrics } from './observability/metrics.js';
import { ObservabilityServer, type HealthBody } from './observability/http.js';
import { systemStats } from './observability/system.js';
import { ServiceRegistry, type LogRingReader, type GatewayModule, type ModuleContext, type ModuleHealth, type RestartHow } from './module.js';
import { moduleFactories, type ModuleEntry } from './modules.js';
import type { LoadedConfig } from './config/load.js';
import { VERSION } from './version.js';
import { ensureBoxKey } from './config/sealed.js';

export interface GatewayOptions {
  loaded: LoadedConfig;
  log: Logger;
  clock?: Clock;
  /** Override the module list (tests); defaults to every capability module. */
  modules?: ModuleEntry[];
  /** The on-disk log ring the service attached to `log` (edge/cli.ts), for logs.get. */
  logRing?: LogRingReader;
  /** Called when a module asks for a service restart (edge/cli.ts: exit for systemd, or stop and start again in-process). */
  onRestartRequested?: (reason: string, how: RestartHow) => void;
}

export class Gateway {
  readonly config;
  readonly log: Logger;
  readonly bus: EventBus;
  readonly clock: Clock;
  readonly metrics = new Metrics();
  readonly services = new ServiceRegistry();
  readonly dataDir: string;
  outbox!: Outbox;
  commands!: CommandRegistry;
  uplink!: Uplink;
  private stateDb!: Db;
  disk: DiskGuard | undefined;
  private outboxDb!: Db;
  private modules: GatewayModule[] = [];
  private failed = new Map<string, string>();
  private http: ObservabilityServer | undefined;
  private statusTimer: NodeJS.Timeout | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private started = false;
  private starting: Promise<void> | undefined;
  private stopRequested = false;
  private stopping: Promise<void> | undefined;
  httpPort: number | undefined;
  /** This box's X25519 public key (base64) for secrets sealed to it (config/sealed.ts). */
  boxPublicKey: string | undefined;

  constructor(private readonly opts: GatewayOptions) {
    this.config = opts.loaded.config;
    this.log = opts.log;
    this.clock = opts.clock ?? new SystemClock();
    this.bus = new EventBus((event, err) => this.log.error({ event, err }, 'event listener failed'));
    this.dataDir = resolve(this.config.gateway.dataDir);
  }

  private context(): ModuleContext {
    return {
      config: this.config,
      secrets: this.opts.loaded.secrets,
      configSource: this.opts.loaded.source,
      configRevision: this.opts.loaded.revision,
      log: this.log,
      bus: this.bus,
      clock: this.clock,
      outbox: this.outbox,
      commands: this.commands,
      metrics: this.metrics,
      stateDb: this.stateDb,
      dataDir: this.dataDir,
      storage: { writeFailed: (err) => this.disk?.writeFailed(err), roomFor: (bytes) => this.disk?.roomFor(bytes), guard: (name, db, path) => this.disk?.guard({ name, db, path }) ?? (() => {}) },
      services: this.services,
      version: VERSION,
      ...(this.opts.logRing ? { logRing: this.opts.logRing } : {}),
      healthReport: () => this.healthReport(),
      requestRestart: (reason, how = 'process') => {
        this.log.warn({ reason, how }, 'service restart requested');
        this.opts.onRestartRequested?.(reason, how);
      },
    };
  }

  /**
   * Start every part. A stop requested meanwhile (SIGTERM during start-up) ends start-up
   * after the step in progress: no module starts after that, and stop() then stops what
   * did start.
   */
  start(): Promise<void> {
    // Stopped before it started (SIGTERM while the code loaded): nothing to start.
    if (this.stopRequested) return (this.starting ??= Promise.resolve());
    this.starting ??= this.doStart();
    return this.starting;
  }

  /**
   * Before each step: let the event loop poll once, so a SIGTERM that arrived meanwhile is
   * handled now (signals are delivered only when the loop polls, and opening databases
   * and starting modules may not let it), then stop if a stop was requested.
   */
  private async abandoned(step: string): Promise<boolean> {
    await new Promise<void>((r) => setImmediate(r));
    if (!this.stopRequested) return false;
    this.log.warn({ step }, 'start-up abandoned: the gateway is stopping');
    return true;
  }

  private async doStart(): Promise<void> {
    this.startedAt = this.clock.now();
    if (await this.abandoned('databases')) return;
    ensureDir(this.dataDir);
    try {
      // Made at the first start, kept in the data dir (0600): the platform seals secrets to its public half.
      const k = ensureBoxKey(this.dataDir);
      this.boxPublicKey = k.publicKey;
      if (k.created) this.log.warn({ boxPublicKey: k.publicKey }, 'box key created: secrets sealed to this public key can be pushed to this gateway');
    } catch (err) {
      this.log.error({ err: String(err) }, 'cannot create or read the box key: sealed secrets cannot be opened on this gateway');
    }
    const c = this.config;
    const sync = c.outbox.synchronous;
    const state = openDatabase(join(this.dataDir, 'state.db'), { synchronous: 'full', log: this.log });
    this.stateDb = state.db;
    const ob = openDatabase(join(this.dataDir, c.outbox.file), { synchronous: sync, log: this.log });
    this.outboxDb = ob.db;
    this.outbox = new Outbox({
      db: this.outboxDb,
      clock: this.clock,
      log: this.log.child({ mod: 'outbox' }),
      quotaBytes: Math.floor(c.outbox.quotaMB * 1048576),
      onAppended: (streams) => this.uplink?.notify(streams),
      onEvicted: (e) => {
        this.evictions.inc({ stream: e.stream }, e.count);
        this.bus.emit('outbox.evicted', { count: e.count, bytes: e.bytes });
        // The gap, explained upstream (stream "event" is never evicted).
        void this.outbox.append({ stream: 'event', type: 'outbox.evicted', data: e }).catch(() => {});
      },
      onWriteFailure: (err) => this.disk?.writeFailed(err),
      // A deletion writes about its size into the WAL: keep that within 1/32 of the disk budget.
      maxDeleteBytesPerTxn: Math.max(64 * 1024, Math.min(1048576, Math.floor((c.gateway.diskBudgetMB * 1048576) / 32))),
    });
    this.disk = new DiskGuard({
      dataDir: this.dataDir,
      budgetBytes: Math.floor(c.gateway.diskBudgetMB * 1048576),
      reserveBytes: Math.floor(c.gateway.diskReserveMB * 1048576),
      dbs: [
        { name: 'outbox', db: this.outboxDb, path: join(this.dataDir, c.outbox.file) },
        { name: 'state', db: this.stateDb, path: join(this.dataDir, 'state.db') },
      ],
      log: this.log.child({ mod: 'disk' }),
      metrics: this.metrics,
      outbox: this.outbox,
      configuredQuotaBytes: Math.floor(c.outbox.quotaMB * 1048576),
      now: () => this.clock.monotonic(),
    });
    for (const moved of [state.movedAside, ob.movedAside]) {
      if (moved) void this.outbox.append({ stream: 'alarm', type: 'storage.corrupt', data: { movedTo: moved, message: 'database was corrupt and was replaced by an empty one' } });
    }
    this.registerOutboxMetrics();
    this.disk.start();

    this.commands = new CommandRegistry({
      db: this.stateDb,
      clock: this.clock,
      log: this.log.child({ mod: 'commands' }),
      outbox: this.outbox,
      metrics: this.metrics,
      maxAgeS: c.commands.maxAgeS,
      maxPayloadBytes: c.commands.maxPayloadBytes,
      dedupeHours: c.commands.dedupeHours,
      maxClockSkewS: c.commands.maxClockSkewS,
      dedupeMaxRows: c.commands.dedupeMaxRows,
      onStoreError: (err) => this.disk?.writeFailed(err),
    });
    registerCoreCommands({
      commands: this.commands,
      config: c,
      configSource: this.opts.loaded.source,
      configRevision: this.opts.loaded.revision,
      now: () => this.clock.now(),
      info: () => this.info(),
    });
    if (this.stopRequested) this.commands.beginShutdown();
    this.commands.prune();
    this.pruneTimer = setInterval(() => this.commands.prune(), 3600_000).unref();

    this.uplink = new Uplink({
      config: c,
      secrets: this.opts.loaded.secrets,
      outbox: this.outbox,
      clock: this.clock,
      log: this.log.child({ mod: 'uplink' }),
      bus: this.bus,
      metrics: this.metrics,
      birthInfo: () => ({ version: VERSION, uptimeS: this.uptimeS(), configRevision: this.opts.loaded.revision }),
      onCommand: (payload) => void this.commands.handleMqtt(payload),
    });
    if (await this.abandoned('uplink')) return;
    if (c.uplink.enabled) this.uplink.start();
    else this.log.warn('uplink disabled in config: records stay buffered in the outbox');

    const ctx = this.context();
    for (const entry of this.opts.modules ?? moduleFactories) {
      if (await this.abandoned(typeof entry === 'function' ? entry.name || 'module' : entry.name)) return;
      let mod: GatewayModule | undefined;
      try {
        if (typeof entry === 'function') mod = entry(ctx);
        else if (entry.wanted(c)) mod = (await entry.load())(ctx);
        if (!mod) continue;
        await mod.start();
        this.modules.push(mod);
        this.log.info({ module: mod.name }, 'module started');
      } catch (err) {
        const name = mod?.name ?? (entry.name || 'module');
        this.failed.set(name, (err as Error)?.message ?? String(err));
        this.log.error({ module: name, err }, 'module failed to start: the gateway runs on without it');
        try {
          await mod?.stop();
        } catch {
          /* best effort */
        }
      }
    }

    if (await this.abandoned('health endpoint')) return;
    this.statusTimer = setInterval(() => this.reportStatus(), c.status.intervalS * 1000).unref();
    if (c.http.enabled) {
      this.http = new ObservabilityServer(this.metrics, () => this.healthBody());
      this.httpPort = await this.http.listen(c.http.host, c.http.port);
      this.log.info({ url: `http://${c.http.host}:${this.httpPort}/healthz` }, 'health and metrics endpoint listening');
    }
    if (await this.abandoned('birth')) return;
    this.started = true;
    // Every module has registered its commands: only now tell the platform we are online.
    this.uplink.setReady();
    this.bus.emit('gateway.ready', { startedAt: this.startedAt });
    this.log.info({ version: VERSION, site: c.site.id, gateway: c.gateway.id, config: this.opts.loaded.source, revision: this.opts.loaded.revision, dataDir: this.dataDir }, 'gateway started');
  }

  private evictions!: import('prom-client').Counter<'stream'>;

  private registerOutboxMetrics(): void {
    this.evictions = this.metrics.counter({ name: 'estate_outbox_evicted_total', help: 'Records the outbox did not keep (quota, disk budget, disk full), since the data dir was created; each range is reported upstream as outbox.evicted', labelNames: ['stream'] });
    const outbox = this.outbox;
    // Same origin as streams.evicted, /healthz and gateway.status: the persisted total.
    for (const [name, st] of Object.entries(outbox.stats().streams)) if (st.evicted) this.evictions.inc({ stream: name }, st.evicted);
    const clock = this.clock;
    this.metrics.gauge({
      name: 'estate_outbox_records',
      help: 'Records buffered in the outbox, waiting for the broker',
      labelNames: ['stream'],
      collect() {
        const s = outbox.stats();
        for (const name of STREAM_NAMES) this.set({ stream: name }, s.streams[name].count);
      },
    });
    this.metrics.gauge({
      name: 'estate_outbox_bytes',
      help: 'Bytes of buffered records',
      collect() {
        this.set(outbox.stats().bytes);
      },
    });
    this.metrics.gauge({
      name: 'estate_outbox_oldest_age_seconds',
      help: 'Age of the oldest buffered record (0 when empty)',
      collect() {
        const o = outbox.stats().oldestTs;
        this.set(o === null ? 0 : Math.max(0, (clock.now() - o) / 1000));
      },
    });
    this.metrics.gauge({
      name: 'estate_outbox_memory_pending',
      help: 'Records held in memory because the disk refused writes',
      collect() {
        this.set(outbox.pendingInMemory());
      },
    });
  }

  uptimeS(): number {
    return Math.round((this.clock.now() - this.startedAt) / 1000);
  }

  healthReport(): Record<string, ModuleHealth> {
    const out: Record<string, ModuleHealth> = {};
    const u = this.uplink?.state();
    out.uplink = u ? { ok: u.connected || !this.config.uplink.enabled, ...(u.connected ? {} : { message: `broker ${u.url} unreachable: ${u.lastError ?? 'connecting'}` }), detail: { ...u } } : { ok: false, message: 'not started' };
    for (const m of this.modules) {
      try {
        out[m.name] = m.health?.() ?? { ok: true };
      } catch (err) {
        out[m.name] = { ok: false, message: `health check failed: ${String(err)}` };
      }
    }
    for (const [name, why] of this.failed) out[name] = { ok: false, message: `failed to start: ${why}` };
    if (this.disk) out.storage = this.disk.health();
    return out;
  }

  info(): Record<string, unknown> {
    return {
      version: VERSION,
      site: this.config.site.id,
      gateway: this.config.gateway.id,
      uptimeS: this.uptimeS(),
      startedAt: this.startedAt,
      configRevision: this.opts.loaded.revision,
      configSource: this.opts.loaded.source,
      ...(this.boxPublicKey ? { boxPublicKey: this.boxPublicKey } : {}),
      node: process.version,
      clockSynced: this.clock.synced(),
      uplink: this.uplink.state(),
      outbox: this.outbox.stats(),
      modules: this.healthReport(),
      system: systemStats(this.dataDir),
    };
  }

  private healthBody(): HealthBody {
    const modules = this.healthReport();
    const s = this.outbox.stats();
    return {
      status: Object.values(modules).every((m) => m.ok) ? 'ok' : 'degraded',
      version: VERSION,
      uptimeS: this.uptimeS(),
      uplink: this.uplink.state(),
      outbox: { records: s.count, bytes: s.bytes, oldestAgeS: s.oldestTs === null ? 0 : Math.round((this.clock.now() - s.oldestTs) / 1000), evicted: s.evicted },
      modules,
    };
  }

  /** Periodic status telemetry: what the platform graphs to see a box is healthy. */
  private reportStatus(): void {
    const s = this.outbox.stats();
    void this.outbox
      .append({
        stream: 'telemetry',
        type: 'gateway.status',
        data: {
          uptimeS: this.uptimeS(),
          uplinkConnected: this.uplink.isConnected(),
          outbox: { records: s.count, bytes: s.bytes, oldestTs: s.oldestTs, evicted: s.evicted, memoryPending: this.outbox.pendingInMemory() },
          system: systemStats(this.dataDir),
          modules: Object.fromEntries(Object.entries(this.healthReport()).map(([k, v]) => [k, v.ok])),
        },
      })
      .catch(() => {});
  }

  isStarted(): boolean {
    return this.started;
  }

  /** Put hardware in its safe state synchronously (crash path). */
  emergencyStop(): void {
    for (const m of [...this.modules].reverse()) {
      try {
        m.emergencyStop?.();
      } catch {
        /* keep going: every door must get its chance */
      }
    }
  }

  /** Graceful stop: modules in reverse order, drain in-flight publishes, commit the outbox. */
  stop(reason = 'shutdown'): Promise<void> {
    if (!this.stopping) {
      this.stopRequested = true;
      // From this moment commands are answered shutting_down (doors stay as they are
      // until their module stops them in their safe state).
      this.commands?.beginShutdown();
      this.stopping = (async () => {
        this.log.info({ reason }, 'gateway stopping');
        await this.starting?.catch(() => {});
        await this.doStop(reason);
      })();
    }
    return this.stopping;
  }

  private async doStop(reason: string): Promise<void> {
    this.bus.emit('gateway.stopping', { reason });
    if (this.statusTimer) clearInterval(this.statusTimer);
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    const budget = this.config.gateway.shutdownTimeoutMs;
    const perModule = Math.max(500, Math.floor(budget / 3 / Math.max(1, this.modules.length)));
    for (const m of [...this.modules].reverse()) {
      try {
        await Promise.race([Promise.resolve(m.stop()), new Promise((_, rej) => setTimeout(() => rej(new Error('timeout')), perModule).unref())]);
      } catch (err) {
        this.log.error({ module: m.name, err: String(err) }, 'module did not stop cleanly');
      }
    }
    this.modules = [];
    this.disk?.stop();
    await this.http?.close();
    if (this.outbox) this.outbox.flush();
    await this.uplink?.stop(Math.floor(budget / 3), reason);
    this.outbox?.close();
    this.outboxDb?.close();
    this.stateDb?.close();
    this.log.info('gateway stopped');
  }
}
