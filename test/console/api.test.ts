// The console's JSON API against a real gateway: every route's authentication and
// authorisation (anonymous, viewer, technician, admin), CSRF, first-run setup token,
// login lockout, session expiry, bad uploads, and the audit trail in the outbox.
import t from 'tap';
import { startConsoleGateway, withAccounts, Client, OffsetClock, baseConfig, PASSWORDS, type ConsoleGateway } from './helpers.js';
import { tempDir } from '../helpers/gateway.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

type Role = 'anon' | 'viewer' | 'tech' | 'admin';
const RANK: Record<Role, number> = { anon: -1, viewer: 0, tech: 1, admin: 2 };

// Every API route with the least role that may use it and a harmless request.
const ROUTES: Array<{ method: string; path: string; need: Exclude<Role, 'anon'>; body?: unknown; type?: string }> = [
  { method: 'GET', path: '/api/dashboard', need: 'viewer' },
  { method: 'GET', path: '/api/capabilities', need: 'viewer' },
  { method: 'GET', path: '/api/events?limit=5', need: 'viewer' },
  { method: 'GET', path: '/api/system', need: 'viewer' },
  { method: 'GET', path: '/api/commands', need: 'viewer' },
  { method: 'GET', path: '/api/meters', need: 'viewer' },
  { method: 'POST', path: '/api/commands/gateway.ping', need: 'viewer', body: { echo: 'x' } },
  { method: 'POST', path: '/api/password', need: 'viewer', body: { current: 'wrong-password', password: 'whatever-long-1' } },
  { method: 'GET', path: '/api/logs?level=warn', need: 'tech' },
  { method: 'GET', path: '/api/config', need: 'tech' },
  { method: 'GET', path: '/api/config/schema', need: 'tech' },
  { method: 'GET', path: '/api/config/download', need: 'tech' },
  { method: 'POST', path: '/api/config/validate', need: 'tech', body: { changes: [{ path: ['status', 'intervalS'], value: 30 }] } },
  { method: 'POST', path: '/api/config/upload', need: 'tech', body: 'site: {id: x}\n', type: 'text/yaml' },
  { method: 'POST', path: '/api/config/apply', need: 'tech', body: { changes: [], baseRevision: 'stale' } },
  { method: 'POST', path: '/api/people/p1/face', need: 'tech', body: Buffer.from('not an image'), type: 'image/jpeg' },
  { method: 'GET', path: '/api/camera/snapshot', need: 'tech' },
  { method: 'GET', path: '/api/camera', need: 'tech' },
  { method: 'GET', path: '/api/elevator/cars/A/snapshot', need: 'tech' },
  { method: 'POST', path: '/api/people/p1/face/capture', need: 'tech' },
  { method: 'POST', path: '/api/meters/rawpoll', need: 'tech', body: { bus: 'none', requestHex: '0103' } },
  { method: 'GET', path: '/api/users', need: 'admin' },
  { method: 'POST', path: '/api/users', need: 'admin', body: { user: 'x', role: 'viewer', password: 'short' } },
  { method: 'PATCH', path: '/api/users/nobody', need: 'admin', body: { unlock: true } },
  { method: 'DELETE', path: '/api/users/nobody', need: 'admin' },
  { method: 'POST', path: '/api/commands/config.get', need: 'viewer', body: {} },
];

let g: ConsoleGateway;
const clock = new OffsetClock();
t.before(async () => {
  const dir = tempDir('ee-console-api-');
  g = await startConsoleGateway({ dir, config: baseConfig(dir, { console: { host: '127.0.0.1', port: 0, lockoutAttempts: 3, lockoutMin: 1, maxUploadKB: 64, sessionTtlMin: 5 } }), clock });
});
t.teardown(() => g.stop());

