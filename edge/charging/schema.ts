// Config section `charging`: the e-bike charging piles, their ports (each metered by a
// channel of a Modbus meter and switched by a relay: a coil of a Modbus relay board or a
// GPIO line), the thresholds of a port's charging session, and the smoke/heat inputs that
// cut a whole pile. Meters and relay boards are devices of the `meters` section (same
// RS-485 line, same scheduler): this section only names them.
import { Type, type Static } from '@sinclair/typebox';
import { Ident, OneOf, Section } from '../config/types.js';

const Thresholds = {
  startW: Type.Number({ minimum: 0, maximum: 10_000, description: 'A session starts when the port draws more than this (W).' }),
  taperW: Type.Number({ minimum: 0, maximum: 10_000, description: 'Below this (W) the battery is taken as full once it lasts fullAfterS.' }),
  fullAfterS: Type.Integer({ minimum: 1, maximum: 86_400, description: 'How long the power must stay below taperW before the port is cut as full (s).' }),
  maxW: Type.Number({ minimum: 1, maximum: 20_000, description: 'Over-power limit (W): above it for overPowerS the port is cut and an alarm raised.' }),
  overPowerS: Type.Number({ minimum: 0, maximum: 3600, description: 'How long the power may stay above maxW before the cut (s); 0 = at the first reading above.' }),
  maxHours: Type.Number({ minimum: 0.01, maximum: 72, description: 'Longest session (h): then the port is cut (over-time).' }),
};

export const ThresholdsSchema = Section(
  {
    startW: { ...Thresholds.startW, default: 10 },
    taperW: { ...Thresholds.taperW, default: 30 },
    fullAfterS: { ...Thresholds.fullAfterS, default: 600 },
    maxW: { ...Thresholds.maxW, default: 1000 },
    overPowerS: { ...Thresholds.overPowerS, default: 10 },
    maxHours: { ...Thresholds.maxHours, default: 10 },
  },
  { description: 'Session thresholds of every port of the pile (a port may override any of them).', default: {} },
);

const PortThresholds = Type.Partial(Type.Object(Thresholds, { additionalProperties: false }), { description: 'Thresholds of this port that differ from the pile’s.', additionalProperties: false });

const ModbusRelay = Type.Object(
  {
    kind: Type.Literal('modbus', { description: 'A coil of a Modbus relay board (a meters device).' }),
    device: Ident({ description: 'The relay board: id of a Modbus device in meters.buses[].devices.' }),
    coil: Type.Integer({ minimum: 0, maximum: 65535, description: 'Coil address (relay 1 = coil 0 on the usual boards).' }),
  },
  { additionalProperties: false, description: 'A relay on a Modbus relay board, written FC 05/0F and read back FC 01.' },
);
const GpioRelay = Type.Object(
  {
    kind: Type.Literal('gpio', { description: 'A relay driven by a GPIO line.' }),
    pin: Type.Integer({ minimum: 0, maximum: 1023, description: 'GPIO line (BCM number).' }),
    activeLow: Type.Optional(Type.Boolean({ description: 'The relay energises when the line is low (most opto-isolated relay boards). Default false.' })),
  },
  { additionalProperties: false, description: 'A relay on a GPIO line.' },
);

export const PortSchema = Section(
  {
    id: Ident({ description: 'Port id, unique within the pile (printed on the socket).' }),
    meter: Section(
      {
        device: Ident({ description: 'The meter: id of a device in meters.buses[].devices.' }),
        power: Type.String({ minLength: 1, description: 'The profile point of this port’s active power (W), e.g. power_1.' }),
        energy: Type.Optional(Type.String({ minLength: 1, description: 'The profile point of this port’s energy counter (kWh); without it the session energy is integrated from the power.' })),
      },
      { description: 'The meter channel of this port.' },
    ),
    relay: Type.Union([ModbusRelay, GpioRelay], { description: 'The relay that switches this port (energised = on; the safe state is off).' }),
    thresholds: Type.Optional(PortThresholds),
  },
  { description: 'A charging port (socket).' },
);

