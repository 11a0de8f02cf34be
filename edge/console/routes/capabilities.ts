// Routes that show the estate's capabilities (meters, doors, people, faces, camera).
// Each capability is optional: its module may not be configured or not be part of this
// build. The pages, the service that says each is configured, the commands each shows
// and the live events all come from the capability descriptors (edge/capabilities.ts):
// the console looks for the service and the commands at request time and answers
// `configured: false` with a reason when they are absent, so every page works on
// whatever box it runs on.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { sendError, type ConsoleDeps } from '../server.js';
import { roleAtLeast, type Role } from '../accounts.js';
import { runAs, runCommand } from './commands.js';
import type { MetersApi, MeterDeviceStatus } from '../../meters/api.js';
import type { VisionApi } from '../../vision/api.js';
import type {} from '../../doors/api.js';
import type { ElevatorApi } from '../../elevator/api.js';
import { CommandError } from '../../commands/registry.js';
import type { CapabilityDescriptor } from '../../capability.js';
import type { ModuleHealth } from '../../module.js';
import { CAPABILITIES } from '../../capabilities.js';
import { CORE_LIVE_EVENTS, type BusEvents } from '../../bus.js';
import type { Capabilities, CameraSnapshot, ElevatorSnapshot, CameraView, ConsoleEventName, LiveBusEventName, MetersView, PageState, RawPollAnswer, SnapshotFace } from '../api-types.js';

// The browser's live-event names (api-types.ts, which imports nothing) checked against the
// bus: each is a bus event, and so is each of the core's forwarded ones (the capabilities'
// are typed `keyof BusEvents & LiveBusEventName` in their descriptors). tsc fails here when
// a name is renamed or dropped on either side.
type Holds<T extends true> = T;
export type LiveNamesAreBusEvents = Holds<[LiveBusEventName] extends [keyof BusEvents] ? true : false>;
export type CoreLiveEventsAreKnown = Holds<[(typeof CORE_LIVE_EVENTS)[number]] extends [LiveBusEventName] ? true : false>;

const RawPoll = Type.Object(
  {
    bus: Type.String({ minLength: 1, maxLength: 64 }),
    device: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    point: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    requestHex: Type.Optional(Type.String({ minLength: 2, maxLength: 512, pattern: '^[0-9A-Fa-f ]+$' })),
    timeoutMs: Type.Optional(Type.Integer({ minimum: 20, maximum: 5000 })),
  },
  { additionalProperties: false },
);

/** Bus events forwarded live to the pages: the core's, then each capability's (names of modules not in this build never fire). */
export function liveEventsOf(capabilities: readonly CapabilityDescriptor[]): Array<keyof BusEvents & LiveBusEventName> {
  return [...new Set<keyof BusEvents & LiveBusEventName>([...CORE_LIVE_EVENTS, ...capabilities.flatMap((c) => (c.events ?? []).map((e) => e.name))])];
}

/** Live only, not kept for "last events": periodic telemetry. */
export function transientEventsOf(capabilities: readonly CapabilityDescriptor[]): Array<keyof BusEvents> {
  return capabilities.flatMap((c) => (c.events ?? []).filter((e) => e.transient).map((e) => e.name));
}

/** The console's own events (not from the bus): who did what is for technicians. */
const CONSOLE_EVENT_ROLES: Record<ConsoleEventName, Role> = { audit: 'technician', 'console.config': 'viewer' };

/** The least role that sees each live event: the core's for everyone, each capability's as it declared. */
export function eventRolesOf(capabilities: readonly CapabilityDescriptor[]): ReadonlyMap<string, Role> {
  const roles = new Map<string, Role>(CORE_LIVE_EVENTS.map((e) => [e, 'viewer']));
  for (const c of capabilities) for (const e of c.events ?? []) roles.set(e.name, e.role);
  for (const [name, role] of Object.entries(CONSOLE_EVENT_ROLES)) roles.set(name, role);
  return roles;
}

