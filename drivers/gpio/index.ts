// Choosing and opening the GPIO backend from the doors' configuration.
//   auto: sysfs when /sys/class/gpio/export exists, else the character device (gpiod
//         tools), with a log line saying why; simulated only when asked for.
import { ChardevGpio } from './chardev.js';
import { SimulatedGpio } from './simulated.js';
import { SysfsGpio, SYSFS_ROOT } from './sysfs.js';
import { DEFAULT_CHIP_LABELS } from './chip.js';
import type { GpioBackend, Timers } from './types.js';
import { chooseGpioBackend } from './select.js';

export * from './types.js';
export { SimulatedGpio } from './simulated.js';
export { SysfsGpio } from './sysfs.js';
export { ChardevGpio } from './chardev.js';

export interface GpioSelection {
  backend: 'auto' | 'sysfs' | 'chardev' | 'simulated';
  chipLabel?: string | undefined;
  sysfsRoot?: string | undefined;
  toolsDir?: string | undefined;
  pollMs: number;
}

export interface GpioDeps {
  timers: Timers;
  info: (msg: string) => void;
  warn: (msg: string, detail?: Record<string, unknown>) => void;
}

export function openGpioBackend(sel: GpioSelection, deps: GpioDeps): GpioBackend {
  const chipLabels = sel.chipLabel ? [sel.chipLabel] : DEFAULT_CHIP_LABELS;
  const root = sel.sysfsRoot ?? SYSFS_ROOT;
  const common = { chipLabels, timers: deps.timers, pollMs: sel.pollMs, warn: deps.warn };
  let backend: GpioBackend;
  const kind = chooseGpioBackend({ backend: sel.backend, sysfsRoot: root });
  if (sel.backend === 'auto' && kind === 'chardev') deps.warn(`sysfs GPIO is absent (${root}/export missing, kernel built without CONFIG_GPIO_SYSFS): using the GPIO character device through the gpiod tools`);
  switch (kind) {
    case 'simulated':
      backend = new SimulatedGpio({ timers: deps.timers, async: true, pollMs: sel.pollMs });
      break;
    case 'sysfs':
      backend = new SysfsGpio({ ...common, root });
      break;
    case 'chardev':
      backend = new ChardevGpio({ ...common, ...(sel.toolsDir ? { toolsDir: sel.toolsDir } : {}) });
      break;
  }
  deps.info(`GPIO backend: ${backend.describe()}`);
  return backend;
}
