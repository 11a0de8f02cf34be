// The console's HTTP(S) server: Fastify with cookie sessions, a role check on every API
// route (declared per route as `config.role`; a route without one is refused, so a
// forgotten declaration fails closed), a CSRF check on every state-changing request,
// uniform JSON errors, security headers, and the static pages from memory.
import { brotliCompressSync, gzipSync, constants } from 'node:zlib';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { requireCjs } from '../cjs.js';
import type { Counter } from 'prom-client';
import type { ModuleContext } from '../module.js';
import { roleAtLeast, BusyError, type AccountStore, type Role } from './accounts.js';
import { SessionStore, type Session } from './sessions.js';
import type { LiveHub } from './live.js';
import type { LogRing } from './logring.js';
import type { ConfigFile } from './apply.js';
import type { Asset } from './assets.js';
import type { ConsoleConfig } from './module.js';

// require(), not import: see edge/cjs.ts (Node's ESM loader scanning fastify costs ~3 MB RSS).
const Fastify = (requireCjs('fastify') as typeof import('fastify')).default;
const cookie = (requireCjs('@fastify/cookie') as typeof import('@fastify/cookie')).default;

export type RouteRole = Role | 'public';

declare module 'fastify' {
  interface FastifyContextConfig {
    role?: RouteRole;
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
  secure: boolean;
  cookieName: string;
  audit: (req: FastifyRequest, action: string, data?: Record<string, unknown>) => Promise<void>;
  authFailures: Counter<'reason'>;
}

/** Uniform error body: { error: { code, message, details? } }. */
export class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string, readonly details?: unknown) {
    super(message);
  }
}

export function sendError(reply: FastifyReply, status: number, code: string, message: string, details?: unknown): FastifyReply {
  return reply.code(status).send({ error: { code, message, ...(details !== undefined ? { details } : {}) } });
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

const SECURITY_HEADERS = {
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
    ...(o.https ? { https: { cert: o.https.cert, key: o.https.key } } : {}),
  }) as unknown as FastifyInstance;

  void app.register(cookie);
  // Photos and config files arrive as raw bodies of their own type (no multipart parser).
  app.addContentTypeParser(['image/jpeg', 'image/png', 'image/webp', 'application/octet-stream', 'text/yaml', 'application/yaml', 'text/plain'], { parseAs: 'buffer', bodyLimit }, (_req, body, done) => done(null, body));

  app.addHook('onSend', async (_req, reply, payload) => {
    for (const [k, v] of Object.entries(SECURITY_HEADERS)) reply.header(k, v);
    if (deps.secure) reply.header('strict-transport-security', 'max-age=31536000');
    return payload;
  });

  app.addHook('onRequest', async (req, reply) => {
    if (!req.url.startsWith('/api/')) return;
    if (req.is404) return;
    const need = req.routeOptions.config?.role;
    if (need === undefined) return sendError(reply, 403, 'forbidden', 'route has no access rule');
    if (need === 'public') return;
    const session = deps.sessions.get(req.cookies[deps.cookieName]);
    if (!session) {
      deps.authFailures.inc({ reason: 'no_session' });
      return sendError(reply, 401, 'not_logged_in', 'not logged in, or the session has expired: log in again');
    }
    req.session = session;
    if (!SAFE_METHODS.has(req.method)) {
      const origin = req.headers.origin;
      if (origin !== undefined && !sameOrigin(origin, req.headers.host)) {
        deps.authFailures.inc({ reason: 'cross_origin' });
        return sendError(reply, 403, 'csrf', `request from another origin (${origin}) refused`);
      }
      if (!SessionStore.csrfMatches(session, req.headers['x-csrf-token'])) {
        deps.authFailures.inc({ reason: 'csrf' });
        return sendError(reply, 403, 'csrf', 'missing or wrong CSRF token (x-csrf-token header): reload the page');
      }
    }
    if (!roleAtLeast(session.role, need)) {
      deps.authFailures.inc({ reason: 'forbidden' });
      return sendError(reply, 403, 'forbidden', `this needs the ${need} role (you are ${session.role})`);
    }
  });

  app.setErrorHandler((err: Error & { code?: string; statusCode?: number; validation?: unknown }, req, reply) => {
    if (err instanceof HttpError) return sendError(reply, err.status, err.code, err.message, err.details);
    if (err instanceof BusyError) {
      reply.header('retry-after', '2');
      return sendError(reply, 503, 'busy', err.message);
    }
    if (err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return sendError(reply, 413, 'too_large', `upload larger than ${deps.cfg.maxUploadKB} KiB`);
    if (err.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return sendError(reply, 415, 'unsupported_media_type', `content type ${req.headers['content-type'] ?? '(none)'} is not accepted here`);
    if (err.code === 'FST_ERR_CTP_EMPTY_JSON_BODY' || err instanceof SyntaxError) return sendError(reply, 400, 'bad_json', 'request body is not valid JSON');
    if (err.validation) return sendError(reply, 400, 'bad_request', err.message);
    if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return sendError(reply, err.statusCode, 'bad_request', err.message);
    deps.ctx.log.error({ err, url: req.url, method: req.method }, 'console request failed');
    return sendError(reply, 500, 'internal', 'internal error (see the service log)');
  });

  app.setNotFoundHandler((req, reply) => {
    if (req.url.startsWith('/api/')) return sendError(reply, 404, 'not_found', `no API route ${req.method} ${req.url.split('?')[0]}`);
    // Everything else is the single-page app.
    return servePage(o, req, reply);
  });

  app.get('/*', { config: { role: 'public' } }, (req, reply) => {
    const path = req.url.split('?')[0]!;
    if (path.startsWith('/api/')) return sendError(reply, 404, 'not_found', `no API route ${req.method} ${path}`);
    // The single-page app for / and for paths without a file extension.
    if (path === '/' || path === '/index.html' || (!o.assets.has(path) && !path.includes('.'))) return servePage(o, req, reply);
    return serveAsset(o.assets, path, req, reply);
  });

  for (const r of o.routes) r(app, deps);
  return app;
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
  const a = assets.get(path) ?? (path.includes('.') ? undefined : assets.get('/index.html'));
  if (!a) return reply.code(404).type('text/plain').send('not found');
  reply.header('etag', a.etag).header('vary', 'accept-encoding').header('cache-control', path === '/index.html' ? 'no-cache' : 'public, max-age=300, must-revalidate');
  if (req.headers['if-none-match'] === a.etag) return reply.code(304).send();
  const accept = String(req.headers['accept-encoding'] ?? '');
  reply.type(a.type);
  if (/\bbr\b/.test(accept)) return reply.header('content-encoding', 'br').send(a.br);
  if (/\bgzip\b/.test(accept)) return reply.header('content-encoding', 'gzip').send(a.gzip);
  return reply.send(a.raw);
}
