// Access cannot be gained by spelling a path differently. For every route the running
// console registered (read from the server itself, so a route added later is covered
// without touching this file), every method, and every spelling of its path
// (spellings.ts: percent-encoded in each position, double-encoded, doubled slashes,
// backslashes, trailing dots/slashes/parameters, mixed case, dot segments, look-alike
// letters, absolute-form targets), sent with a real HTTP client that does not normalise
// anything:
//   - without a session: 401, 403 or 404 (400 for a target the router cannot decode),
//     never a success, a redirect or a server error;
//   - with a viewer's session, on routes that need more: never a success either;
//   - positive control: with the admin's session, the percent-encoded spellings of the
//     GET routes do reach their handlers (the router decodes them), so the refusals above
//     are the access rule at work, not a path that simply did not match;
//   - nothing happened: no account made, no restart, no uncaught exception.
import t from 'tap';
import { startConsoleGateway, withAccounts, baseConfig, rawRequest, type ConsoleGateway, type RawRes } from './helpers.js';
import type { Client } from './helpers.js';
import { tempDir } from '../helpers/gateway.js';
import { spellings } from './spellings.js';
import type { RouteRule } from '../../edge/console/server.js';

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS', 'TRACE'];
// What an attacker would send: an admin account for themselves.
const BODY = JSON.stringify({ user: 'intruder', role: 'admin', password: 'Takeover-2026!' });

const uncaught: unknown[] = [];
const onUncaught = (err: unknown) => void uncaught.push(err);
process.on('uncaughtException', onUncaught);
process.on('unhandledRejection', onUncaught);

let g: ConsoleGateway;
let clients: { admin: Client; tech: Client; viewer: Client };
let routes: RouteRule[];
t.before(async () => {
  const dir = tempDir('ee-console-bypass-');
  g = await startConsoleGateway({ dir, config: baseConfig(dir) });
  clients = await withAccounts(g);
  routes = g.routes();
});
t.teardown(async () => {
  await g?.stop();
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onUncaught);
});

/** A concrete path for a route's URL pattern (":name" → a value). */
const concrete = (url: string) => url.replace(/:[A-Za-z]+/g, 'x1');

/** Run requests with a small concurrency (the box is shared). */
async function pool<T>(items: T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  let i = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (i < items.length) await fn(items[i++]!);
    }),
  );
}

const send = (method: string, target: string, cookie?: string, csrf?: string): Promise<RawRes> => {
  const opts = {
    headers: { ...(cookie ? { cookie } : {}), ...(csrf ? { 'x-csrf-token': csrf } : {}), ...(method === 'GET' || method === 'HEAD' ? {} : { 'content-type': 'application/json' }) },
    ...(method === 'GET' || method === 'HEAD' ? {} : { body: BODY }),
  };
  // A pooled connection the server has just closed: once more on a fresh one.
  return rawRequest(g.base, method, target, opts)
    .catch(() => rawRequest(g.base, method, target, { ...opts, fresh: true }))
    .catch((err: Error) => ({ status: -1, headers: {}, body: err.message }));
};

/** The server refused the request target itself: Fastify's bad-URL answer or Node's HTTP parser. */
const badTarget = (r: RawRes) => r.status === 400 && /FST_ERR_BAD_URL|"message":"Client Error"|^$/.test(r.body);

t.test('the route table: every route declares a role, the API ones need a session', async (t) => {
  t.ok(routes.length >= 40, `${routes.length} routes registered`);
  for (const r of routes) t.ok(['public', 'viewer', 'technician', 'admin'].includes(r.role), `${r.method} ${r.url}: ${r.role}`);
  const publicApi = routes.filter((r) => r.role === 'public' && r.url.startsWith('/api/')).map((r) => `${r.method} ${r.url}`);
  t.same(publicApi.sort(), ['GET /api/session', 'HEAD /api/session', 'POST /api/login', 'POST /api/setup'].sort(), 'only session, login and setup are public in the API');
  t.ok(
    routes.some((r) => r.method === 'HEAD'),
    "HEAD routes are in the table with their GET route's role",
  );
  t.notOk(
    routes.some((r) => r.url.includes('*')),
    'no wildcard route',
  );
});

