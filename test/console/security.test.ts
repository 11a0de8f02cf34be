// The console's other security findings of issue 13, against a real gateway over HTTP:
//   - first-run setup: three concurrent requests with the one token make exactly one admin;
//   - lockout per account and address: typos on one account do not lock the other
//     accounts used from that phone; an admin's unlock also ends the per-address lock;
//     guessing across names from one address, or one account from many, still locks;
//   - the live stream: closed on logout, on role change, on account deletion and on
//     session expiry (with a final `end` event); per-user caps (a viewer with 20 streams
//     does not keep the admin out);
//   - audit records carry the real user;
//   - a restart requested from the console never throws into the process.
import t from 'tap';
import { startConsoleGateway, Client, OffsetClock, baseConfig, PASSWORDS, type ConsoleGateway } from './helpers.js';
import { tempDir } from '../helpers/gateway.js';

const uncaught: unknown[] = [];
const onUncaught = (err: unknown) => void uncaught.push(err);
process.on('uncaughtException', onUncaught);
process.on('unhandledRejection', onUncaught);

let g: ConsoleGateway;
const clock = new OffsetClock();
let c: { admin: Client; tech: Client; viewer: Client };
t.before(async () => {
  const dir = tempDir('ee-console-sec-');
  g = await startConsoleGateway({ dir, config: baseConfig(dir, { console: { host: '127.0.0.1', port: 0, lockoutAttempts: 3, lockoutMin: 1, sessionTtlMin: 5 } }), clock });
});
t.teardown(async () => {
  await g?.stop();
  process.off('uncaughtException', onUncaught);
  process.off('unhandledRejection', onUncaught);
});

t.test('setup: three concurrent requests with the one token make exactly one admin', async (t) => {
  const token = g.setupToken();
  const tries = ['first', 'second', 'third'].map((user) => new Client(g.base).post('/api/setup', { token, user, password: 'setup-race-password-1' }));
  const results = await Promise.all(tries);
  const statuses = results.map((r) => r.status).sort();
  t.same(statuses, [201, 409, 409], `one created, two refused: ${statuses.join(', ')}`);
  const winner = results.find((r) => r.status === 201)!;
  const admin = new Client(g.base);
  admin.cookie = '';
  const name = winner.body.user as string;
  t.equal((await admin.login(name, 'setup-race-password-1')).status, 200, `${name} can log in`);
  const users = await admin.get('/api/users');
  t.same(
    users.body.users.map((u: { name: string; role: string }) => `${u.name}:${u.role}`),
    [`${name}:admin`],
    'exactly one account, the admin',
  );
  for (const r of results.filter((x) => x.status === 409)) t.equal(r.body.error.code, 'already_set_up');
  // The remaining accounts for the tests below, made by that admin.
  for (const [user, role, password] of [
    ['tech', 'technician', PASSWORDS.tech],
    ['viewer', 'viewer', PASSWORDS.viewer],
    ['admin', 'admin', PASSWORDS.admin],
  ] as const)
    t.equal((await admin.post('/api/users', { user, role, password })).status, 201);
  const tech = new Client(g.base);
  await tech.login('tech', PASSWORDS.tech);
  const viewer = new Client(g.base);
  await viewer.login('viewer', PASSWORDS.viewer);
  const a2 = new Client(g.base);
  await a2.login('admin', PASSWORDS.admin);
  c = { admin: a2, tech, viewer };
});

t.test('setup: a wrong token, then the right one after a failed attempt still works only once', async (t) => {
  // Setup is over: the token is gone for good.
  const again = await new Client(g.base).post('/api/setup', { token: g.setupToken(), user: 'late', password: 'late-long-password-1' });
  t.equal(again.status, 409);
});

t.test('lockout: typos on one account lock it from this phone only; unlock ends it', async (t) => {
  const phone = new Client(g.base);
  for (let i = 0; i < 2; i++) t.equal((await phone.login('tech', 'typo-password')).status, 401);
  t.equal((await phone.login('tech', 'typo-password')).status, 429, 'third typo locks tech on this address');
  t.equal((await phone.login('tech', PASSWORDS.tech)).status, 429, 'locked even with the right password');
  t.equal((await new Client(g.base).login('viewer', PASSWORDS.viewer)).status, 200, 'another account on the same phone is not locked');
  const unlocked = await c.admin.req('PATCH', '/api/users/tech', { unlock: true });
  t.equal(unlocked.status, 200);
  t.equal((await phone.login('tech', PASSWORDS.tech)).status, 200, "the admin's unlock ends the lock for this address at once");
});