t.test('first run: setup needs the token from the log; then it is gone', async (t) => {
  const anon = new Client(g.base);
  const s = await anon.get('/api/session');
  t.equal(s.status, 200);
  t.equal(s.body.setupNeeded, true);
  t.notOk(s.body.user);
  const token = g.setupToken();
  t.match(g.logLines.join('\n'), /"level":"warn".*console setup token/, 'token printed at warn level');
  const bad = await anon.post('/api/setup', { token: 'guess', user: 'admin', password: PASSWORDS.admin });
  t.equal(bad.status, 403);
  t.equal(bad.body.error.code, 'bad_setup_token');
  const weak = await anon.post('/api/setup', { token, user: 'admin', password: 'short' });
  t.equal(weak.status, 400);
  t.equal(weak.body.error.code, 'weak_password');
  t.equal((await anon.get('/api/dashboard')).status, 401, 'still anonymous');
  // Every account below is created by the admin made with the token.
  const accounts = await withAccounts(g);
  t.equal((await accounts.admin.get('/api/session')).body.role, 'admin');
  const again = await new Client(g.base).post('/api/setup', { token, user: 'eve', password: 'another-long-pass' });
  t.equal(again.status, 409, 'setup cannot run twice');
  t.equal(again.body.error.code, 'already_set_up');
  Object.assign(clients, accounts);
});

const clients = {} as Record<Role, Client>;

t.test('every route: anonymous 401, too low a role 403, enough passes the gate', async (t) => {
  for (const r of ROUTES) {
    for (const who of ['anon', 'viewer', 'tech', 'admin'] as Role[]) {
      const c = clients[who];
      const res = await c.req(r.method, r.path, r.body, r.type ? { 'content-type': r.type } : {});
      const code = res.body?.error?.code;
      const label = `${r.method} ${r.path} as ${who} → ${res.status} ${code ?? ''}`;
      if (who === 'anon') t.equal(res.status, 401, label);
      else if (RANK[who] < RANK[r.need]) t.ok(res.status === 403 && code === 'forbidden', label);
      else t.ok(res.status !== 401 && code !== 'forbidden' && code !== 'csrf' && (res.status < 500 || code === 'not_configured'), label);
    }
  }
});

t.test('commands: each command has its own role', async (t) => {
  const ping = await clients.viewer.post('/api/commands/gateway.ping', { echo: 'hi' });
  t.equal(ping.status, 200);
  t.equal(ping.body.result.echo, 'hi');
  const unknown = await clients.tech.post('/api/commands/no.such', {});
  t.equal(unknown.status, 404);
  t.equal(unknown.body.error.code, 'unknown_command');
  const badArgs = await clients.viewer.post('/api/commands/gateway.ping', { nope: 1 });
  t.equal(badArgs.status, 400);
  t.equal(badArgs.body.error.code, 'bad_args');
  const list = await clients.viewer.get('/api/commands');
  t.ok(list.body.commands.find((c: { name: string; allowed: boolean }) => c.name === 'gateway.info' && c.allowed));
});

t.test('system: the model files come from models/manifest.json at the app root, each with its state', async (t) => {
  const manifest = JSON.parse(readFileSync(join(process.cwd(), 'models', 'manifest.json'), 'utf8')) as { models: Record<string, { file: string }> };
  const sys = await clients.viewer.get('/api/system');
  t.equal(sys.status, 200);
  t.equal(sys.body.models.dir, join(process.cwd(), 'models'), 'the models directory is found');
  t.same(
    sys.body.models.models.map((m: { file: string }) => m.file).sort(),
    Object.values(manifest.models)
      .map((m) => m.file)
      .sort(),
    'every manifest entry listed',
  );
  for (const m of sys.body.models.models as Array<{ file: string; present: boolean }>) t.equal(m.present, existsSync(join(process.cwd(), 'models', m.file)), `${m.file}: present = ${m.present}`);
});

