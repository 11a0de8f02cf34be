// Access decisions, local and offline-capable: who may open which door when.
//
// A decision is synchronous and in memory (people map, door groups, compiled weekly
// windows, per-door token bucket); the access record is handed to the outbox and the
// local log without waiting for disk. Order of checks (the first failing one is the
// reason): unknown_door, door_fault, invalid_credential, person_required,
// unknown_person, disabled, not_yet_valid, expired, door_not_allowed,
// outside_schedule, rate_limited.
//
// Exit buttons are always granted and never rate-limited (egress must not be blocked).
//
// Second factor (docs/doors.md): a face or card presented at a door is checked against
// the door's access mode (credential_not_accepted), then — when the mode is
// face_and_pin / card_and_pin or the person has needsSecondFactor — the door does not
// decide yet: it waits up to access.pinTimeoutS for *that person's* PIN on that door's
// keypad or console pad (pin_locked and second_factor_required are denied at once). The
// answer to the face/card is then `pending` (reason pin_required) and nothing is
// recorded; the decision that follows — granted, pin_wrong, pin_timeout, pin_locked,
// pin_superseded — is one access record with `via` naming every factor used, and the
// rules (and the rate limit) are checked again at that moment. A fire-released door
// asks for no PIN: it stands open anyway.
import { performance } from 'node:perf_hooks';
import type { TimerHandle, Timers } from '../../drivers/gpio/types.js';
import type { AccessApi, AccessDecision, AccessMode, AccessRequest, Credential, DoorsStatus, AccessEvent, AccessEventQuery, Factor, PersonSummary } from './api.js';
import type { DoorController } from './door.js';
import { summary, type PeopleStore, type Person } from './people.js';
import { verifyPin } from './pin.js';
import { inSchedule, type ZonedWeek } from './schedule.js';
import { accessMode, type DoorsConfig } from './schema.js';

const CREDENTIALS: readonly Credential[] = ['face', 'card', 'remote', 'exit_button', 'console', 'fire'];

/** Which presented credentials (face, card) a mode accepts as the first factor. */
const ACCEPTS: Record<AccessMode, readonly Credential[]> = {
  face: ['face'],
  face_or_card: ['face', 'card'],
  face_and_pin: ['face'],
  card: ['card'],
  card_and_pin: ['card'],
};
const PIN_MODES: ReadonlySet<AccessMode> = new Set(['face_and_pin', 'card_and_pin']);

export interface PendingPin {
  doorId: string;
  personId: string;
  via: Factor[];
  /** UTC ms the wait ends (pin_timeout). */
  until: number;
}

interface Pending extends PendingPin {
  req: AccessRequest;
  timer: TimerHandle;
}

/** Token bucket: `burst` unlocks at once, refilled at `perMinute`. */
export class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(
    private readonly burst: number,
    private readonly perMinute: number,
    now: number,
  ) {
    this.tokens = burst;
    this.last = now;
  }
  take(now: number): boolean {
    // max(0, …): a wall-clock step backwards must not drain or overfill the bucket.
    this.tokens = Math.min(this.burst, this.tokens + (Math.max(0, now - this.last) * this.perMinute) / 60000);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}

export interface AccessRecord {
  doorId: string;
  doorName?: string;
  granted: boolean;
  reason: string;
  credential: Credential;
  personId?: string;
  personName?: string;
  personKind?: Person['kind'];
  score?: number;
  requestedBy?: string;
  evidence?: Record<string, unknown>;
  /** Factors the decision rested on, in order (`['face', 'pin']`). */
  via: Factor[];
  /** Card number (canonical form) of a card credential. */
  card?: string;
  /** Where the PIN came from ("keypad", "console:<user>", "mqtt:<command id>"). Never the PIN. */
  pinSource?: string;
  /** Wrong PINs in a row for this person so far (pin_wrong). */
  wrongPins?: number;
  /** UTC ms the person's PIN is locked until (pin_locked, or the pin_wrong that locked it). */
  pinLockedUntil?: number;
  /** End of the unlock pulse (UTC ms) when granted. */
  unlockedUntil?: number;
  /** The door was already released by a fire release. */
  fireReleased?: boolean;
  /** Human-readable detail of a denial. */
  message?: string;
  decidedAt: number;
}

