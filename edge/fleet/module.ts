// The fleet module: the platform's remote configuration and diagnostics commands, and
// the watch that confirms or rolls back a configuration change (from the platform or
// the console) on the start after it.
//
// A change pushed over MQTT must not strand a box: it is validated like the console's
// (ConfigFile.candidate), refused unless made from the running revision, written the
// console's way (applyChange → backup, marker, atomic replace), and the gateway restarts.
// On that start the guard waits up to `confirmWithinS` for every module that was healthy
// before — and the uplink, always, for a change that came over it — to be healthy again.
// If the new config loses the broker (wrong URL, password, CA) the box puts the previous
// file back and restarts; the alarm `config.rolled_back` waits in the outbox and reaches
// the platform as soon as the old config has the uplink back.
import { existsSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';
import { Type } from '@sinclair/typebox';
import { parseDocument } from 'yaml';
import type { GatewayModule, LogRingReader, ModuleContext, ModuleFactory, ModuleHealth, RestartHow } from '../module.js';
import { CommandError, type CommandMeta } from '../commands/registry.js';
import { ApplyGuard, ConfigFile, type ApplyMarker, type EditResult } from '../config/apply.js';
import { applyChange, mergePatchText, plaintextSecrets } from '../config/change.js';
import { ConfigHistory } from '../config/history.js';
import { parseConfig } from '../config/load.js';
import type { GatewayConfig } from '../config/core.js';
import { runDoctor, doctorExitCode } from '../doctor.js';
import { LEVELS, LogFile } from '../observability/logfile.js';

export const HISTORY_KEEP = 10;
export const DEFAULT_CONFIRM_WITHIN_S = 120;
/** The answer goes out first (it is in the outbox before this), then the restart. */
const RESTART_DELAY_MS = 500;
const PLATFORM_USER = 'platform';

const LevelName = Type.Union(Object.keys(LEVELS).map((l) => Type.Literal(l)));

export class FleetModule implements GatewayModule {
  readonly name = 'fleet';
  private guard: ApplyGuard | undefined;
  private readonly file: ConfigFile | undefined;
  readonly history: ConfigHistory;
  readonly logs: LogRingReader;
  /** Its own ring when the gateway was built without the service's (tests). */
  private readonly ownRing: LogFile | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  private readonly log;
  private readonly names: string[] = [];

  constructor(private readonly ctx: ModuleContext) {
    this.log = ctx.log.child({ mod: 'fleet' });
    this.file = isAbsolute(ctx.configSource) && existsSync(ctx.configSource) ? new ConfigFile(ctx.configSource) : undefined;
    this.history = new ConfigHistory(ctx.dataDir, HISTORY_KEEP);
    // The service's ring (attached at its first line); a gateway built without one (tests) gets its own.
    this.ownRing = ctx.logRing ? undefined : new LogFile(join(ctx.dataDir, 'logs'));
    this.logs = ctx.logRing ?? this.ownRing!;
  }

  start(): void {
    this.ownRing?.attach(this.ctx.log);
    this.registerCommands();
    this.watchApply();
  }

  private audit(type: string, data: Record<string, unknown>): void {
    // Never fails or delays the action it records (console audit does the same).
    void this.ctx.outbox.append({ stream: 'audit', type, data }).catch((err) => this.log.error({ err: String(err), type }, 'could not store audit record'));
  }

  private record(stream: 'event' | 'alarm', type: string, data: Record<string, unknown>): void {
    void this.ctx.outbox.append({ stream, type, data }).catch((err) => this.log.error({ err: String(err), type }, 'could not store record'));
  }

  /** Audit type of a guard outcome: the console's names for its own applies (kept), config.* for the platform's. */
  private static auditType(m: ApplyMarker, what: 'confirmed' | 'rolled_back'): string {
    return m.source === 'mqtt' ? `config.${what}` : `console.config.${what}`;
  }

  private outcomeData(m: ApplyMarker, reason?: string): Record<string, unknown> {
    return {
      revision: m.newRevision,
      // The console's older name of the same value, kept for what reads it.
      newRevision: m.newRevision,
      previousRevision: m.previousRevision,
      ...(m.commandId ? { commandId: m.commandId } : {}),
      user: m.user,
      source: m.source ?? 'console',
      ...(m.why ? { why: m.why } : {}),
      ...(reason ? { reason } : {}),
    };
  }

  private reportRollback(m: ApplyMarker, reason: string): void {
    const data = this.outcomeData(m, reason);
    this.record('alarm', 'config.rolled_back', data);
    this.audit(FleetModule.auditType(m, 'rolled_back'), data);
    try {
      this.history.decide(m.newRevision, 'rolled_back', this.ctx.clock.now(), reason);
    } catch (err) {
      this.log.error({ err: String(err) }, 'could not record the rollback in the config history');
    }
    this.ctx.bus.emit('config.outcome', { status: 'rolled_back', user: m.user, revision: m.newRevision, previousRevision: m.previousRevision, reason });
  }

  private watchApply(): void {
    const { ctx } = this;
    const file = this.file;
    if (!file) return;
    const last = file.marker();
    if (last?.status === 'rolled_back' && !last.reported) {
      // Rolled back at start (the new file did not load): say so upstream, once.
      this.log.error({ user: last.user, reason: last.reason, revision: last.newRevision }, 'configuration change was rolled back at start');
      this.reportRollback(last, last.reason ?? 'did not load');
      file.writeMarker({ ...last, reported: true });
    }
    const graceS = last?.status === 'pending' && last.confirmWithinS ? last.confirmWithinS : ctx.config.console.applyHealthGraceS;
    this.guard = new ApplyGuard({
      file,
      runningRevision: ctx.configRevision,
      health: () => ctx.healthReport(),
      now: () => ctx.clock.now(),
      graceMs: graceS * 1000,
      checkEveryMs: 1000,
      onConfirmed: (m) => {
        this.log.warn({ user: m.user, source: m.source ?? 'console', revision: m.newRevision }, 'configuration change confirmed: the gateway is healthy with it');
        const data = this.outcomeData(m);
        if (m.source === 'mqtt') this.record('event', 'config.confirmed', data);
        this.audit(FleetModule.auditType(m, 'confirmed'), data);
        try {
          this.history.decide(m.newRevision, 'confirmed', ctx.clock.now());
        } catch (err) {
          this.log.error({ err: String(err) }, 'could not record the confirmation in the config history');
        }
        ctx.bus.emit('config.outcome', { status: 'confirmed', user: m.user, revision: m.newRevision, previousRevision: m.previousRevision });
      },
      onError: (err) => this.log.error({ err: String(err) }, 'checking the applied configuration failed (will retry)'),
      onRolledBack: (m, reason) => {
        this.log.error({ user: m.user, source: m.source ?? 'console', reason }, 'configuration change rolled back: restoring the previous config and restarting');
        this.reportRollback(m, reason);
        this.restartSoon(`config rolled back: ${reason}`, 'reload');
      },
    });
    const found = this.guard.start();
    if (found !== 'none') this.log.warn({ found, confirmWithinS: graceS }, 'configuration was changed: checking the gateway comes up healthy');
  }

  private restartSoon(reason: string, how: RestartHow): void {
    if (this.restartTimer) return;
    this.restartTimer = setTimeout(() => {
      try {
        this.ctx.requestRestart(reason, how);
      } catch (err) {
        this.log.error({ err: String(err) }, 'restart request failed');
      }
    }, RESTART_DELAY_MS);
  }

  private editableFile(): ConfigFile {
    if (!this.file) throw new CommandError('not_editable', `the gateway runs ${this.ctx.configSource === 'embedded' ? 'the built-in simulated estate' : `a config from "${this.ctx.configSource}"`}, not a config file: nothing to apply to (start it with --config FILE)`);
    const pending = this.file.marker();
    if (pending?.status === 'pending') throw new CommandError('restart_pending', `a change by ${pending.user} (revision ${pending.newRevision}) is being applied: wait for config.confirmed or config.rolled_back`);
    return this.file;
  }

  /** The file must be what runs: a hand edit not yet started is a change nobody has seen working. */
  private checkFileIsRunning(file: ConfigFile): void {
    let rev: string | undefined;
    try {
      rev = parseConfig(file.text(), file.path).revision;
    } catch {
      rev = undefined;
    }
    if (rev !== this.ctx.configRevision)
      throw new CommandError('revision_conflict', `the config file on disk (revision ${rev ?? 'invalid'}) is not the running configuration (${this.ctx.configRevision}): it was edited on the box; restart or fix it there first`, { runningRevision: this.ctx.configRevision, fileRevision: rev ?? null });
  }

  private apply(file: ConfigFile, c: EditResult, meta: CommandMeta, opts: { why?: string; confirmWithinS?: number }, action: string): { status: 'pending'; revision: string; previousRevision: string; confirmWithinS: number } {
    if (!c.ok || !c.yaml || !c.config) throw new CommandError('invalid_config', 'the configuration is not valid; nothing was changed', { problems: c.problems });
    if (!c.diff?.length) throw new CommandError('no_change', 'the new configuration is the same as the running one');
    const newCfg: GatewayConfig = c.config;
    const confirmWithinS = opts.confirmWithinS ?? DEFAULT_CONFIRM_WITHIN_S;
    const applied = applyChange({
      file,
      history: this.history,
      candidate: c as Parameters<typeof applyChange>[0]['candidate'],
      runningRevision: this.ctx.configRevision,
      health: this.ctx.healthReport(),
      user: meta.user ?? PLATFORM_USER,
      source: meta.source === 'console' ? 'console' : 'mqtt',
      now: this.ctx.clock.now(),
      commandId: meta.id,
      ...(opts.why ? { why: opts.why } : {}),
      confirmWithinS,
      // It came over the uplink: the uplink must come back with the new config, whatever else.
      mustBeHealthy: newCfg.uplink.enabled ? ['uplink'] : [],
    });
    this.audit(action, { source: meta.source, user: meta.user ?? PLATFORM_USER, commandId: meta.id, ...(opts.why ? { reason: opts.why } : {}), ...applied, confirmWithinS, diff: c.diff.slice(0, 50) });
    this.log.warn({ commandId: meta.id, source: meta.source, ...applied, confirmWithinS, changed: c.diff.length }, 'configuration change written: restarting to apply it');
    this.restartSoon(`${action} ${applied.revision} (command ${meta.id})`, 'reload');
    return { status: 'pending', ...applied, confirmWithinS };
  }

  private registerCommands(): void {
    const { ctx } = this;
    const commands = ctx.commands.forCapability('fleet');
    const reg: typeof commands.register = (def) => {
      commands.register(def);
      this.names.push(def.name);
    };
    reg({
      name: 'config.apply',
      role: 'admin',
      description: 'Apply a whole config (yaml) or a JSON merge patch (patch) made from baseRevision; the gateway restarts and confirms it only when healthy again with its uplink, else rolls it back by itself after confirmWithinS.',
      args: Type.Object(
        {
          yaml: Type.Optional(Type.String({ maxLength: 1024 * 1024 })),
          patch: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
          baseRevision: Type.String({ minLength: 1, maxLength: 64 }),
          confirmWithinS: Type.Optional(Type.Integer({ minimum: 2, maximum: 3600 })),
          reason: Type.Optional(Type.String({ maxLength: 500 })),
          allowPlaintextSecrets: Type.Optional(Type.Boolean()),
        },
        { additionalProperties: false },
      ),
      handler: (args, meta) => {
        if ((args.yaml === undefined) === (args.patch === undefined)) throw new CommandError('bad_args', 'give exactly one of yaml or patch');
        const file = this.editableFile();
        if (args.baseRevision !== ctx.configRevision) throw new CommandError('revision_conflict', `baseRevision ${args.baseRevision} is not the running revision ${ctx.configRevision}: fetch config.get and redo the change`, { runningRevision: ctx.configRevision });
        this.checkFileIsRunning(file);
        let wire: unknown = args.patch;
        if (args.yaml !== undefined) {
          const doc = parseDocument(args.yaml, { uniqueKeys: false });
          wire = doc.errors.length ? undefined : doc.toJS();
        }
        const plain = plaintextSecrets(wire);
        if (plain.length) {
          const tls = /^(mqtts|wss):\/\//i.test(ctx.config.uplink.url);
          if (!tls || args.allowPlaintextSecrets !== true)
            throw new CommandError('plaintext_secret', `inline { value } secrets at ${plain.join(', ')}: ${tls ? 'send allowPlaintextSecrets: true to accept them' : 'refused because the uplink does not use TLS'}; send { sealed } (sealed to gateway.info boxPublicKey), { env } or { file } instead`, { paths: plain });
        }
        const yaml = args.yaml ?? mergePatchText(file.text(), args.patch!);
        const c = file.candidate({ yaml }, ctx.config);
        return this.apply(file, c, meta, { ...(args.reason ? { why: args.reason } : {}), ...(args.confirmWithinS ? { confirmWithinS: args.confirmWithinS } : {}) }, 'config.applied');
      },
    });
    reg({
      name: 'config.history',
      role: 'technician',
      description: 'The last configuration changes (who, when, why, revision, outcome), newest last, and which revisions can be rolled back to.',
      args: Type.Object({}, { additionalProperties: false }),
      handler: () => {
        const entries = this.history.entries();
        const kept = [...new Set(entries.flatMap((e) => [e.revision, e.previousRevision]).filter((r): r is string => !!r && this.history.text(r) !== undefined))];
        return { running: ctx.configRevision, keep: HISTORY_KEEP, entries, available: kept, lastApply: this.file?.marker() ?? null };
      },
    });
    reg({
      name: 'config.rollback',
      role: 'admin',
      description: 'Go back to a kept revision (default: the one before the running one), applied and confirmed like config.apply.',
      args: Type.Object(
        {
          revision: Type.Optional(Type.String({ pattern: '^[0-9a-f]{6,64}$' })),
          reason: Type.Optional(Type.String({ maxLength: 500 })),
          confirmWithinS: Type.Optional(Type.Integer({ minimum: 2, maximum: 3600 })),
        },
        { additionalProperties: false },
      ),
      handler: (args, meta) => {
        const file = this.editableFile();
        const entries = this.history.entries();
        const running = ctx.configRevision;
        const target = args.revision ?? [...entries].reverse().find((e) => e.revision === running && e.previousRevision)?.previousRevision ?? [...entries].reverse().find((e) => e.revision !== running)?.revision;
        if (!target) throw new CommandError('unknown_revision', 'no earlier revision is kept on this gateway');
        if (target === running) throw new CommandError('no_change', `revision ${target} is the running one`);
        const text = this.history.text(target);
        if (text === undefined) throw new CommandError('unknown_revision', `revision ${target} is not kept on this gateway (config.history lists the available ones)`);
        const c = file.candidate({ yaml: text }, ctx.config);
        return this.apply(file, c, meta, { why: args.reason ?? `rollback to ${target}`, ...(args.confirmWithinS ? { confirmWithinS: args.confirmWithinS } : {}) }, 'config.rollback');
      },
    });
    reg({
      name: 'doctor.run',
      role: 'technician',
      description: 'Run the doctor (config, data dir, disk, clock, broker, devices, service) and return its findings.',
      args: Type.Object({}, { additionalProperties: false }),
      timeoutMs: 60_000,
      handler: async () => {
        const path = this.file?.path;
        const findings = await runDoctor({
          ...(path ? { configPath: path } : { loaded: { config: ctx.config, source: ctx.configSource, revision: ctx.configRevision, secrets: ctx.secrets } }),
          timeoutMs: 5000,
          // The result goes to the platform's records: no console setup token in it.
          showSetupToken: false,
        });
        const count = (l: string) => findings.filter((f) => f.level === l).length;
        return { ok: doctorExitCode(findings) === 0, summary: { ok: count('OK'), warn: count('WARN'), fail: count('FAIL'), skip: count('SKIP') }, findings };
      },
    });
    reg({
      name: 'logs.get',
      role: 'technician',
      description: "The gateway's own log lines from its on-disk ring (newest last): since (UTC ms or ISO time), at least level, at most limit (default 200, max 2000).",
      args: Type.Object(
        {
          since: Type.Optional(Type.Union([Type.Integer({ minimum: 0 }), Type.String({ minLength: 1, maxLength: 40 })])),
          level: Type.Optional(LevelName),
          limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 2000 })),
        },
        { additionalProperties: false },
      ),
      handler: (args) => {
        if (typeof args.since === 'string' && !Number.isFinite(Date.parse(args.since))) throw new CommandError('bad_args', `since "${args.since}" is not a time (UTC ms or ISO 8601)`);
        const r = this.logs.read(args);
        return { ...r, ringMaxBytes: this.logs.maxBytes * 2, loggerLevel: ctx.config.log.level };
      },
    });
    reg({
      name: 'metrics.get',
      role: 'viewer',
      description: 'The Prometheus metrics of /metrics, as JSON (default) or as the text exposition format.',
      args: Type.Object({ format: Type.Optional(Type.Union([Type.Literal('json'), Type.Literal('text')])) }, { additionalProperties: false }),
      handler: async (args) => (args.format === 'text' ? { format: 'text', text: await ctx.metrics.text() } : { format: 'json', metrics: await ctx.metrics.registry.getMetricsAsJSON() }),
    });
    reg({
      name: 'gateway.restart',
      role: 'admin',
      description: 'Restart the service (answered first; systemd starts it again).',
      args: Type.Object({ reason: Type.String({ minLength: 1, maxLength: 500 }) }, { additionalProperties: false }),
      handler: (args, meta) => {
        this.audit('gateway.restart', { source: meta.source, user: meta.user ?? PLATFORM_USER, commandId: meta.id, reason: args.reason });
        this.log.warn({ commandId: meta.id, source: meta.source, reason: args.reason }, 'restart requested by command');
        this.restartSoon(`gateway.restart (command ${meta.id}): ${args.reason}`, 'process');
        return { status: 'restarting', inMs: RESTART_DELAY_MS };
      },
    });
  }

  health(): ModuleHealth {
    const m = this.file?.marker();
    return { ok: true, detail: { configRevision: this.ctx.configRevision, lastApply: m ? { status: m.status, revision: m.newRevision, source: m.source ?? 'console' } : null, logRingDropped: this.logs.dropped } };
  }

  stop(): void {
    this.guard?.stop();
    if (this.restartTimer) clearTimeout(this.restartTimer);
    for (const n of this.names) this.ctx.commands.unregister(n);
    if (this.ownRing) this.ownRing.detach();
    else this.logs.flush();
  }
}

export const fleetModule: ModuleFactory = (ctx) => new FleetModule(ctx);
