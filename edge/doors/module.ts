// The doors module: wires GPIO, door controllers, the fire release, people, access
// decisions, commands and records together.
//
// Records: access decisions → stream "access" (type access.decision); door alarms, PIN
// lockouts and the fire release → "alarm" (alarm.raised / alarm.cleared); door state
// changes and unknown cards → "event" (door.state, card.unknown). All never evicted.
// Bus: door.state, door.alarm, door.pinWait, access.decision, for the console's live view.
//
// Wiegand readers (doors.doors[].reader): a card becomes a `card` credential of its
// holder; an unknown card is counted and reported (card.unknown, at most one per door
// per unknownCardReportS, with the count of those suppressed); keypad keys collect into
// a PIN entry that completes a door's wait for a second factor (access.ts).
//
// Conflicting commands (documented in docs/doors.md): a fire release dominates (released
// doors stay unlocked, door.lock is refused, door.unlock is recorded as granted without
// moving anything); otherwise commands apply in the order the gateway receives them —
// an unlock extends the running unlock to the later end (never shortens it), a lock
// ends it at once, and a later unlock starts a new one (subject to the rate limit).
import { openGpioBackend } from '../../drivers/gpio/index.js';
import { SimulatedGpio } from '../../drivers/gpio/simulated.js';
import { GpioError, realTimers, type GpioBackend, type GpioInput, type TimerHandle, type Timers } from '../../drivers/gpio/types.js';
import { CommandError } from '../commands/registry.js';
import type { GatewayModule, ModuleContext, ModuleHealth } from '../module.js';
import type { AccessEventQuery, DoorsStatus, DoorStatus } from './api.js';
import { AccessService, type AccessRecord, type DecisionOutcome } from './access.js';
import { AccessLog } from './access-log.js';
import { LogThrottle } from '../observability/throttle.js';
import { registerDoorCommands } from './commands.js';
import { doorsCapability } from './capability.js';
import { DoorController, inputOptions, type DoorEvent } from './door.js';
import { PeopleStore } from './people.js';
import { ZonedWeek } from './schedule.js';
import type { DoorsConfig } from './schema.js';
import { DoorSimulation, seedDemoPeople } from './simulation.js';
import { WiegandReader } from '../../drivers/wiegand/reader.js';
import { KeypadEntry } from '../../drivers/wiegand/keypad.js';
import type { WiegandFrame } from '../../drivers/wiegand/codec.js';

export type DoorAlarmName = 'door.held_open' | 'door.forced_open' | 'door.fault' | 'fire.release' | 'pin.locked';

declare module '../bus.js' {
  interface BusEvents {
    'door.state': DoorStatus & { cause: string; at: number };
    'door.alarm': { alarm: DoorAlarmName; doorId?: string; active: boolean; at: number; since: number; message?: string };
    'access.decision': AccessRecord;
    /** A door starts or stops waiting for a PIN (no person id: shown to every console role). */
    'door.pinWait': { doorId: string; active: boolean; until?: number; at: number };
  }
}

export interface DoorsModuleOptions {
  /** A GPIO backend to use instead of the configured one (tests, benchmarks). */
  backend?: GpioBackend;
  /** Timers for pulses, debounce and alarms (tests inject virtual time). */
  timers?: Timers;
}

export function createDoorsModule(ctx: ModuleContext, opts: DoorsModuleOptions = {}): GatewayModule | undefined {
  if (ctx.config.doors.doors.length === 0) return undefined;
  return new DoorsModule(ctx, opts);
}

