// The console's HTTP(S) server: Fastify with cookie sessions, uniform JSON errors, security
// headers, and the static pages from memory.
//
// Access is decided by the route the router matched, never by the text of the URL. Every
// route declares who may use it, next to its path:
//
//     app.get('/api/things', { config: { role: 'technician' } }, handler)
//
// with role one of 'public' (anyone, no session: the page, its files, login, setup),
// 'viewer', 'technician' or 'admin' (a live session with at least that role). A route
// registered without a valid role stops the server from being built (onRoute), and a
// request whose matched route has no rule is refused at run time too (fail closed). The
// one access hook runs for every request, including the not-found handler (which declares
// 'public' and only ever answers 404): the router has already percent-decoded the path
// and chosen the route, so `/%61pi/users`, `http://host/api/users` (absolute form) and
// every other spelling of a route get exactly that route's rule. The router is strict:
// case-sensitive, no trailing-slash or duplicate-slash folding, no `;` parameters, and
// there is no wildcard route — the page and each of its files are routes of their own, so
// a path that is not a route is a 404, never the page and never API data.
//
// State-changing requests (anything but GET/HEAD/OPTIONS) from another origin are refused
// on every route, public ones included (Origin / Sec-Fetch-Site); with a session they must
// also carry the session's CSRF token. Routes that need a session are not for another
// site's pages at all (Sec-Fetch-Site other than same-origin or none is refused).
import { brotliCompressSync, gzipSync, constants } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { requireCjs } from '../cjs.js';
import type { Counter } from 'prom-client';
import type { ModuleContext } from '../module.js';
import { roleAtLeast, BusyError, ROLES, type AccountStore, type Role } from './accounts.js';
import { SessionStore, type Session } from './sessions.js';
import type { LiveHub } from './live.js';
import type { LogRing } from './logring.js';
import type { ConfigFile } from '../config/apply.js';
import type { ConfigHistory } from '../config/history.js';
import type { Asset } from './assets.js';
import type { ConsoleConfig } from './schema.js';

// require(), not import: see edge/cjs.ts (Node's ESM loader scanning fastify costs ~3 MB RSS).
const Fastify = (requireCjs('fastify') as typeof import('fastify')).default;
const cookie = (requireCjs('@fastify/cookie') as typeof import('@fastify/cookie')).default;

/** Who may use a route: anyone ('public') or a live session with at least that role. */
export type RouteRole = Role | 'public';
export const ROUTE_ROLES: readonly RouteRole[] = ['public', ...ROLES];

export function isRouteRole(x: unknown): x is RouteRole {
  return typeof x === 'string' && (ROUTE_ROLES as readonly string[]).includes(x);
}

/** One registered route and its rule (HEAD routes Fastify adds for GET ones included). */
export interface RouteRule {
  method: string;
  url: string;
  role: RouteRole;
}

const routeTables = new WeakMap<FastifyInstance, RouteRule[]>();

/** Every route of a console server with its declared role, in registration order. */
export function routeTable(app: FastifyInstance): RouteRule[] {
  return [...(routeTables.get(app) ?? [])];
}

declare module 'fastify' {
  interface FastifyContextConfig {
    role?: RouteRole;
    /**
     * Costly routes (a camera snapshot is a JPEG encode in the imaging helper): at most
     * this many at once; more are answered 503 with Retry-After at once, not queued.
     */
    maxConcurrent?: number;
  }
  interface FastifyRequest {
    session?: Session;
  }
}

export interface ConsoleDeps {
  ctx: ModuleContext;
  cfg: ConsoleConfig;
  accounts: AccountStore;
  sessions: SessionStore;
  live: LiveHub;
  logs: LogRing;
  /** The config file being edited, or undefined when the gateway runs without one (embedded). */
  configFile: ConfigFile | undefined;
  /** The configuration's revision history (data dir), shared with the platform's config commands. */
  history: ConfigHistory;
  secure: boolean;
  cookieName: string;
  /** Whether a request's Host header names this box (DNS rebinding, see hosts.ts). */
  hostAllowed: (host: string | undefined) => boolean;
  audit: (req: FastifyRequest, action: string, data?: Record<string, unknown>) => Promise<void>;
  authFailures: Counter<'reason'>;
}