export interface DecisionOutcome {
  decision: AccessDecision;
  record: AccessRecord;
  until?: number;
  extended?: boolean;
  /** Time taken to decide and drive the lock (ms). */
  elapsedMs: number;
}

export interface AccessServiceDeps {
  cfg: DoorsConfig;
  doors: ReadonlyMap<string, DoorController>;
  people: PeopleStore;
  now: () => number;
  week: ZonedWeek;
  /** Every decision, for the outbox, the local log, the bus and metrics. */
  record: (o: DecisionOutcome) => void;
  status: () => DoorsStatus;
  events: (q: AccessEventQuery) => AccessEvent[];
  /** Timers of the PIN wait and the PIN lockout (virtual in tests). */
  timers: Timers;
  /** A door starts (PendingPin) or stops (undefined) waiting for a PIN. */
  pinWait?: (doorId: string, p: PendingPin | undefined) => void;
  /** A person's PIN is locked (active) or unlocked again. */
  pinLockout?: (personId: string, active: boolean, since: number, until: number) => void;
}

export interface DecideOptions {
  /** Unlock length instead of the door's unlockMs (remote unlock). */
  durationMs?: number;
  /** The second factor has been verified: decide now, with these factors. */
  secondFactor?: { via: Factor[]; pinSource: string };
}

function factorOf(c: Credential): Factor {
  return c === 'fire' ? 'remote' : c;
}

export class AccessService implements AccessApi {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly groupsOfDoor = new Map<string, Set<string>>();
  private readonly lastDecision = new Map<string, AccessDecision>();
  private readonly pending = new Map<string, Pending>();
  private readonly wrongPins = new Map<string, { count: number; lockedUntil?: number; lockedSince?: number; timer?: TimerHandle }>();
  private t0 = 0;

  constructor(private readonly d: AccessServiceDeps) {
    for (const door of d.cfg.doors) this.groupsOfDoor.set(door.id, new Set());
    for (const g of d.cfg.groups) for (const id of g.doors) this.groupsOfDoor.get(id)?.add(g.id);
  }

  groupsOf(doorId: string): string[] {
    return [...(this.groupsOfDoor.get(doorId) ?? [])];
  }

  last(doorId: string): AccessDecision | undefined {
    return this.lastDecision.get(doorId);
  }

  decide(req: AccessRequest): AccessDecision {
    return this.evaluate(req).decision;
  }

  private record(req: AccessRequest, via: Factor[], now: number): AccessRecord {
    const door = this.d.doors.get(req.doorId);
    const person = req.personId !== undefined ? this.d.people.get(req.personId) : undefined;
    return {
      doorId: req.doorId,
      ...(door?.cfg.name !== undefined ? { doorName: door.cfg.name } : {}),
      granted: false,
      reason: '',
      credential: req.credential,
      via,
      ...(req.card !== undefined ? { card: req.card } : {}),
      ...(req.personId !== undefined ? { personId: req.personId } : {}),
      ...(person?.name !== undefined ? { personName: person.name } : {}),
      ...(person ? { personKind: person.kind } : {}),
      ...(req.score !== undefined ? { score: req.score } : {}),
      ...(req.requestedBy !== undefined ? { requestedBy: req.requestedBy } : {}),
      ...(req.evidence !== undefined ? { evidence: req.evidence } : {}),
      decidedAt: now,
    };
  }

