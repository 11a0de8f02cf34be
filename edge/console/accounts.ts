// Console accounts in the gateway's state database. Passwords are hashed with scrypt
// (per-user random salt, parameters stored with the hash so they can be raised later)
// and compared in constant time. There is no default account: while none exists, a
// one-time setup token (printed in the service log) is needed to create the first admin.
//
// Lockout, in three counters, each locking for `lockMs`:
//   - per account and client address: `attempts` wrong passwords in a row for one account
//     from one address lock that account from that address only — a technician's typos
//     on a phone do not lock the other accounts used on that phone;
//   - per client address, over distinct user names: wrong passwords for `attempts`
//     different names (unknown ones included) lock the address — guessing across names
//     from one laptop is stopped;
//   - per account, over all addresses: `attempts` × 4 wrong passwords in a row lock the
//     account everywhere — guessing one account from many addresses is stopped too.
// An admin's unlock clears all three for that account (and the addresses it was locked
// from). A login for an unknown user costs the same scrypt time as a real one, so timing
// does not reveal which names exist.
import { randomBytes, scrypt, timingSafeEqual, createHash } from 'node:crypto';
import type { Db } from '../store/sqlite.js';

export const ROLES = ['viewer', 'technician', 'admin'] as const;
export type Role = (typeof ROLES)[number];

export function roleAtLeast(have: Role, need: Role): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}

export function isRole(s: unknown): s is Role {
  return typeof s === 'string' && (ROLES as readonly string[]).includes(s);
}

// N=2^15, r=8: 32 MiB and ~150-300 ms per hash on a Pi 4 — slow enough for an offline
// attacker, and on purpose just above glibc's largest dynamic mmap threshold (32 MiB):
// the buffer is always mmapped and given back to the system when freed. At 16 MiB (N=2^14)
// glibc raises its threshold after the first free and every libuv thread-pool thread then
// keeps a 16 MiB heap for ever (measured: +64 MB RSS after a dozen logins).
const SCRYPT = { N: 32768, r: 8, p: 1, keylen: 32 } as const;

/** Too many hashes waiting (a login flood): refuse rather than queue without bound. */
export class BusyError extends Error {}

// One hash at a time: the transient 32 MiB exists once, whatever the number of logins.
let queue: Promise<unknown> = Promise.resolve();
let waiting = 0;
const MAX_WAITING = 8;

function scryptAsync(password: string, salt: Buffer, p: { N: number; r: number; p: number; keylen: number }): Promise<Buffer> {
  if (waiting >= MAX_WAITING) return Promise.reject(new BusyError('too many logins at once: try again in a moment'));
  waiting++;
  const run = () => new Promise<Buffer>((resolve, reject) => scrypt(password.normalize('NFKC'), salt, p.keylen, { N: p.N, r: p.r, p: p.p, maxmem: 128 * p.N * p.r * p.p + 1024 * 1024 }, (err, key) => (err ? reject(err) : resolve(key))));
  const result = queue.then(run, run);
  queue = result.catch(() => undefined).finally(() => void waiting--);
  return result;
}

/** Whether a stored hash uses weaker parameters than today's (re-hashed at the next login). */
export function needsRehash(stored: string): boolean {
  const [, N, r, p] = stored.split('$');
  return Number(N) !== SCRYPT.N || Number(r) !== SCRYPT.r || Number(p) !== SCRYPT.p;
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, SCRYPT);
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = [Number(parts[1]), Number(parts[2]), Number(parts[3])];
  const salt = Buffer.from(parts[4]!, 'base64');
  const want = Buffer.from(parts[5]!, 'base64');
  const got = await scryptAsync(password, salt, { N, r, p, keylen: want.length });
  return got.length === want.length && timingSafeEqual(got, want);
}

/** Problems with a proposed password (empty when acceptable). */
export function passwordProblems(password: unknown, user: string): string[] {
  if (typeof password !== 'string') return ['password is required'];
  const p: string[] = [];
  if ([...password].length < 10) p.push('password must have at least 10 characters');
  if (password.length > 256) p.push('password must have at most 256 characters');
  if (password.toLowerCase().includes(user.toLowerCase()) && user.length >= 3) p.push('password must not contain the user name');
  return p;
}

