// The gateway's own commands: ping, info, config.get, commands.list.
import { Type } from '@sinclair/typebox';
import { CORE_CAPABILITY, type CommandRegistry } from './registry.js';
import type { GatewayConfig } from '../config/core.js';
import { redactedConfig } from '../config/load.js';

export interface CoreCommandDeps {
  commands: CommandRegistry;
  config: GatewayConfig;
  configSource: string;
  configRevision: string;
  now: () => number;
  info: () => Record<string, unknown>;
}

export function registerCoreCommands(d: CoreCommandDeps): void {
  const commands = d.commands.forCapability(CORE_CAPABILITY);
  commands.register({
    name: 'gateway.ping',
    role: 'viewer',
    description: 'Answer at once; measures the command round trip.',
    args: Type.Object({ echo: Type.Optional(Type.String({ maxLength: 256 })) }, { additionalProperties: false }),
    handler: (args) => ({ pong: true, gatewayTime: d.now(), ...(args.echo !== undefined ? { echo: args.echo } : {}) }),
  });
  commands.register({
    name: 'gateway.info',
    role: 'viewer',
    description: 'Version, uptime, config revision, uplink and outbox state, module health.',
    args: Type.Object({}, { additionalProperties: false }),
    handler: () => d.info(),
  });
  commands.register({
    name: 'config.get',
    role: 'viewer',
    description: 'The running configuration (secrets masked) and its revision.',
    args: Type.Object({}, { additionalProperties: false }),
    handler: () => ({ revision: d.configRevision, source: d.configSource, config: redactedConfig(d.config) }),
  });
  commands.register({
    name: 'commands.list',
    role: 'viewer',
    description: 'The commands this gateway understands, with their argument schemas.',
    args: Type.Object({}, { additionalProperties: false }),
    handler: () => d.commands.list(),
  });
}
