// Config section `doors`: the GPIO backend, the doors with their lock, contact, exit
// button, buzzer and LED lines, door groups, the fire-alarm input, and the rules of
// access decisions (time zone, rate limits, remote-unlock TTL, access-log retention).
import { Type, type Static } from '@sinclair/typebox';
import { Ident, OneOf, Section } from '../config/types.js';

const Pin = Type.Integer({ minimum: 0, maximum: 63, description: 'BCM line number (GPIO17 = 17), not the header pin number.' });
const ActiveLow = Type.Boolean({ default: false, description: 'The line is active when low (relay boards with inverted inputs, contacts to ground with a pull-up).' });

const InputLine = (what: string, debounceMs: number) =>
  Section(
    {
      pin: Pin,
      activeLow: ActiveLow,
      debounceMs: Type.Integer({ minimum: 0, maximum: 5000, default: debounceMs, description: 'A change must be stable this long (ms) before it counts (contact bounce).' }),
      bias: Type.Optional(OneOf(['pull-up', 'pull-down', 'disable'] as const, { description: 'Pull resistor (character-device backend only; with sysfs set it in config.txt).' })),
    },
    { description: what },
  );

const OutputLine = (what: string) => Section({ pin: Pin, activeLow: ActiveLow }, { description: what });

export const LockSchema = Section(
  {
    pin: Pin,
    activeLow: ActiveLow,
    failMode: OneOf(['failSecure', 'failSafe'] as const, {
      default: 'failSecure',
      description: 'failSecure: locked without power, the relay is energised to unlock (electric strike, motor lock). failSafe: unlocked without power, energised to lock (magnetic lock).',
    }),
    safeState: Type.Optional(
      OneOf(['locked', 'unlocked'] as const, {
        description: 'State the lock is put in when the gateway stops or crashes. Default: as without power (failSecure → locked, failSafe → unlocked). Fire-release doors stay unlocked while a fire release is active.',
      }),
    ),
  },
  { description: 'Lock relay output.' },
);

export const ACCESS_MODES = ['face', 'face_or_card', 'face_and_pin', 'card', 'card_and_pin'] as const;
export type AccessMode = (typeof ACCESS_MODES)[number];

export const ReaderSchema = Section(
  {
    d0: Type.Integer({ minimum: 0, maximum: 63, description: "BCM line of the reader's D0 wire (green), through a 5 V → 3.3 V level shifter." }),
    d1: Type.Integer({ minimum: 0, maximum: 63, description: "BCM line of the reader's D1 wire (white), through a 5 V → 3.3 V level shifter." }),
    activeLow: Type.Boolean({ default: true, description: 'Pulses are low on an idle-high line (standard Wiegand; false only behind an inverting level shifter).' }),
    frameGapMs: Type.Integer({ minimum: 5, maximum: 500, default: 25, description: 'Quiet time on D0/D1 that ends a card frame or a key (ms).' }),
    bias: Type.Optional(OneOf(['pull-up', 'pull-down', 'disable'] as const, { description: 'Pull resistor of D0/D1 (character-device backend only; with sysfs set it in config.txt).' })),
  },
  { description: 'Wiegand card reader and/or keypad at this door (26/34-bit cards, 4/8-bit keys).' },
);

export const DoorAccessSchema = Section(
  {
    mode: Type.Optional(
      OneOf(ACCESS_MODES, {
        description: 'What a person must present at this door: face; face_or_card; face_and_pin (face, then the PIN on the keypad or console pad); card; card_and_pin. Default: face_or_card with a reader, face without. Remote and console unlocks, exit buttons and the fire release are not affected.',
      }),
    ),
    pinTimeoutS: Type.Integer({ minimum: 3, maximum: 120, default: 10, description: 'How long the door waits for the PIN after a face or card that needs one (s); also clears a half-typed keypad entry.' }),
  },
  { description: 'Credentials this door accepts.', default: {} },
);

export const DoorSchema = Section(
  {
    id: Ident({ description: 'Door id, used in commands, events and door groups.' }),
    name: Type.Optional(Type.String({ maxLength: 100, description: 'Name shown in the console ("North gate").' })),
    lock: LockSchema,
    unlockMs: Type.Integer({ minimum: 200, maximum: 120000, default: 5000, description: 'Length of an unlock pulse after a granted access (ms).' }),
    relockOnClose: Type.Boolean({ default: true, description: 'Relock as soon as the door closes after it was opened, before the pulse ends (no tailgating on the same pulse).' }),
    contact: Type.Optional(InputLine('Door contact (reed switch); active = door open.', 50)),
    exitButton: Type.Optional(InputLine('Exit button (request to exit); active = pressed.', 30)),
    buzzer: Type.Optional(OutputLine('Buzzer output: sounds while the door is held open or forced.')),
    led: Type.Optional(OutputLine('LED output: lit while the door is unlocked.')),
    heldOpenAlarmS: Type.Integer({ minimum: 1, maximum: 86400, default: 30, description: 'Raise a held-open alarm when the door stays open this long (s).' }),
    fireRelease: Type.Boolean({ default: true, description: 'Unlock this door while a fire release is active (fire input or door.fireRelease command).' }),
    access: DoorAccessSchema,
    reader: Type.Optional(ReaderSchema),
  },
  { description: 'One door or gate.' },
);