export const USER_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.@-]{1,63}$/;

export interface Account {
  name: string;
  role: Role;
  createdAt: number;
  lastLoginAt: number | null;
  lockedUntil: number | null;
}

export type LoginResult = { ok: true; account: Account } | { ok: false; reason: 'bad_credentials' | 'locked'; retryAfterS?: number };

export interface AccountOptions {
  db: Db;
  now: () => number;
  attempts: number;
  lockMs: number;
  /** A bookkeeping write the disk refused (reported to the disk guard). */
  onWriteFailed?: (err: unknown) => void;
}

interface Row {
  name: string;
  role: Role;
  hash: string;
  created_at: number;
  last_login_at: number | null;
  failed: number;
  locked_until: number | null;
}

/** How many wrong passwords in a row, from any address, lock an account everywhere (× attempts). */
export const ACCOUNT_LOCK_FACTOR = 4;
const MAX_TRACKED = 10_000;

interface PairState {
  failed: number;
  lockedUntil: number;
}

interface AddressState {
  /** Names (lower case) with a wrong password from this address since its last lock. */
  names: Set<string>;
  lockedUntil: number;
  /** Names are forgotten after lockMs without a wrong password: a typo a day adds up to nothing. */
  lastFailAt: number;
}

export class AccountStore {
  private setupToken: string | undefined;
  /** The token while one setup request is making the first admin. */
  private claimed: string | undefined;
  /** Per (account, address): key `name\naddress`, name in lower case. */
  private readonly byPair = new Map<string, PairState>();
  private readonly byAddress = new Map<string, AddressState>();
  /** UTC ms after which the setup token is refused (a token from the setup-token file). */
  private setupExpiresAt: number | undefined;
  // A real hash to burn the same time on for unknown user names.
  private dummyHash: Promise<string> | undefined;

  constructor(private readonly o: AccountOptions) {
    o.db.exec(`CREATE TABLE IF NOT EXISTS console_users (
      name TEXT PRIMARY KEY COLLATE NOCASE,
      role TEXT NOT NULL,
      hash TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      last_login_at INTEGER,
      failed INTEGER NOT NULL DEFAULT 0,
      locked_until INTEGER)`);
  }

  count(): number {
    return (this.o.db.prepare('SELECT COUNT(*) AS n FROM console_users').get() as { n: number }).n;
  }

  /** While no account exists: the one-time token needed to create the first admin (new each start). */
  setupTokenIfNeeded(): string | undefined {
    if (this.count() > 0) {
      this.setupToken = undefined;
      return undefined;
    }
    this.setupToken ??= randomBytes(12).toString('base64url');
    return this.setupToken;
  }

  setupNeeded(): boolean {
    return this.count() === 0;
  }

  checkSetupToken(token: unknown): boolean {
    if (typeof token !== 'string' || this.setupToken === undefined || !this.setupNeeded()) return false;
    if (this.setupExpiresAt !== undefined && this.o.now() >= this.setupExpiresAt) return false;
    const a = createHash('sha256').update(token.trim()).digest();
    const b = createHash('sha256').update(this.setupToken).digest();
    return timingSafeEqual(a, b);
  }

  /**
   * Take the setup token for one request, synchronously (before any await): of
   * concurrent requests with the right token exactly one gets it. 'claimed' when the
   * token was right but another request holds it. Give it back with releaseSetupToken()
   * if the admin could not be made.
   */
  claimSetupToken(token: unknown): 'ok' | 'wrong' | 'claimed' {
    if (this.setupToken === undefined) return this.claimed !== undefined && typeof token === 'string' && token.trim() === this.claimed ? 'claimed' : 'wrong';
    if (!this.checkSetupToken(token)) return 'wrong';
    this.claimed = this.setupToken;
    this.setupToken = undefined;
    return 'ok';
  }

