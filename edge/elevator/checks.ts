// Cross-field checks and warnings of the elevator section.
import type { GatewayConfig } from '../config/core.js';

export function elevatorChecks(c: GatewayConfig): string[] {
  const p: string[] = [];
  const e = c.elevator;
  if (e.releaseK >= e.k) p.push(`elevator.releaseK: ${e.releaseK} must be below elevator.k (${e.k}), else a car could never be released`);
  if (e.k > e.n) p.push(`elevator.k: ${e.k} is more than the window elevator.n (${e.n})`);
  const ids = new Set<string>();
  const pins = new Map<number, string>();
  // A relay pin shared with a door would let one capability drive the other's hardware.
  if (c.doors) {
    for (const d of c.doors.doors) {
      pins.set(d.lock.pin, `door ${d.id} lock`);
      for (const k of ['contact', 'exitButton', 'buzzer', 'led'] as const) {
        const l = d[k];
        if (l) pins.set(l.pin, `door ${d.id} ${k}`);
      }
    }
  }
  e.cars.forEach((car, i) => {
    const at = `elevator.cars[${i}]`;
    if (ids.has(car.id)) p.push(`${at}.id: car "${car.id}" is defined twice`);
    ids.add(car.id);
    const other = pins.get(car.relay.pin);
    if (other !== undefined) p.push(`${at}.relay.pin: BCM ${car.relay.pin} is already used by ${other}`);
    else pins.set(car.relay.pin, `elevator car ${car.id} relay`);
    const s = car.camera.source;
    if (s.kind === 'rtsp' && !s.url) p.push(`${at}.camera.source.url: required for an RTSP camera`);
    if (s.kind === 'file' && !s.path) p.push(`${at}.camera.source.path: required for a file camera`);
  });
  return p;
}

export function elevatorWarnings(c: GatewayConfig): string[] {
  const w: string[] = [];
  c.elevator.cars.forEach((car, i) => {
    if (car.relay.drive === 'level') w.push(`elevator.cars[${i}].relay.drive: "level" keeps the line at its last level if the gateway is killed (sysfs GPIO): a killed gateway could leave car ${car.id} held. Use "pulse" with a watchdog relay module.`);
  });
  if (c.elevator.snapshot.enabled) w.push('elevator.snapshot.enabled: frames of people in the car are sent upstream (personal data): make sure the estate has told residents');
  return w;
}