t.test('lockout: guessing names from one address still locks the address; unlock of one of them frees it', async (t) => {
  const laptop = new Client(g.base);
  t.same([(await laptop.login('guess1', 'x')).status, (await laptop.login('guess2', 'x')).status, (await laptop.login('viewer', 'x')).status], [401, 401, 429], 'three names → address locked');
  t.equal((await laptop.login('tech', PASSWORDS.tech)).status, 429, 'every account from this address');
  await c.admin.req('PATCH', '/api/users/viewer', { unlock: true });
  t.equal((await laptop.login('tech', PASSWORDS.tech)).status, 200, 'an admin unlocking an account that was part of it ends the address lock');
  clock.offsetMs += 61_000;
});

t.test('lockout: one account guessed from many addresses locks everywhere', async (t) => {
  const { AccountStore, ACCOUNT_LOCK_FACTOR } = await import('../../edge/console/accounts.js');
  const { openDatabase } = await import('../../edge/store/sqlite.js');
  const { join } = await import('node:path');
  const { db } = openDatabase(join(tempDir('ee-console-lock-'), 'state.db'));
  let now = 1_000_000;
  const store = new AccountStore({ db, now: () => now, attempts: 3, lockMs: 60_000 });
  await store.create('victim', 'viewer', 'victim-long-password');
  const results: string[] = [];
  for (let i = 0; i < 3 * ACCOUNT_LOCK_FACTOR; i++) results.push((await store.login('victim', 'wrong', `10.0.0.${i}`)).ok ? 'ok' : 'no');
  const fromNew = await store.login('victim', 'victim-long-password', '10.0.1.1');
  t.match(fromNew, { ok: false, reason: 'locked' }, `${3 * ACCOUNT_LOCK_FACTOR} wrong passwords from as many addresses lock the account everywhere`);
  now += 61_000;
  t.match(await store.login('victim', 'victim-long-password', '10.0.1.1'), { ok: true }, 'and the lock ends');
  db.close();
});

/** An SSE stream read in the background: its text so far and whether the server ended it. */
async function openStream(client: Client): Promise<{ status: number; text: () => string; ended: Promise<void>; until: (re: RegExp, ms?: number) => Promise<boolean>; close: () => void }> {
  const ctl = new AbortController();
  const res = await fetch(`${g.base}/api/live`, { headers: { cookie: client.cookie }, signal: ctl.signal });
  let text = '';
  const ended =
    res.status !== 200
      ? Promise.resolve()
      : (async () => {
          const reader = res.body!.getReader();
          try {
            for (;;) {
              const { value, done } = await reader.read();
              if (done) return;
              text += new TextDecoder().decode(value);
            }
          } catch {
            /* aborted by the test */
          }
        })();
  if (res.status !== 200) text = await res.text();
  return {
    status: res.status,
    text: () => text,
    ended,
    until: async (re, ms = 5000) => {
      const end = Date.now() + ms;
      while (!re.test(text) && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
      return re.test(text);
    },
    close: () => ctl.abort(),
  };
}

const endsWithin = (p: Promise<void>, ms: number) => Promise.race([p.then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), ms))]);

t.test('live stream: closed at once on logout; events until then', async (t) => {
  const me = new Client(g.base);
  await me.login('tech', PASSWORDS.tech);
  const s = await openStream(me);
  t.equal(s.status, 200);
  t.ok(await s.until(/event: status/), 'status received');
  await c.admin.post('/api/commands/gateway.ping', { echo: 'before-logout' });
  t.ok(await s.until(/before-logout/), 'an audit event arrives while logged in');
  await me.post('/api/logout');
  t.ok(await endsWithin(s.ended, 2000), 'the stream ends at logout');
  t.match(s.text(), /event: end\ndata: \{"reason":"session_ended"\}/, 'with an end event saying why');
  await c.admin.post('/api/commands/gateway.ping', { echo: 'after-logout' });
  t.notMatch(s.text(), /after-logout/, 'nothing after logout');
});

