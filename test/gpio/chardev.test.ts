// The character-device backend driving gpiod tools in both CLI dialects (v1: Debian 12's
// libgpiod 1.6; v2: libgpiod 2.x), over fake tools (no /dev/gpiochip* here).
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { ChardevGpio, argv, parseGpiodetect, parseMonitorLine, toolError } from '../../drivers/gpio/chardev.js';
import type { GpioError } from '../../drivers/gpio/types.js';
import { FakeGpiod } from './fake-gpiod.js';
import { waitFor } from '../helpers/subscriber.js';

let installed = '';
try {
  installed = execFileSync('gpioset', ['--version'], { encoding: 'utf8' });
} catch {
  /* not installed: the next test is skipped */
}
t.test('the installed gpiod tools print the version line the backend parses', { skip: installed ? false : 'gpiod not installed' }, async (t) => {
  t.match(installed, /libgpiod\) v\d+\.\d+/);
});

t.test('parsers and command lines', async (t) => {
  t.same(parseGpiodetect('gpiochip0 [pinctrl-rp1] (54 lines)\ngpiochip10 [gpio-brcmstb@107d508500] (32 lines)\n'), [
    { name: 'gpiochip0', label: 'pinctrl-rp1', lines: 54 },
    { name: 'gpiochip10', label: 'gpio-brcmstb@107d508500', lines: 32 },
  ]);
  t.same(argv.hold(1, 'gpiochip0', 17, true), ['--mode=signal', 'gpiochip0', '17=1']);
  t.same(argv.hold(2, 'gpiochip0', 17, false), ['--interactive', '-c', 'gpiochip0', '17=0']);
  t.same(argv.monitor(1, 'gpiochip0', 27, 'pull-up'), ['-b', '-F', '%e', '-B', 'pull-up', 'gpiochip0', '27']);
  t.same(argv.monitor(2, 'gpiochip0', 27), ['-F', '%E', '-c', 'gpiochip0', '27']);
  t.same(argv.get(2, 'gpiochip0', 27), ['--numeric', '-c', 'gpiochip0', '27']);
  t.equal(parseMonitorLine(1, '1'), true);
  t.equal(parseMonitorLine(1, '0'), false);
  t.equal(parseMonitorLine(2, 'falling'), false);
  t.equal(parseMonitorLine(2, 'garbage'), undefined);
  t.equal(toolError('gpioset: error setting the GPIO line values: Device or resource busy', 'x').code, 'busy');
  t.equal(toolError('gpioget: Permission denied', 'x').code, 'permission');
  t.equal(toolError('offset out of range', 'x').code, 'bad_line');
});

for (const version of [1, 2] as const) {
  t.test(`gpiod v${version}: outputs held by gpioset, inputs watched by gpiomon, busy lines refused`, async (t) => {
    const fake = new FakeGpiod(version);
    const warns: string[] = [];
    const b = new ChardevGpio({ toolsDir: fake.dir, startupMs: 500, pollMs: 20, warn: (m) => warns.push(m) });
    t.teardown(() => b.close());
    t.equal(b.dialect, version);
    t.equal(b.chip.name, 'gpiochip0', 'chip found by label');
    t.match(b.describe(), new RegExp(`gpiochip0 \\[pinctrl-bcm2711\\], 58 lines, via gpiod tools v${version}`));
    const lock = await b.openOutput({ line: 17, initial: false, label: 'door gate lock', activeLow: true });
    await waitFor(() => fake.level(17) === '1', 3000, 'initial level');
    t.equal(fake.calls()[0], version === 1 ? 'gpioset --mode=signal gpiochip0 17=1' : 'gpioset --interactive -c gpiochip0 17=1', 'active-low: logical off held as physical 1 from the start');
    lock.write(true);
    await waitFor(() => fake.level(17) === '0', 3000, 'line 17 low');
    lock.write(false);
    await waitFor(() => fake.level(17) === '1', 3000, 'line 17 high again');
    const sets = fake.calls().filter((c) => c.startsWith('gpioset') || c.startsWith('set '));
    if (version === 1) t.same(sets, ['gpioset --mode=signal gpiochip0 17=1', 'gpioset --mode=signal gpiochip0 17=0', 'gpioset --mode=signal gpiochip0 17=1'], 'v1: one gpioset per level');
    else t.same(sets, ['gpioset --interactive -c gpiochip0 17=1', 'set 17=0', 'set 17=1'], 'v2: one gpioset, levels sent on stdin');

    fake.set(27, 0);
    const contact = await b.openInput({ line: 27, label: 'door gate contact', debounceMs: 0 });
    t.equal(contact.mode, 'interrupt');
    t.equal(contact.value(), false);
    const seen: boolean[] = [];
    contact.onChange((v) => seen.push(v));
    fake.set(27, 1);
    await waitFor(() => seen.length === 1, 3000, 'rising edge');
    fake.set(27, 0);
    await waitFor(() => seen.length === 2, 3000, 'falling edge');
    t.same(seen, [true, false]);

    fake.busy(5);
    const busy = (await b.openOutput({ line: 5, initial: false, label: 'door x lock' }).catch((e) => e)) as GpioError;
    t.equal(busy.code, 'busy');
    t.match(busy.message, /gpioset gpiochip0 line 5 \(door x lock\): .*Device or resource busy/);
    const bad = (await b.openInput({ line: 60, label: 'door y contact' }).catch((e) => e)) as GpioError;
    t.equal(bad.code, 'bad_line');
    const twice = (await b.openOutput({ line: 17, initial: false, label: 'again' }).catch((e) => e)) as GpioError;
    t.equal(twice.code, 'busy');
    contact.close();
    lock.close();
    t.same(warns, []);
  });
}
