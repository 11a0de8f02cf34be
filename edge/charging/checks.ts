// Cross-field checks of the `charging` section, run with the rest of the config
// validation: ids unique, thresholds that make sense together, and every meter, relay
// board and detector input it names is a device of the `meters` section whose profile
// has the point, on a bus that can carry coil writes. One relay, one port: two ports on
// the same coil (or GPIO line) would cut each other.
import type { ConfigCheck, GatewayConfig } from '../config/core.js';
import { builtinProfilesDir, loadProfiles, type Profile } from '../meters/profiles.js';
import { portThresholds } from './schema.js';

export function chargingProblems(c: GatewayConfig, profiles?: ReadonlyMap<string, Profile>): string[] {
  const ch = c.charging;
  const p: string[] = [];
  if (!ch.enabled || ch.piles.length === 0) return p;
  const devices = new Map<string, { bus: string; protocol: string; profile: string }>();
  for (const b of c.meters.buses) for (const d of b.devices) devices.set(d.id, { bus: b.id, protocol: b.protocol, profile: d.profile });
  const metersOn = c.meters.enabled;
  const device = (at: string, id: string, what: string) => {
    const d = devices.get(id);
    if (!d) {
      p.push(`${at}: no device "${id}" in meters.buses[].devices (the ${what} must be configured as a meters device)`);
      return undefined;
    }
    if (!metersOn) p.push(`${at}: device "${id}" is in the meters section, but meters.enabled is false`);
    return d;
  };
  const hasPoint = (at: string, id: string, point: string) => {
    const d = devices.get(id);
    const prof = d && profiles?.get(d.profile);
    if (prof && !prof.points.some((x) => x.name === point)) p.push(`${at}: profile ${prof.id} of device "${id}" has no point "${point}" (points: ${prof.points.map((x) => x.name).join(', ')})`);
  };
  const piles = new Set<string>();
  const relays = new Map<string, string>();
  const gpioUse = new Map<number, string>();
  const claimPin = (pin: number, who: string, at: string) => {
    const prev = gpioUse.get(pin);
    if (prev) p.push(`${at}: GPIO ${pin} is already used by ${prev}`);
    else gpioUse.set(pin, who);
  };
  ch.piles.forEach((pile, i) => {
    const at = `charging.piles[${i}]`;
    if (piles.has(pile.id)) p.push(`${at}.id: duplicate pile id "${pile.id}"`);
    piles.add(pile.id);
    const ports = new Set<string>();
    pile.ports.forEach((port, j) => {
      const pat = `${at}.ports[${j}]`;
      if (ports.has(port.id)) p.push(`${pat}.id: duplicate port id "${port.id}" in pile ${pile.id}`);
      ports.add(port.id);
      const th = portThresholds(pile, port);
      if (th.taperW < th.startW) p.push(`${pat}: taperW (${th.taperW} W) is below startW (${th.startW} W): a session could never be taken as full before it ends`);
      if (th.maxW <= th.taperW) p.push(`${pat}: maxW (${th.maxW} W) must be above taperW (${th.taperW} W)`);
      if (device(`${pat}.meter.device`, port.meter.device, 'meter')) {
        hasPoint(`${pat}.meter.power`, port.meter.device, port.meter.power);
        if (port.meter.energy) hasPoint(`${pat}.meter.energy`, port.meter.device, port.meter.energy);
      }
      const r = port.relay;
      if (r.kind === 'modbus') {
        const d = device(`${pat}.relay.device`, r.device, 'relay board');
        if (d && d.protocol !== 'modbus') p.push(`${pat}.relay.device: "${r.device}" is on bus ${d.bus}, which speaks ${d.protocol}: relay coils need a modbus bus`);
        const key = `${r.device}#${r.coil}`;
        if (relays.has(key)) p.push(`${pat}.relay: coil ${r.coil} of ${r.device} already switches ${relays.get(key)}`);
        relays.set(key, `${pile.id}/${port.id}`);
      } else claimPin(r.pin, `relay of ${pile.id}/${port.id}`, `${pat}.relay.pin`);
    });
    pile.smoke.forEach((s, k) => {
      const sat = `${at}.smoke[${k}]`;
      if (s.kind === 'gpio') claimPin(s.pin, `smoke input ${k} of ${pile.id}`, `${sat}.pin`);
      else if (device(`${sat}.device`, s.device, 'detector input')) hasPoint(`${sat}.point`, s.device, s.point);
    });
  });
  return p;
}

export const chargingChecks: ConfigCheck = (c) => {
  if (!c.charging.enabled || c.charging.piles.length === 0) return [];
  let profiles: ReadonlyMap<string, Profile> | undefined;
  try {
    profiles = loadProfiles([builtinProfilesDir(), ...(c.meters.profilesDir ? [c.meters.profilesDir] : [])]);
  } catch {
    // The meters check reports a broken profiles directory; points are then not checked here.
  }
  return chargingProblems(c, profiles);
};

/** Piles without a detector input are legal (a shed with a separate fire panel) but worth a word. */
export const chargingWarnings: ConfigCheck = (c) => (c.charging.enabled ? c.charging.piles.flatMap((pile, i) => (pile.smoke.length ? [] : [`charging.piles[${i}]: pile ${pile.id} has no smoke or temperature input: only the per-port limits protect it`])) : []);