t.test('CSRF: missing, forged, or from another origin is refused; nothing happens', async (t) => {
  const admin = clients.admin;
  const missing = await admin.req('POST', '/api/users', { user: 'csrf1', role: 'viewer', password: 'long-enough-pass' }, { 'x-csrf-token': '' });
  t.equal(missing.status, 403);
  t.equal(missing.body.error.code, 'csrf');
  const forged = await admin.req('POST', '/api/users', { user: 'csrf1', role: 'viewer', password: 'long-enough-pass' }, { 'x-csrf-token': 'A'.repeat(admin.csrf.length) });
  t.equal(forged.status, 403);
  t.equal(forged.body.error.code, 'csrf');
  const other = await admin.req('POST', '/api/users', { user: 'csrf1', role: 'viewer', password: 'long-enough-pass' }, { origin: 'http://evil.example' });
  t.equal(other.status, 403);
  t.equal(other.body.error.code, 'csrf');
  const users = await admin.get('/api/users');
  t.notOk(
    users.body.users.some((u: { name: string }) => u.name === 'csrf1'),
    'no account was created',
  );
  // Another user's CSRF token does not work with my session.
  const swapped = await clients.tech.req('POST', '/api/commands/gateway.ping', {}, { 'x-csrf-token': clients.viewer.csrf });
  t.equal(swapped.status, 403);
});

