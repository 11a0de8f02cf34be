// Overload: 200 concurrent camera snapshots against the real face-access module (the
// shared video played by the real ffmpeg, JPEG encoding in the real imaging helper).
// Every answer is a snapshot (200) or 503 with Retry-After — never a 500 — and the
// service log says it once, not once per refused request, with no stack trace.
import t from 'tap';
import { Agent, request } from 'node:http';
import { startConsoleGateway, baseConfig, withAccounts, type ConsoleGateway } from './helpers.js';
import { tempDir } from '../helpers/gateway.js';
import { createDoorsModule } from '../../edge/doors/module.js';
import { createVisionModule } from '../../edge/vision/module.js';
import { VIDEO, modelsDir } from '../vision/helpers.js';

let g: ConsoleGateway;
t.before(async () => {
  const dir = tempDir('ee-console-overload-');
  g = await startConsoleGateway({
    dir,
    config: baseConfig(dir, {
      uplink: { enabled: false },
      doors: { gpio: { backend: 'simulated' }, groups: [{ id: 'residents', doors: ['gate'] }], doors: [{ id: 'gate', name: 'gate', lock: { pin: 17 }, unlockMs: 3000 }] },
      vision: { enabled: true, doorId: 'gate', modelsDir: modelsDir(), camera: { source: { kind: 'file', path: VIDEO() }, fps: 5 } },
    }),
    modules: [createDoorsModule, createVisionModule],
  });
});
t.teardown(() => g.stop());

t.test('200 concurrent snapshots: 200 or 503 with Retry-After, never 500; logged once', async (t) => {
  const { tech } = await withAccounts(g);
  // The camera's first frame.
  const end = Date.now() + 30_000;
  let first = 0;
  while (Date.now() < end && (first = (await tech.get('/api/camera/snapshot')).status) !== 200) await new Promise((r) => setTimeout(r, 200));
  t.equal(first, 200, 'a snapshot once the camera runs');
  const linesBefore = g.logLines.length;

  const u = new URL(g.base);
  const agent = new Agent({ keepAlive: true, maxSockets: 200 });
  const one = () =>
    new Promise<{ status: number; retryAfter: string | undefined; body: string }>((resolve, reject) => {
      const req = request({ host: u.hostname, port: Number(u.port), path: '/api/camera/snapshot', agent, headers: { cookie: tech.cookie } }, (res) => {
        let body = '';
        res
          .setEncoding('utf8')
          .on('data', (c: string) => (body += c))
          .on('end', () => resolve({ status: res.statusCode ?? 0, retryAfter: res.headers['retry-after'] as string | undefined, body }));
      });
      req.setTimeout(60_000, () => req.destroy(new Error('no answer in 60 s')));
      req.on('error', reject).end();
    });
  const results = await Promise.all(Array.from({ length: 200 }, one));
  agent.destroy();
  const by: Record<number, number> = {};
  for (const r of results) by[r.status] = (by[r.status] ?? 0) + 1;
  t.comment(`200 concurrent snapshots: ${JSON.stringify(by)}`);
  t.same(
    Object.keys(by).filter((s) => s !== '200' && s !== '503'),
    [],
    'only 200 and 503',
  );
  t.ok((by[200] ?? 0) >= 1, `${by[200] ?? 0} snapshots served`);
  t.ok((by[503] ?? 0) >= 1, `${by[503] ?? 0} refused as overload`);
  const refused = results.filter((r) => r.status === 503);
  t.ok(
    refused.every((r) => Number(r.retryAfter) > 0),
    'every 503 says when to retry',
  );
  t.ok(
    refused.every((r) => JSON.parse(r.body).error.code === 'busy'),
    'with the uniform error body',
  );
  const after = g.logLines.slice(linesBefore).join('\n');
  const overloadLines = g.logLines.slice(linesBefore).filter((l) => /overloaded/.test(l));
  t.ok(overloadLines.length <= 1, `${overloadLines.length} overload log line(s) for ${by[503] ?? 0} refusals`);
  t.notMatch(after, /console request failed|"stack"/, 'no failure, no stack trace in the log');
  t.ok(g.gateway.isStarted());
});
