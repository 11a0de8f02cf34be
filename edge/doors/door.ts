// One door's state machine: lock relay, door contact, exit button, buzzer and LED.
//
//   locked ──unlock(ms)──▶ unlocked (pulse) ──pulse ends / door closes after opening──▶ locked
//   any ──fire release──▶ released (unlocked) ──release cleared──▶ locked (or pulse, if one runs)
//
// Alarms: forced-open (contact opens while locked and not released) and held-open (open
// longer than heldOpenAlarmS after an authorised opening); both clear when the door
// closes, and the buzzer sounds while one is active. The controller only moves lines
// and reports; *who* may unlock is decided by the access service.
import type { GpioBackend, GpioInput, GpioOutput, TimerHandle, Timers } from '../../drivers/gpio/types.js';
import { accessMode, type DoorConfig, type InputLineConfig } from './schema.js';
import type { DoorAlarmKind, DoorStatus } from './api.js';

export type DoorAlarm = DoorAlarmKind;
export type Contact = DoorStatus['contact'];
export type DoorSnapshot = DoorStatus;

export type DoorEvent =
  | { kind: 'state'; snapshot: DoorSnapshot; cause: string; at: number }
  | { kind: 'alarm'; doorId: string; alarm: DoorAlarm; active: boolean; at: number; since: number }
  | { kind: 'exit_request'; doorId: string; at: number }
  | { kind: 'fault'; doorId: string; active: boolean; message: string; at: number };

export interface DoorDeps {
  backend: GpioBackend;
  timers: Timers;
  emit: (e: DoorEvent) => void;
}

export class DoorController {
  readonly id: string;
  private lockOut: GpioOutput | undefined;
  private buzzerOut: GpioOutput | undefined;
  private ledOut: GpioOutput | undefined;
  private contactIn: GpioInput | undefined;
  private exitIn: GpioInput | undefined;
  private readonly unsubscribe: Array<() => void> = [];
  private pulseTimer: TimerHandle | undefined;
  private pulseUntil: number | undefined;
  private heldTimer: TimerHandle | undefined;
  private released = false;
  private unlocked = false;
  private contact: Contact = 'unknown';
  private openedAuthorised = false;
  private readonly alarms = new Map<DoorAlarm, number>();
  fault: string | undefined;
  private writeFailed = false;

  constructor(
    readonly cfg: DoorConfig,
    private readonly deps: DoorDeps,
  ) {
    this.id = cfg.id;
  }

  /** Relay level (energised?) that gives a lock state, by lock type. */
  private energised(unlocked: boolean): boolean {
    return this.cfg.lock.failMode === 'failSecure' ? unlocked : !unlocked;
  }

  /**
   * Open the lines. The lock output is created directly at its locked level (or released
   * level if a fire release is already active): never a spurious unlock pulse at start.
   * On failure every line opened so far is closed and the error rethrown.
   */
  async open(fireReleased: boolean): Promise<void> {
    this.released = fireReleased && this.cfg.fireRelease;
    this.unlocked = this.released;
    const b = this.deps.backend;
    const label = (what: string) => `door ${this.id} ${what}`;
    try {
      this.lockOut = await b.openOutput({ line: this.cfg.lock.pin, activeLow: this.cfg.lock.activeLow, initial: this.energised(this.unlocked), label: label('lock') });
      if (this.cfg.led) this.ledOut = await b.openOutput({ line: this.cfg.led.pin, activeLow: this.cfg.led.activeLow, initial: this.unlocked, label: label('LED') });
      if (this.cfg.buzzer) this.buzzerOut = await b.openOutput({ line: this.cfg.buzzer.pin, activeLow: this.cfg.buzzer.activeLow, initial: false, label: label('buzzer') });
      if (this.cfg.contact) {
        const input = (this.contactIn = await b.openInput(inputOptions(this.cfg.contact, label('contact'))));
        this.contact = input.value() ? 'open' : 'closed';
        this.unsubscribe.push(input.onChange((v, at) => this.onContact(v, at)));
        // Open at start: nobody knows whether it was authorised; treat as authorised so
        // a restart does not raise a forced-open alarm, but time the held-open alarm.
        if (this.contact === 'open') {
          this.openedAuthorised = true;
          this.startHeldTimer(this.deps.timers.now());
        }
      }
      if (this.cfg.exitButton) {
        const input = (this.exitIn = await b.openInput(inputOptions(this.cfg.exitButton, label('exit button'))));
        this.unsubscribe.push(input.onChange((v, at) => v && this.deps.emit({ kind: 'exit_request', doorId: this.id, at })));
      }
      this.fault = undefined;
    } catch (err) {
      this.fault = (err as Error).message;
      this.closeLines();
      throw err;
    }
    this.emitState('start');
  }

