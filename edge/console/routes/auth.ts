// First-run setup, login/logout, own password, and account management (admin).
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { Type, type Static } from '@sinclair/typebox';
import { isRole, passwordProblems, USER_NAME_RE, ROLES, type Role } from '../accounts.js';
import { sendError, type ConsoleDeps } from '../server.js';
import type { Session } from '../sessions.js';
import type { Ok, SessionInfo, SessionStarted, UserList, UserRow } from '../api-types.js';

const Credentials = Type.Object({ user: Type.String({ maxLength: 64 }), password: Type.String({ maxLength: 256 }) }, { additionalProperties: false });
const Setup = Type.Object({ token: Type.String({ maxLength: 200 }), user: Type.String({ maxLength: 64 }), password: Type.String({ maxLength: 256 }) }, { additionalProperties: false });
const PasswordChange = Type.Object({ current: Type.String({ maxLength: 256 }), password: Type.String({ maxLength: 256 }) }, { additionalProperties: false });
const NewUser = Type.Object({ user: Type.String({ maxLength: 64 }), role: Type.Union(ROLES.map((r) => Type.Literal(r))), password: Type.String({ maxLength: 256 }) }, { additionalProperties: false });
const UserPatch = Type.Object({ role: Type.Optional(Type.Union(ROLES.map((r) => Type.Literal(r)))), password: Type.Optional(Type.String({ maxLength: 256 })), unlock: Type.Optional(Type.Boolean()) }, { additionalProperties: false });

/** GET /api/session's answer (also inlined into the page for a logged-in first visit). */
export function sessionInfo(d: ConsoleDeps, s: Session | undefined): SessionInfo {
  return {
    setupNeeded: d.accounts.setupNeeded(),
    site: d.ctx.config.site.name ?? d.ctx.config.site.id,
    gateway: d.ctx.config.gateway.id,
    ...(s ? { user: s.user, role: s.role, csrf: s.csrf } : {}),
  };
}

