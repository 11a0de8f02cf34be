// Retention of face data: kept enrolment photos past vision.privacy.photoRetentionDays, and
// every template of a person whose validity (the doors module's person record) ended more
// than expiredGraceDays ago, each such removal audited. Swept at start and hourly.
import type { Logger } from 'pino';
import type { Clock } from '../clock.js';
import type { ServiceRegistry } from '../module.js';
import type { Outbox } from '../outbox/outbox.js';
import type { TemplateStore } from './templates.js';

export interface RetentionOptions {
  store: TemplateStore;
  privacy: { photoRetentionDays: number; expiredGraceDays: number };
  clock: Pick<Clock, 'now'>;
  services: Pick<ServiceRegistry, 'get'>;
  outbox: Pick<Outbox, 'append'>;
  log: Logger;
}

const DAY_MS = 86400_000;
const SWEEP_EVERY_MS = 3600_000;

/** One sweep; returns what it removed. */
export function sweepFaceData(o: RetentionOptions): { photos: number; expired: number } {
  const { store, privacy: p } = o;
  const now = o.clock.now();
  const photos = store.purgePhotosBefore(now - p.photoRetentionDays * DAY_MS);
  const access = o.services.get('access');
  let expired = 0;
  if (access) {
    for (const id of store.persons()) {
      const until = access.person(id)?.validUntil;
      if (until !== undefined && until + p.expiredGraceDays * DAY_MS < now) {
        store.remove(id);
        expired++;
        void o.outbox.append({ stream: 'audit', type: 'face.expired', data: { personId: id, validUntil: until } }).catch(() => {});
      }
    }
  }
  if (photos || expired) o.log.info({ photos, expired }, 'face data retention sweep');
  return { photos, expired };
}

/** Sweeps now, then every hour until stopped. */
export class Retention {
  private timer: NodeJS.Timeout | undefined;
  constructor(private readonly options: RetentionOptions) {}

  start(): void {
    sweepFaceData(this.options);
    this.timer = setInterval(() => sweepFaceData(this.options), SWEEP_EVERY_MS).unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
