// The GPIO character-device backend, for kernels without sysfs GPIO. It drives the
// lines through Debian's gpiod tools (gpiodetect, gpioget, gpioset, gpiomon), which
// exist in both the v1 (Debian 12, libgpiod 1.6) and v2 (libgpiod 2.x) command-line
// dialects; the dialect is detected from `gpioset --version`.
//
// A line driven over the character device keeps its level only while the process
// holding it lives, so each output is held by one long-running gpioset:
//   v2: `gpioset --interactive` and "set N=V" commands on its stdin (no release, no glitch);
//   v1: `gpioset --mode=signal`, restarted for each change (the line is released for
//       the few milliseconds between the two processes; the level stays where it was on
//       Broadcom/RP1 pin controllers, but this is why v2 is preferred).
// Inputs are watched by one gpiomon per line (edge events); if gpiomon fails they are
// polled with gpioget.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { DebouncedInput, SimpleOutput, physical } from './lines.js';
import { DEFAULT_CHIP_LABELS } from './chip.js';
import { GpioError, realTimers, type BackendOptions, type GpioBackend, type GpioErrorCode, type GpioInput, type GpioOutput, type InputOptions, type OutputOptions, type Timers } from './types.js';

export interface ChardevOptions extends BackendOptions {
  /** Directory of the gpiod tools (default: found on PATH). */
  toolsDir?: string;
  /** A helper still running after this long is considered started. */
  startupMs?: number;
}

export interface ChardevChip {
  name: string;
  label: string;
  lines: number;
}

type Tool = 'gpiodetect' | 'gpioget' | 'gpioset' | 'gpiomon';

function findTool(name: Tool, dir: string | undefined): string {
  const dirs = dir ? [dir] : [...(process.env.PATH ?? '').split(delimiter).filter(Boolean), '/usr/bin', '/usr/sbin'];
  for (const d of dirs) {
    const p = join(d, name);
    if (existsSync(p)) return p;
  }
  throw new GpioError('tool_missing', `${name} not found${dir ? ` in ${dir}` : ' on PATH'} (apt-get install gpiod)`);
}

/** `gpiodetect` lines: "gpiochip0 [pinctrl-bcm2711] (58 lines)". */
export function parseGpiodetect(text: string): ChardevChip[] {
  const chips: ChardevChip[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\S+)\s+\[([^\]]*)\]\s+\((\d+) lines?\)/.exec(line.trim());
    if (m) chips.push({ name: m[1]!, label: m[2]!, lines: Number(m[3]) });
  }
  return chips;
}

/** Classify a tool's error output. */
export function toolError(stderr: string, what: string): GpioError {
  const s = stderr.trim().split('\n').slice(-1)[0] ?? '';
  let code: GpioErrorCode = 'io';
  if (/busy/i.test(stderr)) code = 'busy';
  else if (/permission|not permitted/i.test(stderr)) code = 'permission';
  else if (/offset|out of range|invalid argument|not found|unable to find/i.test(stderr)) code = 'bad_line';
  return new GpioError(code, `${what}: ${s || 'helper exited'}`);
}

/** Command lines of the two gpiod dialects. */
export const argv = {
  version: (): string[] => ['--version'],
  get: (v: 1 | 2, chip: string, line: number, bias?: string): string[] => (v === 1 ? [...(bias ? ['-B', bias] : []), chip, String(line)] : ['--numeric', ...(bias ? ['-b', bias] : []), '-c', chip, String(line)]),
  hold: (v: 1 | 2, chip: string, line: number, raw: boolean): string[] => (v === 1 ? ['--mode=signal', chip, `${line}=${raw ? 1 : 0}`] : ['--interactive', '-c', chip, `${line}=${raw ? 1 : 0}`]),
  monitor: (v: 1 | 2, chip: string, line: number, bias?: string): string[] => (v === 1 ? ['-b', '-F', '%e', ...(bias ? ['-B', bias] : []), chip, String(line)] : ['-F', '%E', ...(bias ? ['-b', bias] : []), '-c', chip, String(line)]),
};