t.test('live stream: closed on role change and on account deletion', async (t) => {
  await c.admin.post('/api/users', { user: 'temp', role: 'technician', password: 'short-lived-pass-9' });
  const temp = new Client(g.base);
  await temp.login('temp', 'short-lived-pass-9');
  const s1 = await openStream(temp);
  t.ok(await s1.until(/event: status/));
  await c.admin.req('PATCH', '/api/users/temp', { role: 'viewer' });
  t.ok(await endsWithin(s1.ended, 2000), 'role change ends the stream');
  await temp.login('temp', 'short-lived-pass-9');
  const s2 = await openStream(temp);
  t.ok(await s2.until(/event: status/));
  await c.admin.req('DELETE', '/api/users/temp');
  t.ok(await endsWithin(s2.ended, 2000), 'deletion ends the stream');
});

t.test('live stream: closed when the session expires, even while events flow (a stream does not keep a session alive)', async (t) => {
  const me = new Client(g.base);
  await me.login('viewer', PASSWORDS.viewer);
  const s = await openStream(me);
  t.ok(await s.until(/event: status/));
  clock.offsetMs += 6 * 60_000; // past sessionTtlMin (5)
  // The next batch (a door state or any event) re-checks the session.
  g.gateway.bus.emit('gateway.ready' as never, { at: Date.now() } as never);
  t.ok(await endsWithin(s.ended, 3000), 'the stream ends at the next batch after expiry');
  t.match(s.text(), /event: end/);
  t.notMatch(s.text(), /"type":"gateway.ready"/, 'the event after expiry was not delivered');
  // Log everyone back in for the tests after this one.
  for (const [k, user, pw] of [
    ['admin', 'admin', PASSWORDS.admin],
    ['tech', 'tech', PASSWORDS.tech],
    ['viewer', 'viewer', PASSWORDS.viewer],
  ] as const)
    t.equal((await c[k].login(user, pw)).status, 200);
});

t.test('live stream: per-user caps; a viewer with 20 streams does not keep the admin out', async (t) => {
  const opened = [];
  for (let i = 0; i < 20; i++) opened.push(await openStream(c.viewer));
  const ok = opened.filter((s) => s.status === 200).length;
  t.ok(ok >= 1 && ok <= 4, `${ok} of the viewer's 20 streams accepted`);
  const refused = opened.find((s) => s.status !== 200)!;
  t.equal(refused.status, 503);
  t.match(refused.text(), /too_many_streams/);
  const admin = await openStream(c.admin);
  t.equal(admin.status, 200, 'the admin gets a stream');
  t.ok(await admin.until(/event: status/));
  for (const s of [...opened, admin]) s.close();
});

t.test('commands: the role each command declared decides, one without a declaration is refused', async (t) => {
  const { Type } = await import('@sinclair/typebox');
  const none = Type.Object({}, { additionalProperties: false });
  g.gateway.commands.forCapability('test').register({ name: 'test.adminOnly', description: 'test', role: 'admin', args: none, handler: () => ({ done: true }) });
  // As a command registered by code that bypassed the type (plain JS, a cast).
  g.gateway.commands.forCapability('test').register({ name: 'test.undeclared', description: 'test', args: none, handler: () => ({ done: true }) } as never);
  t.equal((await c.tech.post('/api/commands/test.adminOnly', {})).status, 403, 'technician: the declared admin role is needed');
  t.equal((await c.admin.post('/api/commands/test.adminOnly', {})).status, 200, 'admin: runs');
  const undeclared = await c.admin.post('/api/commands/test.undeclared', {});
  t.equal(undeclared.status, 403, 'no declaration: refused even for an admin');
  t.match(undeclared.body.error.message, /declares no console role/);
  const list = await c.admin.get('/api/commands');
  t.match(
    list.body.commands.find((x: { name: string }) => x.name === 'test.undeclared'),
    { role: null, allowed: false },
  );
  t.match(
    list.body.commands.find((x: { name: string }) => x.name === 'config.get'),
    { role: 'viewer', allowed: true },
  );
});

