// Commands from the platform (MQTT) and from the local console go through this one
// registry. Each capability registers its commands with an argument schema; the
// registry checks size, JSON, envelope, age (TTL), duplicates and arguments before a
// handler runs, and every outcome (ok or error) becomes a result record in the outbox.
//
// Duplicates: a command id is recorded in SQLite *before* its handler runs, so a
// redelivery after a crash or reconnect is never executed twice (at-most-once: for a
// door unlock that is the safe side). A duplicate gets the original result again.
// The ids are also kept in a bounded in-memory map, so de-duplication holds while the
// disk refuses writes (a full disk): the command still runs and is answered, and the
// store failure is logged (rate-limited) and counted instead of leaving it unanswered.
// The table is bounded in rows and in stored result size: it is for recognising
// redeliveries, not an archive (the result record upstream is the archive).
//
// Every command gets exactly one result. Refusals before execution: too_large,
// bad_json (not JSON, or not valid UTF-8), bad_envelope, expired, clock_skew (a `ts`
// further in the future than commands.maxClockSkewS), shutting_down (the gateway is
// stopping), unknown_command, bad_args.
import type { ValidateFunction } from 'ajv';
import { requireCjs } from '../cjs.js';

const { Ajv } = requireCjs('ajv') as typeof import('ajv');
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import type { Logger } from 'pino';
import type { Db } from '../store/sqlite.js';
import type { Clock } from '../clock.js';
import type { Outbox } from '../outbox/outbox.js';
import type { Metrics } from '../observability/metrics.js';
import { toConfigPath } from '../config/path.js';
import { LogThrottle } from '../observability/throttle.js';

export type CommandSource = 'mqtt' | 'console' | 'local';

export interface CommandMeta {
  /** The command id given by the caller (unique). */
  id: string;
  source: CommandSource;
  /** Console user name, for audit. */
  user?: string;
  receivedAt: number;
  /** The command's own timestamp (UTC ms), when given. */
  ts?: number;
}

/**
 * The least console role that may run a command from the technician console (the
 * platform, over MQTT, is trusted with every command). Declared by each command where it
 * is registered — the console never guesses it from the name.
 */
export type CommandRole = 'viewer' | 'technician' | 'admin';

export interface CommandDef<S extends TSchema = TSchema> {
  name: string;
  description: string;
  /** Who may run it from the console: reading state 'viewer'; acting on the estate or personal data 'technician'; the gateway itself 'admin'. */
  role: CommandRole;
  /**
   * The capability that owns it (its descriptor's name, edge/capabilities.ts; 'gateway' for
   * the core's own), set by the registrar of `forCapability`. The console refuses a
   * command without one and shows it on no page.
   */
  capability?: string;
  /** The console pages of its capability that show it (default: the capability's first page). */
  pages?: readonly string[];
  args: S;
  /**
   * Top-level arguments that are secrets (a PIN): never stored, audited or echoed. The
   * console's audit record shows them as "***".
   */
  secretArgs?: readonly string[];
  handler: (args: Static<S>, meta: CommandMeta) => unknown | Promise<unknown>;
  /** Handler time limit (default 30 s). */
  timeoutMs?: number;
}

/** The capability of the gateway's own commands (gateway.ping, config.get…). */
export const CORE_CAPABILITY = 'gateway';

/** What a capability registers its commands with: each gets the capability's name. */
export interface CommandRegistrar {
  register<S extends TSchema>(def: Omit<CommandDef<S>, 'capability'>): void;
  unregister(name: string): void;
  /** Unregister every command registered through this registrar (a module's stop): no list of names to keep in step. */
  unregisterAll(): void;
}

/** Raised by handlers for a clean error result: `throw new CommandError('unknown_door', 'no door "x"')`. */
export class CommandError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'CommandError';
  }
}

export type CommandResult = { ok: true; result: unknown } | { ok: false; error: { code: string; message: string; details?: unknown } };

export interface CommandOutcome {
  commandId: string;
  name: string;
  result: CommandResult;
  duplicate?: boolean;
}

