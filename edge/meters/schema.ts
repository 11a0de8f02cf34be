// Config section `meters`: the RS-485 lines (or TCP converters) and the meters on each.
import { Type, type Static } from '@sinclair/typebox';
import { Ident, OneOf, Section } from '../config/types.js';

export const BAUD_RATES = [1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] as const;

export const MeterDeviceSchema = Section(
  {
    id: Ident({ description: 'Device id, unique on the gateway; used in telemetry and commands.' }),
    name: Type.Optional(Type.String({ maxLength: 200, description: 'Human-readable name (flat, riser), shown in the console.' })),
    profile: Type.String({ minLength: 1, description: 'Profile id (drivers/profiles/*.yaml or meters.profilesDir), e.g. eastron-sdm630, dlt645-2007-single.' }),
    address: Type.Union([Type.Integer({ minimum: 1, maximum: 247 }), Type.String({ pattern: '^[0-9A-Fa-f]{1,14}$' })], {
      description: 'Modbus unit id (1–247), DL/T 645 address (up to 12 digits, as printed on the meter) or CJ/T 188 address (up to 14 digits).',
    }),
    pollIntervalMs: Type.Integer({ minimum: 100, maximum: 86_400_000, default: 10_000, description: 'How often the meter is read. Polls that fall due while the line is busy are skipped and counted, never queued.' }),
    points: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1, description: 'Read only these points of the profile (default: all).' })),
    deadband: Type.Optional(
      Type.Union([Type.Number({ minimum: 0 }), Type.Record(Type.String(), Type.Number({ minimum: 0 }))], {
        description: 'Report-by-exception: a point is published only when it moved by more than this (one number for all points, or per point name). Without it every poll is published.',
      }),
    ),
    enabled: Type.Boolean({ default: true, description: 'Poll this meter.' }),
  },
  { description: 'A meter on the bus.' },
);

export const MeterBusSchema = Section(
  {
    id: Ident({ description: 'Bus id (one RS-485 line or converter).' }),
    protocol: OneOf(['modbus', 'dlt645', 'cjt188', 'mixed'] as const, {
      description: 'Protocol spoken on this line (DL/T 645-2007 and -1997 meters may share a dlt645 line; mixed = Modbus RTU and DL/T 645 meters at the same serial settings on one line).',
    }),
    transport: OneOf(['serial', 'tcp', 'simulated'] as const, {
      default: 'serial',
      description: 'serial: an RS-485 port; tcp: an RS-485-to-Ethernet converter; simulated: an in-process wire with simulator meters (demo, bench).',
    }),
    port: Type.Optional(Type.String({ minLength: 1, description: 'Serial device, e.g. /dev/ttyUSB0 or /dev/serial/by-id/… (transport serial).' })),
    host: Type.Optional(Type.String({ minLength: 1, description: 'Converter host name or address (transport tcp).' })),
    tcpPort: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, description: 'Converter TCP port (transport tcp), usually 502 (Modbus TCP) or 4001/8899 (transparent).' })),
    framing: Type.Optional(
      OneOf(['rtu', 'tcp'] as const, {
        description: 'Modbus over tcp transport: tcp = Modbus TCP (MBAP), rtu = RTU frames over a transparent TCP socket. Required for a Modbus bus over tcp, except on tcpPort 502 (the Modbus TCP port), where it defaults to tcp. Ignored for serial.',
      }),
    ),
    baudRate: OneOf(BAUD_RATES, { default: 9600, description: 'Baud rate (serial and simulated). DL/T 645-2007 meters default to 2400, 1997 meters to 1200.' }),
    parity: OneOf(['none', 'even', 'odd'] as const, { default: 'none', description: 'Parity. DL/T 645 and CJ/T 188 use even.' }),
    stopBits: OneOf([1, 2] as const, { default: 1, description: 'Stop bits.' }),
    timeoutMs: Type.Integer({ minimum: 20, maximum: 10_000, default: 1000, description: 'Reply timeout per request, from the end of the request on the wire.' }),
    replyGuardMs: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 60_000,
        description:
          'Silence held after a timeout before the next request, so a late reply arrives while nothing is asked and is discarded (counted as lateReplies) instead of being taken for the next answer. Default: the timeout plus the wire time of a 256-byte reply at baudRate (0 for Modbus TCP framing, whose transaction ids tell replies apart). 0 disables it.',
      }),
    ),
    interFrameDelayMs: Type.Integer({
      minimum: 0,
      maximum: 2000,
      default: 0,
      description: 'Extra quiet time before each request, on top of the 3.5-character silence (slow converters, meters that need a pause).',
    }),
    backoffBaseMs: Type.Integer({ minimum: 100, maximum: 600_000, default: 5000, description: 'First back-off after a meter stops answering; doubles per failure.' }),
    backoffMaxMs: Type.Integer({ minimum: 1000, maximum: 3_600_000, default: 300_000, description: 'Longest back-off: a dead meter is probed at least this often.' }),
    offlineAfter: Type.Integer({ minimum: 1, maximum: 20, default: 2, description: 'Consecutive failed polls before a meter is reported offline.' }),
    devices: Type.Array(MeterDeviceSchema, { default: [], description: 'Meters on this bus.' }),
  },
  { description: 'An RS-485 line (or TCP converter) and its meters.' },
);

