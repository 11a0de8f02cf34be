// Actions from the console go through the gateway's command registry, exactly like
// the platform's commands, so both share one code path, one validation and one result
// format. Each execution is audited (stream "audit": who ran what, with which outcome).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import { roleAtLeast, isRole, type Role } from '../accounts.js';
import { sendError, type ConsoleDeps } from '../server.js';
import type { CommandResult } from '../../commands/registry.js';
import { maskSecrets } from '../../config/redact.js';

/**
 * Which role may run a command from the console: the role the command declared where it
 * was registered (CommandDef.role), never guessed from its name. A command without a
 * valid declaration is refused (undefined), and so is one registered without a
 * capability (CommandDef.capability, set by CommandRegistry.forCapability).
 */
export function commandRole(d: ConsoleDeps, name: string): Role | undefined {
  const role = d.ctx.commands.roleOf(name);
  return isRole(role) ? role : undefined;
}

/** Keep audit records small, free of biometric payloads (photos, embeddings) and of URL passwords. */
export function auditArgs(args: unknown, secrets: readonly string[] = []): unknown {
  if (secrets.length && args && typeof args === 'object' && !Array.isArray(args)) {
    const copy: Record<string, unknown> = { ...(args as Record<string, unknown>) };
    for (const k of secrets) if (copy[k] !== undefined && copy[k] !== null) copy[k] = '***';
    args = copy;
  }
  const s = JSON.stringify(args ?? {});
  // Rooted outside the config: only the masks that apply to any value (URL userinfo).
  if (s.length <= 2000) return maskSecrets(args ?? {}, ['(command arguments)']);
  return { truncated: true, keys: args && typeof args === 'object' ? Object.keys(args) : [] };
}

export async function runCommand(d: ConsoleDeps, req: FastifyRequest, name: string, args: unknown, opts: { audit?: boolean } = {}): Promise<CommandResult> {
  const now = d.ctx.clock.now();
  const outcome = await d.ctx.commands.execute(name, args, { id: `console-${randomUUID()}`, source: 'console', user: req.session?.user ?? 'anonymous', receivedAt: now });
  if (opts.audit !== false) {
    await d.audit(req, 'console.command', {
      command: name,
      args: auditArgs(args, d.ctx.commands.secretArgsOf(name)),
      ok: outcome.result.ok,
      ...(outcome.result.ok ? {} : { error: outcome.result.error.code }),
    });
  }
  return outcome.result;
}

/** HTTP status for a command error code. */
export function statusFor(result: CommandResult): number {
  if (result.ok) return 200;
  const code = result.error.code;
  if (code === 'bad_args') return 400;
  if (code === 'unknown_command' || code.startsWith('unknown_') || code === 'not_found') return 404;
  if (code === 'timeout') return 504;
  if (code === 'internal') return 500;
  if (code === 'not_configured' || code === 'unavailable') return 503;
  return 409;
}

export function sendResult(reply: FastifyReply, result: CommandResult): FastifyReply {
  return reply.code(statusFor(result)).send(result);
}

/** Run a command for a request, checking the caller's role for it first. */
export async function runAs(d: ConsoleDeps, req: FastifyRequest, reply: FastifyReply, name: string, args: unknown): Promise<FastifyReply> {
  if (!d.ctx.commands.list().some((c) => c.name === name)) return sendError(reply, 404, 'unknown_command', `no command "${name}"`);
  const need = commandRole(d, name);
  if (need === undefined) return sendError(reply, 403, 'forbidden', `command ${name} declares no console role: refused`);
  if (d.ctx.commands.capabilityOf(name) === undefined) return sendError(reply, 403, 'forbidden', `command ${name} belongs to no capability: refused`);
  if (!roleAtLeast(req.session!.role, need)) return sendError(reply, 403, 'forbidden', `command ${name} needs the ${need} role (you are ${req.session!.role})`);
  return sendResult(reply, await runCommand(d, req, name, args));
}

export function commandRoutes(app: FastifyInstance, d: ConsoleDeps): void {
  app.get('/api/commands', { config: { role: 'viewer' } }, async (req) => ({
    commands: d.ctx.commands.list().map((c) => {
      const role = commandRole(d, c.name);
      const capability = d.ctx.commands.capabilityOf(c.name);
      return { name: c.name, description: c.description, args: c.args, role: role ?? null, capability: capability ?? null, allowed: role !== undefined && capability !== undefined && roleAtLeast(req.session!.role, role) };
    }),
  }));

  // The role is checked per command (runAs); the route itself needs a session.
  app.post<{ Params: { name: string }; Body: Record<string, unknown> | undefined }>('/api/commands/:name', { config: { role: 'viewer' } }, async (req, reply) => {
    const body = req.body ?? {};
    if (typeof body !== 'object' || Array.isArray(body)) return sendError(reply, 400, 'bad_args', 'arguments must be a JSON object');
    return runAs(d, req, reply, req.params.name, body);
  });
}
