// The door and person commands (platform over MQTT, console locally). Argument shapes
// are checked by the registry from the TypeBox schemas below; what a schema cannot say
// (schedules, validity order, base64, door ids) is checked here, before anything is
// stored or moved, and fails with a CommandError whose code names the problem.
import { Type, type Static } from '@sinclair/typebox';
import { CommandError, type CommandMeta, type CommandRegistrar } from '../commands/registry.js';
import { Ident, OneOf } from '../config/types.js';
import type { FacesApi, FaceEnrolResult } from '../vision/api.js';
import type { AccessEvent, AccessEventQuery, Credential, DoorsStatus } from './api.js';
import type { AccessService } from './access.js';
import type { DoorController } from './door.js';
import { publicPerson, type PeopleStore, type Person } from './people.js';
import { hashPin, PIN_PATTERN } from './pin.js';
import { canonicalCard } from '../../drivers/wiegand/codec.js';
import { scheduleProblems, type TimeWindow } from './schedule.js';
// The console's pages read these results: the handlers' answers are checked against its API types.
import type { AccessEventsResult, DoorDecisionResult, DoorStatusResult, PersonDeleteResult, PersonListResult, PersonUpsertResult } from '../console/api-types.js';
import type { DoorsConfig } from './schema.js';

export interface DoorsRuntime {
  cfg: DoorsConfig;
  access: AccessService;
  people: PeopleStore;
  doors: ReadonlyMap<string, DoorController>;
  now(): number;
  faces(): FacesApi | undefined;
  fire(action: 'release' | 'clear', by: string): DoorsStatus['fire'];
  status(): DoorsStatus;
  events(q: AccessEventQuery): AccessEvent[];
  /** Count a refused input by code (estate_doors_rejected_total). */
  rejected(code: string): void;
  /** Count a PIN entry by door and outcome (estate_door_pin_entries_total). */
  pinEntered?(doorId: string, outcome: string): void;
}

const Time = Type.Union([Type.Integer({ minimum: 0 }), Type.String({ minLength: 1, maxLength: 40 })], { description: 'UTC ms, or an ISO 8601 date-time ("2026-01-31T18:00:00+08:00").' });
const KINDS = ['resident', 'staff', 'visitor'] as const;
const CREDENTIALS = ['face', 'card', 'remote', 'exit_button', 'console', 'fire'] as const;

const PersonArgs = Type.Object(
  {
    id: Ident({ description: 'Person id (from the platform).' }),
    name: Type.Optional(Type.String({ maxLength: 100 })),
    kind: OneOf(KINDS),
    validFrom: Type.Optional(Time),
    validUntil: Type.Optional(Time),
    doorGroups: Type.Array(Ident(), { maxItems: 64, uniqueItems: true }),
    schedule: Type.Optional(
      Type.Array(
        Type.Object(
          {
            days: Type.Array(Type.String({ maxLength: 10 }), { maxItems: 7 }),
            start: Type.String({ maxLength: 10 }),
            end: Type.String({ maxLength: 10 }),
          },
          { additionalProperties: false },
        ),
        { maxItems: 32, description: 'Weekly windows in doors.timeZone; absent or empty = any time.' },
      ),
    ),
    enabled: Type.Optional(Type.Boolean()),
    note: Type.Optional(Type.String({ maxLength: 500 })),
    cards: Type.Optional(
      Type.Array(Type.String({ minLength: 1, maxLength: 40 }), {
        maxItems: 16,
        description: 'Card numbers as "<bits>:<facility>:<card>" ("26:123:4567", "34:1234:56789"); unique across people. Omitted: the cards stored are kept; [] removes them.',
      }),
    ),
    pin: Type.Optional(Type.Union([Type.String({ pattern: PIN_PATTERN }), Type.Null()], { description: 'PIN of 4–8 digits, stored only as a salted scrypt hash, never returned. Omitted: the stored PIN is kept; null removes it.' })),
    needsSecondFactor: Type.Optional(Type.Boolean({ description: 'Ask for the PIN after a face or card at every door. Omitted: kept as stored (false for a new person).' })),
    faces: Type.Optional(
      Type.Object(
        {
          photos: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 8_000_000 }), { maxItems: 20, description: 'JPEG/PNG photos, base64.' })),
          embeddings: Type.Optional(Type.Array(Type.Array(Type.Number(), { minItems: 1, maxItems: 4096 }), { maxItems: 50 })),
          replace: Type.Optional(Type.Boolean()),
          gateUpdates: Type.Optional(
            Type.Boolean({
              description: "The resident's consent to improve their face record from gate captures (confident, live grants only). false withdraws it and deletes every template learned at the gate. Absent: unchanged (no consent until given).",
            }),
          ),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);

