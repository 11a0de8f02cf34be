// The core of the configuration, below every capability: the gateway's own sections
// (site, gateway, log, uplink, outbox, commands, http, status, simulation), the config
// type and the type of a semantic check. Capability folders import from here and from
// ./types.ts only; the full schema (core + every capability's section) is assembled
// from the descriptor list in ./schema.ts, above them.
//
// `GatewayConfig` is the core sections plus `CapabilitySections`, which each capability
// augments from its own schema.ts (as modules augment BusEvents and Services):
//
//   declare module '../config/core.js' { interface CapabilitySections { meters: MetersConfig } }
//
// edge/config/schema.ts checks at compile time that this type is exactly the type of the
// assembled schema, so the two cannot drift apart.
import { Type, type Static } from '@sinclair/typebox';
import { Ident, OneOf, SecretRef, Section, URL_WITH_CREDENTIALS } from './types.js';

export const SiteSchema = Section(
  {
    id: Ident({ description: 'Estate (site) id, used in MQTT topics and record ids.' }),
    name: Type.Optional(Type.String({ maxLength: 200, description: 'Human-readable estate name (shown in the console).' })),
  },
  { description: 'The estate this gateway serves.' },
);

export const GatewaySectionSchema = Section(
  {
    id: Ident({ description: 'Gateway id, unique within the site; used in MQTT topics.' }),
    dataDir: Type.String({
      minLength: 1,
      default: '/var/lib/estate-edge',
      description: 'Directory for SQLite databases and other state (systemd StateDirectory).',
    }),
    shutdownTimeoutMs: Type.Integer({
      minimum: 1000,
      maximum: 120000,
      default: 10000,
      description: 'Longest a graceful shutdown (SIGTERM) may take before the process exits anyway.',
    }),
    diskBudgetMB: Type.Number({
      minimum: 4,
      maximum: 16777216,
      default: 1024,
      description: 'Everything the gateway keeps under dataDir (outbox and WAL, state.db, faces.db, logs, snapshots, the reserve). Above 85 % of it the oldest telemetry is evicted down to 75 % (and reported upstream as outbox.evicted).',
    }),
    diskReserveMB: Type.Number({
      minimum: 0,
      maximum: 1024,
      default: 16,
      description: 'Pre-allocated reserve file in dataDir, deleted the moment the disk is full so deletes, acknowledgements and critical records still have room; re-created when space is back. 0 = none.',
    }),
  },
  { description: 'This gateway box.' },
);

export const LogSchema = Section(
  {
    level: OneOf(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const, {
      default: 'info',
      description: 'Lowest level written to stdout (journald).',
    }),
  },
  { description: 'Structured logging (JSON lines on stdout).', default: {} },
);

export const TlsSchema = Section(
  {
    ca: Type.Optional(Type.String({ description: 'PEM file of the CA that signed the broker certificate.' })),
    cert: Type.Optional(Type.String({ description: 'PEM client certificate for mutual TLS.' })),
    key: Type.Optional(Type.String({ description: 'PEM private key of the client certificate (keep it 0600).' })),
    keyPassphrase: Type.Optional({ ...SecretRef, description: 'Passphrase of the client key, if it is encrypted.' }),
    rejectUnauthorized: Type.Boolean({ default: true, description: 'Verify the broker certificate. Only turn off in a lab.' }),
    servername: Type.Optional(Type.String({ description: 'TLS server name (SNI) if it differs from the URL host.' })),
  },
  { description: 'TLS options for mqtts:// URLs.', default: {} },
);

export const UplinkSchema = Section(
  {
    enabled: Type.Boolean({ default: true, description: 'Publish upstream. When false, everything stays buffered in the outbox.' }),
    url: Type.String({
      ...URL_WITH_CREDENTIALS,
      pattern: '^(mqtt|mqtts|tcp|tls|ssl|ws|wss)://',
      default: 'mqtt://127.0.0.1:1883',
      description: 'Broker URL: mqtt://host:1883 or mqtts://host:8883 (TLS).',
    }),
    protocolVersion: OneOf([5, 4] as const, { default: 5, description: 'MQTT 5 (5) or MQTT 3.1.1 (4).' }),
    clientId: Type.Optional(Type.String({ minLength: 1, maxLength: 128, description: 'MQTT client id; default <site>-<gateway>.' })),
    username: Type.Optional(Type.String({ description: 'Broker user name.' })),
    password: Type.Optional({ ...SecretRef, description: 'Broker password (env or file reference).' }),
    tls: TlsSchema,
    topicPrefix: Type.String({
      pattern: '^[^#+]+$',
      default: 'estate',
      description: 'First topic level; topics are <prefix>/<site>/<gateway>/...',
    }),
    keepaliveS: Type.Integer({ minimum: 5, maximum: 3600, default: 30, description: 'MQTT keep-alive in seconds.' }),
    connectTimeoutMs: Type.Integer({ minimum: 1000, maximum: 120000, default: 10000, description: 'Give up one connection attempt after this long.' }),
    reconnectMinMs: Type.Integer({ minimum: 100, maximum: 600000, default: 1000, description: 'First reconnect delay (each delay is randomised to 50–100 % of its value, so boxes do not reconnect in step); doubles per failure.' }),
    reconnectMaxMs: Type.Integer({ minimum: 1000, maximum: 3600000, default: 60000, description: 'Longest reconnect delay (never gives up).' }),
    batchMaxRecords: Type.Integer({ minimum: 1, maximum: 10000, default: 500, description: 'Most records in one MQTT message.' }),
    batchMaxBytes: Type.Integer({ minimum: 1024, maximum: 16777216, default: 262144, description: 'Largest MQTT message payload in bytes.' }),
    lingerMs: Type.Integer({ minimum: 0, maximum: 10000, default: 20, description: 'Wait this long for more records before publishing a partial batch.' }),
    maxInflight: Type.Integer({ minimum: 1, maximum: 1000, default: 32, description: 'Messages published but not yet acknowledged (PUBACK).' }),
    backfillRecordsPerSecond: Type.Integer({
      minimum: 0,
      default: 2000,
      description: 'Drain rate of the backlog after an outage (records/s; 0 = unlimited). Live data is not limited.',
    }),
  },
  { description: 'MQTT uplink to the central platform.', default: {} },
);