export class DoorsModule implements GatewayModule {
  readonly name = 'doors';
  private readonly cfg: DoorsConfig;
  private readonly log;
  private readonly timers: Timers;
  private backend: GpioBackend | undefined;
  private gpioError: string | undefined;
  private readonly doors = new Map<string, DoorController>();
  private readonly faultSince = new Map<string, number>();
  private fireInput: GpioInput | undefined;
  private fireInputActive: boolean | null = null;
  private fireLatched = false;
  private fireCommand = false;
  private fireReleased = false;
  private fireSince: number | undefined;
  private people!: PeopleStore;
  private accessLog!: AccessLog;
  access!: AccessService;
  private simulation: DoorSimulation | undefined;
  private pruneTimer: TimerHandle | undefined;
  private readonly readers = new Map<string, WiegandReader>();
  private readonly keypads = new Map<string, KeypadEntry>();
  private readonly readerProblems = new Map<string, string>();
  private readonly unknownCards = new Map<string, { last: number; suppressed: number }>();
  private readonly m;
  private readonly commands;

  constructor(
    private readonly ctx: ModuleContext,
    private readonly opts: DoorsModuleOptions,
  ) {
    this.cfg = ctx.config.doors;
    this.commands = ctx.commands.forCapability(doorsCapability.name);
    this.log = ctx.log.child({ mod: 'doors' });
    this.timers = opts.timers ?? realTimers;
    const mm = ctx.metrics;
    this.m = {
      decisions: mm.counter({ name: 'estate_door_decisions_total', help: 'Access decisions by door, result and reason', labelNames: ['door', 'granted', 'reason'] }),
      latency: mm.histogram({ name: 'estate_door_decision_seconds', help: 'Time to decide and drive the lock', buckets: [0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1] }),
      alarms: mm.counter({ name: 'estate_door_alarms_total', help: 'Door alarms raised', labelNames: ['alarm'] }),
      rejected: mm.counter({ name: 'estate_doors_rejected_total', help: 'Refused door/person inputs and GPIO failures, by code', labelNames: ['code'] }),
      fire: mm.gauge({ name: 'estate_door_fire_released', help: '1 while a fire release is active' }),
      frames: mm.counter({ name: 'estate_wiegand_frames_total', help: 'Wiegand frames by door and kind (card, key, or the reason a burst was rejected: parity, bad_length, noise, bad_key, too_long)', labelNames: ['door', 'kind'] }),
      unknownCards: mm.counter({ name: 'estate_door_unknown_cards_total', help: 'Cards presented that belong to no person, by door', labelNames: ['door'] }),
      pins: mm.counter({ name: 'estate_door_pin_entries_total', help: 'PIN entries by door and outcome (granted, pin_wrong, pin_locked, unexpected: no face or card waiting…)', labelNames: ['door', 'outcome'] }),
      pinLockouts: mm.counter({ name: 'estate_door_pin_lockouts_total', help: 'PINs locked after too many wrong entries' }),
    };
  }

  private now(): number {
    return this.timers.now();
  }

  private append(stream: 'access' | 'alarm' | 'event', type: string, data: unknown, ts: number): void {
    this.ctx.outbox.append({ stream, type, data, ts }).catch((err) => this.log.error({ err: String(err), stream, type }, 'could not store door record'));
  }

  private rejected(code: string, message: string): void {
    this.m.rejected.inc({ code });
    this.log.warn({ code }, message);
  }

