// The charging commands (platform over MQTT, console locally): status for viewers; stop
// and enable act on a pile and are technician commands, each leaving an audit record.
import { Type } from '@sinclair/typebox';
import { CommandError, type CommandMeta, type CommandRegistrar } from '../commands/registry.js';
import { Ident } from '../config/types.js';
import { ChargingError, type ChargingSupervisor } from './supervisor.js';
import type { ChargingPortRow, ChargingStatusResult } from '../console/api-types.js';

export const CHARGING_COMMANDS = ['charging.status', 'charging.stop', 'charging.enable'] as const;

const PortArgs = Type.Object(
  {
    pile: Ident({ description: 'Pile id.' }),
    port: Ident({ description: 'Port id within the pile.' }),
  },
  { additionalProperties: false },
);

function asCommandError(err: unknown): never {
  if (err instanceof ChargingError) throw new CommandError(err.code, err.message);
  throw err;
}

export function registerChargingCommands(reg: CommandRegistrar, sup: ChargingSupervisor, rejected: (code: string) => void): void {
  const audit = (action: string, a: { pile: string; port: string }, meta: CommandMeta, outcome: string) => sup.append({ stream: 'audit', type: action, data: { pile: a.pile, port: a.port, outcome, by: meta.user ?? meta.source, source: meta.source, commandId: meta.id } });
  const run = async <T>(action: string, a: { pile: string; port: string }, meta: CommandMeta, fn: () => Promise<T>): Promise<T> => {
    try {
      const out = await fn();
      audit(action, a, meta, 'ok');
      return out;
    } catch (err) {
      const code = err instanceof ChargingError ? err.code : 'error';
      rejected(code);
      audit(action, a, meta, code);
      return asCommandError(err);
    }
  };
  reg.register({
    name: 'charging.status',
    role: 'viewer',
    description: 'Piles and ports: state, power, open session, relay, fire inputs; counters.',
    args: Type.Object({}, { additionalProperties: false }),
    handler: () => sup.status() satisfies ChargingStatusResult,
  });
  reg.register({
    name: 'charging.stop',
    role: 'technician',
    description: 'Cut a port now (relay off, read back); its session ends with reason stop.',
    args: PortArgs,
    handler: (a, meta) =>
      run('charging.stop', a, meta, async () => {
        const p = sup.port(a.pile, a.port);
        await sup.cut([p], 'stop');
        return sup.portStatus(p) satisfies ChargingPortRow;
      }),
  });
  reg.register({
    name: 'charging.enable',
    role: 'technician',
    description: 'Switch a port back on after a cut or a fault (refused while its pile’s smoke/heat input is tripped).',
    args: PortArgs,
    handler: (a, meta) => run('charging.enable', a, meta, async () => (await sup.enablePort(sup.port(a.pile, a.port), `command ${meta.user ?? meta.source}`)) satisfies ChargingPortRow),
  });
}
