// Which GPIO backend a doors configuration gets — one rule, used by openGpioBackend
// (index.ts) and by `estate-edge doctor` (edge/doors/doctor.ts), without loading a driver.
//   auto: sysfs when <sysfsRoot>/export exists, else the character device; simulated only when asked for.
import { existsSync } from 'node:fs';
import { join } from 'node:path';

export const SYSFS_ROOT = '/sys/class/gpio';

export type GpioBackendKind = 'sysfs' | 'chardev' | 'simulated';

export function sysfsAvailable(root = SYSFS_ROOT): boolean {
  return existsSync(join(root, 'export'));
}

export function chooseGpioBackend(sel: { backend: 'auto' | GpioBackendKind; sysfsRoot?: string | undefined }): GpioBackendKind {
  if (sel.backend !== 'auto') return sel.backend;
  return sysfsAvailable(sel.sysfsRoot ?? SYSFS_ROOT) ? 'sysfs' : 'chardev';
}