/** One event line of gpiomon (-F %e in v1: 1/0; -F %E in v2: rising/falling) → new level. */
export function parseMonitorLine(v: 1 | 2, line: string): boolean | undefined {
  const s = line.trim();
  if (v === 1) return s === '1' ? true : s === '0' ? false : undefined;
  return s === 'rising' ? true : s === 'falling' ? false : undefined;
}

export class ChardevGpio implements GpioBackend {
  readonly kind = 'chardev' as const;
  private readonly tools: Record<Tool, string>;
  readonly dialect: 1 | 2;
  readonly chip: ChardevChip;
  private readonly timers: Timers;
  private readonly children = new Set<ChildProcess>();
  private readonly claimed = new Map<number, string>();

  constructor(private readonly opts: ChardevOptions = {}) {
    this.timers = opts.timers ?? realTimers;
    this.tools = {
      gpiodetect: findTool('gpiodetect', opts.toolsDir),
      gpioget: findTool('gpioget', opts.toolsDir),
      gpioset: findTool('gpioset', opts.toolsDir),
      gpiomon: findTool('gpiomon', opts.toolsDir),
    };
    const version = this.run('gpioset', argv.version(), 'gpioset --version');
    const m = /v(\d+)\.\d+/.exec(version);
    this.dialect = m && Number(m[1]) >= 2 ? 2 : 1;
    const chips = parseGpiodetect(this.run('gpiodetect', [], 'gpiodetect'));
    const labels = opts.chipLabels ?? DEFAULT_CHIP_LABELS;
    const chip = labels.map((l) => chips.find((c) => c.label === l)).find((c) => c !== undefined);
    if (!chip) throw new GpioError('no_chip', `no GPIO chip labelled ${labels.join(' or ')} (gpiodetect found: ${chips.map((c) => `${c.name} [${c.label}]`).join(', ') || 'none'})`);
    this.chip = chip;
  }