export const LIVE_EVENTS = liveEventsOf(CAPABILITIES);
export const TRANSIENT_EVENTS = transientEventsOf(CAPABILITIES);
const EVENT_ROLES = eventRolesOf(CAPABILITIES);

/** Whether `role` may see a live event of `type`; an event nobody declared is for technicians (fail closed). */
export function eventAllowed(role: Role, type: string): boolean {
  return roleAtLeast(role, EVENT_ROLES.get(type) ?? 'technician');
}

const IMAGE_MAGIC: Array<{ type: string; test: (b: Buffer) => boolean }> = [
  { type: 'image/jpeg', test: (b) => b.length > 3 && b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff },
  { type: 'image/png', test: (b) => b.length > 8 && b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) },
  { type: 'image/webp', test: (b) => b.length > 12 && b.toString('latin1', 0, 4) === 'RIFF' && b.toString('latin1', 8, 12) === 'WEBP' },
];

/** The image type by content (never by the declared type or file name), or undefined. */
export function sniffImage(b: Buffer): string | undefined {
  return IMAGE_MAGIC.find((m) => m.test(b))?.type;
}

function has(d: ConsoleDeps, name: string): boolean {
  return d.ctx.commands.list().some((c) => c.name === name);
}

export type { PageState };

/** What the pages need to know of the running gateway. */
export interface PageView {
  commands: Array<{ name: string; capability: string | undefined; pages: readonly string[] | undefined }>;
  hasService(name: string): boolean;
  health: Record<string, ModuleHealth>;
}

/**
 * Every console page of every capability, in list order: configured when its service is
 * there (or, if it says so, when any of its commands is), and the commands it shows. A
 * command shows only on a page of the capability it was registered by (CommandDef.capability):
 * one registered without a capability shows on none.
 */
export function consolePages(capabilities: readonly CapabilityDescriptor[], view: PageView): Capabilities {
  const out: Capabilities = {};
  for (const cap of capabilities) {
    (cap.pages ?? []).forEach((page, i) => {
      const commands = view.commands
        .filter((c) => c.capability === cap.name && (c.pages ? c.pages.includes(page.id) : i === 0))
        .map((c) => c.name)
        .sort();
      const configured = view.hasService(page.service) || (page.configuredByCommands === true && commands.length > 0);
      const mod = page.health ?? cap.name;
      const h = view.health[mod];
      const reason = h && !h.ok ? `${page.what}: ${h.message ?? 'not healthy'}` : `${page.what} is not configured on this gateway`;
      out[page.id] = { configured, ...(configured ? {} : { reason }), commands };
    });
  }
  return out;
}

/** The pages of this gateway's capabilities (GET /api/capabilities). */
export function capabilities(d: ConsoleDeps, list: readonly CapabilityDescriptor[] = CAPABILITIES): Capabilities {
  const reg = d.ctx.commands;
  return consolePages(list, {
    commands: reg.list().map((c) => ({ name: c.name, capability: reg.capabilityOf(c.name), pages: reg.pagesOf(c.name) })),
    hasService: (name) => d.ctx.services.has(name),
    health: d.ctx.healthReport(),
  });
}

