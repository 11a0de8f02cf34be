// The sysfs backend against fake trees laid out like a Pi 4 and a Pi 5 on kernel 6.6+
// (dynamic bases 512 and 571), an old kernel (base 0) and an unknown board.
import t from 'tap';
import { SysfsGpio, exportError } from '../../drivers/gpio/sysfs.js';
import { findSysfsChip, listSysfsChips } from '../../drivers/gpio/chip.js';
import { openGpioBackend } from '../../drivers/gpio/index.js';
import { type GpioError, realTimers } from '../../drivers/gpio/types.js';
import { VirtualTime } from '../../drivers/gpio/virtual-time.js';
import { FakeSysfs } from './fake-sysfs.js';
import { startGateway, tempDir } from '../helpers/gateway.js';
import { waitFor } from '../helpers/subscriber.js';

t.test('pin mapping: base + BCM line, chip found by label', async (t) => {
  const cases = [
    ['pi4', 'gpiochip512', 'pinctrl-bcm2711', 529],
    ['pi5', 'gpiochip571', 'pinctrl-rp1', 588],
    ['pi4-old-kernel', 'gpiochip0', 'pinctrl-bcm2711', 17],
  ] as const;
  for (const [board, chip, label, n17] of cases) {
    const fs = new FakeSysfs(board);
    t.teardown(() => fs.close());
    const b = new SysfsGpio({ root: fs.root });
    t.equal(b.chip.name, chip, `${board}: ${chip}`);
    t.equal(b.chip.label, label);
    t.equal(b.number(17), n17, `${board}: BCM 17 → gpio${n17}`);
    t.match(b.describe(), new RegExp(`${chip} \\[${label}\\] base`));
  }
  const pi5 = new FakeSysfs('pi5');
  t.teardown(() => pi5.close());
  t.equal(listSysfsChips(pi5.root).length, 5);
  const b5 = new SysfsGpio({ root: pi5.root });
  t.equal(b5.number(0), 571);
  t.equal(b5.number(53), 624);
  t.throws(() => b5.number(54), /line 54 does not exist on gpiochip571 \[pinctrl-rp1\] \(0\.\.53\)/);
  const unknown = new FakeSysfs('unknown');
  t.teardown(() => unknown.close());
  const err = t.throws(() => new SysfsGpio({ root: unknown.root })) as GpioError;
  t.equal(err.code, 'no_chip');
  t.match(err.message, /no GPIO chip labelled pinctrl-rp1 or pinctrl-bcm2711 or pinctrl-bcm2835 .*found: gpiochip0 \[gpio-mockup-A\] base 0.*doors\.gpio\.chipLabel/);
  t.equal(findSysfsChip(unknown.root, ['gpio-mockup-A']).base, 0, 'an explicit chip label');
});

t.test('outputs: exported at base + line, direction with the initial level in one write, software active-low', async (t) => {
  const fs = new FakeSysfs('pi5');
  t.teardown(() => fs.close());
  const b = new SysfsGpio({ root: fs.root });
  const lock = await b.openOutput({ line: 17, initial: false, label: 'door gate lock' });
  t.same(fs.exported, [588]);
  t.equal(fs.read(588, 'direction'), 'low', 'output, low, atomically');
  t.equal(fs.read(588, 'active_low'), '0', 'kernel inversion cleared');
  lock.write(true);
  t.equal(fs.read(588, 'value'), '1');
  lock.write(false);
  t.equal(fs.read(588, 'value'), '0');
  const inv = await b.openOutput({ line: 23, activeLow: true, initial: false, label: 'door a lock' });
  t.equal(fs.read(594, 'direction'), 'high', 'active-low: logical off is physical high from the first instant');
  inv.write(true);
  t.equal(fs.read(594, 'value'), '0');
  const busy = (await b.openOutput({ line: 17, initial: false, label: 'someone else' }).catch((e) => e)) as GpioError;
  t.equal(busy.code, 'busy');
  t.match(busy.message, /GPIO 588 \(BCM 17\) is already used by door gate lock \(wanted by someone else\)/);
  lock.close();
  t.ok(fs.has(588), 'an output stays exported at close so the pin keeps its safe level');
  t.same(fs.unexported, []);
  inv.close();
});

