// Config section `vision`: face access at one door (camera → detection → recognition →
// door decision), enrolment checks and the privacy settings of the biometric templates.
// Model-specific defaults (detection score, match threshold, liveness threshold) come
// from the model manifest; the keys here only override them.
import { Type, type Static } from '@sinclair/typebox';
import { Ident, OneOf, Section, URL_WITH_CREDENTIALS } from '../config/types.js';

export const CameraSourceSchema = Section(
  {
    kind: OneOf(['rtsp', 'v4l2', 'file'] as const, {
      default: 'rtsp',
      description: 'rtsp: IP camera (Hikvision/Dahua…); v4l2: USB camera (/dev/videoN); file: a video file played in a loop at its real rate (simulated camera).',
    }),
    url: Type.Optional(
      Type.String({
        ...URL_WITH_CREDENTIALS,
        pattern: '^rtsps?://',
        description: 'RTSP URL, e.g. rtsp://user:pass@192.0.2.10:554/Streaming/Channels/102 (Hikvision sub-stream) or rtsp://…/cam/realmonitor?channel=1&subtype=1 (Dahua).',
      }),
    ),
    transport: OneOf(['tcp', 'udp'] as const, { default: 'tcp', description: 'RTSP transport: tcp survives lossy estate networks (no smeared frames from lost UDP packets).' }),
    device: Type.Optional(Type.String({ pattern: '^/dev/', description: 'V4L2 device, e.g. /dev/video0.' })),
    path: Type.Optional(Type.String({ minLength: 1, description: 'Video file for kind "file" (looped).' })),
  },
  { description: 'Where the frames come from.', default: {} },
);

export const CameraSchema = Section(
  {
    source: CameraSourceSchema,
    width: Type.Integer({ minimum: 64, maximum: 3840, default: 640, description: 'Frame width the camera stream is scaled to (pixels).' }),
    height: Type.Integer({ minimum: 64, maximum: 2160, default: 480, description: 'Frame height the camera stream is scaled to (pixels).' }),
    fps: Type.Number({ minimum: 0.5, maximum: 30, default: 10, description: 'Frames per second decoded; the pipeline always works on the newest one and drops the rest.' }),
    staleS: Type.Number({ minimum: 1, maximum: 300, default: 5, description: 'No frame for this long = stream dead: restart ffmpeg (with back-off).' }),
    frozenS: Type.Number({ minimum: 1, maximum: 3600, default: 30, description: 'Bit-identical frames for this long = stream frozen: restart ffmpeg.' }),
    reconnectMinMs: Type.Integer({ minimum: 100, maximum: 600000, default: 1000, description: 'First reconnect delay; doubles per failure.' }),
    reconnectMaxMs: Type.Integer({ minimum: 1000, maximum: 3600000, default: 30000, description: 'Longest reconnect delay (never gives up).' }),
  },
  { description: 'The door camera (decoded by the system ffmpeg).', default: {} },
);

export const QualitySchema = (minFacePx: number, minSharpness: number, what: string) =>
  Section(
    {
      minFacePx: Type.Integer({ minimum: 16, maximum: 2000, default: minFacePx, description: 'Smallest face (detector box side, pixels) accepted.' }),
      maxYaw: Type.Number({
        minimum: 0.05,
        maximum: 1,
        default: 0.35,
        description: 'Largest head turn: |nose offset from the eye midpoint| / eye distance (0 = frontal; the shared photos reach 0.32).',
      }),
      maxRollDeg: Type.Number({ minimum: 5, maximum: 90, default: 20, description: 'Largest head tilt (eye line angle, degrees; the shared photos stay within 9°).' }),
      minSharpness: Type.Number({
        minimum: 0,
        default: minSharpness,
        description: 'Smallest focus measure (Laplacian variance of the 64 px aligned chip): sharp photos score 200–3000, blurred ones under 140.',
      }),
      minBrightness: Type.Number({ minimum: 0, maximum: 255, default: 40, description: 'Smallest mean luma (0–255) of the face.' }),
    },
    { description: `Face quality required ${what}.`, default: {} },
  );

