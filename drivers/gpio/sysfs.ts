// The sysfs GPIO backend (/sys/class/gpio), the interface onoff drives. It does what
// onoff's Gpio class does — export, wait for udev to make the files writable, set the
// direction with the initial level in one write (no glitch), epoll on `value` for
// edges — but under an injectable root, because onoff hard-codes /sys/class/gpio and
// the pin mapping must be testable against fake Pi 4 / Pi 5 trees. Edge interrupts use
// onoff's own epoll binding; where that or the `edge` file is unavailable, inputs are
// polled.
//
// Outputs are left exported at close so the pin keeps the safe level written last
// (unexporting would turn it into an input and let the relay fall).
import { closeSync, existsSync, openSync, readSync, writeFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { DebouncedInput, SimpleOutput, physical } from './lines.js';
import { findSysfsChip, sysfsNumber, type SysfsChip } from './chip.js';
import { GpioError, realTimers, type BackendOptions, type GpioBackend, type GpioErrorCode, type GpioInput, type GpioOutput, type InputOptions, type OutputOptions, type Timers } from './types.js';

import { SYSFS_ROOT, sysfsAvailable } from './select.js';

export { SYSFS_ROOT };

interface EpollLike {
  add(fd: number, events: number): EpollLike;
  remove(fd: number): EpollLike;
  close(): void;
}
type EpollCtor = (new (cb: (err: Error | null, fd: number, events: number) => void) => EpollLike) & { EPOLLPRI: number };

let epollCtor: EpollCtor | null | undefined;
/** onoff's epoll binding, resolved from onoff's own location (it is onoff's dependency). */
function loadEpoll(): EpollCtor | null {
  if (epollCtor !== undefined) return epollCtor;
  try {
    const fromHere = createRequire(import.meta.url);
    const fromOnoff = createRequire(fromHere.resolve('onoff'));
    const mod = fromOnoff('epoll') as { Epoll?: EpollCtor };
    epollCtor = typeof mod.Epoll === 'function' ? mod.Epoll : null;
  } catch {
    epollCtor = null;
  }
  return epollCtor;
}

/** Map an errno from writing `export` to a GPIO error a technician can act on. */
export function exportError(err: NodeJS.ErrnoException, n: number, line: number, label: string): GpioError {
  const code = err.code ?? '';
  const byErrno: Record<string, [GpioErrorCode, string]> = {
    EBUSY: ['busy', 'is already in use (claimed by a kernel driver, an overlay or another program)'],
    EINVAL: ['bad_line', 'is not a valid GPIO number for the kernel'],
    EACCES: ['permission', 'cannot be exported: permission denied (add the service user to the gpio group)'],
    EPERM: ['permission', 'cannot be exported: operation not permitted'],
  };
  const [c, what] = byErrno[code] ?? ['export_failed', `cannot be exported: ${code || err.message}`];
  return new GpioError(c, `GPIO ${n} (BCM ${line}, for ${label}) ${what}`);
}

export interface SysfsOptions extends BackendOptions {
  root?: string;
  /** How long to wait for udev to create and open up gpioN/ after export. */
  exportTimeoutMs?: number;
  /** Use edge interrupts when possible (false forces polling). */
  interrupts?: boolean;
}

export class SysfsGpio implements GpioBackend {
  readonly kind = 'sysfs' as const;
  readonly root: string;
  readonly chip: SysfsChip;
  private readonly claimed = new Map<number, string>();
  private readonly timers: Timers;

  constructor(private readonly opts: SysfsOptions = {}) {
    this.root = opts.root ?? SYSFS_ROOT;
    this.timers = opts.timers ?? realTimers;
    if (!existsSync(join(this.root, 'export'))) throw new GpioError('no_gpio', `sysfs GPIO is not available (${join(this.root, 'export')} missing)`);
    this.chip = findSysfsChip(this.root, opts.chipLabels);
  }

  /** True when this root offers the sysfs GPIO interface at all. */
  static available(root = SYSFS_ROOT): boolean {
    return sysfsAvailable(root);
  }

  describe(): string {
    return `sysfs ${this.root}/${this.chip.name} [${this.chip.label}] base ${this.chip.base}, ${this.chip.ngpio} lines`;
  }

  /** The sysfs number a BCM line maps to on this board. */
  number(line: number): number {
    return sysfsNumber(this.chip, line);
  }

  private async export(line: number, label: string): Promise<{ n: number; dir: string }> {
    const n = this.number(line);
    const holder = this.claimed.get(n);
    if (holder) throw new GpioError('busy', `GPIO ${n} (BCM ${line}) is already used by ${holder} (wanted by ${label})`);
    const dir = join(this.root, `gpio${n}`);
    // Already exported (by a previous run that left an output in its safe level, or by
    // the installer): reuse it, as onoff does.
    if (!existsSync(dir)) {
      try {
        writeFileSync(join(this.root, 'export'), String(n));
      } catch (err) {
        throw exportError(err as NodeJS.ErrnoException, n, line, label);
      }
    }
    // udev changes the group/mode of the new files a moment after the export.
    const deadline = Date.now() + (this.opts.exportTimeoutMs ?? 2000);
    for (;;) {
      try {
        closeSync(openSync(join(dir, 'value'), 'r+'));
        closeSync(openSync(join(dir, 'direction'), 'r+'));
        break;
      } catch (err) {
        if (Date.now() > deadline) throw new GpioError('export_failed', `GPIO ${n} (BCM ${line}, for ${label}) was exported but ${dir} did not become writable: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    this.claimed.set(n, label);
    return { n, dir };
  }

  private attr(dir: string, name: string, value: string, n: number): void {
    try {
      writeFileSync(join(dir, name), value);
    } catch (err) {
      throw new GpioError('io', `cannot write ${value} to gpio${n}/${name}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
  }

  async openOutput(o: OutputOptions): Promise<GpioOutput> {
    const { n, dir } = await this.export(o.line, o.label);
    try {
      // Inversion is done in software for every backend; the kernel's flag is cleared so
      // a value left behind by another tool cannot invert twice.
      this.attr(dir, 'active_low', '0', n);
      // "high"/"low" sets output direction and level in one step: no glitch on the relay.
      this.attr(dir, 'direction', physical(o.initial, o.activeLow) ? 'high' : 'low', n);
      const fd = openSync(join(dir, 'value'), 'r+');
      return new SimpleOutput(
        o,
        (raw) => {
          try {
            writeSync(fd, raw ? '1' : '0', 0);
          } catch (err) {
            throw new GpioError('io', `cannot write gpio${n}/value: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
          }
        },
        () => {
          closeSync(fd);
          this.claimed.delete(n);
        },
      );
    } catch (err) {
      this.claimed.delete(n);
      throw err instanceof GpioError ? err : new GpioError('io', `gpio${n}: ${String(err)}`);
    }
  }

  async openInput(o: InputOptions): Promise<GpioInput> {
    const { n, dir } = await this.export(o.line, o.label);
    let fd: number | undefined;
    try {
      this.attr(dir, 'active_low', '0', n);
      this.attr(dir, 'direction', 'in', n);
      let edgeOk = this.opts.interrupts !== false && existsSync(join(dir, 'edge'));
      if (edgeOk) {
        try {
          // Pulse lines interrupt on their active-going edge only: one interrupt per pulse.
          writeFileSync(join(dir, 'edge'), o.pulses ? (o.activeLow ? 'falling' : 'rising') : 'both');
        } catch {
          edgeOk = false;
        }
      }
      const valueFd = (fd = openSync(join(dir, 'value'), 'r'));
      const buf = Buffer.alloc(2);
      const readRaw = () => {
        try {
          readSync(valueFd, buf, 0, 1, 0);
        } catch (err) {
          throw new GpioError('io', `cannot read gpio${n}/value: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
        }
        return buf[0] === 0x31; // '1'
      };
      const Epoll = edgeOk ? loadEpoll() : null;
      const input = new DebouncedInput(
        {
          readRaw,
          ...(Epoll
            ? {
                watchRaw: (onEdge: (raw: boolean) => void, onError: (err: Error) => void) => {
                  const poller = new Epoll((err) => {
                    if (err) onError(err);
                    else {
                      const raw = readRaw(); // reading also acknowledges the interrupt
                      // A pulse has usually ended by the time it is read: the interrupt itself is the pulse.
                      onEdge(o.pulses ? physical(true, o.activeLow) : raw);
                    }
                  });
                  readRaw(); // clear a stale interrupt before watching (as onoff does)
                  poller.add(valueFd, Epoll.EPOLLPRI); // throws EPERM on a plain file: polled then
                  return () => {
                    try {
                      poller.remove(valueFd).close();
                    } catch {
                      /* already closed */
                    }
                  };
                },
              }
            : {}),
          release: () => {
            closeSync(valueFd);
            this.claimed.delete(n);
            try {
              writeFileSync(join(this.root, 'unexport'), String(n));
            } catch {
              /* the kernel may refuse (line in use elsewhere): harmless for an input */
            }
          },
        },
        o,
        { timers: this.timers, pollMs: this.opts.pollMs ?? 20, ...(this.opts.warn ? { warn: this.opts.warn } : {}) },
      );
      return input;
    } catch (err) {
      if (fd !== undefined) closeSync(fd);
      this.claimed.delete(n);
      throw err instanceof GpioError ? err : new GpioError('io', `gpio${n}: ${String(err)}`);
    }
  }

  close(): void {
    /* lines are closed by their owners; nothing global to release */
  }
}