  releaseSetupToken(): void {
    if (this.claimed !== undefined && this.setupNeeded()) this.setupToken = this.claimed;
    this.claimed = undefined;
  }

  /** The first admin, only while there is no account at all (checked in the same statement as the insert). */
  async createFirstAdmin(name: string, password: string): Promise<Account | undefined> {
    const hash = await hashPassword(password);
    const r = this.o.db.prepare("INSERT INTO console_users(name, role, hash, created_at) SELECT ?, 'admin', ?, ? WHERE NOT EXISTS (SELECT 1 FROM console_users)").run(name, hash, this.o.now());
    this.claimed = undefined;
    return r.changes === 1 ? this.get(name) : undefined;
  }

  list(): Account[] {
    return (this.o.db.prepare('SELECT * FROM console_users ORDER BY name').all() as Row[]).map(toAccount);
  }

  get(name: string): Account | undefined {
    const r = this.row(name);
    return r ? toAccount(r) : undefined;
  }

  private row(name: string): Row | undefined {
    return this.o.db.prepare('SELECT * FROM console_users WHERE name = ?').get(name) as Row | undefined;
  }

  async create(name: string, role: Role, password: string): Promise<Account> {
    const hash = await hashPassword(password);
    this.o.db.prepare('INSERT INTO console_users(name, role, hash, created_at) VALUES (?, ?, ?, ?)').run(name, role, hash, this.o.now());
    return this.get(name)!;
  }

  async setPassword(name: string, password: string): Promise<void> {
    const hash = await hashPassword(password);
    this.o.db.prepare('UPDATE console_users SET hash = ?, failed = 0, locked_until = NULL WHERE name = ?').run(hash, name);
  }

  setRole(name: string, role: Role): void {
    this.o.db.prepare('UPDATE console_users SET role = ? WHERE name = ?').run(role, name);
  }

  /** End every lock on an account: its own, its per-address ones, and the address locks it took part in. */
  unlock(name: string): void {
    this.o.db.prepare('UPDATE console_users SET failed = 0, locked_until = NULL WHERE name = ?').run(name);
    const lower = name.toLowerCase();
    for (const k of [...this.byPair.keys()]) if (k.startsWith(`${lower}\n`)) this.byPair.delete(k);
    for (const [addr, a] of this.byAddress) {
      if (!a.names.has(lower)) continue;
      a.names.delete(lower);
      a.lockedUntil = 0;
      if (a.names.size === 0) this.byAddress.delete(addr);
    }
  }

  /** Current lock of an account for an address: 0 when none (for tests and the users page). */
  lockedUntil(name: string, address: string): number {
    const now = this.o.now();
    const pair = this.byPair.get(`${name.toLowerCase()}\n${address}`);
    const addr = this.byAddress.get(address);
    const r = this.row(name);
    const until = Math.max(pair && pair.lockedUntil > now ? pair.lockedUntil : 0, addr && addr.lockedUntil > now ? addr.lockedUntil : 0, r?.locked_until && r.locked_until > now ? r.locked_until : 0);
    return until;
  }

  remove(name: string): boolean {
    return this.o.db.prepare('DELETE FROM console_users WHERE name = ?').run(name).changes > 0;
  }

  /** A write that may fail on a full disk without failing the login (SQLITE_FULL / I/O errors only). */
  private bestEffort(write: () => unknown): void {
    try {
      write();
    } catch (err) {
      const code = String((err as { code?: unknown })?.code ?? '');
      if (!/^SQLITE_(FULL|IOERR)/.test(code)) throw err;
      this.o.onWriteFailed?.(err);
    }
  }

  admins(): number {
    return (this.o.db.prepare("SELECT COUNT(*) AS n FROM console_users WHERE role = 'admin'").get() as { n: number }).n;
  }

  async verify(name: string, password: string): Promise<boolean> {
    const r = this.row(name);
    return r !== undefined && (await verifyPassword(password, r.hash));
  }

