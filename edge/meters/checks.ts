// Cross-field checks of the `meters` section, run with the rest of the config
// validation: bus/device rules, and every device's profile exists, speaks the bus's
// protocol and has the points and deadbands the device names.
import type { ConfigCheck } from '../config/checks.js';
import type { MetersConfig } from './schema.js';
import { meterConfigProblems } from './schema.js';
import { busFamily, builtinProfilesDir, loadProfiles, type Profile } from './profiles.js';

export function profileProblems(config: MetersConfig, profiles: ReadonlyMap<string, Profile>): string[] {
  const p: string[] = [];
  config.buses.forEach((b, i) =>
    b.devices.forEach((d, j) => {
      const at = `meters.buses[${i}].devices[${j}]`;
      const prof = profiles.get(d.profile);
      if (!prof) return p.push(`${at}.profile: unknown profile "${d.profile}" (known: ${[...profiles.keys()].join(', ')})`);
      if (busFamily(prof.protocol) !== b.protocol) p.push(`${at}.profile: ${d.profile} speaks ${prof.protocol}, but bus ${b.id} is ${b.protocol}`);
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