const Envelope = Type.Object(
  {
    v: Type.Optional(Type.Literal(1)),
    id: Type.String({ minLength: 1, maxLength: 128 }),
    name: Type.String({ minLength: 1, maxLength: 64 }),
    args: Type.Optional(Type.Record(Type.String(), Type.Unknown())),
    ts: Type.Optional(Type.Integer({ minimum: 0 })),
    expiresAt: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  { additionalProperties: false },
);

export interface RegistryOptions {
  db: Db;
  clock: Clock;
  log: Logger;
  outbox: Outbox;
  metrics: Metrics;
  maxAgeS: number;
  maxPayloadBytes: number;
  dedupeHours: number;
  /** How far in the future a command's `ts` may be (clock skew between platform and box), seconds. */
  maxClockSkewS?: number;
  /** Most command ids kept for de-duplication (default 20,000). */
  dedupeMaxRows?: number;
  /** A write to the state database failed (e.g. SQLITE_FULL): the disk guard may free its reserve. */
  onStoreError?: (err: unknown) => void;
}

/** Results larger than this are kept for duplicates as a stub (the full result went upstream once). */
const MAX_STORED_RESULT = 1024;
/** Command ids also remembered in memory (covers a disk that refuses writes). */
const MEMORY_IDS = 4096;
const utf8 = new TextDecoder('utf-8', { fatal: true });

export class CommandRegistry {
  private readonly defs = new Map<string, { def: CommandDef; validate: ValidateFunction }>();
  private readonly ajv = new Ajv({ allErrors: true, useDefaults: true, coerceTypes: false, strict: false });
  private readonly validateEnvelope: ValidateFunction;
  private readonly counter;
  private readonly errors;
  private readonly seenGet;
  private readonly seenInsert;
  private readonly seenDone;
  private readonly seenPrune;
  private readonly seenTrim;
  private readonly storeErrors;
  private readonly storeThrottle = new LogThrottle();
  private readonly recent = new Map<string, CommandResult | null>();
  private inserts = 0;
  private stopping = false;

  constructor(private readonly opts: RegistryOptions) {
    this.validateEnvelope = this.ajv.compile(Envelope);
    opts.db.exec(`CREATE TABLE IF NOT EXISTS commands_seen (id TEXT PRIMARY KEY, name TEXT, received_at INTEGER NOT NULL, result TEXT)`);
    this.seenGet = opts.db.prepare('SELECT name, result FROM commands_seen WHERE id = ?');
    this.seenInsert = opts.db.prepare('INSERT INTO commands_seen(id, name, received_at) VALUES (?, ?, ?)');
    this.seenDone = opts.db.prepare('UPDATE commands_seen SET result = ? WHERE id = ?');
    this.seenPrune = opts.db.prepare('DELETE FROM commands_seen WHERE received_at < ?');
    this.seenTrim = opts.db.prepare('DELETE FROM commands_seen WHERE rowid <= (SELECT MAX(rowid) FROM commands_seen) - ?');
    // Names are a label only when registered: junk names from the wire must not create series.
    this.counter = opts.metrics.counter({ name: 'estate_commands_total', help: 'Commands handled, by name (registered names; others "unknown") and outcome', labelNames: ['name', 'outcome'] });
    this.errors = opts.metrics.counter({ name: 'estate_command_errors_total', help: 'Command errors by code', labelNames: ['code'] });
    this.storeErrors = opts.metrics.counter({ name: 'estate_command_store_errors_total', help: 'Command de-duplication writes the disk refused (command still executed and answered)' });
  }

  private label(name: string): string {
    return this.defs.has(name) ? name : 'unknown';
  }

  /** From now on every new command is refused with `shutting_down` (graceful stop). */
  beginShutdown(): void {
    this.stopping = true;
  }

  private remember(id: string, result: CommandResult | null): void {
    this.recent.delete(id);
    this.recent.set(id, result);
    if (this.recent.size > MEMORY_IDS) this.recent.delete(this.recent.keys().next().value!);
  }

  private storeFailed(op: string, err: unknown, id: string): void {
    this.storeErrors.inc();
    this.opts.onStoreError?.(err);
    this.storeThrottle.run((suppressed) => this.opts.log.error({ err: String(err), code: (err as { code?: string }).code, op, commandId: id, suppressed }, 'command de-duplication store failed: command handled, remembered in memory only'));
  }

  /** The result as kept for duplicates: small, whatever the handler returned. */
  private static storable(result: CommandResult): string {
    const s = JSON.stringify(result);
    if (s.length <= MAX_STORED_RESULT) return s;
    if (!result.ok) return JSON.stringify({ ok: false, error: { code: result.error.code, message: result.error.message.slice(0, 500) } });
    return JSON.stringify({ ok: true, result: { kept: false, bytes: s.length, note: 'the original result was too large to keep for duplicates; it was sent with the first execution' } });
  }

  register<S extends TSchema>(def: CommandDef<S>): void {
    if (this.defs.has(def.name)) throw new Error(`command ${def.name} registered twice`);
    this.defs.set(def.name, { def: def as unknown as CommandDef, validate: this.ajv.compile(def.args) });
  }

  unregister(name: string): void {
    this.defs.delete(name);
  }

  /** A registrar whose commands belong to `capability` (the console groups and admits them by it). */
  forCapability(capability: string): CommandRegistrar {
    const mine = new Set<string>();
    return {
      register: (def) => {
        this.register({ ...def, capability });
        mine.add(def.name);
      },
      unregister: (name) => {
        // Only its own: a capability cannot take another's command away.
        if (!mine.delete(name)) return;
        this.unregister(name);
      },
      unregisterAll: () => {
        for (const name of mine) this.unregister(name);
        mine.clear();
      },
    };
  }

  /** The capability a command belongs to; undefined for an unknown command or one registered without. */
  capabilityOf(name: string): string | undefined {
    return this.defs.get(name)?.def.capability;
  }

  /** The console pages a command asked to be shown on (undefined: its capability's first page). */
  pagesOf(name: string): readonly string[] | undefined {
    return this.defs.get(name)?.def.pages;
  }

  /** The console role a command declared; undefined for an unknown command. */
  roleOf(name: string): CommandRole | undefined {
    return this.defs.get(name)?.def.role;
  }

  /** The secret arguments a command declared (masked in audit records). */
  secretArgsOf(name: string): readonly string[] {
    return this.defs.get(name)?.def.secretArgs ?? [];
  }

  list(): Array<{ name: string; description: string; args: TSchema }> {
    return [...this.defs.values()].map(({ def }) => ({ name: def.name, description: def.description, args: def.args }));
  }

  /** Forget command ids older than the dedupe window (run periodically). */
  prune(): number {
    try {
      return this.seenPrune.run(this.opts.clock.now() - this.opts.dedupeHours * 3600_000).changes + this.seenTrim.run(this.opts.dedupeMaxRows ?? 20_000).changes;
    } catch (err) {
      this.storeFailed('prune', err, '');
      return 0;
    }
  }

  private fail(code: string, message: string, details?: unknown): CommandResult {
    this.errors.inc({ code });
    return { ok: false, error: details === undefined ? { code, message } : { code, message, details } };
  }

  /** Execute a command (from any source). Never throws; every failure is an error result. */
  async execute(name: string, args: unknown, meta: CommandMeta): Promise<CommandOutcome> {
    try {
      return await this.executeChecked(name, args, meta);
    } catch (err) {
      // Not expected (every step below handles its own failures): still an answer.
      this.opts.log.error({ err, command: name, id: meta.id }, 'command execution failed');
      this.counter.inc({ name: this.label(name), outcome: 'error' });
      return { commandId: meta.id, name, result: this.fail('internal', `command failed: ${(err as Error)?.message ?? String(err)}`) };
    }
  }

  private lookup(id: string): { result: CommandResult | null } | undefined {
    if (this.recent.has(id)) return { result: this.recent.get(id)! };
    try {
      const row = this.seenGet.get(id) as { name: string; result: string | null } | undefined;
      return row ? { result: row.result ? (JSON.parse(row.result) as CommandResult) : null } : undefined;
    } catch (err) {
      this.storeFailed('lookup', err, id);
      return undefined;
    }
  }

  private async executeChecked(name: string, args: unknown, meta: CommandMeta): Promise<CommandOutcome> {
    const seen = this.lookup(meta.id);
    if (seen) {
      this.counter.inc({ name: this.label(name), outcome: 'duplicate' });
      const original: CommandResult = seen.result ?? { ok: false, error: { code: 'in_progress', message: 'command is already being executed' } };
      return { commandId: meta.id, name, result: original, duplicate: true };
    }
    const entry = this.defs.get(name);
    let result: CommandResult;
    if (this.stopping) {
      result = this.fail('shutting_down', 'the gateway is stopping: command not executed (send it again once the gateway is back online)');
    } else if (!entry) {
      result = this.fail('unknown_command', `unknown command "${name.slice(0, 64)}"`, { known: [...this.defs.keys()].sort() });
    } else if (!entry.validate((args ??= {}))) {
      const problems = (entry.validate.errors ?? []).map((e) => `${toConfigPath(e.instancePath) || '(args)'}: ${e.keyword === 'additionalProperties' ? `unknown argument "${(e.params as { additionalProperty: string }).additionalProperty}"` : e.message}`);
      result = this.fail('bad_args', `invalid arguments: ${problems.join('; ')}`, { problems });
    } else {
      this.remember(meta.id, null);
      try {
        this.seenInsert.run(meta.id, name, meta.receivedAt);
        if (++this.inserts % 256 === 0) this.seenTrim.run(this.opts.dedupeMaxRows ?? 20_000);
      } catch (err) {
        this.storeFailed('insert', err, meta.id);
      }
      result = await this.run(entry.def, args, meta);
      this.remember(meta.id, result);
      try {
        this.seenDone.run(CommandRegistry.storable(result), meta.id);
      } catch (err) {
        this.storeFailed('result', err, meta.id);
      }
    }
    this.counter.inc({ name: this.label(name), outcome: result.ok ? 'ok' : result.error.code === 'shutting_down' ? 'rejected' : 'error' });
    return { commandId: meta.id, name, result };
  }

  private async run(def: CommandDef, args: unknown, meta: CommandMeta): Promise<CommandResult> {
    const timeoutMs = def.timeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    try {
      const value = await Promise.race([
        Promise.resolve().then(() => def.handler(args as never, meta)),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new CommandError('timeout', `command did not finish within ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
      return { ok: true, result: value ?? null };
    } catch (err) {
      if (err instanceof CommandError) return this.fail(err.code, err.message, err.details);
      this.opts.log.error({ err, command: def.name, id: meta.id }, 'command handler failed');
      return this.fail('internal', `command failed: ${(err as Error)?.message ?? String(err)}`);
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  /**
   * Handle a raw MQTT command payload: checks, execution, and the result record in the
   * outbox (stream "result"). Never throws, whatever the bytes.
   */
  async handleMqtt(payload: Buffer): Promise<CommandOutcome> {
    const now = this.opts.clock.now();
    let outcome: CommandOutcome;
    try {
      outcome = await this.parseAndExecute(payload, now);
    } catch (err) {
      this.opts.log.error({ err }, 'command handling failed');
      outcome = { commandId: '', name: '', result: this.fail('internal', `command failed: ${(err as Error)?.message ?? String(err)}`) };
    }
    await this.opts.outbox.append({ stream: 'result', type: 'command.result', data: { commandId: outcome.commandId, name: outcome.name, ...outcome.result, ...(outcome.duplicate ? { duplicate: true } : {}) } }).catch((err) => this.opts.log.error({ err: String(err) }, 'could not store command result'));
    return outcome;
  }

  private async parseAndExecute(payload: Buffer, now: number): Promise<CommandOutcome> {
    const reject = (code: string, message: string, id = '', name = ''): CommandOutcome => {
      this.counter.inc({ name: this.label(name), outcome: 'rejected' });
      this.opts.log.warn({ code, commandId: id, name, bytes: payload.length }, `command rejected: ${message}`);
      return { commandId: id, name, result: this.fail(code, message) };
    };
    if (payload.length > this.opts.maxPayloadBytes) return reject('too_large', `payload of ${payload.length} bytes exceeds ${this.opts.maxPayloadBytes}`);
    let msg: unknown;
    try {
      // fatal: invalid UTF-8 is refused, not silently replaced by U+FFFD.
      msg = JSON.parse(utf8.decode(payload));
    } catch (err) {
      return reject('bad_json', `payload is not valid JSON: ${(err as Error).message}`);
    }
    const idOf = (m: unknown) => (m && typeof m === 'object' && typeof (m as { id?: unknown }).id === 'string' ? (m as { id: string }).id.slice(0, 128) : '');
    const nameOf = (m: unknown) => (m && typeof m === 'object' && typeof (m as { name?: unknown }).name === 'string' ? (m as { name: string }).name.slice(0, 64) : '');
    if (!this.validateEnvelope(msg)) {
      const problems = (this.validateEnvelope.errors ?? []).map((e) => `${toConfigPath(e.instancePath) || '(command)'}: ${e.keyword === 'additionalProperties' ? `unknown field "${(e.params as { additionalProperty: string }).additionalProperty}"` : e.message}`);
      return reject('bad_envelope', `malformed command: ${problems.join('; ')}`, idOf(msg), nameOf(msg));
    }
    const cmd = msg as Static<typeof Envelope>;
    const skewMs = (this.opts.maxClockSkewS ?? 60) * 1000;
    if (cmd.ts !== undefined && (!Number.isSafeInteger(cmd.ts) || cmd.ts - now > skewMs))
      return reject('clock_skew', `command ts ${cmd.ts} is ${Number.isSafeInteger(cmd.ts) ? `${Math.round((cmd.ts - now) / 1000)} s` : 'absurdly far'} ahead of gateway time ${now} (allowed skew ${skewMs / 1000} s): not executed; check the platform's and the gateway's clocks`, cmd.id, cmd.name);
    if (cmd.expiresAt !== undefined && now > cmd.expiresAt) return reject('expired', `command expired at ${cmd.expiresAt} (gateway time ${now})`, cmd.id, cmd.name);
    if (cmd.ts !== undefined && now - cmd.ts > this.opts.maxAgeS * 1000) return reject('expired', `command is ${Math.round((now - cmd.ts) / 1000)} s old, older than ${this.opts.maxAgeS} s (gateway time ${now})`, cmd.id, cmd.name);
    return this.execute(cmd.name, cmd.args ?? {}, { id: cmd.id, source: 'mqtt', receivedAt: now, ...(cmd.ts !== undefined ? { ts: cmd.ts } : {}) });
  }
}
