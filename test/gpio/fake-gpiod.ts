// Fake gpiod tools (gpiodetect, gpioget, gpioset, gpiomon) speaking the v1 or v2 command
// line, over a directory of line-<N> files: this machine has no /dev/gpiochip*, and the
// backend's job is to run the real tools with the right arguments and read their output.
// Each invocation is logged to calls.log; a busy-<N> file makes a line "in use".
import { chmodSync, writeFileSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/gateway.js';

export class FakeGpiod {
  readonly dir = tempDir('ee-gpiod-');
  constructor(readonly version: 1 | 2) {
    const D = this.dir;
    const ver = version === 1 ? 'v1.6.3' : 'v2.1.3';
    const head = `#!/bin/bash\nD='${D}'\nif [ "$1" = "--version" ]; then echo "$(basename $0) (libgpiod) ${ver}"; exit 0; fi\necho "$(basename $0) $*" >> "$D/calls.log"\nLINE="\${@: -1}"; LINE="\${LINE%%=*}"\nif [ -e "$D/busy-$LINE" ]; then echo "$(basename $0): error requesting GPIO lines: Device or resource busy" >&2; exit 1; fi\nif [ "$LINE" -ge 58 ] 2>/dev/null; then echo "$(basename $0): offset out of range" >&2; exit 1; fi\n`;
    const tools: Record<string, string> = {
      gpiodetect: `#!/bin/bash\necho "gpiochip0 [pinctrl-bcm2711] (58 lines)"\necho "gpiochip1 [raspberrypi-exp-gpio] (8 lines)"\n`,
      gpioget: `${head}cat "$D/line-$LINE" 2>/dev/null || echo 0\n`,
      gpioset: `${head}LV="\${@: -1}"; echo "\${LV#*=}" > "$D/line-$LINE"\ntrap 'exit 0' TERM\n` + (version === 1 ? `while true; do sleep 0.02; done\n` : `while read -r cmd arg; do if [ "$cmd" = set ]; then echo "\${arg#*=}" > "$D/line-\${arg%%=*}"; echo "set \${arg}" >> "$D/calls.log"; fi; done\n`),
      gpiomon:
        `${head}trap 'exit 0' TERM\nlast=$(cat "$D/line-$LINE" 2>/dev/null || echo 0)\nwhile true; do cur=$(cat "$D/line-$LINE" 2>/dev/null || echo 0)\n` + `if [ "$cur" != "$last" ]; then ${version === 1 ? 'echo "$cur"' : 'if [ "$cur" = 1 ]; then echo rising; else echo falling; fi'}; last=$cur; fi; sleep 0.01; done\n`,
    };
    for (const [name, body] of Object.entries(tools)) {
      writeFileSync(join(D, name), body);
      chmodSync(join(D, name), 0o755);
    }
  }

  level(line: number): string {
    const p = join(this.dir, `line-${line}`);
    return existsSync(p) ? readFileSync(p, 'utf8').trim() : '';
  }
  set(line: number, v: 0 | 1): void {
    writeFileSync(join(this.dir, `line-${line}`), `${v}\n`);
  }
  busy(line: number): void {
    writeFileSync(join(this.dir, `busy-${line}`), '');
  }
  calls(): string[] {
    const p = join(this.dir, 'calls.log');
    return existsSync(p) ? readFileSync(p, 'utf8').trim().split('\n') : [];
  }
}