/** Uniform error body: { error: { code, message, details? } }. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export function sendError(reply: FastifyReply, status: number, code: string, message: string, details?: unknown): FastifyReply {
  return reply.code(status).send({ error: { code, message, ...(details !== undefined ? { details } : {}) } });
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export const SECURITY_HEADERS = {
  'content-security-policy': "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'no-referrer',
  'permissions-policy': 'camera=(), microphone=(), geolocation=()',
};

export interface ServerOptions {
  deps: ConsoleDeps;
  assets: Map<string, Asset>;
  https?: { cert: string; key: string };
  routes: Array<(app: FastifyInstance, deps: ConsoleDeps) => void>;
  /**
   * Data inlined into the page for a request with a live session (the session, the
   * dashboard): the first render needs no API round trip. Never for anonymous requests.
   */
  bootData?: (req: FastifyRequest) => Promise<Record<string, unknown>>;
}

export function buildServer(o: ServerOptions): FastifyInstance {
  const { deps } = o;
  const bodyLimit = deps.cfg.maxUploadKB * 1024;
  const app = Fastify({
    logger: false,
    bodyLimit,
    trustProxy: false,
    // Spelled out, not left to defaults: one path, one route (see the header).
    routerOptions: { caseSensitive: true, ignoreTrailingSlash: false, ignoreDuplicateSlashes: false, ...({ useSemicolonDelimiter: false } as object) },
    ...(o.https ? { https: { cert: o.https.cert, key: o.https.key } } : {}),
    // `as unknown as`: Fastify's factory returns an instance typed by its https/http2 option
    // union (FastifyInstance<https.Server | http.Server>); the routes only use the common API.
  }) as unknown as FastifyInstance;

  const table: RouteRule[] = [];
  routeTables.set(app, table);
  // Before any route: a route without a valid role is a programming error, caught at start.
  app.addHook('onRoute', (r) => {
    const role = (r.config as { role?: unknown } | undefined)?.role;
    for (const method of Array.isArray(r.method) ? r.method : [r.method]) {
      if (!isRouteRole(role)) throw new Error(`console route ${method} ${r.url} declares no access rule: add { config: { role: ${ROUTE_ROLES.map((x) => `'${x}'`).join(' | ')} } }`);
      table.push({ method, url: r.url, role });
    }
  });

  void app.register(cookie);
  // Photos and config files arrive as raw bodies of their own type (no multipart parser).
  app.addContentTypeParser(['image/jpeg', 'image/png', 'image/webp', 'application/octet-stream', 'text/yaml', 'application/yaml', 'text/plain'], { parseAs: 'buffer', bodyLimit }, (_req, body, done) => done(null, body));

  app.addHook('onSend', async (_req, reply, payload) => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) reply.header(k, v);
    if (deps.secure) reply.header('strict-transport-security', 'max-age=31536000');
    return payload;
  });

  // The one access check, for every request: the rule of the route the router matched.
  app.addHook('onRequest', async (req, reply) => {
    if (!deps.hostAllowed(req.headers.host)) {
      deps.authFailures.inc({ reason: 'bad_host' });
      return sendError(reply, 421, 'bad_host', `this console answers only to its IP address, localhost, its hostname and console.hostNames, not to "${String(req.headers.host ?? '').slice(0, 100)}"`);
    }
    const need: unknown = req.routeOptions.config?.role;
    if (!isRouteRole(need)) {
      deps.authFailures.inc({ reason: 'no_rule' });
      return sendError(reply, 403, 'forbidden', 'route has no access rule');
    }
    const site = req.headers['sec-fetch-site'];
    if (!SAFE_METHODS.has(req.method)) {
      // Another site's page may not change anything here, logged in or not (login CSRF,
      // setup from a drive-by page); browsers always send Origin on such requests.
      const origin = req.headers.origin;
      if ((origin !== undefined && !sameOrigin(origin, req.headers.host)) || (site !== undefined && site !== 'same-origin' && site !== 'none')) {
        deps.authFailures.inc({ reason: 'cross_origin' });
        return sendError(reply, 403, 'csrf', `request from another origin (${origin ?? site}) refused`);
      }
    }
    if (need === 'public') return;
    if (site !== undefined && site !== 'same-origin' && site !== 'none') {
      deps.authFailures.inc({ reason: 'cross_origin' });
      return sendError(reply, 403, 'csrf', `request from another site (${site}) refused`);
    }
    const session = deps.sessions.get(req.cookies?.[deps.cookieName]);
    if (!session) {
      deps.authFailures.inc({ reason: 'no_session' });
      return sendError(reply, 401, 'not_logged_in', 'not logged in, or the session has expired: log in again');
    }
    req.session = session;
    if (!SAFE_METHODS.has(req.method) && !SessionStore.csrfMatches(session, req.headers['x-csrf-token'])) {
      deps.authFailures.inc({ reason: 'csrf' });
      return sendError(reply, 403, 'csrf', 'missing or wrong CSRF token (x-csrf-token header): reload the page');
    }
    if (!roleAtLeast(session.role, need)) {
      deps.authFailures.inc({ reason: 'forbidden' });
      return sendError(reply, 403, 'forbidden', `this needs the ${need} role (you are ${session.role})`);
    }
  });

  // Overload and failures are logged once per interval per route and kind, with the
  // number of repeats: 200 refused snapshots are one log line, not 200 stack traces.
  const problems = new RateLimitedLog(deps.ctx.log, 60_000, () => deps.ctx.clock.now());
  const overloaded = (req: FastifyRequest, reply: FastifyReply, message: string, retryAfterS = 2) => {
    problems.warn(`overload ${req.routeOptions.url ?? '(none)'}`, { route: req.routeOptions.url, method: req.method }, `console: overloaded, answering 503: ${message}`);
    reply.header('retry-after', String(retryAfterS));
    return sendError(reply, 503, 'busy', message, { retryAfterS });
  };

  // Admission for costly routes, after the access check (onRequest hooks run in order).
  const inFlight = new Map<string, number>();
  app.addHook('onRequest', async (req, reply) => {
    const max = req.routeOptions.config?.maxConcurrent;
    if (max === undefined) return;
    const key = `${req.method} ${req.routeOptions.url}`;
    const n = inFlight.get(key) ?? 0;
    if (n >= max) return overloaded(req, reply, `too many requests of this kind at once (${max}): try again in a moment`);
    inFlight.set(key, n + 1);
    // 'close' comes once per response, answered or aborted.
    reply.raw.once('close', () => inFlight.set(key, (inFlight.get(key) ?? 1) - 1));
  });

  app.setErrorHandler((err: Error & { code?: string; statusCode?: number; validation?: unknown; reason?: unknown }, req, reply) => {
    if (err instanceof HttpError) return sendError(reply, err.status, err.code, err.message, err.details);
    // A helper that refuses work because it is full (password hashing, the imaging helper).
    if (err instanceof BusyError || err.reason === 'busy') return overloaded(req, reply, err.message);
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return sendError(reply, 413, 'too_large', `upload larger than ${deps.cfg.maxUploadKB} KiB`);
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return sendError(reply, 415, 'unsupported_media_type', `content type ${req.headers['content-type'] ?? '(none)'} is not accepted here`);
    if (err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || err instanceof SyntaxError) return sendError(reply, 400, 'bad_json', 'request body is not valid JSON');
    if (err.validation) return sendError(reply, 400, 'bad_request', err.message);
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return sendError(reply, err.statusCode, 'bad_request', err.message);
    problems.error(`failed ${req.method} ${req.routeOptions.url ?? '(none)'}`, { err, route: req.routeOptions.url, method: req.method }, 'console request failed');
    return sendError(reply, 500, 'internal', 'internal error (see the service log)');
  });

  // Declares its rule like every route: anyone may be told that nothing is here. It never
  // serves the page or any data, whatever the path looks like.
  app.setNotFoundHandler({ config: { role: 'public' } } as never, (req, reply) => sendError(reply, 404, 'not_found', `nothing here (${req.method})`));

  // The single-page app (its pages are #/fragments) and each of its files: one route each.
  for (const path of ['/', '/index.html']) app.get(path, { config: { role: 'public' } }, (req, reply) => servePage(o, req, reply));
  for (const path of o.assets.keys()) if (path !== '/index.html') app.get(path, { config: { role: 'public' } }, (req, reply) => serveAsset(o.assets, path, req, reply));

  for (const r of o.routes) r(app, deps);
  return app;
}