  snapshot(): DoorSnapshot {
    const inputs: Record<string, string> = {};
    if (this.contactIn) inputs.contact = this.contactIn.mode;
    if (this.exitIn) inputs.exitButton = this.exitIn.mode;
    return {
      id: this.id,
      ...(this.cfg.name !== undefined ? { name: this.cfg.name } : {}),
      lock: this.unlocked ? 'unlocked' : 'locked',
      contact: this.contact,
      fireReleased: this.released,
      ...(this.pulseUntil !== undefined ? { unlockedUntil: this.pulseUntil } : {}),
      alarms: [...this.alarms.keys()],
      ...(this.fault !== undefined ? { fault: this.fault } : {}),
      failMode: this.cfg.lock.failMode,
      inputs,
      mode: accessMode(this.cfg),
    };
  }

  isReleased(): boolean {
    return this.released;
  }

  /**
   * Unlock for `ms`. A running pulse is extended to the later end, never shortened
   * (overlapping grants and commands resolve to the union of their windows).
   * Returns the end of the pulse (UTC ms) and whether an existing pulse was extended.
   */
  unlock(ms: number, cause: string): { until: number; extended: boolean } {
    const now = this.deps.timers.now();
    const until = now + ms;
    const extended = this.pulseUntil !== undefined;
    if (this.pulseUntil !== undefined && this.pulseUntil >= until) return { until: this.pulseUntil, extended: true };
    this.deps.timers.clearTimeout(this.pulseTimer);
    this.pulseUntil = until;
    this.pulseTimer = this.deps.timers.setTimeout(() => this.endPulse('pulse_end'), ms);
    this.apply(cause);
    return { until, extended };
  }

  /** End a pulse now (door.lock). Has no effect on a fire release. Returns whether a pulse ran. */
  lock(cause: string): boolean {
    const had = this.pulseUntil !== undefined;
    this.endPulse(cause);
    return had;
  }

  private endPulse(cause: string): void {
    this.deps.timers.clearTimeout(this.pulseTimer);
    this.pulseTimer = undefined;
    if (this.pulseUntil === undefined) return;
    this.pulseUntil = undefined;
    this.apply(cause);
  }

  setFireRelease(active: boolean): void {
    if (!this.cfg.fireRelease || this.released === active) return;
    this.released = active;
    if (active) {
      // Doors are meant to stand open during an evacuation: no held-open alarm then.
      this.deps.timers.clearTimeout(this.heldTimer);
      this.heldTimer = undefined;
      this.clearAlarm('held_open');
      this.clearAlarm('forced_open');
    } else if (this.contact === 'open') {
      this.openedAuthorised = true;
      this.startHeldTimer(this.deps.timers.now());
    }
    this.apply(active ? 'fire_release' : 'fire_release_cleared');
  }

  /** Drive the outputs to the state the flags say; emit when the lock state changes. */
  private apply(cause: string): void {
    const unlocked = this.released || this.pulseUntil !== undefined;
    const changed = unlocked !== this.unlocked;
    this.unlocked = unlocked;
    this.writeOutputs();
    if (changed || cause === 'start') this.emitState(cause);
  }

  private writeOutputs(): void {
    if (this.fault !== undefined && !this.lockOut) return;
    try {
      this.lockOut?.write(this.energised(this.unlocked));
      this.ledOut?.write(this.unlocked);
      this.buzzerOut?.write(this.alarms.size > 0 && !this.released);
      if (this.writeFailed) {
        this.writeFailed = false;
        this.fault = undefined;
        this.deps.emit({ kind: 'fault', doorId: this.id, active: false, message: 'outputs written again', at: this.deps.timers.now() });
      }
    } catch (err) {
      // Reported once per failure streak; decisions are denied (door_fault) meanwhile.
      if (!this.writeFailed) {
        this.writeFailed = true;
        this.fault = `output write failed: ${(err as Error).message}`;
        this.deps.emit({ kind: 'fault', doorId: this.id, active: true, message: this.fault, at: this.deps.timers.now() });
      }
    }
  }

