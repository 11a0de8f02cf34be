// Contract of the door-access module towards other modules (face access, console).
// The doors module implements it and provides it as `services.get('access')`.
export type Credential = 'face' | 'remote' | 'exit_button' | 'console' | 'fire';

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
}

export interface AccessDecision {
  granted: boolean;
  /** Machine-readable reason: "granted", "unknown_person", "expired", "not_yet_valid", "outside_schedule", "door_not_allowed", "rate_limited", "unknown_door"… */
  reason: string;
  doorId: string;
  personId?: string;
  credential: Credential;
  /** UTC ms. */
  decidedAt: number;
}

export interface PersonSummary {
  id: string;
  name?: string;
  kind: 'resident' | 'staff' | 'visitor';
  validFrom?: number;
  validUntil?: number;
  doorGroups: string[];
}

export interface AccessApi {
  /** Decide (and, when granted, unlock) synchronously; the access event goes to the outbox. */
  decide(req: AccessRequest): AccessDecision;
  doors(): Array<{ id: string; name?: string }>;
  person(id: string): PersonSummary | undefined;
}

declare module '../module.js' {
  interface Services {
    access: AccessApi;
  }
}
