// People who may open doors, kept in the gateway's state database and mirrored in
// memory: a decision is a Map lookup and a few comparisons (well under 10 ms with tens
// of thousands of people), and works with the uplink down. SQLite is the truth; the
// map is rebuilt from it at start and written through on every change.
import type { Db } from '../store/sqlite.js';
import type { PersonSummary } from './api.js';
import { compileSchedule, type Intervals, type TimeWindow } from './schedule.js';

export type PersonKind = PersonSummary['kind'];

export interface Person extends PersonSummary {
  /** Weekly windows; absent or empty = any time. */
  schedule?: TimeWindow[];
  enabled: boolean;
  note?: string;
  updatedAt: number;
  /** Card numbers in the canonical form ("26:123:4567"), unique across people. */
  cards?: string[];
  /** Ask this person for the PIN after a face or card at every door. */
  needsSecondFactor?: boolean;
  /** scrypt hash of the PIN (pin.ts). Never leaves the box: see publicPerson(). */
  pinHash?: string;
}

/** A person as shown to anyone (commands, console): without the PIN hash, with hasPin. */
export type PublicPerson = Omit<Person, 'pinHash'> & { hasPin: boolean };

export function publicPerson(p: Person): PublicPerson {
  const { pinHash, ...rest } = p;
  return { ...rest, hasPin: pinHash !== undefined };
}

interface Cached {
  person: Person;
  groups: ReadonlySet<string>;
  intervals: Intervals | undefined;
}

export interface PersonFilter {
  kind?: PersonKind;
  doorGroup?: string;
  /** Substring of id or name (case-insensitive). */
  query?: string;
  limit: number;
  offset: number;
}

export class PeopleStore {
  private readonly cache = new Map<string, Cached>();
  /** Card number → holder. */
  private readonly cards = new Map<string, string>();
  private readonly upsertStmt;
  private readonly deleteStmt;

  constructor(private readonly db: Db) {
    db.exec(`CREATE TABLE IF NOT EXISTS door_people (
      id TEXT PRIMARY KEY,
      body TEXT NOT NULL,
      updated_at INTEGER NOT NULL
    )`);
    this.upsertStmt = db.prepare('INSERT INTO door_people(id, body, updated_at) VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET body = excluded.body, updated_at = excluded.updated_at');
    this.deleteStmt = db.prepare('DELETE FROM door_people WHERE id = ?');
    for (const row of db.prepare('SELECT id, body FROM door_people').iterate() as Iterable<{ id: string; body: string }>) {
      try {
        this.remember(JSON.parse(row.body) as Person);
      } catch {
        // A row that no longer parses is skipped (the person is denied as unknown) rather
        // than stopping every door; a person.upsert from the platform repairs it.
      }
    }
  }

  private remember(p: Person): void {
    this.forgetCards(p.id);
    this.cache.set(p.id, { person: p, groups: new Set(p.doorGroups), intervals: p.schedule?.length ? compileSchedule(p.schedule) : undefined });
    // Uniqueness is checked by the commands before storing; a stored duplicate (a row
    // edited by hand) keeps the first holder rather than silently moving the card.
    for (const c of p.cards ?? []) if (!this.cards.has(c)) this.cards.set(c, p.id);
  }

  private forgetCards(id: string): void {
    const old = this.cache.get(id)?.person.cards;
    for (const c of old ?? []) if (this.cards.get(c) === id) this.cards.delete(c);
  }

  /** The holder of a card (canonical form), if any. */
  holderOf(card: string): string | undefined {
    return this.cards.get(card);
  }

  /** Store (insert or replace) a person; the caller has validated it. Returns whether it existed. */
  upsert(p: Person): boolean {
    const existed = this.cache.has(p.id);
    this.upsertStmt.run(p.id, JSON.stringify(p), p.updatedAt);
    this.remember(p);
    return existed;
  }

  /** Store many people in one transaction (one fsync). Returns how many were new. */
  upsertMany(people: readonly Person[]): number {
    let created = 0;
    this.db.transaction(() => {
      for (const p of people) {
        if (!this.cache.has(p.id)) created++;
        this.upsertStmt.run(p.id, JSON.stringify(p), p.updatedAt);
      }
    })();
    // The cache follows only once the transaction has committed. Cards the batch moves
    // between its people: every old card is released before any new one is taken.
    for (const p of people) this.forgetCards(p.id);
    for (const p of people) this.remember(p);
    return created;
  }

  delete(id: string): boolean {
    const n = this.deleteStmt.run(id).changes;
    this.forgetCards(id);
    return this.cache.delete(id) || n > 0;
  }

  get(id: string): Person | undefined {
    return this.cache.get(id)?.person;
  }

  /** The compiled form used by decisions. */
  lookup(id: string): Cached | undefined {
    return this.cache.get(id);
  }

  count(): number {
    return this.cache.size;
  }

  list(f: PersonFilter): { total: number; people: Person[] } {
    const q = f.query?.toLowerCase();
    const all: Person[] = [];
    for (const { person, groups } of this.cache.values()) {
      if (f.kind && person.kind !== f.kind) continue;
      if (f.doorGroup && !groups.has(f.doorGroup)) continue;
      if (q && !person.id.toLowerCase().includes(q) && !(person.name ?? '').toLowerCase().includes(q)) continue;
      all.push(person);
    }
    all.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    return { total: all.length, people: all.slice(f.offset, f.offset + f.limit) };
  }
}

export function summary(p: Person): PersonSummary {
  return {
    id: p.id,
    ...(p.name !== undefined ? { name: p.name } : {}),
    kind: p.kind,
    ...(p.validFrom !== undefined ? { validFrom: p.validFrom } : {}),
    ...(p.validUntil !== undefined ? { validUntil: p.validUntil } : {}),
    doorGroups: [...p.doorGroups],
  };
}
