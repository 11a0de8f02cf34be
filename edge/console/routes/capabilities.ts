// Routes that show the estate's capabilities (meters, doors, people, faces, camera).
// Each capability is optional: its module may not be configured or not be part of this
// build. The console looks for the module's service and commands at request time and
// answers `configured: false` with a reason when they are absent, so every page works on
// whatever box it runs on.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { sendError, type ConsoleDeps } from '../server.js';
import { runAs } from './commands.js';

/** Bus events forwarded live to the pages (names of modules not in this build never fire). */
export const LIVE_EVENTS = [
  'uplink.state',
  'outbox.evicted',
  'gateway.ready',
  'gateway.stopping',
  'meter.reading',
  'meter.state',
  'meter.online',
  'meter.offline',
  'door.state',
  'door.alarm',
  'door.access',
  'access.decision',
  'fire.state',
  'face.match',
  'face.detected',
] as const;

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
  const meters = services.get('meters') !== undefined || pick(/^meters?\./).length > 0;
  const doors = services.get('access') !== undefined;
  const faces = services.get('faces') !== undefined;
  const camera = faces && typeof (services.get('faces') as { snapshot?: unknown }).snapshot === 'function';
  return {
    meters: { configured: meters, ...(meters ? {} : { reason: reason('meters', 'meter reading') }), commands: pick(/^meters?\./) },
    doors: { configured: doors, ...(doors ? {} : { reason: reason('doors', 'door access') }), commands: pick(/^(door|doors|fire)\./) },
    people: { configured: doors || pick(/^person\./).length > 0, ...(doors ? {} : { reason: reason('doors', 'people (door access)') }), commands: pick(/^(person|people)\./) },
    faces: { configured: faces, ...(faces ? {} : { reason: reason('faces', 'face access') }), commands: pick(/^(face|faces|vision|camera)\./) },
    camera: { configured: camera, ...(camera ? {} : { reason: faces ? 'the face module offers no camera snapshot' : reason('faces', 'camera (face access)') }), commands: pick(/^camera\./) },
  };
}

export function capabilityRoutes(app: FastifyInstance, d: ConsoleDeps): void {
  const services = d.ctx.services as unknown as { get(name: string): unknown };

  app.get('/api/capabilities', { config: { role: 'viewer' } }, async () => capabilities(d));

  // Face enrolment from an uploaded photo: the body is the image itself. The content is
  // checked by its magic bytes (a renamed PDF is refused here, before any decoder runs).
  app.post<{ Params: { id: string } }>('/api/people/:id/face', { config: { role: 'technician' } }, async (req: FastifyRequest<{ Params: { id: string } }>, reply) => {
    const body = req.body;
    if (!Buffer.isBuffer(body) || body.length === 0) return sendError(reply, 415, 'not_an_image', 'send the photo itself as the request body (image/jpeg or image/png)');
    const type = sniffImage(body);
    if (!type) return sendError(reply, 415, 'not_an_image', 'the file is not a JPEG, PNG or WebP image');
    if (has(d, 'person.enrol')) return runAs(d, req, reply, 'person.enrol', { personId: req.params.id, photos: [body.toString('base64')] });
    const faces = services.get('faces') as import('../../vision/api.js').FacesApi | undefined;
    if (!faces) return sendError(reply, 503, 'not_configured', 'face access is not configured on this gateway');
    return sendError(reply, 503, 'not_configured', 'no enrolment command is registered');
  });

  app.get('/api/camera/snapshot', { config: { role: 'technician' } }, async (_req, reply) => {
    const faces = services.get('faces') as { snapshot?: () => Promise<unknown> } | undefined;
    if (!faces?.snapshot) return sendError(reply, 503, 'not_configured', faces ? 'the face module offers no camera snapshot' : 'face access (camera) is not configured on this gateway');
    return faces.snapshot();
  });
}