export const OutboxSchema = Section(
  {
    file: Type.String({ minLength: 1, default: 'outbox.db', description: 'SQLite file of the outbox, relative to gateway.dataDir.' }),
    quotaMB: Type.Number({
      minimum: 1,
      maximum: 1048576,
      default: 512,
      description: 'Disk quota for buffered records. Above it, the oldest telemetry is evicted; events and alarms never are.',
    }),
    synchronous: OneOf(['full', 'normal'] as const, {
      default: 'full',
      description: 'full: every acknowledged record survives power loss (fsync per commit). normal: faster, may lose the last commits on power loss.',
    }),
  },
  { description: 'Store-and-forward buffer (SQLite, WAL).', default: {} },
);

export const CommandsSchema = Section(
  {
    maxAgeS: Type.Integer({
      minimum: 1,
      maximum: 86400,
      default: 60,
      description: 'Commands whose timestamp is older than this are refused (no stale unlock after a reconnect).',
    }),
    maxPayloadBytes: Type.Integer({ minimum: 1024, maximum: 33554432, default: 8388608, description: 'Largest command payload accepted.' }),
    dedupeHours: Type.Integer({ minimum: 1, maximum: 720, default: 48, description: 'How long executed command ids are remembered to refuse duplicates.' }),
    maxClockSkewS: Type.Integer({
      minimum: 0,
      maximum: 3600,
      default: 60,
      description: 'Commands whose timestamp is further than this in the future are refused (clock_skew): a platform clock ahead of the box must not make a command live longer.',
    }),
    dedupeMaxRows: Type.Integer({ minimum: 1000, maximum: 1000000, default: 20000, description: 'Most command ids remembered for de-duplication (the oldest are forgotten first); bounds state.db.' }),
  },
  { description: 'Commands from the platform.', default: {} },
);

export const HttpSchema = Section(
  {
    enabled: Type.Boolean({ default: true, description: 'Serve /healthz and /metrics.' }),
    host: Type.String({ default: '127.0.0.1', description: 'Listen address for /healthz and /metrics.' }),
    port: Type.Integer({ minimum: 0, maximum: 65535, default: 9810, description: 'Listen port (0 = any free port).' }),
  },
  { description: 'Health and Prometheus metrics endpoint.', default: {} },
);

export const StatusSchema = Section(
  {
    intervalS: Type.Integer({ minimum: 5, maximum: 86400, default: 60, description: 'Period of the gateway status telemetry (outbox depth, uptime, memory).' }),
  },
  { description: 'Periodic gateway status report upstream.', default: {} },
);

export const SimulationSchema = Section(
  {
    enabled: Type.Boolean({ default: false, description: 'Run the built-in simulated estate (simulated meters, doors and camera).' }),
  },
  { description: 'Built-in simulated estate, for demos, tests and boxes without hardware.', default: {} },
);

/** The core sections, in the order of the config file (capability sections follow). */
export const CORE_SECTIONS = {
  site: SiteSchema,
  gateway: GatewaySectionSchema,
  log: LogSchema,
  uplink: UplinkSchema,
  outbox: OutboxSchema,
  commands: CommandsSchema,
  http: HttpSchema,
  status: StatusSchema,
  simulation: SimulationSchema,
};

export type CoreConfig = Static<ReturnType<typeof Type.Object<typeof CORE_SECTIONS>>>;

/** The capabilities' config sections, each added by its capability (module augmentation). */
export interface CapabilitySections {}

export type GatewayConfig = CoreConfig & CapabilitySections;

/** A rule the schema cannot express (cross-field): its problems as "path: reason" lines. */
export type ConfigCheck = (config: GatewayConfig) => string[];