  /** Decide, unlock when granted, record. Never throws. */
  evaluate(req: AccessRequest, opts: DecideOptions = {}): DecisionOutcome {
    this.t0 = performance.now();
    const now = this.d.now();
    const door = this.d.doors.get(req.doorId);
    const person = req.personId !== undefined ? this.d.people.lookup(req.personId) : undefined;
    const rec: AccessRecord = { ...this.record(req, opts.secondFactor?.via ?? [factorOf(req.credential)], now), ...(opts.secondFactor ? { pinSource: opts.secondFactor.pinSource } : {}) };
    const deny = (reason: string, message: string): DecisionOutcome => this.finish({ ...rec, reason, message });

    if (!door) return deny('unknown_door', `no door "${req.doorId}" on this gateway (doors: ${[...this.d.doors.keys()].join(', ') || 'none'})`);
    if (door.fault !== undefined) return deny('door_fault', `door ${door.id} cannot be driven: ${door.fault}`);
    if (!CREDENTIALS.includes(req.credential) || req.credential === 'fire') return deny('invalid_credential', `credential "${String(req.credential)}" cannot request access (fire release has its own input and command)`);
    const released = door.isReleased();
    if (req.credential !== 'exit_button') {
      if (req.personId === undefined) {
        if (req.credential === 'face' || req.credential === 'card') return deny('person_required', `a ${req.credential} decision needs the person it belongs to`);
      } else {
        const p = person?.person;
        if (!p) return deny('unknown_person', `no person "${req.personId}"`);
        if (!p.enabled) return deny('disabled', `person ${p.id} is disabled`);
        if (p.validFrom !== undefined && now < p.validFrom) return deny('not_yet_valid', `person ${p.id} is valid from ${new Date(p.validFrom).toISOString()}`);
        if (p.validUntil !== undefined && now >= p.validUntil) return deny('expired', `person ${p.id} was valid until ${new Date(p.validUntil).toISOString()}`);
        const doorGroups = this.groupsOfDoor.get(door.id)!;
        if (!p.doorGroups.some((g) => doorGroups.has(g))) return deny('door_not_allowed', `none of ${p.id}'s door groups (${p.doorGroups.join(', ') || 'none'}) includes door ${door.id}`);
        if (person.intervals && !inSchedule(person.intervals, this.d.week.minuteOfWeek(now))) return deny('outside_schedule', `person ${p.id} has no access window now (${this.d.week.timeZone})`);
        if ((req.credential === 'face' || req.credential === 'card') && !opts.secondFactor) {
          const mode = accessMode(door.cfg);
          if (!ACCEPTS[mode].includes(req.credential)) return deny('credential_not_accepted', `door ${door.id} (mode ${mode}) does not accept a ${req.credential}`);
          if (!released && (PIN_MODES.has(mode) || p.needsSecondFactor === true)) return this.askPin(req, rec, door, p, mode, now);
        }
      }
      // A released door is open anyway: granting it costs no relay movement and no token.
      if (!released) {
        let bucket = this.buckets.get(door.id);
        if (!bucket) this.buckets.set(door.id, (bucket = new TokenBucket(this.d.cfg.rateLimit.burst, this.d.cfg.rateLimit.perMinute, now)));
        if (!bucket.take(now)) return deny('rate_limited', `door ${door.id} unlock rate limit reached (${this.d.cfg.rateLimit.burst} at once, ${this.d.cfg.rateLimit.perMinute}/min)`);
      }
    }
    if (released) return this.finish({ ...rec, granted: true, reason: 'granted', fireReleased: true });
    const { until, extended } = door.unlock(opts.durationMs ?? door.cfg.unlockMs, `granted:${req.credential}`);
    if (door.fault !== undefined) return deny('door_fault', `door ${door.id} could not be unlocked: ${door.fault}`);
    return this.finish({ ...rec, granted: true, reason: 'granted', unlockedUntil: until }, until, extended);
  }

  /** UTC ms a person's PIN stays locked until, when locked now. */
  private pinLockedUntil(personId: string, now: number): number | undefined {
    const w = this.wrongPins.get(personId);
    return w?.lockedUntil !== undefined && now < w.lockedUntil ? w.lockedUntil : undefined;
  }

  /** The first factor passed and the door needs the PIN: wait for it (or deny at once). */
  private askPin(req: AccessRequest, rec: AccessRecord, door: DoorController, p: Person, mode: AccessMode, now: number): DecisionOutcome {
    const why = PIN_MODES.has(mode) ? `door ${door.id} is ${mode}` : `person ${p.id} needs a second factor`;
    const locked = this.pinLockedUntil(p.id, now);
    if (locked !== undefined) return this.finish({ ...rec, reason: 'pin_locked', pinLockedUntil: locked, message: `${why}, and ${p.id}'s PIN is locked until ${new Date(locked).toISOString()} after ${this.d.cfg.pin.maxWrong} wrong PINs` });
    if (p.pinHash === undefined) return this.finish({ ...rec, reason: 'second_factor_required', message: `${why} (PIN after the ${req.credential}), but ${p.id} has no PIN: set one with person.upsert` });
    const existing = this.pending.get(door.id);
    if (existing && existing.personId === p.id) return this.pendingOutcome(existing, rec);
    if (existing) this.endPending(existing, 'pin_superseded', `${req.credential} of another person at door ${door.id} before ${existing.personId}'s PIN was entered`);
    const ms = door.cfg.access.pinTimeoutS * 1000;
    const pend: Pending = {
      doorId: door.id,
      personId: p.id,
      via: [...rec.via],
      until: now + ms,
      req,
      timer: this.d.timers.setTimeout(() => {
        if (this.pending.get(door.id) === pend) this.endPending(pend, 'pin_timeout', `no PIN within ${door.cfg.access.pinTimeoutS} s`);
      }, ms),
    };
    this.pending.set(door.id, pend);
    this.d.pinWait?.(door.id, { doorId: pend.doorId, personId: pend.personId, via: pend.via, until: pend.until });
    return this.pendingOutcome(pend, rec);
  }

