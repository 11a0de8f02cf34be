// The console's HTTP API as both sides see it: the routes (edge/console/routes/*.ts) answer
// with these shapes and the browser code (edge/console/web, its own tsconfig with the DOM's
// types and no Node's) reads them. Types only: this file imports nothing, so the browser
// bundle never pulls server code in, and a change of shape here fails tsc on both sides.

export type Role = 'viewer' | 'technician' | 'admin';

/** The error envelope every failed request answers with (server.ts sendError). */
export interface ApiErrorBody {
  ok?: false;
  error: { code: string; message: string; details?: { retryAfterS?: number } & Record<string, unknown> };
}

/** GET /api/session; POST /api/login and /api/setup answer the same with the new session. */
export interface SessionInfo {
  setupNeeded: boolean;
  site: string;
  gateway: string;
  user?: string;
  role?: Role;
  csrf?: string;
}

/** POST /api/login and /api/setup. */
export interface LoginRequest {
  user: string;
  password: string;
  /** Setup only: the one-time setup token. */
  token?: string;
}

/** POST /api/login, /api/setup and /api/password (the account's other sessions end, this one is renewed). */
export interface SessionStarted {
  user: string;
  role: Role;
  csrf: string;
}

/** POST /api/password. */
export interface PasswordChange {
  current: string;
  password: string;
}

/** One page's state in GET /api/capabilities (by page id). */
export interface PageState {
  configured: boolean;
  reason?: string;
  /** The commands shown on the page: registered by its capability, for this page (sorted). */
  commands: string[];
}
export type Capabilities = Record<string, PageState>;

/** One door as the dashboard's door card shows it (states only, no people). */
export interface DoorCardState {
  id: string;
  name?: string;
  lock: string;
  contact: string;
  alarms: string[];
  fireReleased: boolean;
  mode?: string;
  fault?: string;
  reader?: { problem?: string };
  awaitingPin?: { until: number };
}
export interface DoorStates {
  /** inputActive: null while the fire input has not been read yet. */
  fire: { released: boolean; inputActive: boolean | null; since?: number };
  doors: DoorCardState[];
}

/**
 * The bus events the console forwards to the browser: the core's (bus.ts CORE_LIVE_EVENTS)
 * and those the capability descriptors declare (CapabilityDescriptor.events, typed with
 * this union). The server asserts at type level that each is a bus event (keyof BusEvents,
 * routes/capabilities.ts); a capability that forwards a new one adds it here.
 */
export type LiveBusEventName =
  | 'uplink.state'
  | 'outbox.evicted'
  | 'gateway.ready'
  | 'gateway.stopping'
  | 'meter.reading'
  | 'meter.device'
  | 'door.state'
  | 'door.alarm'
  | 'door.pinWait'
  | 'access.decision'
  | 'vision.camera'
  | 'vision.decision'
  | 'charging.port'
  | 'charging.session'
  | 'charging.alarm'
  | 'elevator.state'
  | 'elevator.ebike'
  | 'elevator.alarm';
/** The console's own live events (not from the bus): audit records and config applies. */
export type ConsoleEventName = 'audit' | 'console.config';
export type LiveEventName = LiveBusEventName | ConsoleEventName;

/** A bus event as kept by the live hub and sent on /api/live (event: bus). */
export interface LiveEvent {
  type: LiveEventName;
  /** UTC ms when the console saw it. */
  at: number;
  data: unknown;
}

/** The host's figures (edge/observability/system.ts systemStats, checked against this type there). */
export interface SystemStats {
  load1: number;
  memTotalMB: number;
  memFreeMB: number;
  rssMB: number;
  diskFreeMB: number | null;
  diskTotalMB: number | null;
  hostUptimeS: number;
}

/** GET /api/dashboard (also inlined into the page for a logged-in first visit). */
export interface Dashboard extends LiveStatus {
  doors: DoorStates | null;
  info: Record<string, unknown> | null;
  system: SystemStats;
  events: LiveEvent[];
}

/** The live status the dashboard starts from and /api/live's `status` events repeat (routes/status.ts liveStatus). */
export interface LiveStatus {
  at: number;
  /** The uplink module's health detail ({ connected: false } without an uplink). */
  uplink: { connected: boolean; lastError?: string } & Record<string, unknown>;
  outbox: { records: number; bytes: number; oldestAgeS: number; evicted: number; dropped: number };
  modules: Record<string, { ok: boolean; message?: string }>;
  clockSynced: boolean;
}