const ModbusInput = Type.Object(
  {
    kind: Type.Literal('modbus'),
    device: Ident({ description: 'A meters device (relay board with inputs) that polls the point.' }),
    point: Type.String({ minLength: 1, description: 'The profile point of the input, e.g. input_1.' }),
    activeLow: Type.Optional(Type.Boolean({ description: 'The detector trips by opening its contact (reads 0). Default false.' })),
  },
  { additionalProperties: false, description: 'A detector contact on a Modbus discrete input, read at the device’s poll interval.' },
);
const GpioInput = Type.Object(
  {
    kind: Type.Literal('gpio'),
    pin: Type.Integer({ minimum: 0, maximum: 1023, description: 'GPIO line (BCM number).' }),
    activeLow: Type.Optional(Type.Boolean({ description: 'Trips when the line reads low (a detector relay contact to ground with a pull-up). Default true. (Defaults inside a choice of shapes are not filled by the validator, hence applied in code.)' })),
  },
  { additionalProperties: false, description: 'A detector contact on a GPIO input: the first edge cuts the pile.' },
);

export const PileSchema = Section(
  {
    id: Ident({ description: 'Pile id.' }),
    name: Type.Optional(Type.String({ maxLength: 200, description: 'Where it is (building, bike shed), shown in the console.' })),
    thresholds: ThresholdsSchema,
    smoke: Type.Array(Type.Union([GpioInput, ModbusInput]), { default: [], maxItems: 16, description: 'Smoke and temperature detector inputs: any one tripping cuts every port of the pile and raises a fire alarm.' }),
    ports: Type.Array(PortSchema, { minItems: 1, maxItems: 64, description: 'The ports of this pile.' }),
  },
  { description: 'An e-bike charging pile.' },
);

export const ChargingSchema = Section(
  {
    enabled: Type.Boolean({ default: true, description: 'Supervise the charging piles.' }),
    relayRetries: Type.Integer({ minimum: 0, maximum: 10, default: 2, description: 'A relay write that fails or does not read back is retried this many times; then the port is a fault.' }),
    meterStaleS: Type.Integer({ minimum: 1, maximum: 3600, default: 30, description: 'A port whose meter gave no reading this long (or went offline) is a fault: its relay is cut (s).' }),
    gpio: Section(
      {
        backend: OneOf(['auto', 'sysfs', 'chardev', 'simulated'] as const, { default: 'auto', description: 'GPIO access for GPIO relays and detector inputs (auto: sysfs, else the character device).' }),
        chipLabel: Type.Optional(Type.String({ minLength: 1, description: 'Label of the GPIO chip (default: the Raspberry Pi header chip).' })),
        pollMs: Type.Integer({ minimum: 5, maximum: 1000, default: 20, description: 'Input polling period when edge interrupts are unavailable (ms).' }),
      },
      { description: 'GPIO access (only used when a relay or input is on GPIO).', default: {} },
    ),
    piles: Type.Array(PileSchema, { default: [], maxItems: 256, description: 'The charging piles.' }),
  },
  { description: 'E-bike charging-pile supervision: per-port sessions, cut-offs, fire cut.', default: {} },
);

export type ChargingConfig = Static<typeof ChargingSchema>;
export type PileConfig = Static<typeof PileSchema>;
export type PortConfig = Static<typeof PortSchema>;
export type Thresholds = Static<typeof ThresholdsSchema>;

/** A port's thresholds: the pile's, overridden by the port's own. */
export function portThresholds(pile: PileConfig, port: PortConfig): Thresholds {
  return { ...pile.thresholds, ...(port.thresholds ?? {}) };
}

declare module '../config/core.js' {
  interface CapabilitySections {
    charging: ChargingConfig;
  }
}
