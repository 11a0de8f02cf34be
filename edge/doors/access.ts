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
import { performance } from 'node:perf_hooks';
import type { AccessApi, AccessDecision, AccessRequest, Credential, DoorsStatus, AccessEvent, AccessEventQuery, PersonSummary } from './api.js';
import type { DoorController } from './door.js';
import { summary, type PeopleStore, type Person } from './people.js';
import { inSchedule, type ZonedWeek } from './schedule.js';
import type { DoorsConfig } from './schema.js';

const CREDENTIALS: readonly Credential[] = ['face', 'remote', 'exit_button', 'console', 'fire'];

/** Token bucket: `burst` unlocks at once, refilled at `perMinute`. */
export class TokenBucket {
  private tokens: number;
  private last: number;
  constructor(private readonly burst: number, private readonly perMinute: number, now: number) {
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
}

export interface DecideOptions {
  /** Unlock length instead of the door's unlockMs (remote unlock). */
  durationMs?: number;
}

export class AccessService implements AccessApi {
  private readonly buckets = new Map<string, TokenBucket>();
  private readonly groupsOfDoor = new Map<string, Set<string>>();
  private readonly lastDecision = new Map<string, AccessDecision>();
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

  /** Decide, unlock when granted, record. Never throws. */
  evaluate(req: AccessRequest, opts: DecideOptions = {}): DecisionOutcome {
    this.t0 = performance.now();
    const now = this.d.now();
    const door = this.d.doors.get(req.doorId);
    const person = req.personId !== undefined ? this.d.people.lookup(req.personId) : undefined;
    const rec: AccessRecord = {
      doorId: req.doorId,
      ...(door?.cfg.name !== undefined ? { doorName: door.cfg.name } : {}),
      granted: false,
      reason: '',
      credential: req.credential,
      ...(req.personId !== undefined ? { personId: req.personId } : {}),
      ...(person?.person.name !== undefined ? { personName: person.person.name } : {}),
      ...(person ? { personKind: person.person.kind } : {}),
      ...(req.score !== undefined ? { score: req.score } : {}),
      ...(req.requestedBy !== undefined ? { requestedBy: req.requestedBy } : {}),
      ...(req.evidence !== undefined ? { evidence: req.evidence } : {}),
      decidedAt: now,
    };
    const deny = (reason: string, message: string): DecisionOutcome => this.finish({ ...rec, reason, message });

    if (!door) return deny('unknown_door', `no door "${req.doorId}" on this gateway (doors: ${[...this.d.doors.keys()].join(', ') || 'none'})`);
    if (door.fault !== undefined) return deny('door_fault', `door ${door.id} cannot be driven: ${door.fault}`);
    if (!CREDENTIALS.includes(req.credential) || req.credential === 'fire') return deny('invalid_credential', `credential "${String(req.credential)}" cannot request access (fire release has its own input and command)`);
    const released = door.isReleased();
    if (req.credential !== 'exit_button') {
      if (req.personId === undefined) {
        if (req.credential === 'face') return deny('person_required', 'a face decision needs the matched person id');
      } else {
        const p = person?.person;
        if (!p) return deny('unknown_person', `no person "${req.personId}"`);
        if (!p.enabled) return deny('disabled', `person ${p.id} is disabled`);
        if (p.validFrom !== undefined && now < p.validFrom) return deny('not_yet_valid', `person ${p.id} is valid from ${new Date(p.validFrom).toISOString()}`);
        if (p.validUntil !== undefined && now >= p.validUntil) return deny('expired', `person ${p.id} was valid until ${new Date(p.validUntil).toISOString()}`);
        const doorGroups = this.groupsOfDoor.get(door.id)!;
        if (!p.doorGroups.some((g) => doorGroups.has(g))) return deny('door_not_allowed', `none of ${p.id}'s door groups (${p.doorGroups.join(', ') || 'none'}) includes door ${door.id}`);
        if (person.intervals && !inSchedule(person.intervals, this.d.week.minuteOfWeek(now))) return deny('outside_schedule', `person ${p.id} has no access window now (${this.d.week.timeZone})`);
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
