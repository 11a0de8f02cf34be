// `estate-edge doctor` for the doors: the GPIO backend the service would pick (the same
// choice as drivers/gpio's openGpioBackend) is there and usable by the service account.
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { chooseGpioBackend, SYSFS_ROOT } from '../../drivers/gpio/select.js';
import type { DoctorCheck } from '../doctor-kit.js';

export const gpioCheck: DoctorCheck = {
  id: 'gpio',
  label: '门禁 GPIO',
  run(ctx) {
    const d = ctx.config.doors;
    const doors = d?.doors ?? [];
    if (doors.length === 0) return ctx.add('SKIP', 'no doors configured');
    const sel = d.gpio ?? { backend: 'auto' };
    const root = sel.sysfsRoot ?? SYSFS_ROOT;
    const backend = chooseGpioBackend({ backend: sel.backend ?? 'auto', sysfsRoot: root });
    if (backend === 'simulated') return ctx.add('WARN', `${doors.length} door(s) on simulated GPIO: no real lock is driven`);
    if (backend === 'sysfs') {
      let writable = true;
      try {
        accessSync(join(root, 'export'), constants.W_OK);
      } catch {
        writable = false;
      }
      return ctx.add(writable ? 'OK' : 'FAIL', `sysfs ${join(root, 'export')} ${writable ? 'writable' : 'missing or not writable'} (${doors.length} door(s))`);
    }
    const chips = ctx.listDevices(/^gpiochip\d+$/);
    if (!chips.length) return ctx.add('FAIL', `no GPIO character device (${ctx.devDir}/gpiochip*) and no sysfs GPIO: doors cannot work`);
    for (const chip of chips) ctx.device('gpio', chip, () => chips);
  },
};

export const doorsDoctor: readonly DoctorCheck[] = [gpioCheck];
