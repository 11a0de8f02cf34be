// Config section `elevator`: the e-bike blocker. Per elevator car a camera (the same
// sources as the door camera: RTSP, V4L2, a looped file), a door-hold relay on GPIO, and
// the decision settings; one object detector (models/manifest.json) for all cars.
import { Type, type Static } from '@sinclair/typebox';
import { Ident, OneOf, Section } from '../config/types.js';
import { CameraSchema } from '../vision/schema.js';
import { gpioSection } from '../doors/schema.js';

export const RelaySchema = Section(
  {
    pin: Type.Integer({ minimum: 0, maximum: 63, description: "BCM line of the relay into the elevator controller's door-hold (or run-inhibit) input." }),
    activeLow: Type.Boolean({ default: false, description: 'The relay board energises on a low line (inverted inputs).' }),
    drive: OneOf(['pulse', 'level'] as const, {
      default: 'pulse',
      description: 'pulse: while holding, the line toggles every pulseMs into a watchdog relay module that drops when the edges stop — a killed or frozen gateway releases the car without software. level: the line is held active (released on stop and crash; a SIGKILL leaves a sysfs line at its last level).',
    }),
    pulseMs: Type.Integer({ minimum: 10, maximum: 1000, default: 100, description: 'Toggle period in pulse mode (ms); the watchdog module must drop after a few periods without an edge.' }),
  },
  { description: 'Door-hold relay. Safe state: released.' },
);

export const CarSchema = Section(
  {
    id: Ident({ description: 'Car id, used in commands, events and counters.' }),
    name: Type.Optional(Type.String({ maxLength: 100, description: 'Name shown in the console ("Building 3, car A").' })),
    camera: CameraSchema,
    relay: RelaySchema,
  },
  { description: 'One elevator car.' },
);

export const ElevatorSchema = Section(
  {
    gpio: gpioSection('GPIO access for the relays.'),
    model: Type.String({ default: 'nanodet-g-320', description: 'Object detector id in models/manifest.json (role object-detector): nanodet-g-320 (Apache-2.0, the default), nanodet-g-416, or the CenterNet builds centernet-mbv3-256/320/512 (weights of unclear licence).' }),
    modelsDir: Type.Optional(Type.String({ minLength: 1, description: "Directory of the installed model files; default: the project's models/ directory." })),
    threads: Type.Integer({ minimum: 1, maximum: 8, default: 1, description: 'onnxruntime threads of the object detector (1 leaves the other core to face access).' }),
    minScore: Type.Number({ minimum: 0.05, maximum: 0.99, default: 0.35, description: 'Minimum COCO "motorcycle" score for an e-bike in a frame.' }),
    minAreaFraction: Type.Number({ minimum: 0, maximum: 1, default: 0.02, description: 'The e-bike box must cover at least this fraction of the frame (one seen through the open door from afar does not count).' }),
    k: Type.Integer({ minimum: 1, maximum: 30, default: 3, description: 'Hold when at least k of the last n analysed frames show an e-bike.' }),
    n: Type.Integer({ minimum: 1, maximum: 30, default: 5, description: 'Window of analysed frames.' }),
    releaseK: Type.Integer({ minimum: 0, maximum: 29, default: 0, description: 'Release when at most releaseK of the last n frames show one (hysteresis; below k).' }),
    minHoldS: Type.Number({ minimum: 0, maximum: 600, default: 5, description: 'A hold lasts at least this long (s): the doors do not flap.' }),
    overrideS: Type.Number({ minimum: 0, maximum: 3600, default: 120, description: 'After a technician release (elevator.release), detections are ignored this long (s).' }),
    prompt: Section(
      {
        player: OneOf(['aplay', 'simulated'] as const, { default: 'aplay', description: 'aplay: ALSA (alsa-utils). simulated: record what would be played (demo, tests).' }),
        device: Type.String({ default: 'default', description: 'ALSA device for aplay -D (e.g. plughw:1,0 for a USB speaker).' }),
        text: Type.String({ minLength: 1, maxLength: 200, default: '电梯内禁止电动车进入，请将电动车推出电梯。', description: 'Prompt text, synthesised once with espeak-ng (zh-CN by default).' }),
        voice: Type.String({ default: 'cmn', pattern: '^[A-Za-z0-9_+-]{1,32}$', description: 'espeak-ng voice (cmn = Mandarin).' }),
        file: Type.Optional(Type.String({ minLength: 1, description: 'A WAV file to play instead of the synthesised text (a recorded prompt).' })),
        repeatS: Type.Number({ minimum: 1, maximum: 120, default: 8, description: 'Repeat the prompt this often while the car is held (s).' }),
      },
      { description: 'Voice prompt while a car is held.', default: {} },
    ),
    snapshot: Section(
      {
        enabled: Type.Boolean({ default: false, description: 'Attach a JPEG of the frame to elevator.ebike events (personal data: off by default).' }),
        maxBytes: Type.Integer({ minimum: 5000, maximum: 500000, default: 60000, description: 'Largest JPEG attached; quality and size are lowered until it fits, else none is sent.' }),
      },
      { description: 'Snapshot attached to the upstream event.', default: {} },
    ),
    cars: Type.Array(CarSchema, { default: [], maxItems: 16, description: 'Elevator cars watched by this gateway.' }),
  },
  { description: 'Elevator e-bike blocker: a camera per car, COCO object detection, a door-hold relay and a voice prompt.', default: {} },
);

export type ElevatorConfig = Static<typeof ElevatorSchema>;
export type CarConfig = Static<typeof CarSchema>;

declare module '../config/core.js' {
  interface CapabilitySections {
    elevator: ElevatorConfig;
  }
}