/**
 * A log that says a recurring problem once per interval per key: the first time in full,
 * then, at the next occurrence after the interval, how many were not logged.
 */
export class RateLimitedLog {
  private readonly seen = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly log: ModuleContext['log'],
    private readonly intervalMs: number,
    private readonly now: () => number,
  ) {}

  warn(key: string, data: Record<string, unknown>, msg: string): void {
    this.write('warn', key, data, msg);
  }

  error(key: string, data: Record<string, unknown>, msg: string): void {
    this.write('error', key, data, msg);
  }

  private write(level: 'warn' | 'error', key: string, data: Record<string, unknown>, msg: string): void {
    const now = this.now();
    const s = this.seen.get(key);
    if (s && now - s.at < this.intervalMs) {
      s.suppressed++;
      return;
    }
    this.log[level]({ ...data, ...(s?.suppressed ? { repeatedSinceLastLog: s.suppressed } : {}) }, msg);
    this.seen.set(key, { at: now, suppressed: 0 });
    if (this.seen.size > 1000) this.seen.delete(this.seen.keys().next().value!);
  }
}

/**
 * Run `fn` after `ms` (unref'd), outside any request. An error in it is logged, never
 * thrown into the process: an uncaught exception ends the gateway, and the doors go to
 * their safe state.
 */