function parseTime(v: number | string | undefined, field: string): number | undefined {
  if (v === undefined || typeof v === 'number') return v;
  // Require a full date-time with a zone: a bare date would be read in the gateway's zone.
  const t = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(v) ? Date.parse(v) : NaN;
  if (Number.isNaN(t)) throw new CommandError('bad_validity', `${field}: "${v}" is not UTC ms or an ISO 8601 date-time with a zone`);
  return t;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** person.list: the gate-update consent and the learned templates, only where consent was given. */
function faceConsent(svc: FacesApi, id: string): { faceGateUpdates?: true; faceLearned?: number } {
  const g = svc.gateUpdates(id);
  return g.gateUpdates || g.learned ? { ...(g.gateUpdates ? { faceGateUpdates: true as const } : {}), faceLearned: g.learned } : {};
}

function decodePhotos(photos: readonly string[]): Buffer[] {
  return photos.map((p, i) => {
    const s = p.replace(/^data:[^;]+;base64,/, '').replace(/\s+/g, '');
    if (s.length % 4 !== 0 || !BASE64.test(s)) throw new CommandError('bad_photo', `faces.photos[${i}]: not base64`);
    return Buffer.from(s, 'base64');
  });
}

type PersonInput = Omit<Static<typeof PersonArgs>, 'faces' | 'pin'>;

/** Card numbers in canonical form, each once; throws bad_card. */
function canonicalCards(cards: readonly string[]): string[] {
  const out: string[] = [];
  cards.forEach((c, i) => {
    const k = canonicalCard(c);
    if (k === undefined) throw new CommandError('bad_card', `cards[${i}]: "${c}" is not a card number "<bits>:<facility>:<card>" (26:0–255:0–65535 or 34:0–65535:0–65535)`);
    if (out.includes(k)) throw new CommandError('bad_card', `cards[${i}]: ${k} is listed twice`);
    out.push(k);
  });
  return out;
}

/** Refuse a card another person holds (card_in_use); `others` overrides the store (a sync batch). */
function checkCards(id: string, cards: readonly string[], rt: DoorsRuntime, holderOf: (card: string) => string | undefined = (c) => rt.people.holderOf(c)): void {
  for (const c of cards) {
    const holder = holderOf(c);
    if (holder !== undefined && holder !== id) throw new CommandError('card_in_use', `card ${c} is held by person ${holder}: remove it there first (a card opens doors for one person only)`, { card: c, heldBy: holder });
  }
}

/** Validate one person's arguments (schedule, validity) and build the stored form; throws CommandError. */
function buildPerson(a: PersonInput, rt: DoorsRuntime): { person: Person; warnings: string[] } {
  const validFrom = parseTime(a.validFrom, 'validFrom');
  const validUntil = parseTime(a.validUntil, 'validUntil');
  if (validFrom !== undefined && validUntil !== undefined && validUntil <= validFrom) throw new CommandError('bad_validity', `validUntil (${new Date(validUntil).toISOString()}) must be after validFrom (${new Date(validFrom).toISOString()})`);
  const schedule = (a.schedule ?? []) as TimeWindow[];
  const problems = scheduleProblems(schedule);
  if (problems.length) throw new CommandError('bad_schedule', `malformed schedule: ${problems.join('; ')}`, { problems });
  const now = rt.now();
  const warnings: string[] = [];
  const known = new Set(rt.cfg.groups.map((g) => g.id));
  for (const g of a.doorGroups) if (!known.has(g)) warnings.push(`doorGroups: "${g}" is not a door group on this gateway (groups: ${[...known].join(', ') || 'none'})`);
  if (validUntil !== undefined && validUntil <= now) warnings.push(`validity ended ${new Date(validUntil).toISOString()}: the person will be denied (expired)`);
  if (validFrom !== undefined && validFrom > now) warnings.push(`validity starts ${new Date(validFrom).toISOString()}: the person is denied until then (not_yet_valid)`);
  const person: Person = {
    id: a.id,
    ...(a.name !== undefined ? { name: a.name } : {}),
    kind: a.kind,
    ...(validFrom !== undefined ? { validFrom } : {}),
    ...(validUntil !== undefined ? { validUntil } : {}),
    doorGroups: a.doorGroups,
    ...(schedule.length ? { schedule } : {}),
    enabled: a.enabled ?? true,
    ...(a.note !== undefined ? { note: a.note } : {}),
    updatedAt: now,
  };
  // The second factor's fields are kept when omitted: platforms that predate them must
  // not wipe a PIN they cannot read back, nor cards or the flag set from the console.
  const stored = rt.people.get(a.id);
  const cards = a.cards !== undefined ? canonicalCards(a.cards) : (stored?.cards ?? []);
  if (cards.length) person.cards = cards;
  const needs = a.needsSecondFactor ?? stored?.needsSecondFactor ?? false;
  if (needs) person.needsSecondFactor = true;
  if (stored?.pinHash !== undefined) person.pinHash = stored.pinHash;
  return { person, warnings };
}

/** Whether a door this person may use asks everyone for a PIN. */
function modeNeedsPin(rt: DoorsRuntime, p: Person): boolean {
  const doors = new Set(rt.cfg.groups.filter((g) => p.doorGroups.includes(g.id)).flatMap((g) => g.doors));
  return rt.cfg.doors.some((d) => doors.has(d.id) && (d.access.mode === 'face_and_pin' || d.access.mode === 'card_and_pin'));
}

function doorOf(rt: DoorsRuntime, doorId: string): DoorController {
  const door = rt.doors.get(doorId);
  if (!door) throw fail(rt, 'unknown_door', `no door "${doorId}" on this gateway`, { doors: [...rt.doors.keys()] });
  return door;
}

function fail(rt: DoorsRuntime, code: string, message: string, details?: unknown): CommandError {
  rt.rejected(code);
  return new CommandError(code, message, details);
}

function requester(meta: CommandMeta): string {
  return meta.user ? `${meta.source}:${meta.user}` : `${meta.source}:${meta.id}`;
}

export function registerDoorCommands(reg: CommandRegistrar, rt: DoorsRuntime): void {
  reg.register({
    name: 'person.upsert',
    pages: ['people'],
    role: 'technician',
    secretArgs: ['pin'],
    description: 'Create or replace a person (resident, staff, visitor): door groups, validity, weekly windows; optionally enrol face photos/embeddings.',
    args: PersonArgs,
    timeoutMs: 120_000,
    handler: async (a) => {
      let built;
      let photos: Buffer[] | undefined;
      try {
        built = buildPerson(a, rt);
        checkCards(a.id, built.person.cards ?? [], rt);
        photos = a.faces?.photos ? decodePhotos(a.faces.photos) : undefined;
      } catch (err) {
        if (err instanceof CommandError) rt.rejected(err.code);
        throw err;
      }
      const { person, warnings } = built;
      if (a.pin === null) delete person.pinHash;
      else if (a.pin !== undefined) {
        person.pinHash = await hashPin(a.pin);
        // Another upsert may have given one of these cards to someone while the hash ran.
        try {
          checkCards(a.id, person.cards ?? [], rt);
        } catch (err) {
          if (err instanceof CommandError) rt.rejected(err.code);
          throw err;
        }
      }
      if ((person.needsSecondFactor || modeNeedsPin(rt, person)) && person.pinHash === undefined) warnings.push('a PIN is required for this person (needsSecondFactor or a door in face_and_pin/card_and_pin mode) but none is set: those doors deny them (second_factor_required)');
      const existed = rt.people.upsert(person);
      type Faces = ((FaceEnrolResult & { available: true }) | { available: false; message: string } | { available: true; error: string }) & { gateUpdates?: boolean; learnedRemoved?: number; consentError?: string };
      let faces: Faces | undefined;
      const enrolling = !!(a.faces && (photos?.length || a.faces.embeddings?.length));
      const consent = a.faces?.gateUpdates;
      if (enrolling || consent !== undefined) {
        const svc = rt.faces();
        if (!svc) faces = { available: false, message: 'face access is unavailable on this gateway (no face recognition running): the person was stored without face templates' };
        else {
          if (enrolling) {
            try {
              faces = { available: true, ...(await svc.enrol(a.id, { ...(photos ? { photos } : {}), ...(a.faces!.embeddings ? { embeddings: a.faces!.embeddings } : {}), ...(a.faces!.replace !== undefined ? { replace: a.faces!.replace } : {}) })) };
            } catch (err) {
              faces = { available: true, error: `face enrolment failed: ${(err as Error).message}` };
            }
          }
          if (consent !== undefined) {
            // After the enrolment: a replacing enrolment already removed learned templates.
            const base: Faces = faces ?? { available: true, accepted: 0, rejected: [], templates: svc.count(a.id) };
            try {
              const c = await svc.setGateUpdates(a.id, consent);
              // The count after the change: a withdrawal deletes the learned templates.
              faces = { ...base, ...('templates' in base ? { templates: svc.count(a.id) } : {}), gateUpdates: c.gateUpdates, ...(consent ? {} : { learnedRemoved: c.learnedRemoved }) };
            } catch (err) {
              faces = { ...base, consentError: `gate-update consent not stored: ${(err as Error).message}` };
            }
          }
        }
      }
      return { id: a.id, created: !existed, person: publicPerson(person), ...(warnings.length ? { warnings } : {}), ...(faces ? { faces } : {}) } satisfies PersonUpsertResult;
    },
  });

  reg.register({
    name: 'person.sync',
    pages: ['people'],
    role: 'technician',
    description: 'Create or replace many people in one transaction (platform sync); no face photos. All-or-nothing: any invalid entry refuses the whole batch.',
    // No PINs in a sync: each is a slow hash (person.upsert sets them one at a time).
    args: Type.Object({ people: Type.Array(Type.Omit(PersonArgs, ['faces', 'pin']), { minItems: 1, maxItems: 5000 }) }, { additionalProperties: false }),
    timeoutMs: 120_000,
    handler: (a) => {
      const built: Array<{ person: Person; warnings: string[] }> = [];
      const problems: string[] = [];
      const seen = new Set<string>();
      a.people.forEach((p, i) => {
        if (seen.has(p.id)) problems.push(`people[${i}]: id "${p.id}" appears twice`);
        seen.add(p.id);
        try {
          built.push(buildPerson(p, rt));
        } catch (err) {
          if (!(err instanceof CommandError)) throw err;
          problems.push(`people[${i}] (${p.id}): ${err.code}: ${err.message}`);
        }
      });
      // Cards: unique in the batch, and against the people the batch does not replace.
      const inBatch = new Map<string, string>();
      for (const b of built)
        for (const c of b.person.cards ?? []) {
          const other = inBatch.get(c);
          if (other !== undefined) problems.push(`${b.person.id}: card_in_use: card ${c} is also given to ${other} in this batch`);
          else inBatch.set(c, b.person.id);
        }
      for (const b of built) {
        try {
          checkCards(b.person.id, b.person.cards ?? [], rt, (c) => {
            const h = rt.people.holderOf(c);
            return h !== undefined && seen.has(h) ? inBatch.get(c) : h;
          });
        } catch (err) {
          if (!(err instanceof CommandError)) throw err;
          problems.push(`${b.person.id}: ${err.code}: ${err.message}`);
        }
      }
      if (problems.length) throw fail(rt, 'bad_people', `${problems.length} invalid entr${problems.length === 1 ? 'y' : 'ies'}, nothing stored: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? '; …' : ''}`, { problems });
      const created = rt.people.upsertMany(built.map((b) => b.person));
      const warnings = Object.fromEntries(built.filter((b) => b.warnings.length).map((b) => [b.person.id, b.warnings]));
      return { upserted: built.length, created, ...(Object.keys(warnings).length ? { warnings } : {}) };
    },
  });

  reg.register({
    name: 'person.delete',
    pages: ['people'],
    role: 'technician',
    description: 'Delete a person and their face templates.',
    args: Type.Object({ id: Ident() }, { additionalProperties: false }),
    handler: async (a) => {
      if (!rt.people.get(a.id)) throw fail(rt, 'unknown_person', `no person "${a.id}"`);
      rt.people.delete(a.id);
      const svc = rt.faces();
      let facesRemoved: number | null = null;
      if (svc) facesRemoved = await svc.remove(a.id);
      return { id: a.id, deleted: true, facesRemoved, ...(svc ? {} : { note: 'face access unavailable: no face templates to remove here' }) } satisfies PersonDeleteResult;
    },
  });

  reg.register({
    name: 'person.list',
    pages: ['people'],
    role: 'technician',
    description: 'People, filtered and paged (sorted by id).',
    args: Type.Object(
      {
        kind: Type.Optional(OneOf(KINDS)),
        doorGroup: Type.Optional(Ident()),
        query: Type.Optional(Type.String({ maxLength: 100 })),
        limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
        offset: Type.Integer({ minimum: 0, default: 0 }),
      },
      { additionalProperties: false },
    ),
    handler: (a) => {
      const svc = rt.faces();
      const { total, people } = rt.people.list({ ...(a.kind ? { kind: a.kind } : {}), ...(a.doorGroup ? { doorGroup: a.doorGroup } : {}), ...(a.query ? { query: a.query } : {}), limit: a.limit, offset: a.offset });
      return { total, offset: a.offset, people: people.map((p) => ({ ...publicPerson(p), ...(svc ? { faceTemplates: svc.count(p.id), ...faceConsent(svc, p.id) } : {}) })), faceAccess: svc !== undefined } satisfies PersonListResult;
    },
  });

  reg.register({
    name: 'person.get',
    pages: ['people'],
    role: 'technician',
    description: 'One person as stored (door groups, validity, schedule, cards, needsSecondFactor, hasPin — never the PIN), with the face template count.',
    args: Type.Object({ id: Ident() }, { additionalProperties: false }),
    handler: (a) => {
      const p = rt.people.get(a.id);
      if (!p) throw fail(rt, 'unknown_person', `no person "${a.id}"`);
      const svc = rt.faces();
      const locked = rt.access.pinLocks().find((l) => l.personId === a.id);
      return { person: { ...publicPerson(p), ...(svc ? { faceTemplates: svc.count(p.id), ...faceConsent(svc, p.id) } : {}), ...(locked ? { pinLockedUntil: locked.until } : {}) } };
    },
  });

  reg.register({
    name: 'door.pin',
    // The PIN is the credential: this command alone never opens a door — it only completes
    // a face or card already accepted at that door for the person whose PIN it is. So the
    // touch pad at the door may run under the least console role.
    role: 'viewer',
    secretArgs: ['pin'],
    description: "Enter a PIN at a door (the console's touch pad at the door): completes the face or card the door is waiting on, for that person only.",
    args: Type.Object({ doorId: Ident(), pin: Type.String({ pattern: '^[0-9]{1,16}$' }) }, { additionalProperties: false }),
    handler: async (a, meta) => {
      const door = doorOf(rt, a.doorId);
      const o = await rt.access.submitPin(door.id, a.pin, requester(meta));
      rt.pinEntered?.(door.id, o ? o.decision.reason : 'unexpected');
      if (!o) throw fail(rt, 'no_pin_expected', `door ${door.id} is not waiting for a PIN (present the face or card first)`);
      if (!o.decision.granted) throw fail(rt, o.decision.reason, o.record.message ?? `access denied: ${o.decision.reason}`, { decision: o.decision });
      return { ...o.decision, ...(o.until !== undefined ? { unlockedUntil: o.until, extended: o.extended } : {}), ...(o.record.fireReleased ? { fireReleased: true } : {}) } satisfies DoorDecisionResult;
    },
  });

  reg.register({
    name: 'door.unlock',
    role: 'technician',
    description: "Unlock a door now (remote or console credential), for the door's unlockMs or durationMs. Refused when older than ttlMs.",
    args: Type.Object(
      {
        doorId: Ident(),
        durationMs: Type.Optional(Type.Integer({ minimum: 200 })),
        personId: Type.Optional(Ident({ description: 'On whose behalf (checked like any credential of that person).' })),
        ttlMs: Type.Optional(Type.Integer({ minimum: 100, maximum: 600000 })),
        note: Type.Optional(Type.String({ maxLength: 200 })),
      },
      { additionalProperties: false },
    ),
    handler: (a, meta) => {
      const door = doorOf(rt, a.doorId);
      if (a.durationMs !== undefined && a.durationMs > rt.cfg.remoteUnlock.maxDurationMs) throw fail(rt, 'bad_duration', `durationMs ${a.durationMs} exceeds doors.remoteUnlock.maxDurationMs (${rt.cfg.remoteUnlock.maxDurationMs})`);
      const credential: Credential = meta.source === 'console' ? 'console' : 'remote';
      const issued = meta.ts ?? meta.receivedAt;
      const ttl = a.ttlMs ?? rt.cfg.remoteUnlock.ttlMs;
      const age = rt.now() - issued;
      const by = requester(meta);
      if (age > ttl) {
        // A late unlock (uplink backlog, clock skew) is dangerous: refused and logged as a denial.
        rt.access.refuse({ doorId: door.id, credential, requestedBy: by, ...(a.personId ? { personId: a.personId } : {}) }, 'command_expired', `command is ${age} ms old, TTL ${ttl} ms`);
        throw fail(rt, 'expired', `door.unlock is ${age} ms old, older than its TTL of ${ttl} ms: not executed`);
      }
      const o = rt.access.evaluate({ doorId: door.id, credential, requestedBy: by, ...(a.personId ? { personId: a.personId } : {}), ...(a.note ? { evidence: { note: a.note } } : {}) }, a.durationMs !== undefined ? { durationMs: a.durationMs } : {});
      if (!o.decision.granted) throw fail(rt, o.decision.reason, o.record.message ?? `access denied: ${o.decision.reason}`, { decision: o.decision });
      return { ...o.decision, ...(o.until !== undefined ? { unlockedUntil: o.until, extended: o.extended } : {}), ...(o.record.fireReleased ? { fireReleased: true } : {}) } satisfies DoorDecisionResult;
    },
  });

  reg.register({
    name: 'door.lock',
    role: 'technician',
    description: 'End a running unlock now. Refused while the door is fire-released.',
    args: Type.Object({ doorId: Ident() }, { additionalProperties: false }),
    handler: (a) => {
      const door = doorOf(rt, a.doorId);
      if (door.isReleased()) throw fail(rt, 'fire_release_active', `door ${door.id} is fire-released; clear the release with door.fireRelease first`);
      return { doorId: door.id, wasUnlocked: door.lock('command') };
    },
  });

  reg.register({
    name: 'door.status',
    role: 'viewer',
    description: 'Every door (lock, contact, alarms, fault, last decision), groups, fire release, GPIO backend.',
    args: Type.Object({ doorId: Type.Optional(Ident()) }, { additionalProperties: false }),
    handler: (a) => {
      const s = rt.status() satisfies DoorStatusResult;
      if (a.doorId === undefined) return s;
      doorOf(rt, a.doorId);
      return { ...s, doors: s.doors.filter((d) => d.id === a.doorId) } satisfies DoorStatusResult;
    },
  });

  reg.register({
    name: 'door.fireRelease',
    role: 'technician',
    description: 'release: unlock every fire-release door until cleared. clear: end a commanded or latched release (refused while the fire input is active).',
    args: Type.Object({ action: OneOf(['release', 'clear'] as const) }, { additionalProperties: false }),
    handler: (a, meta) => ({ fire: rt.fire(a.action, requester(meta)) }),
  });

  reg.register({
    name: 'access.events',
    role: 'technician',
    description: 'Access decisions kept on the box, newest first, filtered (door, person, credential, granted, time range), paged with beforeSeq.',
    args: Type.Object(
      {
        doorId: Type.Optional(Ident()),
        personId: Type.Optional(Ident()),
        credential: Type.Optional(OneOf(CREDENTIALS)),
        granted: Type.Optional(Type.Boolean()),
        since: Type.Optional(Type.Integer({ minimum: 0 })),
        until: Type.Optional(Type.Integer({ minimum: 0 })),
        beforeSeq: Type.Optional(Type.Integer({ minimum: 1 })),
        limit: Type.Integer({ minimum: 1, maximum: 1000, default: 100 }),
      },
      { additionalProperties: false },
    ),
    handler: (a) => ({ events: rt.events(a as AccessEventQuery) }) satisfies AccessEventsResult,
  });
}
