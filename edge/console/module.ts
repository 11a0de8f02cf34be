// The technician web console as a gateway module. Started last, so every other module's
// services, commands and bus events exist when it wires itself to them.
import { existsSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { GatewayModule, ModuleContext, ModuleFactory, ModuleHealth } from '../module.js';
import { AccountStore } from './accounts.js';
import { SessionStore } from './sessions.js';
import { LiveHub } from './live.js';
import { LogRing } from './logring.js';
import { ConfigFile } from '../config/apply.js';
import { ConfigHistory } from '../config/history.js';
import { consoleAssets } from './assets.js';
import { loadTls } from './tls.js';
import { buildServer, routeTable, type ConsoleDeps, type RouteRule } from './server.js';
import { hostCheck } from './hosts.js';
import { setupTokenPath, readSetupToken, ensureSetupToken, finishSetupToken, setupUrl } from './setup-token.js';
import { authRoutes, sessionInfo } from './routes/auth.js';
import { statusRoutes, liveStatus, addresses, dashboard, eventAllowed } from './routes/status.js';
import { commandRoutes } from './routes/commands.js';
import { configRoutes } from './routes/config.js';
import { supportRoutes } from './routes/support.js';
import { capabilityRoutes, capabilities, LIVE_EVENTS, TRANSIENT_EVENTS } from './routes/capabilities.js';
import type { ConsoleConfig } from './schema.js';

export type { ConsoleConfig };

export class ConsoleModule implements GatewayModule {
  readonly name = 'console';
  private app: FastifyInstance | undefined;
  private live!: LiveHub;
  private readonly logs = new LogRing(500);
  private offOutcome: (() => void) | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private setupTimer: NodeJS.Timeout | undefined;
  private url = '';
  private startError: string | undefined;
  port: number | undefined;

  constructor(
    private readonly ctx: ModuleContext,
    private readonly cfg: ConsoleConfig,
  ) {}

  async start(): Promise<void> {
    const { ctx, cfg } = this;
    const log = ctx.log.child({ mod: 'console' });
    this.logs.attach(ctx.log);
    const now = () => ctx.clock.now();
    const accounts = new AccountStore({ db: ctx.stateDb, now, attempts: cfg.lockoutAttempts, lockMs: cfg.lockoutMin * 60_000, onWriteFailed: (err) => ctx.storage?.writeFailed(err) });
    const sessions = new SessionStore(ctx.stateDb, cfg.sessionTtlMin * 60_000, now, (err) => ctx.storage?.writeFailed(err));
    sessions.prune();
    this.pruneTimer = setInterval(() => {
      try {
        sessions.prune();
      } catch (err) {
        log.error({ err: String(err) }, 'console: could not prune expired sessions');
      }
    }, 3600_000).unref();
    const secure = cfg.tls.enabled;
    const cookieName = secure ? '__Host-ee_session' : 'ee_session';
    this.live = new LiveHub({
      bus: ctx.bus,
      now,
      events: LIVE_EVENTS,
      transient: TRANSIENT_EVENTS,
      status: () => liveStatus(deps),
      session: (id) => sessions.peek(id),
      allowed: eventAllowed,
      onError: (err, what) => log.error({ err: String(err), what }, 'console live stream: error (stream kept or closed, never thrown)'),
    });
    const live = this.live;
    sessions.onEnd((e) => (e.kind === 'session' ? live.endSession(e.id) : live.endUser(e.user)));
    const configFile = isAbsolute(ctx.configSource) && existsSync(ctx.configSource) ? new ConfigFile(ctx.configSource) : undefined;
    const authFailures = ctx.metrics.counter({ name: 'estate_console_auth_failures_total', help: 'Console requests refused: no session, csrf, forbidden, bad credentials, locked', labelNames: ['reason'] });

    const deps: ConsoleDeps = {
      ctx,
      cfg,
      accounts,
      sessions,
      live: this.live,
      logs: this.logs,
      configFile,
      history: new ConfigHistory(ctx.dataDir),
      secure,
      cookieName,
      hostAllowed: hostCheck(cfg.hostNames),
      authFailures,
      audit: async (req: FastifyRequest, action: string, data: Record<string, unknown> = {}) => {
        // Who did it: the session's user; 'anonymous' only for what needs no session (a
        // failed login names the account tried in `account`). Data cannot override it.
        const rec = { ...data, action, user: req.session?.user ?? 'anonymous', address: req.socket.remoteAddress ?? 'unknown' };
        this.live.publish('audit', rec);
        // Audit must not fail the action the technician already did; a failure is logged.
        // Nor delay its answer: on a full disk an audit record waits in memory until it can
        // be written (in order, never dropped), and awaiting that left the technician's
        // unlock, already done, without an answer for as long as the disk stayed full.
        void ctx.outbox.append({ stream: 'audit', type: action, data: rec }).catch((err) => log.error({ err: String(err), action }, 'could not store audit record'));
      },
    };

    const { assets, page: web } = await consoleAssets();
    const tls = secure ? await loadTls({ ...(cfg.tls.cert ? { cert: cfg.tls.cert } : {}), ...(cfg.tls.key ? { key: cfg.tls.key } : {}), dataDir: ctx.dataDir, now: now() }) : undefined;
    this.app = buildServer({
      deps,
      assets,
      ...(tls ? { https: { cert: tls.cert, key: tls.key } } : {}),
      routes: [authRoutes, statusRoutes, commandRoutes, configRoutes, capabilityRoutes, supportRoutes],
      // What the dashboard's first render asks for: GET /api/session, /api/dashboard, /api/capabilities.
      bootData: async (req) => ({ session: sessionInfo(deps, req.session), dashboard: await dashboard(deps, req), capabilities: capabilities(deps) }),
    });
    this.live.start();
    await this.app.listen({ host: cfg.host, port: cfg.port });
    const addr = this.app.server.address();
    this.port = typeof addr === 'object' && addr ? addr.port : cfg.port;
    this.url = `${secure ? 'https' : 'http'}://${cfg.host.includes(':') ? `[${cfg.host}]` : cfg.host}:${this.port}/`;
    // Listening on every interface: tell the technician the addresses a phone can use.
    const wildcard = cfg.host === '0.0.0.0' || cfg.host === '::';
    const urls = wildcard
      ? addresses()
          .filter((a) => a.family === 'IPv4' && a.address !== '127.0.0.1')
          .map((a) => `${secure ? 'https' : 'http'}://${a.address}:${this.port}/`)
      : [this.url];
    log.info({ url: this.url, urls, page: web, ...(tls ? { fingerprint256: tls.fingerprint256, selfSigned: tls.selfSigned } : {}) }, 'technician console listening');

    // The setup token lives in a file of the data directory (setup-token.ts): the same
    // one on the installer's label, in `estate-edge setup-token` and doctor, and here.
    // While no admin exists the file is watched: a token renewed by the command is taken
    // over, an expired one is replaced; once the first admin exists it is marked done.
    const tokenPath = setupTokenPath(ctx.dataDir);
    let logged = '';
    const syncToken = () => {
      try {
        if (!accounts.setupNeeded()) {
          if (readSetupToken(tokenPath)?.state !== 'done') finishSetupToken(tokenPath, now());
          if (this.setupTimer) clearInterval(this.setupTimer);
          return;
        }
        const s = ensureSetupToken(tokenPath, now());
        if (s.state !== 'pending') return;
        accounts.useSetupToken(s.token, s.expiresAt);
        // warn so it is visible at the default log level; the token is useless once the first admin exists.
        if (s.token !== logged)
          log.warn({ setupToken: s.token, expiresAt: new Date(s.expiresAt).toISOString(), urls, setupUrl: setupUrl(urls[0] ?? this.url, s.token) }, `console setup token: ${s.token} (needed once, to create the first admin account at ${urls[0] ?? this.url}; valid until ${new Date(s.expiresAt).toISOString()})`);
        logged = s.token;
      } catch (err) {
        // An unwritable data dir must not stop the console: the token made in memory is logged instead.
        const token = accounts.setupTokenIfNeeded();
        if (token && token !== logged) log.warn({ setupToken: token, urls, err: String(err) }, `console setup token: ${token} (setup-token file not writable; needed once, to create the first admin account at ${urls[0] ?? this.url})`);
        logged = token ?? logged;
      }
    };
    accounts.setupTokenIfNeeded();
    syncToken();
    if (accounts.setupNeeded()) this.setupTimer = setInterval(syncToken, 5000).unref();

    // The confirm-or-rollback watch after an apply runs in the fleet module (edge/fleet),
    // for the console's applies and the platform's alike; the page hears its outcome here.
    this.offOutcome = ctx.bus.on('config.outcome', (o) => this.live.publish('console.config', { status: o.status, user: o.user, ...(o.reason ? { reason: o.reason } : {}) }));
  }

  /** Every route the console answers, with its declared role (the tests try each one). */
  routes(): RouteRule[] {
    return this.app ? routeTable(this.app) : [];
  }

  health(): ModuleHealth {
    if (!this.app) return { ok: false, message: this.startError ?? 'not started' };
    return { ok: true, detail: { url: this.url, liveClients: this.live.clientCount(), liveByUser: this.live.perUser() } };
  }

  async stop(): Promise<void> {
    this.offOutcome?.();
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    if (this.setupTimer) clearInterval(this.setupTimer);
    this.live?.stop();
    this.logs.detach();
    const app = this.app;
    this.app = undefined;
    if (app) {
      app.server.closeAllConnections?.();
      await app.close();
    }
  }
}

export const consoleModule: ModuleFactory = (ctx) => {
  if (!ctx.config.console.enabled) return undefined;
  return new ConsoleModule(ctx, ctx.config.console);
};