export function later(d: Pick<ConsoleDeps, 'ctx'>, ms: number, what: string, fn: () => unknown): NodeJS.Timeout {
  return setTimeout(() => {
    try {
      const r = fn() as Promise<unknown> | undefined;
      if (r && typeof r.then === 'function') r.then(undefined, (err) => d.ctx.log.error({ err: String(err), what }, 'console: deferred action failed'));
    } catch (err) {
      d.ctx.log.error({ err: String(err), what }, 'console: deferred action failed');
    }
  }, ms).unref();
}

function sameOrigin(origin: string, host: string | undefined): boolean {
  try {
    return new URL(origin).host === host;
  } catch {
    return false;
  }
}

/**
 * The page. With a live session cookie (SameSite=Strict: never sent on a navigation from
 * another site) the data of the first render is inlined as JSON — not a script, so the
 * CSP is unchanged; `<` escaped so no text in it can end the element — and the answer is
 * personal: no-store, no ETag. Anonymous requests get the static file.
 */
async function servePage(o: ServerOptions, req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const session = o.bootData ? o.deps.sessions.get(req.cookies?.[o.deps.cookieName]) : undefined;
  const page = o.assets.get('/index.html');
  if (!session || !page) return serveAsset(o.assets, '/index.html', req, reply);
  req.session = session;
  let json: string;
  try {
    json = JSON.stringify(await o.bootData!(req)).replace(/</g, '\\u003c');
  } catch (err) {
    // The page then asks the API itself, as for a visit without a session.
    o.deps.ctx.log.warn({ err: String(err) }, 'console: first-render data not inlined');
    return serveAsset(o.assets, '/index.html', req, reply);
  }
  const html = Buffer.from(page.raw.toString('utf8').replace('</body>', `<script type="application/json" id="ee-boot">${json}</script>\n</body>`));
  reply.header('cache-control', 'no-store').header('vary', 'accept-encoding, cookie').type(page.type);
  const accept = String(req.headers['accept-encoding'] ?? '');
  // Fast settings: a few KiB compressed per page load, on the box's CPU.
  if (/\bbr\b/.test(accept)) return reply.header('content-encoding', 'br').send(brotliCompressSync(html, { params: { [constants.BROTLI_PARAM_QUALITY]: 4 } }));
  if (/\bgzip\b/.test(accept)) return reply.header('content-encoding', 'gzip').send(gzipSync(html, { level: 6 }));
  return reply.send(html);
}

function serveAsset(assets: Map<string, Asset>, path: string, req: FastifyRequest, reply: FastifyReply): FastifyReply {
  const a = assets.get(path);
  if (!a) return sendError(reply, 404, 'not_found', 'nothing here');
  reply
    .header('etag', a.etag)
    .header('vary', 'accept-encoding')
    .header('cache-control', path === '/index.html' ? 'no-cache' : 'public, max-age=300, must-revalidate');
  if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
  const accept = String(req.headers['accept-encoding'] ?? '');
  reply.type(a.type);
  if (/\bbr\b/.test(accept)) return reply.header('content-encoding', 'br').send(a.br);
  if (/\bgzip\b/.test(accept)) return reply.header('content-encoding', 'gzip').send(a.gzip);
  return reply.send(a.raw);
}