/** GET /api/events. */
export interface EventList {
  events: LiveEvent[];
}

/** POST /api/commands/:name. */
export interface CommandAnswer<R = unknown> {
  ok: true;
  result: R;
}

/** Answers that only say it worked (logout, user deleted; restart with a message). */
export interface Ok {
  ok: true;
  message?: string;
}

// ---- Command results the pages read (POST /api/commands/:name → CommandAnswer<…>). The
// handlers return them with `satisfies` (edge/doors/commands.ts, edge/meters/commands.ts).

/** A door's state on the Doors page: the card's fields and the last decision. */
export interface DoorStatusRow extends DoorCardState {
  lastDecision?: { granted: boolean; reason: string };
}
/** door.status. */
export interface DoorStatusResult extends DoorStates {
  doors: DoorStatusRow[];
  groups: Array<{ id: string; name?: string; doors: string[] }>;
}
/** door.unlock and door.pin: the decision (an unlock that ran). */
export interface DoorDecisionResult {
  granted: boolean;
  reason: string;
  doorId: string;
  decidedAt: number;
  unlockedUntil?: number;
}
/** One access decision of access.events. */
export interface AccessEventRow {
  seq: number;
  ts: number;
  doorId: string;
  personId?: string;
  credential: string;
  granted: boolean;
  reason: string;
  /** The rest of the record: personName, via (factors), requestedBy ("console:admin"), score… */
  data: Record<string, unknown>;
}
/** access.events. */
export interface AccessEventsResult {
  events: AccessEventRow[];
}
/** A weekly access window of a person. */
export interface TimeWindowRow {
  days: string[];
  start: string;
  end: string;
}
/** A person as the People page shows and edits them (never the PIN: hasPin only). */
export interface PersonRow {
  id: string;
  name?: string;
  kind: 'resident' | 'staff' | 'visitor';
  validFrom?: number;
  validUntil?: number;
  doorGroups: string[];
  schedule?: TimeWindowRow[];
  enabled: boolean;
  note?: string;
  cards?: string[];
  needsSecondFactor?: boolean;
  hasPin: boolean;
  /** With face access only. */
  faceTemplates?: number;
  faceGateUpdates?: true;
  faceLearned?: number;
}
/** person.list. */
export interface PersonListResult {
  total: number;
  offset: number;
  people: PersonRow[];
  faceAccess: boolean;
}
/** What person.upsert did with the face photos and the gate-update consent. */
export interface FaceOutcome {
  available: boolean;
  /** available: false: why. */
  message?: string;
  /** The enrolment failed as a whole. */
  error?: string;
  accepted?: number;
  rejected?: Array<{ index: number; code: string; message: string }>;
  templates?: number;
  gateUpdates?: boolean;
  learnedRemoved?: number;
  consentError?: string;
}
/** person.upsert (also the answer of POST /api/people/:id/face and …/face/capture, as a CommandAnswer). */
export interface PersonUpsertResult {
  id: string;
  created: boolean;
  person: PersonRow;
  warnings?: string[];
  faces?: FaceOutcome;
}
/** person.delete. */
export interface PersonDeleteResult {
  id: string;
  deleted: true;
  facesRemoved: number | null;
  note?: string;
}
/** One value of a meter (meters/api.ts MeterPointValue). */
export interface PointValueRow {
  name: string;
  value: number | null;
  unit: string;
  kind: string;
  quality: 'good' | 'invalid' | 'unsupported' | 'suspect';
  ts: number;
}
/** meter.read. */
export interface MeterReadResult {
  device: string;
  values: PointValueRow[];
}
/** bus.scan. */
export interface BusScanResult {
  bus: string;
  found: Array<{ address: string | number; detail: string }>;
  probed: number;
  durationMs: number;
}

