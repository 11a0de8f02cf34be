// Meter commands (platform over MQTT and the local console go through the same registry).
import { Type } from '@sinclair/typebox';
import { CommandError, type CommandRegistrar } from '../commands/registry.js';
import { BusBusyError, UnknownPointError } from './scheduler.js';
import { ReadError } from './protocols.js';
// The console's Meters page reads these results: checked against its API types.
import type { BusScanResult, MeterReadResult } from '../console/api-types.js';
import { MeterNotFound, BusNotFound, NotSupportedError, type MetersService } from './service.js';

/** Map meter failures to clean command errors (code + message), never a stack trace. */
function clean(err: unknown): never {
  if (err instanceof CommandError) throw err;
  if (err instanceof MeterNotFound) throw new CommandError('unknown_device', err.message);
  if (err instanceof BusNotFound) throw new CommandError('unknown_bus', err.message);
  if (err instanceof UnknownPointError) throw new CommandError('unknown_point', err.message);
  if (err instanceof NotSupportedError) throw new CommandError('not_supported', err.message);
  if (err instanceof BusBusyError) throw new CommandError('bus_busy', err.message);
  if (err instanceof ReadError) throw new CommandError(err.kind === 'timeout' ? 'meter_timeout' : `meter_${err.kind}`, err.message);
  throw new CommandError('meter_error', (err as Error)?.message ?? String(err));
}

export function registerMeterCommands(commands: CommandRegistrar, svc: MetersService): void {
  commands.register({
    name: 'meter.read',
    role: 'technician',
    description: 'Read a meter now (all its points, or one point), between scheduled polls.',
    args: Type.Object(
      {
        device: Type.String({ minLength: 1, description: 'Device id' }),
        point: Type.Optional(Type.String({ minLength: 1, description: 'Point name (default: all points)' })),
      },
      { additionalProperties: false },
    ),
    timeoutMs: 20_000,
    handler: async (args) => {
      try {
        const values = await svc.readNow(args.device, args.point);
        return { device: args.device, values } satisfies MeterReadResult;
      } catch (err) {
        clean(err);
      }
    },
  });

  commands.register({
    name: 'bus.scan',
    role: 'technician',
    description: 'Find devices on a bus: Modbus unit ids (default 1–247, short timeouts); DL/T 645 and CJ/T 188 read-address. Polling pauses while it runs.',
    args: Type.Object(
      {
        bus: Type.String({ minLength: 1 }),
        from: Type.Optional(Type.Integer({ minimum: 1, maximum: 247 })),
        to: Type.Optional(Type.Integer({ minimum: 1, maximum: 247 })),
        timeoutMs: Type.Optional(Type.Integer({ minimum: 20, maximum: 1000, description: 'Per-address timeout (default min(bus timeout, 100 ms))' })),
      },
      { additionalProperties: false },
    ),
    timeoutMs: 120_000,
    handler: async (args) => {
      if (args.from !== undefined && args.to !== undefined && args.to < args.from) throw new CommandError('bad_args', 'to must be ≥ from');
      try {
        return (await svc.scan(args.bus, { ...(args.from !== undefined ? { from: args.from } : {}), ...(args.to !== undefined ? { to: args.to } : {}), ...(args.timeoutMs !== undefined ? { timeoutMs: args.timeoutMs } : {}) })) satisfies BusScanResult;
      } catch (err) {
        clean(err);
      }
    },
  });

  commands.register({
    name: 'meter.timesync',
    role: 'technician',
    description: 'Broadcast the gateway time (DL/T 645 08H) on every DL/T 645 bus, or one.',
    args: Type.Object({ bus: Type.Optional(Type.String({ minLength: 1 })) }, { additionalProperties: false }),
    handler: async (args) => {
      try {
        return { synced: await svc.timeSync(args.bus) };
      } catch (err) {
        clean(err);
      }
    },
  });

  commands.register({
    name: 'meter.status',
    role: 'viewer',
    description: 'Latest values, state and counters of one meter, or the state of every bus and meter.',
    args: Type.Object({ device: Type.Optional(Type.String({ minLength: 1 })), bus: Type.Optional(Type.String({ minLength: 1 })) }, { additionalProperties: false }),
    handler: (args) => {
      if (args.device) {
        const s = svc.status(args.device);
        if (!s) throw new CommandError('unknown_device', `no meter "${args.device}"`);
        return s;
      }
      if (args.bus && !svc.runners.has(args.bus)) throw new CommandError('unknown_bus', `no bus "${args.bus}"`);
      return { buses: svc.buses().filter((b) => !args.bus || b.id === args.bus), devices: svc.devices(args.bus) };
    },
  });
}
