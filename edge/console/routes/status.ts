// Read-mostly routes: dashboard, live stream, recent events, system page, log tail,
// service restart.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { networkInterfaces, hostname } from 'node:os';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { appPath } from '../../paths.js';
import { systemStats } from '../../observability/system.js';
import { sendError, later, SECURITY_HEADERS, type ConsoleDeps } from '../server.js';
import { runCommand } from './commands.js';
import type { AccessApi } from '../../doors/api.js';
import { eventAllowed } from './capabilities.js';
import type { Dashboard, DoorStates, EventList, LiveStatus, LogTail, ModelFileRow, Ok, SystemInfo } from '../api-types.js';

// Events that carry personal data (who came through which door, who did what on the
// console) are for technicians and admins; viewers see states and counts only. Each
// event's role is declared by its capability's descriptor (routes/capabilities.ts).
export { eventAllowed };

/** Outbox figures and uplink state, as pushed to the pages every few seconds. */
export function liveStatus(d: ConsoleDeps): LiveStatus {
  const s = d.ctx.outbox.stats();
  const now = d.ctx.clock.now();
  const health = d.ctx.healthReport();
  return {
    at: now,
    // The uplink's health detail is its status, with `connected` (gateway.ts healthReport).
    uplink: (health.uplink?.detail as LiveStatus['uplink'] | undefined) ?? { connected: false },
    outbox: { records: s.count, bytes: s.bytes, oldestAgeS: s.oldestTs === null ? 0 : Math.max(0, Math.round((now - s.oldestTs) / 1000)), evicted: s.evicted, dropped: s.dropped },
    modules: Object.fromEntries(Object.entries(health).map(([k, v]) => [k, { ok: v.ok, ...(v.message ? { message: v.message } : {}) }])),
    clockSynced: d.ctx.clock.synced(),
  };
}

export function addresses(): Array<{ iface: string; family: string; address: string }> {
  const out: Array<{ iface: string; family: string; address: string }> = [];
  for (const [iface, list] of Object.entries(networkInterfaces())) for (const a of list ?? []) out.push({ iface, family: a.family, address: a.address });
  return out;
}

const hashCache = new Map<string, { key: string; sha256: string }>();

function fileSha256(path: string): Promise<string> {
  const st = statSync(path);
  const key = `${st.size}:${st.mtimeMs}`;
  const hit = hashCache.get(path);
  if (hit?.key === key) return Promise.resolve(hit.sha256);
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(path)
      .on('data', (c) => h.update(c))
      .on('error', reject)
      .on('end', () => {
        const sha256 = h.digest('hex');
        hashCache.set(path, { key, sha256 });
        resolve(sha256);
      });
  });
}

/** The models directory (models/ at the app root), if its manifest is there. */
function modelsDir(): string | undefined {
  const dir = appPath('models');
  return existsSync(join(dir, 'manifest.json')) ? dir : undefined;
}

/** The model files the manifest lists: present or not, and whether their hash matches. */
export async function modelFiles(): Promise<SystemInfo['models']> {
  const dir = modelsDir();
  if (!dir) return { models: [], message: 'models/manifest.json not found' };
  let manifest: { models?: Record<string, { file?: string; sha256?: string; size?: number; role?: string; title?: string }> };
  try {
    manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  } catch (err) {
    return { dir, models: [], message: `models/manifest.json unreadable: ${(err as Error).message}` };
  }
  const models: ModelFileRow[] = [];
  for (const [name, m] of Object.entries(manifest.models ?? {})) {
    const path = m.file ? join(dir, m.file) : undefined;
    const present = path !== undefined && existsSync(path);
    const sha256 = present ? await fileSha256(path) : undefined;
    models.push({ name, role: m.role, title: m.title, file: m.file, present, size: present ? statSync(path).size : null, expectedSha256: m.sha256, sha256: sha256 ?? null, ok: present && sha256 === m.sha256 });
  }
  return { dir, models };
}

/**
 * Each door's lock, contact, alarms, fault and fire state for the dashboard's door card
 * (states only, no people: the dashboard is for every role). Null without door access.
 */
export function doorStates(d: ConsoleDeps): DoorStates | null {
  const access: AccessApi | undefined = d.ctx.services.get('access');
  if (!access) return null;
  const s = access.status();
  return {
    fire: { released: s.fire.released, inputActive: s.fire.inputActive, ...(s.fire.since ? { since: s.fire.since } : {}) },
    doors: s.doors.map((x) => ({ id: x.id, ...(x.name ? { name: x.name } : {}), lock: x.lock, contact: x.contact, alarms: x.alarms, fireReleased: x.fireReleased, mode: x.mode, ...(x.fault ? { fault: x.fault } : {}) })),
  };
}

