// Life in the simulated estate: after a granted unlock someone walks through (the door
// contact opens, then closes, which relocks the door), and now and then somebody leaves
// through an exit button. Runs only on the simulated GPIO backend with
// simulation.enabled, so `npm start` without hardware shows doors that move.
import type { EventBus } from '../bus.js';
import type { SimulatedGpio } from '../../drivers/gpio/simulated.js';
import type { Timers, TimerHandle } from '../../drivers/gpio/types.js';
import type { DoorConfig } from './schema.js';
import type { PeopleStore } from './people.js';

export class DoorSimulation {
  private readonly timers = new Set<TimerHandle>();
  private exitTimer: TimerHandle | undefined;
  private off: (() => void) | undefined;

  constructor(
    private readonly gpio: SimulatedGpio,
    private readonly doors: readonly DoorConfig[],
    private readonly t: Timers,
    private readonly random: () => number = Math.random,
  ) {}

  start(bus: EventBus): void {
    this.off = bus.on('door.state', (s) => {
      const door = this.doors.find((d) => d.id === s.id);
      if (!door?.contact || s.lock !== 'unlocked' || !s.cause.startsWith('granted') || s.contact !== 'closed') return;
      const pin = door.contact.pin;
      // Someone pushes the door ~1 s after the click and lets it close 1.5–3 s later, but
      // before the pulse ends (300 ms spare for the contact's debounce), so the demo shows
      // the relock on closing; a pulse too short for that gets a door closed after it.
      const openAt = 600 + this.random() * 800;
      const closeAt = Math.max(openAt + 200, Math.min(openAt + 1500 + this.random() * 1500, door.unlockMs - 300));
      this.later(openAt, () => this.gpio.set(pin, true));
      this.later(closeAt, () => this.gpio.set(pin, false));
    });
    this.scheduleExit();
  }

  private scheduleExit(): void {
    const withButton = this.doors.filter((d) => d.exitButton);
    if (!withButton.length) return;
    this.exitTimer = this.t.setTimeout(
      () => {
        const door = withButton[Math.floor(this.random() * withButton.length)]!;
        const pin = door.exitButton!.pin;
        this.gpio.set(pin, true);
        this.later(250, () => this.gpio.set(pin, false));
        this.scheduleExit();
      },
      40_000 + this.random() * 50_000,
    );
  }

  private later(ms: number, fn: () => void): void {
    const h = this.t.setTimeout(() => {
      this.timers.delete(h);
      fn();
    }, ms);
    this.timers.add(h);
  }

  stop(): void {
    this.off?.();
    this.t.clearTimeout(this.exitTimer);
    for (const h of this.timers) this.t.clearTimeout(h);
    this.timers.clear();
  }
}

/** A few demo residents for an empty simulated estate, so the console has people to show. */
export function seedDemoPeople(people: PeopleStore, groups: readonly string[], now: number): number {
  if (people.count() > 0 || groups.length === 0) return 0;
  const demo = [
    { id: 'demo-resident-1', name: '张伟 (demo resident)', kind: 'resident' as const },
    { id: 'demo-resident-2', name: '李娜 (demo resident)', kind: 'resident' as const },
    { id: 'demo-staff-1', name: '王强 (demo staff, weekdays 07:00–19:00)', kind: 'staff' as const, schedule: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'] as ('mon' | 'tue' | 'wed' | 'thu' | 'fri')[], start: '07:00', end: '19:00' }] },
  ];
  for (const p of demo) people.upsert({ ...p, doorGroups: [...groups], enabled: true, updatedAt: now });
  return demo.length;
}
