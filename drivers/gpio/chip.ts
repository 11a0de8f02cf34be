// Finding the GPIO chip of the 40-pin header under /sys/class/gpio. Since kernel 6.6
// the sysfs numbers are dynamic: the header's chip is gpiochip512 on a Pi 4
// (label "pinctrl-bcm2711") and gpiochip571 on a Pi 5 ("pinctrl-rp1"), other values on
// other boards and kernels. The sysfs number of a pin is always base + BCM line, so
// the chip is found by its label and its base read from the tree, never assumed.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { GpioError } from './types.js';

/** Labels of the header's chip, most specific first: Pi 5 (RP1), Pi 4, Pi 3/Zero and older. */
export const DEFAULT_CHIP_LABELS = ['pinctrl-rp1', 'pinctrl-bcm2711', 'pinctrl-bcm2835'] as const;

export interface SysfsChip {
  /** Directory name, e.g. "gpiochip571". */
  name: string;
  base: number;
  ngpio: number;
  label: string;
}

function readTrim(path: string): string {
  return readFileSync(path, 'utf8').trim();
}

export function listSysfsChips(root: string): SysfsChip[] {
  let entries: string[];
  try {
    entries = readdirSync(root);
  } catch (err) {
    throw new GpioError('no_gpio', `cannot read ${root}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
  const chips: SysfsChip[] = [];
  for (const name of entries.filter((e) => /^gpiochip\d+$/.test(e)).sort()) {
    try {
      const base = Number(readTrim(join(root, name, 'base')));
      const ngpio = Number(readTrim(join(root, name, 'ngpio')));
      const label = readTrim(join(root, name, 'label'));
      if (Number.isInteger(base) && Number.isInteger(ngpio)) chips.push({ name, base, ngpio, label });
    } catch {
      // A chip directory without readable attributes is not one we can use; skip it.
    }
  }
  return chips;
}

/** The chip carrying the header: the first of `labels` (in preference order) present. */
export function findSysfsChip(root: string, labels: readonly string[] = DEFAULT_CHIP_LABELS): SysfsChip {
  const chips = listSysfsChips(root);
  for (const label of labels) {
    const chip = chips.find((c) => c.label === label);
    if (chip) return chip;
  }
  const seen = chips.map((c) => `${c.name} [${c.label}] base ${c.base}`).join(', ') || 'none';
  throw new GpioError('no_chip', `no GPIO chip labelled ${labels.join(' or ')} under ${root} (found: ${seen}); set doors.gpio.chipLabel`);
}

/** The sysfs number of a BCM line on a chip (base + line), checked against the chip's size. */
export function sysfsNumber(chip: SysfsChip, line: number): number {
  if (!Number.isInteger(line) || line < 0 || line >= chip.ngpio) {
    throw new GpioError('bad_line', `line ${line} does not exist on ${chip.name} [${chip.label}] (0..${chip.ngpio - 1})`);
  }
  return chip.base + line;
}
