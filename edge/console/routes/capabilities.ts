// Routes that show the estate's capabilities (meters, doors, people, faces, camera).
// Each capability is optional: its module may not be configured or not be part of this
// build. The console looks for the module's service and commands at request time and
// answers `configured: false` with a reason when they are absent, so every page works on
// whatever box it runs on.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { sendError, type ConsoleDeps } from '../server.js';
import { runAs, runCommand } from './commands.js';
import type { MetersApi, MeterDeviceStatus } from '../../meters/api.js';
import type { VisionApi } from '../../vision/api.js';

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

/** Bus events forwarded live to the pages (names of modules not in this build never fire). */
/** Live only, not kept for "last events": periodic telemetry. */
export const TRANSIENT_EVENTS = ['meter.reading'] as const;

export const LIVE_EVENTS = ['uplink.state', 'outbox.evicted', 'gateway.ready', 'gateway.stopping', 'meter.reading', 'meter.device', 'door.state', 'door.alarm', 'door.pinWait', 'access.decision', 'vision.camera', 'vision.decision'] as const;

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

export function capabilities(d: ConsoleDeps): Record<string, { configured: boolean; reason?: string; commands: string[] }> {
  const names = d.ctx.commands.list().map((c) => c.name);
  const pick = (re: RegExp) => names.filter((n) => re.test(n)).sort();
  const health = d.ctx.healthReport();
  const reason = (mod: string, what: string) => (health[mod] && !health[mod]!.ok ? `${what}: ${health[mod]!.message ?? 'not healthy'}` : `${what} is not configured on this gateway`);
  const services = d.ctx.services as unknown as { get(name: string): unknown };
  const meters = services.get('meters') !== undefined;
  const doors = services.get('access') !== undefined;
  const faces = services.get('faces') !== undefined;
  const camera = services.get('vision') !== undefined;
  return {
    meters: { configured: meters, ...(meters ? {} : { reason: reason('meters', 'meter reading') }), commands: pick(/^(meter|meters|bus)\./) },
    doors: { configured: doors, ...(doors ? {} : { reason: reason('doors', 'door access') }), commands: pick(/^(door|doors|fire)\./) },
    people: { configured: doors || pick(/^person\./).length > 0, ...(doors ? {} : { reason: reason('doors', 'people (door access)') }), commands: pick(/^(person|people)\./) },
    faces: { configured: faces, ...(faces ? {} : { reason: reason('faces', 'face access') }), commands: pick(/^(face|faces|vision|camera)\./) },
    camera: { configured: camera, ...(camera ? {} : { reason: reason('vision', 'camera (face access)') }), commands: pick(/^(camera|vision)\./) },
  };
}

export function capabilityRoutes(app: FastifyInstance, d: ConsoleDeps): void {
  const services = d.ctx.services as unknown as { get(name: string): unknown };

  const meters = () => services.get('meters') as MetersApi | undefined;
  const vision = () => services.get('vision') as VisionApi | undefined;

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
  app.get('/api/meters', { config: { role: 'viewer' } }, async () => {
    const m = meters();
    if (!m) return { configured: false, reason: capabilities(d).meters.reason, buses: [], devices: [] };
    const devices = m.devices().map((dev) => m.status(dev.id)).filter((s): s is MeterDeviceStatus => s !== undefined);
    return { configured: true, buses: m.buses(), devices };
  });

  // Poll tester: one request on a bus, every frame both ways in hex. The meters module
  // offers it as a service call only (not a platform command), so it is audited here.
  app.post<{ Body: Static<typeof RawPoll> }>('/api/meters/rawpoll', { config: { role: 'technician' }, schema: { body: RawPoll } }, async (req, reply) => {
    const m = meters();
    if (!m) return sendError(reply, 503, 'not_configured', 'meter reading is not configured on this gateway');
    const { bus, device, point, requestHex, timeoutMs } = req.body;
    if ((device === undefined) === (requestHex === undefined)) return sendError(reply, 400, 'bad_args', 'give either device (and optionally point) or requestHex');
    if (!m.buses().some((b) => b.id === bus)) return sendError(reply, 404, 'unknown_bus', `no bus "${bus}" (buses: ${m.buses().map((b) => b.id).join(', ')})`);
    const hex = requestHex?.replace(/\s+/g, '');
    if (hex !== undefined && hex.length % 2 !== 0) return sendError(reply, 400, 'bad_args', 'requestHex must have an even number of hex digits');
    try {
      const result = await m.rawPoll(bus, hex !== undefined ? { requestHex: hex, ...(timeoutMs ? { timeoutMs } : {}) } : { device: device!, ...(point ? { point } : {}) });
      await d.audit(req, 'console.meters.rawpoll', { bus, ...(device ? { device } : {}), ...(hex ? { requestHex: hex } : {}), ok: !result.error });
      return result;
    } catch (err) {
      await d.audit(req, 'console.meters.rawpoll', { bus, ok: false, error: (err as Error).message });
      return sendError(reply, 409, 'poll_failed', (err as Error).message);
    }
  });

  app.get('/api/camera', { config: { role: 'technician' } }, async () => {
    const v = vision();
    return v ? { configured: true, status: v.status() } : { configured: false, reason: capabilities(d).camera.reason };
  });

  // The newest camera frame with the latest detections (JPEG as base64), and who was
  // recognised: the face module's latest decision when it belongs to the analysed frame
  // (within RECOGNISED_MS of it) labels the largest face — the one a decision is made on.
  app.get('/api/camera/snapshot', { config: { role: 'technician', maxConcurrent: 4 } }, async (_req, reply) => {
    const v = vision();
    if (!v) return sendError(reply, 503, 'not_configured', 'face access (camera) is not configured on this gateway');
    const s = await v.snapshot();
    if (!s) return sendError(reply, 503, 'no_frame', `no camera frame yet${v.status().camera?.reason ? `: ${v.status().camera!.reason}` : ''}`);
    const faces: Array<Record<string, unknown>> = s.faces.map((f) => ({ box: { x: f.box[0], y: f.box[1], w: f.box[2], h: f.box[3] }, score: f.score }));
    const recognised = recognisedAt(d, s.facesAt ?? s.at);
    if (recognised && faces.length) {
      const largest = faces.reduce((a, b) => ((a.box as { w: number }).w >= (b.box as { w: number }).w ? a : b));
      Object.assign(largest, recognised);
    }
    return { mime: 'image/jpeg', image: s.jpeg.toString('base64'), width: s.width, height: s.height, at: s.at, faces, ...(s.facesAt ? { facesAt: s.facesAt } : {}) };
  });
}

const RECOGNISED_MS = 3000;

/** The latest face decision near `at`: person id and name (from the door access), granted, reason. */
function recognisedAt(d: ConsoleDeps, at: number): Record<string, unknown> | undefined {
  const [e] = d.live.recent((x) => x.type === 'vision.decision' && Math.abs(((x.data as { at?: number } | null)?.at ?? x.at) - at) <= RECOGNISED_MS, 1);
  if (!e) return undefined;
  const data = e.data as { personId?: string; granted?: boolean; reason?: string };
  const access = (d.ctx.services as unknown as { get(name: string): { person(id: string): { name?: string } | undefined } | undefined }).get('access');
  const name = data.personId ? access?.person(data.personId)?.name : undefined;
  return { ...(data.personId ? { personId: data.personId } : {}), ...(name ? { name } : {}), granted: data.granted === true, ...(data.reason ? { reason: data.reason } : {}) };
}