export function authRoutes(app: FastifyInstance, d: ConsoleDeps): void {
  const clientAddress = (req: FastifyRequest) => req.socket.remoteAddress ?? 'unknown';

  // The new session is the request's from here on: the audit record names its user.
  const startSession = (req: FastifyRequest, reply: FastifyReply, user: string, role: Role): SessionStarted => {
    const { token, session } = d.sessions.create(user, role);
    req.session = session;
    reply.setCookie(d.cookieName, token, { httpOnly: true, sameSite: 'strict', secure: d.secure, path: '/', maxAge: d.cfg.sessionTtlMin * 60 });
    return { user, role, csrf: session.csrf };
  };

  app.get('/api/session', { config: { role: 'public' } }, async (req) => sessionInfo(d, d.sessions.get(req.cookies[d.cookieName])));

  app.post<{ Body: Static<typeof Setup> }>('/api/setup', { config: { role: 'public' }, schema: { body: Setup } }, async (req, reply) => {
    if (!d.accounts.setupNeeded()) return sendError(reply, 409, 'already_set_up', 'the console already has accounts: log in instead');
    const { user, password } = req.body;
    if (!USER_NAME_RE.test(user)) return sendError(reply, 400, 'bad_user', 'user name: 2–64 letters, digits, . _ @ -');
    const problems = passwordProblems(password, user);
    if (problems.length) return sendError(reply, 400, 'weak_password', problems.join('; '), { problems });
    // The token is taken before the first await: of concurrent requests with it, one
    // makes the admin; and the insert itself only happens while there is no account.
    const claim = d.accounts.claimSetupToken(req.body.token);
    if (claim === 'claimed') return sendError(reply, 409, 'already_set_up', 'the first admin is being created by another request: log in instead');
    if (claim === 'wrong') {
      d.authFailures.inc({ reason: 'setup_token' });
      await d.audit(req, 'console.setup.refused', { address: clientAddress(req) });
      return sendError(reply, 403, 'bad_setup_token', 'wrong setup token: copy it from the service log (journalctl -u estate-edge | grep "setup token")');
    }
    let account;
    try {
      account = await d.accounts.createFirstAdmin(user, password);
    } finally {
      if (!account) d.accounts.releaseSetupToken();
    }
    if (!account) return sendError(reply, 409, 'already_set_up', 'the console already has accounts: log in instead');
    const body = startSession(req, reply, account.name, 'admin');
    await d.audit(req, 'console.setup', { target: account.name, role: 'admin' });
    return reply.code(201).send(body);
  });

  app.post<{ Body: Static<typeof Credentials> }>('/api/login', { config: { role: 'public' }, schema: { body: Credentials } }, async (req, reply) => {
    const address = clientAddress(req);
    const r = await d.accounts.login(req.body.user, req.body.password, address);
    if (!r.ok) {
      d.authFailures.inc({ reason: r.reason });
      await d.audit(req, r.reason === 'locked' ? 'console.login.locked' : 'console.login.failed', { account: req.body.user.slice(0, 64), address });
      if (r.reason === 'locked') {
        reply.header('retry-after', String(r.retryAfterS ?? 60));
        return sendError(reply, 429, 'locked', `too many wrong passwords: login locked for ${Math.ceil((r.retryAfterS ?? 60) / 60)} min`, { retryAfterS: r.retryAfterS });
      }
      return sendError(reply, 401, 'bad_credentials', 'wrong user name or password');
    }
    const body = startSession(req, reply, r.account.name, r.account.role);
    await d.audit(req, 'console.login', { address });
    return body;
  });

  app.post('/api/logout', { config: { role: 'viewer' } }, async (req, reply) => {
    d.sessions.destroy(req.cookies[d.cookieName]);
    reply.clearCookie(d.cookieName, { path: '/' });
    await d.audit(req, 'console.logout');
    return { ok: true } satisfies Ok;
  });

  app.post<{ Body: Static<typeof PasswordChange> }>('/api/password', { config: { role: 'viewer' }, schema: { body: PasswordChange } }, async (req, reply) => {
    const user = req.session!.user;
    if (!(await d.accounts.verify(user, req.body.current))) return sendError(reply, 403, 'bad_credentials', 'the current password is wrong');
    const problems = passwordProblems(req.body.password, user);
    if (problems.length) return sendError(reply, 400, 'weak_password', problems.join('; '), { problems });
    await d.accounts.setPassword(user, req.body.password);
    const role = req.session!.role;
    d.sessions.destroyUser(user);
    await d.audit(req, 'console.password.changed');
    return startSession(req, reply, user, role);
  });

  app.get('/api/users', { config: { role: 'admin' } }, async (): Promise<UserList> => ({ users: d.accounts.list() }));

  app.post<{ Body: Static<typeof NewUser> }>('/api/users', { config: { role: 'admin' }, schema: { body: NewUser } }, async (req, reply) => {
    const { user, role, password } = req.body;
    if (!USER_NAME_RE.test(user)) return sendError(reply, 400, 'bad_user', 'user name: 2–64 letters, digits, . _ @ -');
    if (d.accounts.get(user)) return sendError(reply, 409, 'exists', `user ${user} already exists`);
    const problems = passwordProblems(password, user);
    if (problems.length) return sendError(reply, 400, 'weak_password', problems.join('; '), { problems });
    const account = await d.accounts.create(user, role, password);
    await d.audit(req, 'console.user.created', { target: user, role });
    return reply.code(201).send(account satisfies UserRow);
  });

  app.patch<{ Params: { name: string }; Body: Static<typeof UserPatch> }>('/api/users/:name', { config: { role: 'admin' }, schema: { body: UserPatch } }, async (req, reply) => {
    const target = d.accounts.get(req.params.name);
    if (!target) return sendError(reply, 404, 'unknown_user', `no user ${req.params.name}`);
    const { role, password, unlock } = req.body;
    if (role !== undefined && isRole(role) && role !== 'admin' && target.role === 'admin' && d.accounts.admins() <= 1) return sendError(reply, 409, 'last_admin', 'the last admin cannot be demoted');
    if (password !== undefined) {
      const problems = passwordProblems(password, target.name);
      if (problems.length) return sendError(reply, 400, 'weak_password', problems.join('; '), { problems });
      await d.accounts.setPassword(target.name, password);
    }
    if (role !== undefined) d.accounts.setRole(target.name, role);
    if (unlock) d.accounts.unlock(target.name);
    if (role !== undefined || password !== undefined) d.sessions.destroyUser(target.name);
    await d.audit(req, 'console.user.changed', { target: target.name, ...(role ? { role } : {}), ...(password ? { password: 'reset' } : {}), ...(unlock ? { unlock } : {}) });
    return d.accounts.get(target.name) satisfies UserRow | undefined;
  });

  app.delete<{ Params: { name: string } }>('/api/users/:name', { config: { role: 'admin' } }, async (req, reply) => {
    const target = d.accounts.get(req.params.name);
    if (!target) return sendError(reply, 404, 'unknown_user', `no user ${req.params.name}`);
    if (target.role === 'admin' && d.accounts.admins() <= 1) return sendError(reply, 409, 'last_admin', 'the last admin cannot be deleted');
    d.accounts.remove(target.name);
    d.sessions.destroyUser(target.name);
    await d.audit(req, 'console.user.deleted', { target: target.name });
    return { ok: true } satisfies Ok;
  });
}