  private run(tool: Tool, args: string[], what: string): string {
    try {
      return execFileSync(this.tools[tool], args, { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'pipe'] });
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw toolError(e.stderr || e.message, what);
    }
  }

  describe(): string {
    return `GPIO character device ${this.chip.name} [${this.chip.label}], ${this.chip.lines} lines, via gpiod tools v${this.dialect} (${this.tools.gpioset})`;
  }

  private checkLine(line: number, label: string): void {
    if (!Number.isInteger(line) || line < 0 || line >= this.chip.lines) throw new GpioError('bad_line', `line ${line} does not exist on ${this.chip.name} [${this.chip.label}] (0..${this.chip.lines - 1})`);
    const holder = this.claimed.get(line);
    if (holder) throw new GpioError('busy', `GPIO line ${line} is already used by ${holder} (wanted by ${label})`);
  }

  /** Start a helper and wait until it either exits (error) or has run `startupMs`. */
  private async startHelper(tool: Tool, args: string[], what: string): Promise<{ child: ChildProcess; stderr: () => string }> {
    const child = spawn(this.tools[tool], args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr = (stderr + String(d)).slice(-2000)));
    child.stdin!.on('error', () => {
      /* the helper died; reported through its exit */
    });
    this.children.add(child);
    child.once('exit', () => this.children.delete(child));
    const outcome = await new Promise<'running' | 'exited' | Error>((resolve) => {
      const t = setTimeout(() => resolve('running'), this.opts.startupMs ?? 150);
      // 'close', not 'exit': the error text on stderr is complete only once stdio closed.
      child.once('close', () => {
        clearTimeout(t);
        resolve('exited');
      });
      child.once('error', (err) => {
        clearTimeout(t);
        resolve(err);
      });
    });
    if (outcome instanceof Error) throw new GpioError('tool_missing', `${what}: cannot run ${this.tools[tool]}: ${outcome.message}`);
    if (outcome === 'exited') throw toolError(stderr, what);
    return { child, stderr: () => stderr };
  }

  private stopChild(child: ChildProcess | undefined): Promise<void> {
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }

  async openOutput(o: OutputOptions): Promise<GpioOutput> {
    this.checkLine(o.line, o.label);
    const chip = this.chip.name;
    const what = `gpioset ${chip} line ${o.line} (${o.label})`;
    let desired = physical(o.initial, o.activeLow);
    let held = desired;
    let { child, stderr } = await this.startHelper('gpioset', argv.hold(this.dialect, chip, o.line, desired), what);
    this.claimed.set(o.line, o.label);
    let applying = false;
    let closed = false;
    const warn = (msg: string) => this.opts.warn?.(msg, { line: o.line, label: o.label });
    // A holder that dies on its own (killed, line taken away) leaves the pin undriven: say so.
    const watch = (c: typeof child, err: () => string) =>
      c.once('close', (code, signal) => {
        if (!closed && c === child && !applying) warn(`${what} exited unexpectedly (${signal ?? code}): ${err().trim() || 'no message'}; the line is no longer driven`);
      });
    watch(child, stderr);
    // v1: one process per level; changes are applied in order, the last one wins.
    const applyV1 = async () => {
      if (applying) return;
      applying = true;
      try {
        while (!closed && held !== desired) {
          const target = desired;
          await this.stopChild(child);
          try {
            ({ child, stderr } = await this.startHelper('gpioset', argv.hold(1, chip, o.line, target), what));
            watch(child, stderr);
            held = target;
          } catch (err) {
            warn(`cannot drive GPIO line ${o.line} (${o.label}): ${(err as Error).message}`);
            return;
          }
        }
      } finally {
        applying = false;
      }
    };
    return new SimpleOutput(
      o,
      (raw) => {
        desired = raw;
        if (this.dialect === 2) {
          if (child.exitCode !== null || child.signalCode !== null) throw new GpioError('io', `${what} has exited (${child.signalCode ?? child.exitCode}): ${stderr().trim()}`);
          child.stdin!.write(`set ${o.line}=${raw ? 1 : 0}\n`);
          held = raw;
        } else void applyV1();
      },
      () => {
        closed = true;
        this.claimed.delete(o.line);
        void this.stopChild(child);
      },
    );
  }

  async openInput(o: InputOptions): Promise<GpioInput> {
    this.checkLine(o.line, o.label);
    const chip = this.chip.name;
    const what = `GPIO line ${o.line} (${o.label}) on ${chip}`;
    const readRaw = () => this.run('gpioget', argv.get(this.dialect, chip, o.line, o.bias), `gpioget ${what}`).trim() === '1';
    readRaw(); // fails early with the tool's message (busy, bad line) before anything is watched
    let monitor: ChildProcess | undefined;
    try {
      monitor = (await this.startHelper('gpiomon', argv.monitor(this.dialect, chip, o.line, o.bias), `gpiomon ${what}`)).child;
    } catch (err) {
      if (err instanceof GpioError && err.code === 'busy') throw err;
      this.opts.warn?.(`gpiomon unavailable for ${what}: ${(err as Error).message}`, { line: o.line });
    }
    this.claimed.set(o.line, o.label);
    const mon = monitor;
    return new DebouncedInput(
      {
        readRaw,
        ...(mon
          ? {
              watchRaw: (onEdge: (raw: boolean) => void, onError: (err: Error) => void) => {
                let buf = '';
                mon.stdout!.on('data', (d) => {
                  buf += String(d);
                  let i;
                  while ((i = buf.indexOf('\n')) >= 0) {
                    const level = parseMonitorLine(this.dialect, buf.slice(0, i));
                    buf = buf.slice(i + 1);
                    if (level !== undefined) onEdge(level);
                  }
                });
                const onExit = (code: number | null) => onError(new Error(`gpiomon exited (${code})`));
                mon.once('exit', onExit);
                return () => {
                  mon.off('exit', onExit);
                  void this.stopChild(mon);
                };
              },
            }
          : {}),
        release: () => {
          this.claimed.delete(o.line);
          void this.stopChild(mon);
        },
      },
      o,
      { timers: this.timers, pollMs: this.opts.pollMs ?? 50, ...(this.opts.warn ? { warn: this.opts.warn } : {}) },
    );
  }

  close(): void {
    for (const c of this.children) c.kill('SIGTERM');
  }

  /** Synchronous: end every helper now (crash path). */
  killAll(): void {
    for (const c of this.children) c.kill('SIGKILL');
  }
}