export const VisionSchema = Section(
  {
    enabled: Type.Boolean({ default: false, description: 'Run face access (needs the face models installed: npm run models).' }),
    doorId: Type.Optional(Ident({ description: 'Door the camera opens (an id of the doors section). Required when enabled.' })),
    camera: CameraSchema,
    modelsDir: Type.Optional(Type.String({ minLength: 1, description: "Directory of the installed model files (a technician's mirror, a read-only partition…); default: the project's models/ directory, where manifest.json is." })),
    models: Section(
      {
        detector: Type.Optional(Type.String({ description: "Detector id in the manifest (default: the manifest's)." })),
        recognizer: Type.Optional(Type.String({ description: "Recognizer id in the manifest (default: the manifest's)." })),
        liveness: Type.Optional(Type.Array(Type.String(), { maxItems: 4, description: "Liveness ensemble ids; empty or absent: the manifest's (turn liveness off with liveness.enabled: false)." })),
      },
      { description: 'Which models of the manifest to run.', default: {} },
    ),
    threads: Type.Integer({ minimum: 1, maximum: 8, default: 2, description: 'onnxruntime threads per model in the inference worker.' }),
    modelLoadTimeoutS: Type.Integer({
      minimum: 10,
      maximum: 3600,
      default: 180,
      description:
        'Seconds the inference worker may take to load the face models before face access is reported unavailable (alarm, health, vision.status) and refuses every face. The rest of the gateway (doors, meters, uplink, console) waits for the models at most 10 s at start: a slow Pi SD card or an emulated arm64 box can take minutes. A load that finishes late is still used; a load that fails is retried with a back-off.',
    }),
    requestTimeoutS: Type.Integer({
      minimum: 1,
      maximum: 900,
      default: 30,
      description: 'Seconds one frame or photo may take in the inference worker before its request fails (the worker is kept running and its late answer discarded; the next frame waits for it). A Pi analyses a frame in well under a second; raise it only for boxes that are far slower (emulated arm64).',
    }),
    detectThreshold: Type.Optional(Type.Number({ minimum: 0.3, maximum: 1, description: "Detection score threshold (default: the manifest's calibrated value, 0.7 for YuNet)." })),
    match: Section(
      {
        threshold: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'Fixed match threshold (default: none, computed from strangerRate and the number of persons the door searches; Euclidean distance for the dlib recognizer, match if below; cosine similarity for the others, match if above).' })),
        confirmFrames: Type.Integer({ minimum: 1, maximum: 30, default: 3, description: 'K: consecutive frames that must match the same person before the door is asked.' }),
        windowMs: Type.Integer({ minimum: 100, maximum: 30000, default: 3000, description: 'The K matching frames must fall within this window.' }),
        strangerRate: Type.Number({
          exclusiveMinimum: 0,
          maximum: 0.1,
          default: 0.001,
          description: 'Accepted probability that a stranger approaching the door is recognised as someone allowed there. With a calibrated recognizer the threshold is computed from it for the number of persons (templates) the door searches; ignored when `threshold` is set.',
        }),
        margin: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: 'The best person must beat the runner-up (another person) by this similarity gap (default: the manifest’s calibration).' })),
        minFrameGapMs: Type.Integer({ minimum: 0, maximum: 5000, default: 150, description: 'Frames counted towards K must be at least this far apart.' }),
        maxRepeatSimilarity: Type.Number({ minimum: 0.5, maximum: 1, default: 0.995, description: 'A frame whose embedding is this similar (cosine) to one already counted is a repeat (a still picture, a frozen stream) and does not count towards K.' }),
        cooldownS: Type.Number({ minimum: 0, maximum: 3600, default: 10, description: 'After a decision for a person, ignore that person for this long.' }),
      },
      { description: 'Recognition and decision.', default: {} },
    ),
    liveness: Section(
      {
        enabled: Type.Boolean({ default: true, description: 'Run the passive liveness models (refuse photos/screens held up to the camera). Passive only: not sufficient alone.' }),
        threshold: Type.Optional(Type.Number({ minimum: 0, maximum: 1, description: "p(real) needed (default: the manifest's)." })),
      },
      { description: 'Anti-spoofing.', default: {} },
    ),
    quality: QualitySchema(60, 40, 'of camera faces before recognition'),
    enrolment: Section(
      {
        quality: QualitySchema(40, 140, 'of enrolment photos'),
        maxPhotoBytes: Type.Integer({ minimum: 1024, maximum: 33554432, default: 6291456, description: 'Largest photo accepted (bytes, after base64 decoding).' }),
        maxPhotoPixels: Type.Integer({ minimum: 4096, maximum: 100000000, default: 24000000, description: 'Largest photo accepted (width × height): refuses decompression bombs before decoding.' }),
        maxPhotosPerRequest: Type.Integer({ minimum: 1, maximum: 50, default: 10, description: 'Photos/embeddings in one enrolment request.' }),
        maxTemplatesPerPerson: Type.Integer({ minimum: 1, maximum: 100, default: 10, description: 'Templates kept per person; the oldest go first.' }),
        gateUpdates: Section(
          {
            maxTemplates: Type.Integer({ minimum: 0, maximum: 10, default: 3, description: 'Templates learned from gate captures kept per consenting person, besides the enrolled ones (0: never learn); the oldest learned one goes first.' }),
            minIntervalH: Type.Number({ minimum: 0, maximum: 8760, default: 24, description: 'At most one learned template per person per this many hours.' }),
            minScoreGain: Type.Number({ minimum: 0, maximum: 1, default: 0.05, description: "How far beyond the door's threshold a capture must match to be learned (cosine similarity, or Euclidean distance for dlib)." }),
            maxSimilarity: Type.Number({ minimum: 0.5, maximum: 1, default: 0.93, description: "A capture this similar (cosine) to one of the person's templates adds nothing and is not learned." }),
          },
          {
            description: 'Learning from gate captures, only for residents who consented (person.upsert faces.gateUpdates: true): a live, unambiguous grant well beyond the threshold that also matches the enrolled photos adds the capture to the record. Withdrawing consent deletes every learned template.',
            default: {},
          },
        ),
      },
      { description: 'Enrolment checks (person.upsert with faces).', default: {} },
    ),
    privacy: Section(
      {
        keyFile: Type.Optional(Type.String({ minLength: 1, description: 'AES-256 key file for the templates (created 0600 if missing); default <dataDir>/keys/faces.key. Keep it outside backups of the database.' })),
        templatesFile: Type.String({ minLength: 1, default: 'faces.db', description: 'SQLite file of the encrypted templates, relative to gateway.dataDir.' }),
        keepPhotos: Type.Boolean({ default: false, description: 'Keep enrolment photos (encrypted). Off: photos are discarded once embedded.' }),
        photoRetentionDays: Type.Integer({ minimum: 1, maximum: 3650, default: 30, description: 'Kept photos are deleted after this many days.' }),
        expiredGraceDays: Type.Integer({
          minimum: 0,
          maximum: 3650,
          default: 30,
          description: 'Templates of a person whose validity ended this many days ago are deleted.',
        }),
      },
      { description: 'Biometric data protection (PIPL: sensitive personal information).', default: {} },
    ),
    events: Section(
      {
        unknownIntervalS: Type.Number({ minimum: 0, maximum: 3600, default: 30, description: 'At most one "unknown face" event per this many seconds.' }),
        spoofIntervalS: Type.Number({ minimum: 0, maximum: 3600, default: 30, description: 'At most one "suspected spoof" event per this many seconds.' }),
        snapshot: Type.Boolean({ default: false, description: 'Attach a small JPEG of the face to unknown/spoof events (sent upstream: personal data, off by default).' }),
        snapshotMaxBytes: Type.Integer({ minimum: 2048, maximum: 262144, default: 24576, description: 'Size cap of an event snapshot (quality is lowered to fit).' }),
      },
      { description: 'Unknown-face and spoof events.', default: {} },
    ),
    queue: Type.Integer({ minimum: 1, maximum: 64, default: 8, description: 'Enrolment photos waiting for the inference worker; more are refused (busy).' }),
  },
  { description: 'Face access: camera, recognition, enrolment, privacy.', default: {} },
);

export type VisionConfig = Static<typeof VisionSchema>;

// The section's place in the gateway's config type (edge/config/core.ts).
declare module '../config/core.js' {
  interface CapabilitySections {
    vision: VisionConfig;
  }
}
