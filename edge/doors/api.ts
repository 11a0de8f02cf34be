// Contract of the door-access module towards other modules (face access, console).
// The doors module implements it and provides it as `services.get('access')`.
import type { PersonRow } from '../console/api-types.js';

export type Credential = 'face' | 'card' | 'remote' | 'exit_button' | 'console' | 'fire';

/** The factors a decision rested on, in the order presented (`via: ['face', 'pin']`). */
export type Factor = 'face' | 'card' | 'pin' | 'remote' | 'console' | 'exit_button';

/** What a person must present at a door (doors.doors[].access.mode). */
export type AccessMode = 'face' | 'face_or_card' | 'face_and_pin' | 'card' | 'card_and_pin';

export interface AccessRequest {
  doorId: string;
  credential: Credential;
  /** Who asks (face match, remote command on behalf of a person). */
  personId?: string;
  /** Match score for biometric credentials (higher = more similar). */
  score?: number;
  /** Who/what issued it (command id, console user…), for the access event. */
  requestedBy?: string;
  /** Extra facts for the access event (e.g. liveness score); kept small. */
  evidence?: Record<string, unknown>;
  /** The card number (canonical form) of a card credential. */
  card?: string;
}

export interface AccessDecision {
  granted: boolean;
  /** Machine-readable reason: "granted", "unknown_person", "expired", "not_yet_valid", "outside_schedule", "door_not_allowed", "rate_limited", "unknown_door"… */
  reason: string;
  doorId: string;
  personId?: string;
  credential: Credential;
  /** Factors used (face, card, pin…). */
  via?: Factor[];
  /**
   * Not decided yet: the door waits for this person's PIN (reason "pin_required"); the
   * decision follows as its own access record when the PIN is entered or times out.
   */
  pending?: boolean;
  /** UTC ms. */
  decidedAt: number;
}

/** Who a person is and where they may go: the console's PersonRow (its API type) without the rest. */
export type PersonSummary = Pick<PersonRow, 'id' | 'name' | 'kind' | 'validFrom' | 'validUntil' | 'doorGroups'>;

export interface AccessApi {
  /** Decide (and, when granted, unlock) synchronously; the access event goes to the outbox. */
  decide(req: AccessRequest): AccessDecision;
  doors(): Array<{ id: string; name?: string }>;
  person(id: string): PersonSummary | undefined;
  /**
   * Whether the person would be let in at the door now by the rules alone (enabled,
   * validity, door groups, schedule), without unlocking or recording anything: face access
   * searches only among these persons.
   */
  mayEnter?(doorId: string, personId: string): boolean;
  // Extensions for the console (Doors page, event list); also reachable as the
  // door.status and access.events commands.
  /** Every door's live state, the fire release, the GPIO backend. */
  status(): DoorsStatus;
  /** Access decisions kept on the box, newest first. */
  events(query: AccessEventQuery): AccessEvent[];
}

export type DoorAlarmKind = 'held_open' | 'forced_open';

export interface DoorStatus {
  id: string;
  name?: string;
  lock: 'locked' | 'unlocked';
  contact: 'open' | 'closed' | 'unknown';
  fireReleased: boolean;
  /** UTC ms the running unlock pulse ends. */
  unlockedUntil?: number;
  alarms: DoorAlarmKind[];
  /** Why the door cannot be driven (GPIO failure); absent when healthy. */
  fault?: string;
  failMode: 'failSecure' | 'failSafe';
  /** How each input is watched: "interrupt" or "polling". */
  inputs: Record<string, string>;
  /** What a person must present here. */
  mode: AccessMode;
  /** A Wiegand reader is configured; its problem, if any (no interrupts, line busy). */
  reader?: { problem?: string };
  /** A face or card was accepted and the door waits for that person's PIN until `until`. */
  awaitingPin?: { personId: string; via: Factor[]; until: number };
}

export interface DoorsStatus {
  doors: Array<DoorStatus & { groups: string[]; lastDecision?: AccessDecision }>;
  groups: Array<{ id: string; name?: string; doors: string[] }>;
  fire: { inputActive: boolean | null; commandActive: boolean; latched: boolean; released: boolean; since?: number };
  gpio: { backend: string; description: string; error?: string };
  people: number;
  timeZone: string;
}

export interface AccessEvent {
  /** Local sequence (page backwards with beforeSeq). */
  seq: number;
  ts: number;
  doorId: string;
  personId?: string;
  credential: Credential;
  granted: boolean;
  reason: string;
  /** The rest of the access record (person name and kind, score, requester…). */
  data: Record<string, unknown>;
}

export interface AccessEventQuery {
  doorId?: string;
  personId?: string;
  credential?: Credential;
  granted?: boolean;
  /** UTC ms, inclusive. */
  since?: number;
  /** UTC ms, exclusive. */
  until?: number;
  beforeSeq?: number;
  /** Default 100, at most 1000. */
  limit?: number;
}

declare module '../module.js' {
  interface Services {
    access: AccessApi;
  }
}