t.test('without a session: every route, every method, every spelling → 401/403/404, never a success', async (t) => {
  const urls = [...new Set(routes.map((r) => r.url))];
  const counts = { requests: 0, spellings: 0, byStatus: {} as Record<string, number> };
  const bad: string[] = [];
  const jobs: Array<{ url: string; method: string; kind: string; target: string; isPublic: boolean }> = [];
  for (const url of urls) {
    const rules = routes.filter((r) => r.url === url);
    const sp = spellings(concrete(url), g.base);
    counts.spellings += sp.length;
    for (const s of sp)
      for (const method of METHODS) {
        const rule = rules.find((r) => r.method === method);
        // A public route as written answers (that is its job); any other spelling, or a
        // method it does not have, must not reach anything.
        jobs.push({ url, method, kind: s.kind, target: s.target, isPublic: rule?.role === 'public' });
      }
  }
  await pool(jobs, 6, async (j) => {
    const r = await send(j.method, j.target);
    counts.requests++;
    counts.byStatus[r.status] = (counts.byStatus[r.status] ?? 0) + 1;
    const label = `${j.method} ${j.target} (${j.url}, ${j.kind}) → ${r.status}`;
    if (r.status === -1 || r.status >= 500) return void bad.push(`${label}: ${r.body.slice(0, 200)}`);
    if (j.isPublic) return;
    const refusal = r.status === 401 || r.status === 403 || r.status === 404 || badTarget(r);
    if (!refusal) bad.push(`${label}: ${r.body.slice(0, 200)}`);
    else if (r.status !== 400 && j.method !== 'HEAD' && !/"error":\{"code":"(not_logged_in|not_found|forbidden|csrf)"/.test(r.body)) bad.push(`${label}: not the uniform error body: ${r.body.slice(0, 200)}`);
  });
  t.same(bad, [], 'no spelling of any route got anything but a refusal');
  t.comment(`${urls.length} paths × ${(counts.spellings / urls.length) | 0} spellings (avg) × ${METHODS.length} methods = ${counts.requests} requests; by status: ${JSON.stringify(counts.byStatus)}`);
  t.ok(counts.requests > 10_000, `${counts.requests} requests sent`);
});

t.test('positive control: the router decodes percent-escapes, so those spellings reach the route (and were refused above by its rule)', async (t) => {
  const gets = routes.filter((r) => r.method === 'GET' && r.role !== 'public' && r.url !== '/api/live');
  let reached = 0;
  for (const r of gets) {
    const path = concrete(r.url);
    const encoded = path.replace('a', '%61');
    const res = await send('GET', encoded, clients.admin.cookie);
    // Reached the handler: anything but the router's 404 and the access refusals.
    const viaRoute = !(res.status === 404 && /"code":"not_found"/.test(res.body)) && res.status !== 401 && res.status !== 403;
    t.ok(viaRoute, `GET ${encoded} with the admin's session reaches ${r.url} (${res.status})`);
    if (viaRoute) reached++;
    const abs = await send('GET', g.base + path, clients.admin.cookie);
    t.not(abs.status, 401, `absolute form ${g.base + path} reaches ${r.url} with a session (${abs.status})`);
  }
  t.ok(reached === gets.length && reached >= 10, `${reached} of ${gets.length} API GET routes reached through a percent-encoded spelling`);
  const users = await send('GET', '/%61pi/users', clients.admin.cookie);
  t.match(JSON.parse(users.body), { users: [{ name: 'admin' }] }, "the issue's spelling (/%61pi/users) is the users route");
});

t.test("with a viewer's session: no spelling of a technician or admin route succeeds", async (t) => {
  const higher = routes.filter((r) => r.role === 'technician' || r.role === 'admin');
  const bad: string[] = [];
  let n = 0;
  const jobs = higher.flatMap((r) => spellings(concrete(r.url), g.base).map((s) => ({ r, s })));
  await pool(jobs, 6, async ({ r, s }) => {
    const res = await send(r.method, s.target, clients.viewer.cookie, clients.viewer.csrf);
    n++;
    if (res.status === -1 || (res.status >= 200 && res.status < 400) || res.status >= 500) bad.push(`${r.method} ${s.target} (${s.kind}) as viewer → ${res.status}: ${res.body.slice(0, 200)}`);
  });
  t.same(bad, [], `${n} requests, none succeeded`);
});

t.test('nothing happened: no account, no restart, the gateway runs, no uncaught exception', async (t) => {
  const users = await clients.admin.get('/api/users');
  t.same(users.body.users.map((u: { name: string }) => u.name).sort(), ['admin', 'tech', 'viewer'], 'no account was created');
  t.same(g.restarts, [], 'no restart was requested');
  t.ok(g.gateway.isStarted(), 'the gateway is running');
  t.same(uncaught, [], 'no uncaught exception or unhandled rejection');
  t.notMatch(g.logLines.join('\n'), /console request failed/, 'no request failed inside a handler');
});