t.test('commands: one registered without a capability is refused, even with a role, and shows on no page', async (t) => {
  const { Type } = await import('@sinclair/typebox');
  const none = Type.Object({}, { additionalProperties: false });
  let ran = 0;
  // Straight on the registry, past every capability's registrar: a role, but no capability.
  g.gateway.commands.register({ name: 'door.orphan', description: 'test', role: 'viewer', args: none, handler: () => ++ran });
  // The same with neither (plain JS, a cast).
  g.gateway.commands.register({ name: 'meter.orphan', description: 'test', args: none, handler: () => ++ran } as never);
  // And a declared one of the doors capability, for the page.
  g.gateway.commands.forCapability('doors').register({ name: 'door.declared', description: 'test', role: 'viewer', args: none, handler: () => ++ran });
  t.teardown(() => ['door.orphan', 'meter.orphan', 'door.declared'].forEach((n) => g.gateway.commands.unregister(n)));

  const orphan = await c.admin.post('/api/commands/door.orphan', {});
  t.equal(orphan.status, 403, 'no capability: refused even for an admin');
  t.match(orphan.body.error.message, /belongs to no capability: refused/);
  t.equal((await c.admin.post('/api/commands/meter.orphan', {})).status, 403, 'neither role nor capability: refused');
  t.equal(ran, 0, 'neither handler ran');
  t.equal((await c.viewer.post('/api/commands/door.declared', {})).status, 200, 'the declared one runs for its role');
  t.equal(ran, 1);

  const list = (await c.admin.get('/api/commands')).body.commands as Array<{ name: string; role: string | null; capability: string | null; allowed: boolean }>;
  t.match(
    list.find((x) => x.name === 'door.orphan'),
    { role: 'viewer', capability: null, allowed: false },
  );
  t.match(
    list.find((x) => x.name === 'door.declared'),
    { role: 'viewer', capability: 'doors', allowed: true },
  );
  const caps = (await c.admin.get('/api/capabilities')).body as Record<string, { commands: string[] }>;
  const shown = Object.values(caps).flatMap((p) => p.commands);
  t.notOk(shown.includes('door.orphan') || shown.includes('meter.orphan'), `on no page (pages: ${JSON.stringify(caps)})`);
  t.ok(caps.doors!.commands.includes('door.declared'), "the declared one is on its capability's page");
});

t.test('audit records name the user who acted', async (t) => {
  await c.admin.post('/api/commands/gateway.ping', {});
  await new Client(g.base).login('nobody-here', 'wrong');
  const ev = await c.admin.get('/api/events?type=audit&limit=300');
  const recs = ev.body.events.map((e: { data: Record<string, unknown> }) => e.data) as Array<{ action: string; user: unknown; account?: string }>;
  t.ok(recs.length > 10, `${recs.length} audit records`);
  t.same(
    recs.filter((r) => typeof r.user !== 'string' || r.user === ''),
    [],
    'every record has a user',
  );
  const failed = recs.find((r) => r.action === 'console.login.failed' && r.account === 'nobody-here');
  t.match(failed, { user: 'anonymous', account: 'nobody-here' }, 'a failed login: anonymous, with the account tried');
  t.ok(
    recs.some((r) => r.action === 'console.command' && r.user === 'admin'),
    'a command: the admin',
  );
  t.ok(
    recs.some((r) => r.action === 'console.setup' && typeof r.user === 'string' && r.user !== 'anonymous'),
    'setup: the new admin',
  );
  t.ok(
    recs.some((r) => r.action === 'console.logout' && r.user === 'tech'),
    'logout: who logged out',
  );
});

t.test('restart from the console: answered, requested, and nothing thrown into the process', async (t) => {
  const r = await c.admin.post('/api/system/restart');
  t.equal(r.status, 200);
  await new Promise((res) => setTimeout(res, 400));
  t.match(g.restarts, [/requested from the console by admin/]);
  // Without a session (any spelling) it is refused before the handler: no timer at all.
  const anon = await fetch(`${g.base}/%61pi/system/restart`, { method: 'POST' });
  t.equal(anon.status, 401);
  await new Promise((res) => setTimeout(res, 400));
  t.equal(g.restarts.length, 1, 'no second restart');
  t.same(uncaught, [], 'no uncaught exception or unhandled rejection during the whole file');
  t.ok(g.gateway.isStarted());
});