  async start(): Promise<void> {
    this.people = new PeopleStore(this.ctx.stateDb);
    const throttle = new LogThrottle();
    this.accessLog = new AccessLog(this.ctx.stateDb, (err) => {
      this.ctx.storage?.writeFailed(err);
      throttle.run((suppressed) => this.log.error({ err: String(err), queued: this.accessLog.queued(), suppressed }, 'could not write the local access log: rows kept and retried'));
    });
    this.openBackend();
    await this.openFireInput();
    for (const dc of this.cfg.doors) {
      const door = new DoorController(dc, { backend: this.backend!, timers: this.timers, emit: (e) => this.onDoorEvent(e) });
      this.doors.set(dc.id, door);
      if (!this.backend) {
        door.fault = `no GPIO: ${this.gpioError}`;
        continue;
      }
      try {
        await door.open(this.fireReleased);
      } catch (err) {
        this.doorFault(door, err);
      }
    }
    const week = new ZonedWeek(this.cfg.timeZone);
    this.access = new AccessService({
      cfg: this.cfg,
      doors: this.doors,
      people: this.people,
      now: () => this.now(),
      week,
      record: (o) => this.recordDecision(o),
      status: () => this.status(),
      events: (q) => this.events(q),
      timers: this.timers,
      pinWait: (doorId, p) => {
        this.ctx.bus.emit('door.pinWait', { doorId, active: p !== undefined, ...(p ? { until: p.until } : {}), at: this.now() });
        if (!p) this.keypads.get(doorId)?.close();
      },
      pinLockout: (personId, active, since, until) => {
        if (active) {
          this.m.pinLockouts.inc();
          this.log.warn({ person: personId, until }, `PIN of ${personId} locked after ${this.cfg.pin.maxWrong} wrong entries`);
        }
        this.alarm('pin.locked', active, active ? since : until, since, undefined, { personId, until });
      },
    });
    await this.openReaders();
    this.ctx.services.provide('access', this.access);
    registerDoorCommands(this.commands, {
      cfg: this.cfg,
      access: this.access,
      people: this.people,
      doors: this.doors,
      now: () => this.now(),
      faces: () => this.ctx.services.get('faces'),
      fire: (action, by) => this.fireCommandAction(action, by),
      status: () => this.status(),
      events: (q) => this.events(q),
      rejected: (code) => this.m.rejected.inc({ code }),
      pinEntered: (doorId, outcome) => this.m.pins.inc({ door: doorId, outcome }),
    });
    this.prune();
    this.pruneTimer = this.timers.setInterval(() => this.prune(), 3600_000);
    if (this.backend instanceof SimulatedGpio && this.ctx.config.simulation.enabled) {
      const seeded = seedDemoPeople(
        this.people,
        this.cfg.groups.map((g) => g.id),
        this.now(),
      );
      if (seeded) this.log.info({ seeded }, 'simulated estate: demo people added');
      this.simulation = new DoorSimulation(this.backend, this.cfg.doors, this.timers);
      this.simulation.start(this.ctx.bus);
    }
    this.log.info({ doors: this.doors.size, people: this.people.count(), faulted: [...this.doors.values()].filter((d) => d.fault).map((d) => d.id) }, 'doors ready');
  }

  private async openReaders(): Promise<void> {
    for (const dc of this.cfg.doors) {
      if (!dc.reader) continue;
      const label = `door ${dc.id} reader`;
      if (!this.backend) {
        this.readerProblems.set(dc.id, `no GPIO: ${this.gpioError}`);
        continue;
      }
      const reader = new WiegandReader(this.backend, { d0: dc.reader.d0, d1: dc.reader.d1, activeLow: dc.reader.activeLow, frameGapMs: dc.reader.frameGapMs, label, ...(dc.reader.bias ? { bias: dc.reader.bias } : {}) }, this.timers);
      try {
        const problem = await reader.open();
        if (problem) {
          this.readerProblems.set(dc.id, problem);
          this.rejected('reader_polled', problem);
        }
      } catch (err) {
        const msg = `${label} (D0 BCM ${dc.reader.d0}, D1 BCM ${dc.reader.d1}) cannot be opened: ${(err as Error).message}`;
        this.readerProblems.set(dc.id, msg);
        this.rejected(err instanceof GpioError ? err.code : 'io', msg);
        continue;
      }
      this.readers.set(dc.id, reader);
      const keypad = new KeypadEntry(this.timers, dc.access.pinTimeoutS * 1000, (e) => {
        if (e.kind === 'entry') void this.pinFromKeypad(dc.id, e.digits);
      });
      this.keypads.set(dc.id, keypad);
      reader.onFrame((f) => this.onFrame(dc.id, f, keypad));
    }
  }

  private onFrame(doorId: string, f: WiegandFrame, keypad: KeypadEntry): void {
    this.m.frames.inc({ door: doorId, kind: f.kind === 'rejected' ? f.code : f.kind });
    if (f.kind === 'rejected') {
      this.log.debug({ door: doorId, code: f.code, bits: f.bits }, `Wiegand burst rejected: ${f.message}`);
      return;
    }
    if (f.kind === 'key') return keypad.key(f.key);
    const holder = this.people.holderOf(f.card);
    if (holder === undefined) return this.unknownCard(doorId, f.card);
    this.access.evaluate({ doorId, credential: 'card', personId: holder, card: f.card, requestedBy: 'reader' });
  }

