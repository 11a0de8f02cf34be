// The door-hold relay of one car, and its safe state: RELEASED. A crashed, hung or killed
// gateway must never keep an elevator's doors open, so the hold is asserted only while
// this process actively asserts it:
//
//   drive "pulse" (default): while holding, the line toggles every `pulseMs`; the relay
//     is driven through a retriggerable watchdog (charge-pump or monostable relay module,
//     e.g. a 555/74HC123 "watchdog relay" board): it drops `watchdogMs` after the last
//     edge. A SIGKILL, a kernel panic, a frozen event loop, a sysfs line left exported at
//     its last level — all stop the edges, and the hardware releases on its own. This is
//     the only mode where the safe state does not depend on software running.
//   drive "level": the line is held active while holding. Released on stop and on the
//     crash path (emergencyStop, synchronous). On SIGKILL the line keeps its last level
//     with the sysfs backend (the kernel does not reset an exported line); with the
//     character-device backend the gpioset helper exits when its parent's pipe closes and
//     the kernel frees the line (its level is then the board's default: wire a pull to the
//     released level). `estate-edge check-config` warns about this mode.
//
// `activeLow` is the polarity of the relay input (logical true = energised). The line is
// opened released (initial = false) so a restart never glitches a hold.
import type { GpioBackend, GpioOutput, Timers, TimerHandle } from '../../drivers/gpio/types.js';

export type RelayDrive = 'pulse' | 'level';

export interface RelayOptions {
  pin: number;
  activeLow: boolean;
  drive: RelayDrive;
  pulseMs: number;
  label: string;
}

export class HoldRelay {
  private out: GpioOutput | undefined;
  private timer: TimerHandle | undefined;
  private asserted = false;
  private phase = false;
  /** Edges written while holding (pulse mode), for the status. */
  pulses = 0;

  constructor(
    private readonly o: RelayOptions,
    private readonly t: Timers,
  ) {}

  async open(backend: GpioBackend): Promise<void> {
    this.out = await backend.openOutput({ line: this.o.pin, activeLow: this.o.activeLow, initial: false, label: this.o.label });
  }

  get holding(): boolean {
    return this.asserted;
  }

  hold(): void {
    if (this.asserted || !this.out) return;
    this.asserted = true;
    if (this.o.drive === 'level') {
      this.out.write(true);
      return;
    }
    const tick = () => {
      this.phase = !this.phase;
      this.pulses++;
      this.out?.write(this.phase);
    };
    tick();
    this.timer = this.t.setInterval(tick, this.o.pulseMs);
  }

  /** Synchronous: safe for the crash path. */
  release(): void {
    this.t.clearInterval(this.timer);
    this.timer = undefined;
    this.asserted = false;
    this.phase = false;
    try {
      this.out?.write(false);
    } catch {
      // The write failed (line gone): in pulse mode the hardware releases anyway.
    }
  }

  close(): void {
    this.release();
    this.out?.close();
    this.out = undefined;
  }
}

/**
 * What the watchdog relay module does with the line it watches, for the simulator and the
 * tests ("what the hardware would do"): energised while edges keep coming at most
 * `watchdogMs` apart; in level mode, energised while the line is active.
 */
export class WatchdogRelayModel {
  private lastEdge: number | undefined;
  private level = false;
  constructor(
    private readonly drive: RelayDrive,
    private readonly watchdogMs: number,
  ) {}

  /** The line changed to `value` (logical) at `at`. */
  edge(value: boolean, at: number): void {
    if (value !== this.level) this.lastEdge = at;
    this.level = value;
  }

  energised(at: number): boolean {
    if (this.drive === 'level') return this.level;
    return this.lastEdge !== undefined && at - this.lastEdge <= this.watchdogMs;
  }
}