  private onContact(open: boolean, at: number): void {
    this.contact = open ? 'open' : 'closed';
    if (open) {
      if (this.unlocked) {
        this.openedAuthorised = true;
        if (!this.released) this.startHeldTimer(at);
      } else {
        this.openedAuthorised = false;
        this.raiseAlarm('forced_open', at);
      }
      this.emitState('door_opened');
      return;
    }
    this.deps.timers.clearTimeout(this.heldTimer);
    this.heldTimer = undefined;
    this.clearAlarm('held_open');
    this.clearAlarm('forced_open');
    const relock = this.openedAuthorised && this.cfg.relockOnClose && this.pulseUntil !== undefined && !this.released;
    this.openedAuthorised = false;
    if (relock) this.endPulse('closed_after_opening');
    this.emitState('door_closed');
  }

  private startHeldTimer(openedAt: number): void {
    this.deps.timers.clearTimeout(this.heldTimer);
    const ms = this.cfg.heldOpenAlarmS * 1000;
    this.heldTimer = this.deps.timers.setTimeout(
      () => {
        this.heldTimer = undefined;
        if (this.contact === 'open' && !this.released) this.raiseAlarm('held_open', openedAt + ms);
      },
      Math.max(0, openedAt + ms - this.deps.timers.now()),
    );
  }

  private raiseAlarm(alarm: DoorAlarm, at: number): void {
    if (this.alarms.has(alarm)) return;
    this.alarms.set(alarm, at);
    this.writeOutputs();
    this.deps.emit({ kind: 'alarm', doorId: this.id, alarm, active: true, at, since: at });
  }

  private clearAlarm(alarm: DoorAlarm): void {
    const since = this.alarms.get(alarm);
    if (since === undefined) return;
    this.alarms.delete(alarm);
    this.writeOutputs();
    this.deps.emit({ kind: 'alarm', doorId: this.id, alarm, active: false, at: this.deps.timers.now(), since });
  }

  private emitState(cause: string): void {
    this.deps.emit({ kind: 'state', snapshot: this.snapshot(), cause, at: this.deps.timers.now() });
  }

  /** Whether the lock stays unlocked in the safe state (stop, crash). */
  safeUnlocked(): boolean {
    if (this.released) return true;
    const s = this.cfg.lock.safeState ?? (this.cfg.lock.failMode === 'failSafe' ? 'unlocked' : 'locked');
    return s === 'unlocked';
  }

  /** Synchronously put the outputs in the safe state (crash path: no events, no I/O beyond the lines). */
  safeState(): void {
    this.deps.timers.clearTimeout(this.pulseTimer);
    this.deps.timers.clearTimeout(this.heldTimer);
    this.pulseTimer = this.heldTimer = undefined;
    this.pulseUntil = undefined;
    const unlocked = this.safeUnlocked();
    for (const [out, v] of [
      [this.lockOut, this.energised(unlocked)],
      [this.ledOut, unlocked],
      [this.buzzerOut, false],
    ] as const) {
      try {
        out?.write(v);
      } catch {
        /* keep going: the other lines still get their safe level */
      }
    }
    this.unlocked = unlocked;
  }

  /** Safe state, then release every line. */
  close(): void {
    this.safeState();
    this.closeLines();
  }

  private closeLines(): void {
    for (const u of this.unsubscribe.splice(0)) u();
    for (const l of [this.contactIn, this.exitIn, this.lockOut, this.ledOut, this.buzzerOut]) {
      try {
        l?.close();
      } catch {
        /* already closed */
      }
    }
    this.contactIn = this.exitIn = this.lockOut = this.ledOut = this.buzzerOut = undefined;
  }
}

export function inputOptions(c: InputLineConfig, label: string) {
  return { line: c.pin, activeLow: c.activeLow, debounceMs: c.debounceMs, label, ...(c.bias ? { bias: c.bias } : {}) };
}