  private pendingOutcome(pend: Pending, rec: AccessRecord): DecisionOutcome {
    const r: AccessRecord = { ...rec, reason: 'pin_required', message: `waiting for ${pend.personId}'s PIN until ${new Date(pend.until).toISOString()}` };
    return {
      decision: { granted: false, reason: 'pin_required', pending: true, doorId: r.doorId, personId: pend.personId, credential: r.credential, via: r.via, decidedAt: r.decidedAt },
      record: r,
      elapsedMs: performance.now() - this.t0,
    };
  }

  /** Stop waiting and record the denial. */
  private endPending(pend: Pending, reason: string, message: string, extra: Partial<AccessRecord> = {}): DecisionOutcome {
    this.d.timers.clearTimeout(pend.timer);
    if (this.pending.get(pend.doorId) === pend) {
      this.pending.delete(pend.doorId);
      this.d.pinWait?.(pend.doorId, undefined);
    }
    this.t0 = performance.now();
    return this.finish({ ...this.record(pend.req, extra.via ?? pend.via, this.d.now()), ...extra, reason, message });
  }

  /** The door waiting for a PIN, if any. */
  awaitingPin(doorId: string): PendingPin | undefined {
    const p = this.pending.get(doorId);
    return p ? { doorId: p.doorId, personId: p.personId, via: [...p.via], until: p.until } : undefined;
  }

  /**
   * A PIN entered at a door (keypad, console pad, door.pin). Undefined when the door is
   * not waiting for one. Verified against the waiting person's PIN only; a wrong one ends
   * the wait (the person presents the face or card again) and counts toward the lockout.
   * `source` says where it came from; the PIN itself is never recorded or logged.
   */
  async submitPin(doorId: string, pin: string, source: string): Promise<DecisionOutcome | undefined> {
    const pend = this.pending.get(doorId);
    if (!pend) return undefined;
    // Taken at once: a second PIN typed while this one is checked finds no wait.
    this.d.timers.clearTimeout(pend.timer);
    this.pending.delete(doorId);
    this.d.pinWait?.(doorId, undefined);
    const via: Factor[] = [...pend.via, 'pin'];
    const locked = this.pinLockedUntil(pend.personId, this.d.now());
    if (locked !== undefined) return this.endPending(pend, 'pin_locked', `${pend.personId}'s PIN is locked until ${new Date(locked).toISOString()}`, { via, pinSource: source, pinLockedUntil: locked });
    const p = this.d.people.get(pend.personId);
    // Person deleted or PIN removed meanwhile: the rules decide (unknown_person…) or it is a wrong PIN.
    if (!p) return this.evaluate(pend.req, { secondFactor: { via, pinSource: source } });
    const ok = p.pinHash !== undefined && (await verifyPin(pin, p.pinHash).catch(() => false));
    if (!ok) {
      const w = this.countWrong(pend.personId);
      return this.endPending(pend, 'pin_wrong', `the PIN entered is not ${pend.personId}'s${w.lockedUntil !== undefined ? `: ${this.d.cfg.pin.maxWrong} wrong in a row, PIN locked until ${new Date(w.lockedUntil).toISOString()}` : ''}`, {
        via,
        pinSource: source,
        wrongPins: w.count,
        ...(w.lockedUntil !== undefined ? { pinLockedUntil: w.lockedUntil } : {}),
      });
    }
    const w = this.wrongPins.get(pend.personId);
    if (w && w.lockedUntil === undefined) this.wrongPins.delete(pend.personId);
    return this.evaluate(pend.req, { secondFactor: { via, pinSource: source } });
  }

