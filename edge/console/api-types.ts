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
  fire: { released: boolean; inputActive: boolean; since?: number };
  doors: DoorCardState[];
}

/** A bus event as kept by the live hub and sent on /api/live (event: bus). */
export interface LiveEvent {
  /** A bus event name (keyof BusEvents on the server) or a console-side one such as 'audit'. */
  type: string;
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

/** GET /api/users. */
export interface UserRow {
  name: string;
  role: Role;
  lastLoginAt?: number;
  lockedUntil?: number;
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