/** The results of the commands the pages run, by command name (lib.ts command()). */
export interface CommandResults {
  'door.status': DoorStatusResult;
  'door.unlock': DoorDecisionResult;
  'door.pin': DoorDecisionResult;
  'door.fireRelease': { fire: unknown };
  'access.events': AccessEventsResult;
  'person.list': PersonListResult;
  'person.upsert': PersonUpsertResult;
  'person.delete': PersonDeleteResult;
  'meter.read': MeterReadResult;
  'bus.scan': BusScanResult;
  'elevator.status': ElevatorStatusResult;
  'elevator.release': ElevatorReleaseResult;
  'charging.status': ChargingStatusResult;
  'charging.stop': ChargingPortRow;
  'charging.enable': ChargingPortRow;
}

// ---- The e-bike capabilities (edge/elevator, edge/charging).

/** A box in frame pixels. */
export interface PixelBox {
  x: number;
  y: number;
  w: number;
  h: number;
}
/** One car of elevator.status (elevator/module.ts CarStatus). */
export interface ElevatorCarRow {
  id: string;
  name?: string;
  /** clear: nothing held; holding: an e-bike was seen, doors held; blind: the camera is lost (released). */
  state: 'clear' | 'holding' | 'blind';
  holdingSince?: number;
  /** A technician released the car: detections are ignored until then. */
  overrideUntil?: number;
  camera: { state: string; since: number; reason?: string };
  relay: { pin: number; drive: string; energised: boolean };
  positives: number;
  lastDetections: Array<{ cls: string; score: number; box: PixelBox; at: number }>;
  lastEbikeAt?: number;
  counters: { frames: number; ebikeFrames: number; holds: number; releases: number; overrides: number; cameraLost: number; detectFailures: number; promptsPlayed: number };
}
/** elevator.status. */
export interface ElevatorStatusResult {
  available: boolean;
  problem?: string;
  model: string;
  prompt?: { kind: string; player: string; played: number; failures: number; lastError?: string };
  cars: ElevatorCarRow[];
}
/** elevator.release. */
export interface ElevatorReleaseResult {
  carId: string;
  /** Whether the car was held (and is now released). */
  released: boolean;
  ignoreUntil: number;
}
/** GET /api/elevator/cars/:car/snapshot: the car camera's newest frame. */
export interface ElevatorSnapshot {
  carId: string;
  mime: 'image/jpeg';
  /** The JPEG as base64 (a data: URL in the page: nothing for the browser to cache). */
  image: string;
  width: number;
  height: number;
  at: number;
}
/** Why a charging session ended (charging/api.ts EndReason). */
export type ChargingEndReason = 'full' | 'over_power' | 'over_time' | 'fire' | 'stop' | 'fault' | 'shutdown';
/** One port (charging/api.ts PortStatus; also the charging.port live event, with `cause`). */
export interface ChargingPortRow {
  pile: string;
  port: string;
  state: 'idle' | 'charging' | 'off' | 'fault';
  since: number;
  powerW: number | null;
  readingAt: number | null;
  relay: { kind: 'modbus' | 'gpio'; on: boolean | null; where: string };
  session?: { id: string; start: number; kWh: number; peakW: number };
  lastEnd?: { reason: ChargingEndReason; at: number };
  fault?: string;
}
/** One pile of charging.status. */
export interface ChargingPileRow {
  id: string;
  name?: string;
  fire: { active: boolean; since?: number; inputs: Array<{ input: string; active: boolean }> };
  ports: ChargingPortRow[];
}
/** charging.status. */
export interface ChargingStatusResult {
  piles: ChargingPileRow[];
  counters: { sessions: number; cuts: Record<string, number>; writeRetries: number; faults: number };
}
/** The charging.alarm live event. */
export interface ChargingAlarmEvent {
  alarm: 'fire' | 'over_power' | 'fault';
  pile: string;
  port?: string;
  active: boolean;
  message: string;
  at: number;
}

// ---- The capability pages' own routes.