  private unknownCard(doorId: string, card: string): void {
    this.m.unknownCards.inc({ door: doorId });
    const now = this.now();
    const st = this.unknownCards.get(doorId);
    const interval = this.cfg.unknownCardReportS * 1000;
    if (st && now - st.last < interval && now >= st.last) {
      st.suppressed++;
      return;
    }
    const suppressed = st?.suppressed ?? 0;
    this.unknownCards.set(doorId, { last: now, suppressed: 0 });
    const door = this.cfg.doors.find((d) => d.id === doorId);
    this.append('event', 'card.unknown', { doorId, ...(door?.name ? { doorName: door.name } : {}), card, suppressed }, now);
    this.log.info({ door: doorId, card, suppressed }, 'unknown card presented: denied');
  }

  private async pinFromKeypad(doorId: string, digits: string): Promise<void> {
    try {
      const o = await this.access.submitPin(doorId, digits, 'keypad');
      this.m.pins.inc({ door: doorId, outcome: o ? o.decision.reason : 'unexpected' });
      if (!o) this.log.debug({ door: doorId }, 'PIN typed on the keypad with no face or card waiting for one: ignored');
    } catch (err) {
      this.log.error({ err: String(err), door: doorId }, 'PIN entry failed');
    }
  }

  private openBackend(): void {
    if (this.opts.backend) {
      this.backend = this.opts.backend;
      this.log.info(`GPIO backend: ${this.backend.describe()}`);
      return;
    }
    try {
      this.backend = openGpioBackend(this.cfg.gpio, {
        timers: this.timers,
        info: (msg) => this.log.info(msg),
        warn: (msg, detail) => this.log.warn(detail ?? {}, msg),
      });
    } catch (err) {
      // No GPIO at all: the module stays up (people can be managed, decisions are
      // answered as door_fault) and says so in health, door.status and an alarm.
      this.gpioError = (err as Error).message;
      const code = err instanceof GpioError ? err.code : 'no_gpio';
      this.rejected(code, `GPIO unavailable, doors cannot be driven: ${this.gpioError}`);
      this.alarm('door.fault', true, this.now(), this.now(), undefined, { message: this.gpioError, code });
    }
  }

  private async openFireInput(): Promise<void> {
    const c = this.cfg.fire.input;
    if (!c || !this.backend) return;
    try {
      const input = (this.fireInput = await this.backend.openInput({ ...inputOptions(c, 'fire alarm input'), leadingEdge: this.cfg.fire.releaseOnFirstEdge }));
      this.fireInputActive = input.value();
      if (this.fireInputActive && this.cfg.fire.latch) this.fireLatched = true;
      input.onChange((v) => this.onFireInput(v));
      // Doors are opened after this, directly in the released state when a fire is on.
      this.updateFire(this.fireInputActive ? 'fire_input_at_start' : 'start');
    } catch (err) {
      const msg = `fire alarm input (BCM ${c.pin}) cannot be opened: ${(err as Error).message}`;
      this.rejected(err instanceof GpioError ? err.code : 'io', msg);
      this.alarm('door.fault', true, this.now(), this.now(), undefined, { message: msg });
    }
  }

  private doorFault(door: DoorController, err: unknown): void {
    const code = err instanceof GpioError ? err.code : 'io';
    this.rejected(code, `door ${door.id} cannot be driven and stays out of service: ${(err as Error).message}`);
    this.alarm('door.fault', true, this.now(), this.now(), door.id, { message: door.fault, code });
  }

  private onFireInput(active: boolean): void {
    this.fireInputActive = active;
    if (active && this.cfg.fire.latch) this.fireLatched = true;
    this.updateFire(active ? 'fire_input' : 'fire_input_normal');
  }

