// Cross-field checks of the `meters` section, run with the rest of the config
// validation: bus/device rules, and every device's profile exists, speaks the bus's
// protocol and has the points and deadbands the device names.
import type { ConfigCheck } from '../config/core.js';
import type { MetersConfig } from './schema.js';
import { meterConfigProblems, meterConfigWarnings } from './schema.js';
import { busFamily, builtinProfilesDir, loadProfiles, type Profile } from './profiles.js';

export function profileProblems(config: MetersConfig, profiles: ReadonlyMap<string, Profile>): string[] {
  const p: string[] = [];
  config.buses.forEach((b, i) =>
    b.devices.forEach((d, j) => {
      const at = `meters.buses[${i}].devices[${j}]`;
      const prof = profiles.get(d.profile);
      if (!prof) return p.push(`${at}.profile: unknown profile "${d.profile}" (known: ${[...profiles.keys()].join(', ')})`);
      const family = busFamily(prof.protocol);
      const fits = b.protocol === 'mixed' ? family !== 'cjt188' : family === b.protocol;
      if (!fits) p.push(`${at}.profile: ${d.profile} speaks ${prof.protocol}, but bus ${b.id} is ${b.protocol}`);
      if (b.protocol === 'mixed' && (family === 'modbus') !== (typeof d.address === 'number')) p.push(`${at}.address: on a mixed bus Modbus devices have a numeric unit id and DL/T 645 devices a digit string`);
      for (const name of d.points ?? []) if (!prof.points.some((x) => x.name === name)) p.push(`${at}.points: profile ${d.profile} has no point "${name}"`);
      if (typeof d.deadband === 'object') for (const name of Object.keys(d.deadband)) if (!prof.points.some((x) => x.name === name)) p.push(`${at}.deadband: profile ${d.profile} has no point "${name}"`);
    }),
  );
  return p;
}

export const metersChecks: ConfigCheck = (c) => {
  const m = c.meters;
  const problems = meterConfigProblems(m);
  if (m.buses.length === 0) return problems;
  try {
    const profiles = loadProfiles([builtinProfilesDir(), ...(m.profilesDir ? [m.profilesDir] : [])]);
    problems.push(...profileProblems(m, profiles));
  } catch (err) {
    problems.push(`meters.profilesDir: ${(err as Error).message}`);
  }
  return problems;
};

export const metersWarnings: ConfigCheck = (c) => meterConfigWarnings(c.meters);