t.test('inputs: polled when epoll cannot watch the file, debounced, active-low; unexported at close', async (t) => {
  const fs = new FakeSysfs('pi4');
  t.teardown(() => fs.close());
  const warnings: string[] = [];
  // Polling and debounce in virtual time: deterministic however loaded the machine is.
  const vt = new VirtualTime(Date.UTC(2026, 0, 1));
  const b = new SysfsGpio({ root: fs.root, pollMs: 5, timers: vt, warn: (m) => warnings.push(m) });
  fs.presets.set(539, 1); // the pull-up holds a closed contact high
  const contact = await b.openInput({ line: 27, activeLow: true, debounceMs: 20, label: 'door gate contact' });
  t.equal(fs.read(539, 'direction'), 'in');
  t.equal(fs.read(539, 'edge'), 'both', 'edge interrupts requested');
  t.equal(contact.mode, 'polling', 'a regular file cannot be epoll-ed: polling fallback');
  t.match(warnings.join('\n'), /door gate contact \(line 27\) is polled every 5 ms: edge interrupts unavailable/);
  const seen: boolean[] = [];
  contact.onChange((v) => seen.push(v));
  t.equal(contact.value(), false, 'high on an active-low line = inactive (door closed)');
  fs.setValue(539, 0);
  vt.advance(10);
  t.same(seen, [], 'not before the debounce time');
  vt.advance(25);
  t.same(seen, [true], 'door open');
  // A 10 ms glitch is filtered by the 20 ms debounce.
  fs.setValue(539, 1);
  vt.advance(10);
  fs.setValue(539, 0);
  vt.advance(100);
  t.same(seen, [true], 'glitch ignored');
  fs.setValue(539, 1);
  vt.advance(100);
  t.same(seen, [true, false], 'door closed');
  contact.close();
  await waitFor(() => fs.unexported.includes(539), 2000, 'unexport');
  t.notOk(fs.has(539));
});

t.test('export failures and kernel errors are clear GpioErrors', async (t) => {
  const fs = new FakeSysfs('pi4');
  t.teardown(() => fs.close());
  const b = new SysfsGpio({ root: fs.root, exportTimeoutMs: 200 });
  fs.breakExport();
  const err = (await b.openOutput({ line: 4, initial: false, label: 'door x lock' }).catch((e) => e)) as GpioError;
  t.equal(err.code, 'export_failed');
  t.match(err.message, /GPIO 516 \(BCM 4, for door x lock\) cannot be exported: EISDIR/);
  const mk = (code: string) => exportError(Object.assign(new Error(code), { code }), 529, 17, 'door gate lock');
  t.match(mk('EBUSY'), { code: 'busy', message: /GPIO 529 \(BCM 17, for door gate lock\) is already in use/ });
  t.match(mk('EINVAL'), { code: 'bad_line' });
  t.match(mk('EACCES'), { code: 'permission', message: /gpio group/ });
  t.match(mk('EIO'), { code: 'export_failed', message: /EIO/ });
  // Exported but udev never makes the files writable.
  const fs2 = new FakeSysfs('pi4');
  fs2.close(); // no "kernel": the export write lands but gpioN/ never appears
  const b2 = new SysfsGpio({ root: fs2.root, exportTimeoutMs: 100 });
  const late = (await b2.openOutput({ line: 5, initial: false, label: 'door y lock' }).catch((e) => e)) as GpioError;
  t.equal(late.code, 'export_failed');
  t.match(late.message, /was exported but .*gpio517 did not become writable/);
});

t.test('auto backend: sysfs when present; a clear log line and the character device when absent', async (t) => {
  const fs = new FakeSysfs('pi5');
  t.teardown(() => fs.close());
  const info: string[] = [];
  const warn: string[] = [];
  const deps = { timers: realTimers, info: (m: string) => info.push(m), warn: (m: string) => warn.push(m) };
  const b = openGpioBackend({ backend: 'auto', sysfsRoot: fs.root, pollMs: 20 }, deps);
  t.equal(b.kind, 'sysfs');
  t.match(info[0], /GPIO backend: sysfs .*gpiochip571 \[pinctrl-rp1\] base 571/);
  const err = t.throws(() => openGpioBackend({ backend: 'auto', sysfsRoot: tempDir(), toolsDir: tempDir(), pollMs: 20 }, deps)) as GpioError;
  t.match(warn[0], /sysfs GPIO is absent .*using the GPIO character device through the gpiod tools/);
  t.equal(err.code, 'tool_missing');
});

t.test('the doors module on a Pi 5 sysfs tree: door.unlock pulses gpio588', async (t) => {
  const fs = new FakeSysfs('pi5');
  t.teardown(() => fs.close());
  const g = await startGateway(
    {
      uplink: { enabled: false },
      doors: { gpio: { backend: 'sysfs', sysfsRoot: fs.root, pollMs: 5 }, groups: [], doors: [{ id: 'gate', lock: { pin: 17 }, unlockMs: 300 }] },
    },
    { modules: [(await import('../../edge/doors/module.js')).createDoorsModule] },
  );
  t.teardown(() => g.stop());
  t.equal(fs.read(588, 'direction'), 'low', 'came up locked');
  const res = await g.commands.execute('door.unlock', { doorId: 'gate' }, { id: 'u1', source: 'console', receivedAt: Date.now(), user: 'tech' });
  t.equal(res.result.ok, true);
  t.equal(fs.read(588, 'value'), '1', 'relay energised');
  await waitFor(() => fs.read(588, 'value') === '0', 3000, 'relock');
  const st = await g.commands.execute('door.status', {}, { id: 's1', source: 'console', receivedAt: Date.now() });
  t.match((st.result as any).result.gpio, { backend: 'sysfs', description: /pinctrl-rp1/ });
});