  private fireCommandAction(action: 'release' | 'clear', by: string): DoorsStatus['fire'] {
    if (action === 'release') {
      this.fireCommand = true;
      this.updateFire(`command ${by}`);
    } else {
      if (this.fireInputActive) {
        this.rejected('fire_input_active', `door.fireRelease clear refused (${by}): the fire alarm input is still active`);
        throw new CommandError('fire_input_active', 'the fire alarm input is still active: the release stays until the fire panel is back to normal');
      }
      this.fireCommand = false;
      this.fireLatched = false;
      this.updateFire(`command ${by}`);
    }
    return this.fireStatus();
  }

  private updateFire(cause: string): void {
    const released = this.fireCommand || this.fireInputActive === true || this.fireLatched;
    if (released === this.fireReleased) return;
    this.fireReleased = released;
    // Outputs first: the records and logs below must not delay the release.
    for (const d of this.doors.values()) d.setFireRelease(released);
    const now = this.now();
    const since = released ? now : (this.fireSince ?? now);
    this.fireSince = released ? now : undefined;
    this.m.fire.set(released ? 1 : 0);
    const doors = this.cfg.doors.filter((d) => d.fireRelease).map((d) => d.id);
    this.alarm('fire.release', released, now, since, undefined, { cause, doors });
    this.log.warn({ cause, doors }, released ? 'FIRE RELEASE: fire-release doors unlocked until cleared' : 'fire release cleared: doors back to normal');
  }

  private fireStatus(): DoorsStatus['fire'] {
    return {
      inputActive: this.fireInputActive,
      commandActive: this.fireCommand,
      latched: this.fireLatched,
      released: this.fireReleased,
      ...(this.fireSince !== undefined ? { since: this.fireSince } : {}),
    };
  }

  private alarm(alarm: DoorAlarmName, active: boolean, at: number, since: number, doorId: string | undefined, extra: Record<string, unknown> = {}): void {
    if (active) this.m.alarms.inc({ alarm });
    const door = doorId ? this.cfg.doors.find((d) => d.id === doorId) : undefined;
    const data = { alarm, ...(doorId ? { doorId } : {}), ...(door?.name ? { doorName: door.name } : {}), since, ...(active ? {} : { clearedAt: at, durationMs: at - since }), ...extra };
    this.append('alarm', active ? 'alarm.raised' : 'alarm.cleared', data, at);
    this.ctx.bus.emit('door.alarm', { alarm, ...(doorId ? { doorId } : {}), active, at, since, ...(typeof extra.message === 'string' ? { message: extra.message } : {}) });
  }

  private onDoorEvent(e: DoorEvent): void {
    switch (e.kind) {
      case 'state': {
        const s = e.snapshot;
        this.append('event', 'door.state', { doorId: s.id, lock: s.lock, contact: s.contact, fireReleased: s.fireReleased, alarms: s.alarms, cause: e.cause, ...(s.unlockedUntil !== undefined ? { unlockedUntil: s.unlockedUntil } : {}) }, e.at);
        this.ctx.bus.emit('door.state', { ...s, cause: e.cause, at: e.at });
        break;
      }
      case 'alarm':
        if (e.active) this.log.warn({ door: e.doorId, alarm: e.alarm }, `door ${e.doorId}: ${e.alarm.replace('_', '-')} alarm`);
        this.alarm(`door.${e.alarm}`, e.active, e.at, e.since, e.doorId);
        break;
      case 'fault':
        if (e.active) this.rejected('io', `door ${e.doorId}: ${e.message}`);
        else this.log.info({ door: e.doorId }, `door ${e.doorId}: GPIO outputs work again`);
        if (e.active) this.faultSince.set(e.doorId, e.at);
        this.alarm('door.fault', e.active, e.at, this.faultSince.get(e.doorId) ?? e.at, e.doorId, { message: e.message, code: 'io' });
        break;
      case 'exit_request':
        this.access?.evaluate({ doorId: e.doorId, credential: 'exit_button', requestedBy: 'exit button' });
        break;
    }
  }