t.test('cookies: HttpOnly, SameSite=Strict; logout ends the session', async (t) => {
  const c = new Client(g.base);
  const res = await fetch(`${g.base}/api/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ user: 'viewer', password: PASSWORDS.viewer }) });
  const cookie = res.headers.getSetCookie().join(';');
  t.match(cookie, /HttpOnly/i);
  t.match(cookie, /SameSite=Strict/i);
  t.notMatch(cookie, /Secure/, 'plain HTTP: no Secure flag');
  t.match(res.headers.get('content-security-policy') ?? '', /default-src 'self'/);
  await c.login('viewer', PASSWORDS.viewer);
  const old = c.cookie;
  t.equal((await c.post('/api/logout')).status, 200);
  c.cookie = old;
  t.equal((await c.get('/api/dashboard')).status, 401, 'the old cookie is dead');
});

t.test('bad uploads: too large, not an image, not text', async (t) => {
  const big = Buffer.alloc(70 * 1024, 0xff);
  big[0] = 0xff;
  big[1] = 0xd8;
  big[2] = 0xff;
  const r1 = await clients.tech.req('POST', '/api/people/p1/face', big, { 'content-type': 'image/jpeg' });
  t.equal(r1.status, 413);
  t.equal(r1.body.error.code, 'too_large');
  const pdf = Buffer.from('%PDF-1.4\n...');
  const r2 = await clients.tech.req('POST', '/api/people/p1/face', pdf, { 'content-type': 'image/jpeg' });
  t.equal(r2.status, 415);
  t.equal(r2.body.error.code, 'not_an_image');
  const r3 = await clients.tech.req('POST', '/api/config/upload', Buffer.from([0xc3, 0x28, 0xff]), { 'content-type': 'text/yaml' });
  t.equal(r3.status, 400);
  t.equal(r3.body.error.code, 'not_text');
  const r4 = await clients.tech.req('POST', '/api/config/validate', '{not json', { 'content-type': 'application/json' });
  t.equal(r4.status, 400);
  const r5 = await clients.tech.req('POST', '/api/config/validate', 'x', { 'content-type': 'application/x-evil' });
  t.equal(r5.status, 415);
  t.ok(g.gateway.isStarted(), 'still running');
});

t.test('accounts: last admin protected; role change ends sessions', async (t) => {
  const del = await clients.admin.req('DELETE', '/api/users/admin');
  t.equal(del.status, 409);
  t.equal(del.body.error.code, 'last_admin');
  const c = new Client(g.base);
  t.equal((await c.login('viewer', PASSWORDS.viewer)).status, 200);
  await clients.admin.req('PATCH', '/api/users/viewer', { role: 'technician' });
  t.equal((await c.get('/api/dashboard')).status, 401, 'session of a changed account ended');
  await clients.admin.req('PATCH', '/api/users/viewer', { role: 'viewer' });
  t.equal((await clients.viewer.login('viewer', PASSWORDS.viewer)).status, 200);
});

t.test('live stream: server-sent events; audit records only for technicians and up', async (t) => {
  const ctl = new AbortController();
  const res = await fetch(`${g.base}/api/live`, { headers: { cookie: clients.tech.cookie }, signal: ctl.signal });
  t.equal(res.status, 200);
  t.match(res.headers.get('content-type'), /text\/event-stream/);
  const reader = res.body!.getReader();
  let text = '';
  const end = Date.now() + 5000;
  while (!text.includes('event: status') && Date.now() < end) text += new TextDecoder().decode((await reader.read()).value);
  t.match(text, /event: status\ndata: \{.*"outbox"/);
  await clients.viewer.post('/api/commands/gateway.ping', {});
  while (!text.includes('console.command') && Date.now() < end) text += new TextDecoder().decode((await reader.read()).value);
  t.match(text, /event: bus\n.*"type":"audit".*console\.command/);
  ctl.abort();
  const anon = await fetch(`${g.base}/api/live`);
  t.equal(anon.status, 401);
});

t.test('the page: first-render data inlined only for a live session, filtered by role, never cached', async (t) => {
  const inlined = (html: string) => {
    const m = /<script type="application\/json" id="ee-boot">([^<]*)<\/script>/.exec(html);
    return m ? JSON.parse(m[1]!) : undefined;
  };
  const anon = await clients.anon.get('/');
  t.equal(anon.status, 200);
  t.match(anon.headers.get('content-type'), /text\/html/);
  t.notMatch(anon.body, /ee-boot/, 'anonymous: the static page, no data');
  t.ok(anon.headers.get('etag'), 'the static page is cacheable');
  const forged = new Client(g.base);
  forged.cookie = 'ee_session=not-a-session';
  t.notMatch((await forged.get('/')).body, /ee-boot/, 'unknown cookie: no data');

  // Text that would end the element if it were not escaped, in an audit record a technician sees.
  const evil = '</script><script>alert(1)</script><!--';
  await clients.tech.post('/api/commands/gateway.ping', { echo: evil });
  const tech = await clients.tech.get('/');
  t.equal(tech.status, 200);
  t.equal(tech.headers.get('cache-control'), 'no-store', 'personal: not stored');
  t.notOk(tech.headers.get('etag'));
  t.match(tech.headers.get('content-security-policy') ?? '', /script-src 'self'/, 'CSP unchanged');
  t.equal(tech.body.split('</script>').length, 3, 'the data cannot end its element: only the real end tag (and the module script) are there');
  const data = inlined(tech.body);
  t.match(data.session, { user: 'tech', role: 'technician', csrf: clients.tech.csrf, setupNeeded: false }, 'the session, as GET /api/session');
  const api = (await clients.tech.get('/api/dashboard')).body;
  t.same(Object.keys(data.dashboard).sort(), Object.keys(api).sort(), 'the dashboard, as GET /api/dashboard');
  t.same(data.capabilities, (await clients.tech.get('/api/capabilities')).body, 'the capabilities, as GET /api/capabilities');
  t.ok(
    data.dashboard.events.some((e: { data: { args?: { echo?: string } } }) => e.data?.args?.echo === evil),
    'the escaped text comes back intact',
  );
  t.equal((await clients.anon.get('/pages/meters.js')).status, 200, 'other files are still static');

  const viewer = inlined((await clients.viewer.get('/')).body);
  t.equal(viewer.session.role, 'viewer');
  t.same(
    viewer.dashboard.events.filter((e: { type: string }) => ['audit', 'access.decision', 'vision.decision'].includes(e.type)),
    [],
    'viewers get no personal data inlined either',
  );
  t.equal(inlined((await clients.viewer.get('/index.html')).body)?.session.user, 'viewer', 'the page under its file name too');
  // The pages are #/fragments of the one page: a path that is not a route is not the page.
  const other = await clients.viewer.get('/doors');
  t.equal(other.status, 404, 'no fallback: /doors is not a route');
  t.notMatch(String(other.body?.error?.message ?? other.body), /ee-boot/);
});

// These two move the clock forward (never back: a lock or a session would come back to life).
t.test('lockout after repeated wrong passwords (that account from that address), even with the right one; ends after lockoutMin', async (t) => {
  const c = new Client(g.base);
  for (let i = 0; i < 2; i++) {
    const r = await c.login('tech', 'wrong-password');
    t.equal(r.status, 401);
    t.equal(r.body.error.code, 'bad_credentials');
  }
  const third = await c.login('tech', 'wrong-password');
  t.equal(third.status, 429, 'the third wrong password locks');
  t.equal(third.body.error.code, 'locked');
  t.ok(Number(third.headers.get('retry-after')) > 0);
  const right = await c.login('tech', PASSWORDS.tech);
  t.equal(right.status, 429, 'locked even with the right password');
  // Typos on one account lock that account from this address, not the address.
  const other = new Client(g.base);
  t.equal((await other.login('viewer', PASSWORDS.viewer)).status, 200, 'another account from the same address still logs in');
  clock.offsetMs += 61_000;
  const after = await c.login('tech', PASSWORDS.tech);
  t.equal(after.status, 200, 'lock over');
  // Guessing names from one address locks that address.
  const guesser = new Client(g.base);
  const results = [];
  for (const name of ['a1', 'a2', 'a3']) results.push((await guesser.login(name, 'x')).status);
  t.same(results, [401, 401, 429]);
  clock.offsetMs += 61_000; // let the address lock end for the tests after this one
});

t.test('sessions expire after the TTL without requests', async (t) => {
  const c = new Client(g.base);
  await c.login('viewer', PASSWORDS.viewer);
  t.equal((await c.get('/api/dashboard')).status, 200);
  clock.offsetMs += 6 * 60_000;
  const r = await c.get('/api/dashboard');
  t.equal(r.status, 401);
  t.equal(r.body.error.code, 'not_logged_in');
});

t.test('audit: logins and actions go to the outbox stream "audit"', async (t) => {
  await clients.admin.login('admin', PASSWORDS.admin);
  await clients.viewer.login('viewer', PASSWORDS.viewer);
  const ev = await clients.admin.get('/api/events?type=audit&limit=300');
  const actions = ev.body.events.map((e: { data: { action: string } }) => e.data.action);
  for (const a of ['console.setup', 'console.login', 'console.login.failed', 'console.login.locked', 'console.user.created', 'console.command', 'console.logout']) t.ok(actions.includes(a), a);
  const seenByViewer = await clients.viewer.get('/api/events?type=audit');
  t.same(seenByViewer.body.events, [], 'a viewer does not see who did what');
  const stats = g.gateway.outbox.stats();
  t.ok(stats.streams.audit.count >= actions.length, `audit records buffered: ${stats.streams.audit.count}`);
});

t.test('password hashing: one at a time, a flood is refused with 503, old parameters upgraded', async (t) => {
  const { hashPassword, verifyPassword, needsRehash } = await import('../../edge/console/accounts.js');
  const h = await hashPassword('some long password');
  t.match(h, /^scrypt\$32768\$8\$1\$/);
  t.notOk(needsRehash(h));
  t.ok(await verifyPassword('some long password', h));
  t.notOk(await verifyPassword('some long passworD', h));
  t.ok(needsRehash('scrypt$16384$8$1$x$y'));
  // Twelve at once: eight wait their turn, the rest are refused (never an unbounded queue).
  const all = await Promise.allSettled(Array.from({ length: 12 }, () => hashPassword('x'.repeat(12))));
  const refused = all.filter((r) => r.status === 'rejected');
  t.equal(refused.length, 4);
  t.match(String((refused[0] as PromiseRejectedResult).reason), /too many logins at once/);
});
