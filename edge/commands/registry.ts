// Commands from the platform (MQTT) and from the local console go through this one
// registry. Each capability registers its commands with an argument schema; the
// registry checks size, JSON, envelope, age (TTL), duplicates and arguments before a
// handler runs, and every outcome (ok or error) becomes a result record in the outbox.
//
// Duplicates: a command id is recorded in SQLite *before* its handler runs, so a
// redelivery after a crash or reconnect is never executed twice (at-most-once: for a
// door unlock that is the safe side). A duplicate gets the original result again.
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
  args: S;
  handler: (args: Static<S>, meta: CommandMeta) => unknown | Promise<unknown>;
  /** Handler time limit (default 30 s). */
  timeoutMs?: number;
}

/** Raised by handlers for a clean error result: `throw new CommandError('unknown_door', 'no door "x"')`. */
export class CommandError extends Error {
  constructor(readonly code: string, message: string, readonly details?: unknown) {
    super(message);
    this.name = 'CommandError';
  }
}

export type CommandResult =
  | { ok: true; result: unknown }
  | { ok: false; error: { code: string; message: string; details?: unknown } };

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
}

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

  constructor(private readonly opts: RegistryOptions) {
    this.validateEnvelope = this.ajv.compile(Envelope);
    opts.db.exec(`CREATE TABLE IF NOT EXISTS commands_seen (id TEXT PRIMARY KEY, name TEXT, received_at INTEGER NOT NULL, result TEXT)`);
    this.seenGet = opts.db.prepare('SELECT name, result FROM commands_seen WHERE id = ?');
    this.seenInsert = opts.db.prepare('INSERT INTO commands_seen(id, name, received_at) VALUES (?, ?, ?)');
    this.seenDone = opts.db.prepare('UPDATE commands_seen SET result = ? WHERE id = ?');
    this.seenPrune = opts.db.prepare('DELETE FROM commands_seen WHERE received_at < ?');
    this.counter = opts.metrics.counter({ name: 'estate_commands_total', help: 'Commands handled, by name and outcome', labelNames: ['name', 'outcome'] });
    this.errors = opts.metrics.counter({ name: 'estate_command_errors_total', help: 'Command errors by code', labelNames: ['code'] });
  }

  register<S extends TSchema>(def: CommandDef<S>): void {
    if (this.defs.has(def.name)) throw new Error(`command ${def.name} registered twice`);
    this.defs.set(def.name, { def: def as unknown as CommandDef, validate: this.ajv.compile(def.args) });
  }

  unregister(name: string): void {
    this.defs.delete(name);
  }

  /** The console role a command declared; undefined for an unknown command. */
  roleOf(name: string): CommandRole | undefined {
    return this.defs.get(name)?.def.role;
  }

  list(): Array<{ name: string; description: string; args: TSchema }> {
    return [...this.defs.values()].map(({ def }) => ({ name: def.name, description: def.description, args: def.args }));
  }

  /** Forget command ids older than the dedupe window (run periodically). */
  prune(): number {
    return this.seenPrune.run(this.opts.clock.now() - this.opts.dedupeHours * 3600_000).changes;
  }

  private fail(code: string, message: string, details?: unknown): CommandResult {
    this.errors.inc({ code });
    return { ok: false, error: details === undefined ? { code, message } : { code, message, details } };
  }

  /** Execute a command (from any source). Never throws; every failure is an error result. */
  async execute(name: string, args: unknown, meta: CommandMeta): Promise<CommandOutcome> {
    const seen = this.seenGet.get(meta.id) as { name: string; result: string | null } | undefined;
    if (seen) {
      this.counter.inc({ name, outcome: 'duplicate' });
      const original: CommandResult = seen.result ? JSON.parse(seen.result) : { ok: false, error: { code: 'in_progress', message: 'command is already being executed' } };
      return { commandId: meta.id, name, result: original, duplicate: true };
    }
    const entry = this.defs.get(name);
    let result: CommandResult;
    if (!entry) {
      result = this.fail('unknown_command', `unknown command "${name}"`, { known: [...this.defs.keys()].sort() });
    } else if (!entry.validate((args ??= {}))) {
      const problems = (entry.validate.errors ?? []).map((e) => `${toConfigPath(e.instancePath) || '(args)'}: ${e.keyword === 'additionalProperties' ? `unknown argument "${(e.params as { additionalProperty: string }).additionalProperty}"` : e.message}`);
      result = this.fail('bad_args', `invalid arguments: ${problems.join('; ')}`, { problems });
    } else {
      this.seenInsert.run(meta.id, name, meta.receivedAt);
      result = await this.run(entry.def, args, meta);
      this.seenDone.run(JSON.stringify(result), meta.id);
    }
    this.counter.inc({ name: entry ? name : '(unknown)', outcome: result.ok ? 'ok' : 'error' });
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
    const outcome = await this.parseAndExecute(payload, now);
    await this.opts.outbox
      .append({ stream: 'result', type: 'command.result', data: { commandId: outcome.commandId, name: outcome.name, ...outcome.result, ...(outcome.duplicate ? { duplicate: true } : {}) } })
      .catch((err) => this.opts.log.error({ err: String(err) }, 'could not store command result'));
    return outcome;
  }

  private async parseAndExecute(payload: Buffer, now: number): Promise<CommandOutcome> {
    const reject = (code: string, message: string, id = '', name = ''): CommandOutcome => {
      this.counter.inc({ name: name || '(invalid)', outcome: 'rejected' });
      this.opts.log.warn({ code, commandId: id, name, bytes: payload.length }, `command rejected: ${message}`);
      return { commandId: id, name, result: this.fail(code, message) };
    };
    if (payload.length > this.opts.maxPayloadBytes) return reject('too_large', `payload of ${payload.length} bytes exceeds ${this.opts.maxPayloadBytes}`);
    let msg: unknown;
    try {
      msg = JSON.parse(payload.toString('utf8'));
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
    if (cmd.expiresAt !== undefined && now > cmd.expiresAt) return reject('expired', `command expired at ${cmd.expiresAt} (gateway time ${now})`, cmd.id, cmd.name);
    if (cmd.ts !== undefined && now - cmd.ts > this.opts.maxAgeS * 1000)
      return reject('expired', `command is ${Math.round((now - cmd.ts) / 1000)} s old, older than ${this.opts.maxAgeS} s (gateway time ${now})`, cmd.id, cmd.name);
    return this.execute(cmd.name, cmd.args ?? {}, { id: cmd.id, source: 'mqtt', receivedAt: now, ...(cmd.ts !== undefined ? { ts: cmd.ts } : {}) });
  }
}