/** GET /api/dashboard's answer (also inlined into the page for a logged-in first visit). */
export async function dashboard(d: ConsoleDeps, req: FastifyRequest): Promise<Dashboard> {
  const info = await runCommand(d, req, 'gateway.info', {}, { audit: false });
  return {
    ...liveStatus(d),
    doors: doorStates(d),
    // gateway.info answers an object (the gateway's version, ids, uptime…).
    info: info.ok ? (info.result as Record<string, unknown>) : null,
    system: systemStats(d.ctx.dataDir),
    events: d.live.recent((e) => eventAllowed(req.session!.role, e.type), 30),
  };
}

export function statusRoutes(app: FastifyInstance, d: ConsoleDeps): void {
  app.get('/api/dashboard', { config: { role: 'viewer' } }, async (req) => dashboard(d, req));

  app.get('/api/live', { config: { role: 'viewer' } }, async (req, reply) => {
    const s = req.session!;
    reply.hijack();
    // The stream is re-checked against the session before each batch (live.ts).
    const r = d.live.attach(reply.raw, { id: s.id, user: s.user, role: s.role });
    if (!r.ok) {
      const mine = d.live.perUser()[s.user] ?? 0;
      const message = mine > 0 ? `you have ${mine} live views open already: close a tab` : 'too many live views open on this gateway: try again later';
      reply.raw.writeHead(503, { 'content-type': 'application/json; charset=utf-8', 'retry-after': '30', ...SECURITY_HEADERS }).end(JSON.stringify({ error: { code: 'too_many_streams', message } }));
    }
  });

  app.get<{ Querystring: { type?: string; door?: string; limit?: string } }>('/api/events', { config: { role: 'viewer' } }, async (req) => {
    const { type, door } = req.query;
    const limit = Math.min(Math.max(Number(req.query.limit ?? 100) || 100, 1), 300);
    const role = req.session!.role;
    const events = d.live.recent((e) => {
      if (!eventAllowed(role, e.type)) return false;
      if (type && !e.type.startsWith(type)) return false;
      if (door) {
        const data = e.data as { doorId?: string; door?: string } | null;
        if (data?.doorId !== door && data?.door !== door) return false;
      }
      return true;
    }, limit);
    return { events } satisfies EventList;
  });

  app.get(
    '/api/system',
    { config: { role: 'viewer' } },
    async (): Promise<SystemInfo> => ({
      version: d.ctx.version,
      node: process.version,
      hostname: hostname(),
      uptimeS: Math.round(process.uptime()),
      pid: process.pid,
      configSource: d.ctx.configSource,
      configRevision: d.ctx.configRevision,
      dataDir: d.ctx.dataDir,
      clockSynced: d.ctx.clock.synced(),
      time: d.ctx.clock.now(),
      system: systemStats(d.ctx.dataDir),
      addresses: addresses(),
      models: await modelFiles(),
      logLevel: d.ctx.config.log.level,
    }),
  );

  app.get<{ Querystring: { level?: string; limit?: string; q?: string } }>('/api/logs', { config: { role: 'technician' } }, async (req, reply) => {
    const level = req.query.level ?? 'trace';
    if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal'].includes(level)) return sendError(reply, 400, 'bad_level', 'level must be one of trace, debug, info, warn, error, fatal');
    return { lines: d.logs.tail({ minLevel: level, limit: Number(req.query.limit ?? 200) || 200, ...(req.query.q ? { contains: req.query.q.slice(0, 100) } : {}) }), configuredLevel: d.ctx.config.log.level } satisfies LogTail;
  });

  app.post('/api/system/restart', { config: { role: 'admin' } }, async (req, reply) => {
    const user = req.session!.user;
    await d.audit(req, 'console.service.restart');
    // Answer first, then restart: the page shows "restarting" and reconnects. Everything
    // the timer needs is taken now (the request is gone by then), and nothing it does may
    // throw into the process.
    reply.send({ ok: true, message: 'service restarting' } satisfies Ok);
    later(d, 200, 'service restart', () => d.ctx.requestRestart(`requested from the console by ${user}`));
    return reply;
  });
}