export const MetersSchema = Section(
  {
    enabled: Type.Boolean({ default: true, description: 'Run meter reading.' }),
    profilesDir: Type.Optional(Type.String({ minLength: 1, description: 'Extra directory of profile YAML files (overrides built-in profiles with the same id).' })),
    fullReportIntervalS: Type.Integer({
      minimum: 0,
      maximum: 86_400,
      default: 900,
      description: 'Publish every point at least this often, even within its deadband (0 = only on change when a deadband is set).',
    }),
    timeSyncIntervalH: Type.Number({ minimum: 0, maximum: 720, default: 24, description: 'Broadcast time (DL/T 645 08H) to dlt645 buses this often (0 = only on command).' }),
    buses: Type.Array(MeterBusSchema, { default: [], description: 'RS-485 lines and converters.' }),
  },
  { description: 'Meter reading on RS-485: Modbus RTU/TCP, DL/T 645-2007/1997, CJ/T 188.', default: {} },
);

export type MetersConfig = Static<typeof MetersSchema>;
export type MeterBusConfig = Static<typeof MeterBusSchema>;
export type MeterDeviceConfig = Static<typeof MeterDeviceSchema>;

/**
 * The Modbus framing a bus speaks: RTU on serial and simulated lines; over TCP the
 * configured one, or Modbus TCP on port 502 (the config check requires it elsewhere).
 */
export function modbusFraming(b: Pick<MeterBusConfig, 'transport' | 'framing' | 'tcpPort' | 'protocol'>): 'rtu' | 'tcp' {
  if (b.transport !== 'tcp' || b.protocol !== 'modbus') return 'rtu';
  return b.framing ?? (b.tcpPort === 502 ? 'tcp' : 'rtu');
}

/** Settings that load but look wrong (check-config prints them; the service logs them at start). */
export function meterConfigWarnings(m: MetersConfig): string[] {
  const w: string[] = [];
  m.buses.forEach((b, i) => {
    if (b.transport === 'tcp' && b.tcpPort === 502 && b.framing === 'rtu') w.push(`meters.buses[${i}].framing: rtu on port 502, the Modbus TCP port: a Modbus TCP converter ignores RTU frames and every meter times out (use framing: tcp unless this converter is transparent on 502)`);
  });
  return w;
}

/** Cross-field checks of the meters section (see edge/config/checks.ts). */
export function meterConfigProblems(m: MetersConfig): string[] {
  const p: string[] = [];
  const deviceIds = new Map<string, string>();
  const busIds = new Set<string>();
  m.buses.forEach((b, i) => {
    const at = `meters.buses[${i}]`;
    if (busIds.has(b.id)) p.push(`${at}.id: duplicate bus id "${b.id}"`);
    busIds.add(b.id);
    if (b.transport === 'serial' && !b.port) p.push(`${at}.port: required for transport serial`);
    if (b.transport === 'tcp' && (!b.host || !b.tcpPort)) p.push(`${at}: host and tcpPort are required for transport tcp`);
    if (b.protocol === 'mixed' && b.transport === 'tcp' && b.framing === 'tcp') p.push(`${at}.framing: a mixed line over TCP needs framing rtu (transparent converter)`);
    if (b.protocol === 'modbus' && b.transport === 'tcp' && b.framing === undefined && b.tcpPort !== undefined && b.tcpPort !== 502) p.push(`${at}.framing: required for Modbus over tcp on port ${b.tcpPort}: tcp (Modbus TCP, MBAP header) or rtu (RTU frames through a transparent converter)`);
    if (b.backoffMaxMs < b.backoffBaseMs) p.push(`${at}.backoffMaxMs: must be ≥ backoffBaseMs`);
    const addrs = new Set<string>();
    b.devices.forEach((d, j) => {
      const dat = `${at}.devices[${j}]`;
      if (deviceIds.has(d.id)) p.push(`${dat}.id: duplicate device id "${d.id}" (also on bus ${deviceIds.get(d.id)})`);
      deviceIds.set(d.id, b.id);
      if (b.protocol === 'modbus' && typeof d.address !== 'number') p.push(`${dat}.address: a Modbus unit id is a number 1–247`);
      if (b.protocol === 'dlt645' && typeof d.address === 'string' && d.address.length > 12) p.push(`${dat}.address: DL/T 645 addresses have up to 12 digits`);
      const key = String(d.address).replace(/^0+/, '');
      if (addrs.has(key)) p.push(`${dat}.address: two devices on bus ${b.id} share address ${d.address}`);
      addrs.add(key);
    });
  });
  return p;
}

// The section's place in the gateway's config type (edge/config/core.ts).
declare module '../config/core.js' {
  interface CapabilitySections {
    meters: MetersConfig;
  }
}
