// The support bundle download (support.ts): technicians and admins; audited.
import type { FastifyInstance } from 'fastify';
import type { ConsoleDeps } from '../server.js';
import { supportBundle } from '../support.js';

export function supportRoutes(app: FastifyInstance, d: ConsoleDeps): void {
  app.get('/api/support/bundle', { config: { role: 'technician', maxConcurrent: 1 } }, async (req, reply) => {
    const b = await supportBundle(d, req.session!.user);
    await d.audit(req, 'console.support.bundle', { files: b.files, bytes: b.body.length });
    return reply.type('application/gzip').header('content-disposition', `attachment; filename="${b.name}"`).header('cache-control', 'no-store').send(b.body);
  });
}