export const DoorGroupSchema = Section(
  {
    id: Ident({ description: 'Group id, given to people in doorGroups.' }),
    name: Type.Optional(Type.String({ maxLength: 100, description: 'Name shown in the console.' })),
    doors: Type.Array(Ident(), { minItems: 1, uniqueItems: true, description: 'Door ids in the group.' }),
  },
  { description: 'A set of doors people are given access to.' },
);

/** GPIO access (drivers/gpio openGpioBackend): the doors' section and the elevator relays' (edge/elevator/schema.ts) are the same settings. */
export const gpioSection = (description: string) =>
  Section(
    {
      backend: OneOf(['auto', 'sysfs', 'chardev', 'simulated'] as const, {
        default: 'auto',
        description: 'auto: sysfs GPIO if the kernel has it, else the GPIO character device (gpiod tools). simulated: no hardware (demo, tests).',
      }),
      chipLabel: Type.Optional(Type.String({ minLength: 1, description: 'Label of the GPIO chip of the pins. Default: the first found of pinctrl-rp1 (Pi 5), pinctrl-bcm2711 (Pi 4), pinctrl-bcm2835.' })),
      sysfsRoot: Type.String({ default: '/sys/class/gpio', description: 'Where sysfs GPIO lives (changed only for tests).' }),
      toolsDir: Type.Optional(Type.String({ description: 'Directory of gpioset/gpiomon/gpioget/gpiodetect (default: PATH).' })),
      pollMs: Type.Integer({ minimum: 5, maximum: 1000, default: 20, description: 'Input polling period when edge interrupts are unavailable (ms).' }),
    },
    { description, default: {} },
  );

export const DoorsSchema = Section(
  {
    gpio: gpioSection('GPIO access.'),
    timeZone: Type.String({ default: 'Asia/Shanghai', description: 'IANA time zone of the weekly access windows (e.g. Asia/Shanghai).' }),
    rateLimit: Section(
      {
        burst: Type.Integer({ minimum: 1, maximum: 1000, default: 5, description: 'Unlocks a door accepts in a burst.' }),
        perMinute: Type.Integer({ minimum: 1, maximum: 6000, default: 30, description: 'Sustained unlocks per minute per door; more are denied (rate_limited). Exit buttons and fire release are never limited.' }),
      },
      { description: 'Per-door unlock rate limit (token bucket) against unlock storms.', default: {} },
    ),
    remoteUnlock: Section(
      {
        ttlMs: Type.Integer({ minimum: 500, maximum: 600000, default: 15000, description: 'door.unlock is refused when older than this (from the command timestamp), unless the command gives its own ttlMs.' }),
        maxDurationMs: Type.Integer({ minimum: 1000, maximum: 3600000, default: 600000, description: 'Longest unlock a door.unlock command may ask for.' }),
      },
      { description: 'Remote unlock commands (platform, console).', default: {} },
    ),
    accessLog: Section(
      {
        keepDays: Type.Integer({ minimum: 1, maximum: 3650, default: 90, description: 'Days of access decisions kept on the box for the console (upstream copies are in the outbox).' }),
        maxRows: Type.Integer({ minimum: 1000, maximum: 10000000, default: 200000, description: 'Most access decisions kept on the box.' }),
      },
      { description: 'Local access-event log.', default: {} },
    ),
    fire: Section(
      {
        input: Type.Optional(InputLine('Fire-alarm panel input; active = fire alarm.', 100)),
        latch: Type.Boolean({ default: true, description: 'Keep the release after the fire input returns to normal, until a door.fireRelease clear command.' }),
        releaseOnFirstEdge: Type.Boolean({
          default: true,
          description: 'Release on the first edge of the fire input; debounceMs then only filters the bounces after it (a fire alarm does not wait for a debounce window). false: the input must be stable for debounceMs first.',
        }),
      },
      { description: 'Fire release.', default: {} },
    ),
    pin: Section(
      {
        maxWrong: Type.Integer({ minimum: 1, maximum: 100, default: 5, description: "Wrong PINs in a row for one person (at any door) that lock that person's PIN." }),
        lockoutS: Type.Integer({ minimum: 10, maximum: 86400, default: 300, description: 'How long a locked PIN stays locked (s); the lockout is raised as an alarm (pin.locked).' }),
      },
      { description: 'PIN (second factor) attempt limits.', default: {} },
    ),
    unknownCardReportS: Type.Integer({ minimum: 1, maximum: 3600, default: 30, description: 'At most one card.unknown event per door in this interval (s); the others are counted and reported with the next one.' }),
    groups: Type.Array(DoorGroupSchema, { default: [], description: 'Door groups.' }),
    doors: Type.Array(DoorSchema, { default: [], description: 'Doors and gates controlled by this gateway. Empty: the doors module is off.' }),
  },
  { description: 'Door access control over GPIO.', default: {} },
);

export type DoorsConfig = Static<typeof DoorsSchema>;
export type DoorConfig = Static<typeof DoorSchema>;
export type InputLineConfig = NonNullable<DoorConfig['contact']>;
export type OutputLineConfig = NonNullable<DoorConfig['buzzer']>;
export type ReaderConfig = NonNullable<DoorConfig['reader']>;

/** The door's access mode: as configured, else face_or_card with a reader and face without. */
export function accessMode(door: DoorConfig): AccessMode {
  return door.access?.mode ?? (door.reader ? 'face_or_card' : 'face');
}

// The section's place in the gateway's config type (edge/config/core.ts).
declare module '../config/core.js' {
  interface CapabilitySections {
    doors: DoorsConfig;
  }
}