  private countWrong(personId: string): { count: number; lockedUntil?: number } {
    let w = this.wrongPins.get(personId);
    if (!w) this.wrongPins.set(personId, (w = { count: 0 }));
    w.count++;
    const count = w.count;
    if (count < this.d.cfg.pin.maxWrong) return { count };
    const now = this.d.now();
    const ms = this.d.cfg.pin.lockoutS * 1000;
    const entry = w;
    entry.count = 0;
    entry.lockedSince = now;
    entry.lockedUntil = now + ms;
    this.d.timers.clearTimeout(entry.timer);
    entry.timer = this.d.timers.setTimeout(() => {
      if (this.wrongPins.get(personId) === entry) this.wrongPins.delete(personId);
      this.d.pinLockout?.(personId, false, now, now + ms);
    }, ms);
    this.d.pinLockout?.(personId, true, now, entry.lockedUntil);
    return { count, lockedUntil: entry.lockedUntil };
  }

  /** People whose PIN is locked now. */
  pinLocks(): Array<{ personId: string; until: number }> {
    const now = this.d.now();
    return [...this.wrongPins].filter(([, w]) => w.lockedUntil !== undefined && now < w.lockedUntil).map(([personId, w]) => ({ personId, until: w.lockedUntil! }));
  }

  /** End every wait and lockout timer (module stop). */
  stop(): void {
    for (const p of this.pending.values()) this.d.timers.clearTimeout(p.timer);
    this.pending.clear();
    for (const w of this.wrongPins.values()) this.d.timers.clearTimeout(w.timer);
  }

  /** Record a denial decided outside the rules (a stale remote unlock), like any other decision. */
  refuse(req: AccessRequest, reason: string, message: string): DecisionOutcome {
    this.t0 = performance.now();
    const door = this.d.doors.get(req.doorId);
    return this.finish({
      doorId: req.doorId,
      ...(door?.cfg.name !== undefined ? { doorName: door.cfg.name } : {}),
      granted: false,
      reason,
      credential: req.credential,
      via: [factorOf(req.credential)],
      ...(req.personId !== undefined ? { personId: req.personId } : {}),
      ...(req.requestedBy !== undefined ? { requestedBy: req.requestedBy } : {}),
      message,
      decidedAt: this.d.now(),
    });
  }

  private finish(rec: AccessRecord, until?: number, extended?: boolean): DecisionOutcome {
    const decision: AccessDecision = {
      granted: rec.granted,
      reason: rec.reason,
      doorId: rec.doorId,
      ...(rec.personId !== undefined ? { personId: rec.personId } : {}),
      credential: rec.credential,
      via: rec.via,
      decidedAt: rec.decidedAt,
    };
    const outcome: DecisionOutcome = { decision, record: rec, elapsedMs: performance.now() - this.t0, ...(until !== undefined ? { until } : {}), ...(extended !== undefined ? { extended } : {}) };
    if (this.d.doors.has(rec.doorId)) this.lastDecision.set(rec.doorId, decision);
    this.d.record(outcome);
    return outcome;
  }

  doors(): Array<{ id: string; name?: string }> {
    return this.d.cfg.doors.map((d) => ({ id: d.id, ...(d.name !== undefined ? { name: d.name } : {}) }));
  }

  mayEnter(doorId: string, personId: string): boolean {
    const door = this.d.doors.get(doorId);
    const found = this.d.people.lookup(personId);
    if (!door || !found) return false;
    const p = found.person;
    const now = this.d.now();
    if (!p.enabled) return false;
    if (p.validFrom !== undefined && now < p.validFrom) return false;
    if (p.validUntil !== undefined && now >= p.validUntil) return false;
    const doorGroups = this.groupsOfDoor.get(door.id)!;
    if (!p.doorGroups.some((g) => doorGroups.has(g))) return false;
    return !found.intervals || inSchedule(found.intervals, this.d.week.minuteOfWeek(now));
  }

  person(id: string): PersonSummary | undefined {
    const p = this.d.people.get(id);
    return p ? summary(p) : undefined;
  }

  status(): DoorsStatus {
    return this.d.status();
  }

  events(query: AccessEventQuery): AccessEvent[] {
    return this.d.events(query);
  }
}