export function capabilityRoutes(app: FastifyInstance, d: ConsoleDeps): void {
  // Services is typed by declaration merging: the api modules imported (type-only) above
  // and below add 'meters', 'vision', 'faces' and 'access' to it.
  const services = d.ctx.services;
  const meters = (): MetersApi | undefined => services.get('meters');
  const vision = (): VisionApi | undefined => services.get('vision');

  app.get('/api/capabilities', { config: { role: 'viewer' } }, async () => capabilities(d));

  // Enrol one photo for a stored person. person.upsert replaces the whole person: the
  // stored record is sent back with the photo added, so nothing else about them changes.
  const enrolPhoto = async (req: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply, photo: Buffer) => {
    if (!has(d, 'person.upsert') || !has(d, 'person.list')) return sendError(reply, 503, 'not_configured', 'door access (people) is not configured on this gateway');
    if (!services.get('faces')) return sendError(reply, 503, 'not_configured', 'face access is not configured on this gateway');
    const found = await runCommand(d, req, 'person.list', { query: req.params.id, limit: 1000 }, { audit: false });
    const person = found.ok ? (found.result as { people: Array<Record<string, unknown>> }).people.find((p) => p.id === req.params.id) : undefined;
    if (!person) return sendError(reply, 404, 'unknown_person', `no person "${req.params.id}"`);
    const args: Record<string, unknown> = {};
    for (const k of ['id', 'name', 'kind', 'validFrom', 'validUntil', 'doorGroups', 'schedule', 'enabled', 'note']) if (person[k] !== undefined) args[k] = person[k];
    args.faces = { photos: [photo.toString('base64')] };
    return runAs(d, req, reply, 'person.upsert', args);
  };

  // Face enrolment from an uploaded photo: the body is the image itself. The content is
  // checked by its magic bytes (a renamed PDF is refused here, before any decoder runs).
  app.post<{ Params: { id: string } }>('/api/people/:id/face', { config: { role: 'technician', maxConcurrent: 2 } }, async (req, reply) => {
    const body = req.body;
    if (!Buffer.isBuffer(body) || body.length === 0) return sendError(reply, 415, 'not_an_image', 'send the photo itself as the request body (image/jpeg or image/png)');
    if (!sniffImage(body)) return sendError(reply, 415, 'not_an_image', 'the file is not a JPEG, PNG or WebP image');
    return enrolPhoto(req, reply, body);
  });

  // Face enrolment from the door camera: the person stands in front of it, the newest frame is used.
  app.post<{ Params: { id: string } }>('/api/people/:id/face/capture', { config: { role: 'technician', maxConcurrent: 2 } }, async (req, reply) => {
    const v = vision();
    if (!v) return sendError(reply, 503, 'not_configured', 'face access (camera) is not configured on this gateway');
    const s = await v.snapshot();
    if (!s) return sendError(reply, 503, 'no_frame', 'no camera frame yet');
    return enrolPhoto(req, reply, s.jpeg);
  });

  // Every bus and every meter with its latest values, counters and last error.
  app.get('/api/meters', { config: { role: 'viewer' } }, async (): Promise<MetersView> => {
    const m = meters();
    if (!m) return { configured: false, reason: capabilities(d).meters?.reason, buses: [], devices: [] };
    const devices = m
      .devices()
      .map((dev) => m.status(dev.id))
      .filter((s): s is MeterDeviceStatus => s !== undefined);
    return { configured: true, buses: m.buses(), devices };
  });

  // Poll tester: one request on a bus, every frame both ways in hex. The meters module
  // offers it as a service call only (not a platform command), so it is audited here.
  app.post<{ Body: Static<typeof RawPoll> }>('/api/meters/rawpoll', { config: { role: 'technician' }, schema: { body: RawPoll } }, async (req, reply) => {
    const m = meters();
    if (!m) return sendError(reply, 503, 'not_configured', 'meter reading is not configured on this gateway');
    const { bus, device, point, requestHex, timeoutMs } = req.body;
    if ((device === undefined) === (requestHex === undefined)) return sendError(reply, 400, 'bad_args', 'give either device (and optionally point) or requestHex');
    if (!m.buses().some((b) => b.id === bus))
      return sendError(
        reply,
        404,
        'unknown_bus',
        `no bus "${bus}" (buses: ${m
          .buses()
          .map((b) => b.id)
          .join(', ')})`,
      );
    const hex = requestHex?.replace(/\s+/g, '');
    if (hex !== undefined && hex.length % 2 !== 0) return sendError(reply, 400, 'bad_args', 'requestHex must have an even number of hex digits');
    try {
      const result = await m.rawPoll(bus, hex !== undefined ? { requestHex: hex, ...(timeoutMs ? { timeoutMs } : {}) } : { device: device!, ...(point ? { point } : {}) });
      await d.audit(req, 'console.meters.rawpoll', { bus, ...(device ? { device } : {}), ...(hex ? { requestHex: hex } : {}), ok: !result.error });
      return result satisfies RawPollAnswer;
    } catch (err) {
      await d.audit(req, 'console.meters.rawpoll', { bus, ok: false, error: (err as Error).message });
      return sendError(reply, 409, 'poll_failed', (err as Error).message);
    }
  });

  app.get('/api/camera', { config: { role: 'technician' } }, async (): Promise<CameraView> => {
    const v = vision();
    return v ? { configured: true, status: v.status() } : { configured: false, reason: capabilities(d).camera?.reason };
  });

  // The newest camera frame with the latest detections (JPEG as base64), and who was
  // recognised: the face module's latest decision when it belongs to the analysed frame
  // (within RECOGNISED_MS of it) labels the largest face — the one a decision is made on.
  app.get('/api/camera/snapshot', { config: { role: 'technician', maxConcurrent: 4 } }, async (_req, reply) => {
    const v = vision();
    if (!v) return sendError(reply, 503, 'not_configured', 'face access (camera) is not configured on this gateway');
    const s = await v.snapshot();
    if (!s) return sendError(reply, 503, 'no_frame', `no camera frame yet${v.status().camera?.reason ? `: ${v.status().camera!.reason}` : ''}`);
    const faces: SnapshotFace[] = s.faces.map((f) => ({ box: { x: f.box[0], y: f.box[1], w: f.box[2], h: f.box[3] }, score: f.score }));
    const recognised = recognisedAt(d, s.facesAt ?? s.at);
    if (recognised && faces.length) {
      const largest = faces.reduce((a, b) => (a.box.w >= b.box.w ? a : b));
      Object.assign(largest, recognised);
    }
    return { mime: 'image/jpeg', image: s.jpeg.toString('base64'), width: s.width, height: s.height, at: s.at, faces, ...(s.facesAt ? { facesAt: s.facesAt } : {}) } satisfies CameraSnapshot;
  });

  // An elevator car camera's newest frame (the elevator page's camera view): technicians
  // only, like the door camera (it shows residents), a JPEG capped at
  // elevator.snapshot.maxBytes, never stored by the browser or a proxy (no-store).
  const elevator = (): ElevatorApi | undefined => services.get('elevator');
  app.get<{ Params: { car: string } }>('/api/elevator/cars/:car/snapshot', { config: { role: 'technician', maxConcurrent: 2 } }, async (req, reply) => {
    reply.header('cache-control', 'no-store');
    const e = elevator();
    if (!e) return sendError(reply, 503, 'not_configured', 'the elevator e-bike blocker is not configured on this gateway');
    let s: ElevatorSnapshot | undefined;
    try {
      s = await e.snapshot(req.params.car);
    } catch (err) {
      if (err instanceof CommandError) return sendError(reply, 404, err.code, err.message);
      throw err;
    }
    if (!s) return sendError(reply, 503, 'no_frame', `no camera frame of car "${req.params.car}" yet`);
    return s satisfies ElevatorSnapshot;
  });
}

const RECOGNISED_MS = 3000;

/** The latest face decision near `at`: person id and name (from the door access), granted, reason. */
function recognisedAt(d: ConsoleDeps, at: number): Pick<SnapshotFace, 'personId' | 'name' | 'granted' | 'reason'> | undefined {
  const [e] = d.live.recent((x) => x.type === 'vision.decision' && Math.abs(((x.data as { at?: number } | null)?.at ?? x.at) - at) <= RECOGNISED_MS, 1);
  if (!e) return undefined;
  const data = e.data as { personId?: string; granted?: boolean; reason?: string };
  const access = d.ctx.services.get('access');
  const name = data.personId ? access?.person(data.personId)?.name : undefined;
  return { ...(data.personId ? { personId: data.personId } : {}), ...(name ? { name } : {}), granted: data.granted === true, ...(data.reason ? { reason: data.reason } : {}) };
}