  private recordDecision(o: DecisionOutcome): void {
    const r = o.record;
    this.m.decisions.inc({ door: this.doors.has(r.doorId) ? r.doorId : '(unknown)', granted: String(r.granted), reason: r.reason });
    this.m.latency.observe(o.elapsedMs / 1000);
    this.append('access', 'access.decision', r, r.decidedAt);
    this.accessLog.add({ ts: r.decidedAt, doorId: r.doorId, ...(r.personId !== undefined ? { personId: r.personId } : {}), credential: r.credential, granted: r.granted, reason: r.reason, data: r as unknown as Record<string, unknown> });
    this.ctx.bus.emit('access.decision', r);
    if (!r.granted) this.log.info({ door: r.doorId, person: r.personId, credential: r.credential, reason: r.reason }, `access denied: ${r.message ?? r.reason}`);
    else this.log.debug({ door: r.doorId, person: r.personId, credential: r.credential }, 'access granted');
  }

  private events(q: AccessEventQuery) {
    return this.accessLog.query(q);
  }

  status(): DoorsStatus {
    return {
      doors: [...this.doors.values()].map((d) => {
        const last = this.access?.last(d.id);
        const waiting = this.access?.awaitingPin(d.id);
        const problem = this.readerProblems.get(d.id);
        return {
          ...d.snapshot(),
          ...(d.cfg.reader ? { reader: problem ? { problem } : {} } : {}),
          ...(waiting ? { awaitingPin: { personId: waiting.personId, via: waiting.via, until: waiting.until } } : {}),
          groups: this.access?.groupsOf(d.id) ?? [],
          ...(last ? { lastDecision: last } : {}),
        };
      }),
      groups: this.cfg.groups.map((g) => ({ id: g.id, ...(g.name !== undefined ? { name: g.name } : {}), doors: [...g.doors] })),
      fire: this.fireStatus(),
      gpio: this.backend ? { backend: this.backend.kind, description: this.backend.describe() } : { backend: 'none', description: 'no GPIO', ...(this.gpioError ? { error: this.gpioError } : {}) },
      people: this.people.count(),
      timeZone: this.cfg.timeZone,
    };
  }

  private prune(): void {
    try {
      const n = this.accessLog.prune(this.now() - this.cfg.accessLog.keepDays * 86400_000, this.cfg.accessLog.maxRows);
      if (n) this.log.info({ rows: n }, 'old access events pruned from the local log');
    } catch (err) {
      this.log.error({ err: String(err) }, 'access log prune failed');
    }
  }

  health(): ModuleHealth {
    const faulted = [...this.doors.values()].filter((d) => d.fault !== undefined);
    const problems = [...(this.gpioError ? [`GPIO unavailable: ${this.gpioError}`] : []), ...faulted.map((d) => `door ${d.id}: ${d.fault}`), ...[...this.readerProblems.values()].filter(() => !this.gpioError)];
    return {
      ok: problems.length === 0,
      ...(problems.length ? { message: problems.join('; ') } : {}),
      detail: { backend: this.backend?.describe() ?? 'none', doors: this.doors.size, faulted: faulted.map((d) => d.id), fireReleased: this.fireReleased, people: this.people?.count() ?? 0 },
    };
  }

  emergencyStop(): void {
    for (const d of this.doors.values()) d.safeState();
  }

  stop(): void {
    this.commands.unregisterAll();
    this.simulation?.stop();
    this.timers.clearInterval(this.pruneTimer);
    this.access?.stop();
    for (const k of this.keypads.values()) k.close();
    for (const r of this.readers.values()) r.close();
    const states: Record<string, string> = {};
    for (const d of this.doors.values()) {
      d.close();
      states[d.id] = d.fault !== undefined ? 'fault' : d.safeUnlocked() ? 'unlocked' : 'locked';
    }
    this.fireInput?.close();
    this.backend?.close();
    this.accessLog?.close();
    this.append('event', 'doors.safe_state', { reason: 'module stopped', doors: states }, this.now());
    this.log.info({ doors: states }, 'doors stopped in their safe state');
  }
}