/** One bus of GET /api/meters. */
export interface MeterBusRow {
  id: string;
  protocol: string;
  /** "/dev/ttyUSB0@9600 8N1", "tcp 10.0.0.5:502"… */
  line: string;
  lineUp: boolean;
  lineError?: string;
  devices: number;
  online: number;
  transactions: number;
}
/** One meter of GET /api/meters. */
export interface MeterRow {
  id: string;
  name?: string;
  bus: string;
  profileName: string;
  address: string;
  state: 'unknown' | 'online' | 'offline';
  lastError?: { at: number; kind: string; message: string };
  values: PointValueRow[];
  counters: { requests: number; responses: number; timeouts: number; crcErrors: number; badReplies: number; latencyMs: { avg: number } };
}
/** GET /api/meters. */
export interface MetersView {
  configured: boolean;
  reason?: string;
  buses: MeterBusRow[];
  devices: MeterRow[];
}
/** POST /api/meters/rawpoll. */
export interface RawPollAnswer {
  frames: Array<{ dir: 'tx' | 'rx'; hex: string; at: number }>;
  values?: PointValueRow[];
  error?: string;
}
/** The door camera's state (vision/api.ts VisionStatus, the part the Camera page shows). */
export interface CameraStatus {
  available: boolean;
  problem?: string;
  camera?: { state: string; reason?: string; fps: number; frames: number };
  templates: number;
  models?: { detector: string; recognizer: string };
}
/** GET /api/camera. */
export interface CameraView {
  configured: boolean;
  reason?: string;
  status?: CameraStatus;
}
/** One detected face of a snapshot, with whom it was recognised as (when it was). */
export interface SnapshotFace {
  box: { x: number; y: number; w: number; h: number };
  score: number;
  personId?: string;
  name?: string;
  granted?: boolean;
  reason?: string;
}
/** GET /api/camera/snapshot. */
export interface CameraSnapshot {
  mime: string;
  /** The JPEG as base64. */
  image: string;
  width: number;
  height: number;
  at: number;
  faces: SnapshotFace[];
  facesAt?: number;
}

// ---- System, logs, configuration.

/** One model file of the manifest (routes/status.ts modelFiles). */
export interface ModelFileRow {
  name: string;
  role?: string;
  title?: string;
  file?: string;
  present: boolean;
  size: number | null;
  expectedSha256?: string;
  sha256: string | null;
  ok: boolean;
}
/** GET /api/system. */
export interface SystemInfo {
  version: string;
  node: string;
  hostname: string;
  uptimeS: number;
  pid: number;
  configSource: string;
  configRevision: string;
  dataDir: string;
  clockSynced: boolean;
  time: number;
  system: SystemStats;
  addresses: Array<{ iface: string; family: string; address: string }>;
  models: { dir?: string; models: ModelFileRow[]; message?: string };
  logLevel: string;
}
/** One line of the log tail (console/logring.ts LogLine): the JSON line's other fields too. */
export interface LogLineRow {
  time: string;
  level: string;
  msg: string;
  [k: string]: unknown;
}
/** GET /api/logs. */
export interface LogTail {
  lines: LogLineRow[];
  configuredLevel: string;
}
/** One changed path between two configs (config/apply.ts diffConfigs). */
export interface ConfigDiffRow {
  path: string;
  from?: unknown;
  to?: unknown;
}
/** POST /api/config/validate (and /upload, with the file's text). */
export interface ConfigCheck {
  ok: boolean;
  problems: string[];
  diff?: ConfigDiffRow[];
  /** The config the candidate would run, secrets masked. */
  effective?: unknown;
  yaml?: string;
}
/** The last config apply (config/change.ts marker). */
export interface ConfigApplyMarker {
  status: 'pending' | 'rolled_back' | 'confirmed';
  user: string;
  at: number;
  decidedAt?: number;
  /** Why it was rolled back (a rollback.* text key) and that text's arguments. */
  reasonCode?: string;
  reasonArgs?: Record<string, string | number>;
}
/** GET /api/config. */
export interface ConfigView {
  editable: boolean;
  path?: string;
  reason?: string;
  source: string;
  yaml: string;
  revision: string;
  runningRevision: string;
  /** The running config, secrets masked. */
  running: Record<string, unknown>;
  lastApply: ConfigApplyMarker | null;
}
/** POST /api/config/apply. */
export interface ConfigApplied {
  ok: true;
  message: string;
  diff: ConfigDiffRow[];
  revision: string;
}

/** GET /api/users. */
export interface UserRow {
  name: string;
  role: Role;
  createdAt: number;
  lastLoginAt: number | null;
  lockedUntil: number | null;
}
export interface UserList {
  users: UserRow[];
}

/** What the server inlines into index.html for a logged-in first visit (server.ts bootData). */
export interface BootData {
  session: SessionInfo;
  dashboard: Dashboard;
  capabilities: Capabilities;
}