  /** Check a login. Counts failures per account+address, per address (names) and per account; locks after too many. */
  async login(name: string, password: string, address: string): Promise<LoginResult> {
    const now = this.o.now();
    const lower = name.toLowerCase();
    const pairKey = `${lower}\n${address}`;
    const r = this.row(name);
    const lockedUntil = this.lockedUntil(name, address);
    if (lockedUntil > 0) return { ok: false, reason: 'locked', retryAfterS: Math.ceil((lockedUntil - now) / 1000) };
    const ok = r ? await verifyPassword(password, r.hash) : (await verifyPassword(password, await (this.dummyHash ??= hashPassword(randomBytes(16).toString('hex')))), false);
    if (ok && r) {
      // Bookkeeping: on a full disk the login still succeeds (the technician may be there to fix it).
      this.bestEffort(() => this.o.db.prepare('UPDATE console_users SET failed = 0, locked_until = NULL, last_login_at = ? WHERE name = ?').run(now, r.name));
      if (needsRehash(r.hash)) {
        const hash = await hashPassword(password);
        this.bestEffort(() => this.o.db.prepare('UPDATE console_users SET hash = ? WHERE name = ?').run(hash, r.name));
      }
      this.byPair.delete(pairKey);
      const a = this.byAddress.get(address);
      if (a) {
        a.names.delete(lower);
        if (a.names.size === 0 && a.lockedUntil <= now) this.byAddress.delete(address);
      }
      return { ok: true, account: toAccount({ ...r, last_login_at: now, failed: 0, locked_until: null }) };
    }
    const until = now + this.o.lockMs;
    let locked = false;
    // This account from this address (a lock that ran out starts a fresh count).
    const prev = this.byPair.get(pairKey);
    const pair = prev && prev.lockedUntil === 0 ? prev : { failed: 0, lockedUntil: 0 };
    pair.failed++;
    if (pair.failed >= this.o.attempts) {
      pair.failed = 0;
      pair.lockedUntil = until;
      locked = true;
    }
    this.byPair.delete(pairKey);
    this.byPair.set(pairKey, pair);
    // This address over distinct names.
    const prevA = this.byAddress.get(address);
    const a = prevA && prevA.lockedUntil === 0 && now - prevA.lastFailAt <= this.o.lockMs ? prevA : { names: new Set<string>(), lockedUntil: 0, lastFailAt: now };
    a.names.add(lower);
    a.lastFailAt = now;
    if (a.names.size >= this.o.attempts) {
      a.lockedUntil = until;
      locked = true;
    }
    this.byAddress.delete(address);
    this.byAddress.set(address, a);
    // This account from anywhere.
    if (r) {
      const failed = r.failed + 1;
      const all = failed >= this.o.attempts * ACCOUNT_LOCK_FACTOR;
      // On a full disk the account-wide count is not persisted; the per-address and
      // per-account+address locks above (in memory) still hold, and the answer is a 401, not a 500.
      this.bestEffort(() => this.o.db.prepare('UPDATE console_users SET failed = ?, locked_until = ? WHERE name = ?').run(all ? 0 : failed, all ? until : null, r.name));
      locked ||= all;
    }
    // Bound the tables (oldest first): an address scan must not grow memory without limit.
    for (const m of [this.byPair, this.byAddress] as Array<Map<string, unknown>>) while (m.size > MAX_TRACKED) m.delete(m.keys().next().value!);
    return locked ? { ok: false, reason: 'locked', retryAfterS: Math.ceil(this.o.lockMs / 1000) } : { ok: false, reason: 'bad_credentials' };
  }

  /**
   * Use the setup-token file's token (setup-token.ts) until `expiresAt` instead of one
   * made here: the installer's label, the doctor and the command show that one.
   */
  useSetupToken(token: string, expiresAt: number): void {
    // Not while a setup request holds the token (claimSetupToken): single use stays single.
    if (!this.setupNeeded() || this.claimed !== undefined) return;
    this.setupToken = token;
    this.setupExpiresAt = expiresAt;
  }
}

function toAccount(r: Row): Account {
  return { name: r.name, role: r.role, createdAt: r.created_at, lastLoginAt: r.last_login_at, lockedUntil: r.locked_until };
}
