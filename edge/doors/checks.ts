// Cross-field checks of the doors section (appended to config/checks.ts).
import type { GatewayConfig } from '../config/core.js';
import { ZonedWeek } from './schedule.js';

export function doorsChecks(c: GatewayConfig): string[] {
  const p: string[] = [];
  const d = c.doors;
  // Checked only when there are doors: validating a zone loads ICU's time-zone data
  // (~6 MB of RSS), which a box without doors should not pay for.
  if (d.doors.length > 0 && !ZonedWeek.valid(d.timeZone)) p.push(`doors.timeZone: "${d.timeZone}" is not an IANA time zone known to this Node.js (e.g. Asia/Shanghai)`);
  const ids = new Set<string>();
  const pins = new Map<number, string>();
  const usePin = (pin: number, at: string, field = 'pin') => {
    const other = pins.get(pin);
    if (other !== undefined) p.push(`${at}.${field}: BCM ${pin} is already used by ${other}`);
    else pins.set(pin, at);
  };
  if (d.fire.input) usePin(d.fire.input.pin, 'doors.fire.input');
  d.doors.forEach((door, i) => {
    const at = `doors.doors[${i}]`;
    if (ids.has(door.id)) p.push(`${at}.id: door "${door.id}" is defined twice`);
    ids.add(door.id);
    usePin(door.lock.pin, `${at}.lock`);
    for (const k of ['contact', 'exitButton', 'buzzer', 'led'] as const) {
      const line = door[k];
      if (line) usePin(line.pin, `${at}.${k}`);
    }
    if (door.reader) {
      usePin(door.reader.d0, `${at}.reader`, 'd0');
      usePin(door.reader.d1, `${at}.reader`, 'd1');
    }
    const mode = door.access?.mode;
    if (!door.reader && (mode === 'card' || mode === 'card_and_pin' || mode === 'face_or_card')) p.push(`${at}.access.mode: ${mode} needs a card reader (${at}.reader with d0 and d1)`);
  });
  const groups = new Set<string>();
  d.groups.forEach((g, i) => {
    const at = `doors.groups[${i}]`;
    if (groups.has(g.id)) p.push(`${at}.id: group "${g.id}" is defined twice`);
    groups.add(g.id);
    for (const id of g.doors) if (!ids.has(id)) p.push(`${at}.doors: "${id}" is not a door (doors: ${[...ids].join(', ') || 'none'})`);
  });
  return p;
}
