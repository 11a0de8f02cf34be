// A fake /sys/class/gpio tree laid out like the real one on a Pi 4 or Pi 5 (kernel 6.6+,
// dynamic bases), with a tiny "kernel" that creates gpioN/ when a number is written to
// `export` and removes it on `unexport`, as the real sysfs does.
import { mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/gateway.js';

export type Board = 'pi4' | 'pi5' | 'pi4-old-kernel' | 'unknown';

const CHIPS: Record<Board, Array<[number, string, number]>> = {
  pi4: [
    [512, 'pinctrl-bcm2711', 58],
    [570, 'raspberrypi-exp-gpio', 8],
  ],
  pi5: [
    [512, 'gpio-brcmstb@107d508500', 32],
    [544, 'gpio-brcmstb@107d508520', 4],
    [548, 'gpio-brcmstb@107d517c00', 17],
    [565, 'gpio-brcmstb@107d517c20', 6],
    [571, 'pinctrl-rp1', 54],
  ],
  'pi4-old-kernel': [
    [0, 'pinctrl-bcm2711', 58],
    [504, 'raspberrypi-exp-gpio', 8],
  ],
  unknown: [[0, 'gpio-mockup-A', 16]],
};

export class FakeSysfs {
  readonly root = join(tempDir('ee-sysfs-'), 'gpio');
  readonly exported: number[] = [];
  readonly unexported: number[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** Physical level an input pin shows once exported (pull-ups, closed contacts). */
  readonly presets = new Map<number, 0 | 1>();

  constructor(board: Board) {
    mkdirSync(this.root, { recursive: true });
    writeFileSync(join(this.root, 'export'), '');
    writeFileSync(join(this.root, 'unexport'), '');
    for (const [base, label, ngpio] of CHIPS[board]) {
      const d = join(this.root, `gpiochip${base}`);
      mkdirSync(d);
      writeFileSync(join(d, 'base'), `${base}\n`);
      writeFileSync(join(d, 'label'), `${label}\n`);
      writeFileSync(join(d, 'ngpio'), `${ngpio}\n`);
    }
    // The "kernel": reacts to writes of export/unexport within a few milliseconds.
    this.timer = setInterval(() => this.tick(), 2);
  }

  private tick(): void {
    for (const [file, fn] of [
      ['export', (n: number) => this.doExport(n)],
      ['unexport', (n: number) => this.doUnexport(n)],
    ] as const) {
      const p = join(this.root, file);
      let s = '';
      try {
        s = readFileSync(p, 'utf8').trim();
      } catch {
        continue; // replaced by a directory in a failure test
      }
      if (s === '') continue;
      writeFileSync(p, '');
      fn(Number(s));
    }
  }

  private doExport(n: number): void {
    this.exported.push(n);
    const d = join(this.root, `gpio${n}`);
    mkdirSync(d, { recursive: true });
    for (const [f, v] of [
      ['value', String(this.presets.get(n) ?? 0)],
      ['direction', 'in'],
      ['active_low', '0'],
      ['edge', 'none'],
    ])
      writeFileSync(join(d, f!), `${v}\n`);
  }

  private doUnexport(n: number): void {
    this.unexported.push(n);
    rmSync(join(this.root, `gpio${n}`), { recursive: true, force: true });
  }

  read(n: number, attr: string): string {
    return readFileSync(join(this.root, `gpio${n}`, attr), 'utf8').trim();
  }

  /** Set an input's physical level, as the pin would. */
  setValue(n: number, v: 0 | 1): void {
    writeFileSync(join(this.root, `gpio${n}`, 'value'), `${v}\n`);
  }

  has(n: number): boolean {
    return existsSync(join(this.root, `gpio${n}`));
  }

  /** Make export unwritable like a kernel that refuses it (a directory gives EISDIR). */
  breakExport(): void {
    rmSync(join(this.root, 'export'));
    mkdirSync(join(this.root, 'export'));
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
