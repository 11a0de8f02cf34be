// The `charging` and `charging-gpio` doctor checks, run against a device directory the
// test lays out: a meter or relay board that is not a meters device, a missing RS-485
// line, a pile without a detector, GPIO lines on the simulator, no GPIO character device,
// a gpiochip node that is not a device.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { chargingGpioCheck, chargingWiringCheck } from '../../edge/charging/doctor.js';
import { checkDevice, listDevices, type DoctorCheck, type DoctorContext, type Finding } from '../../edge/doctor-kit.js';
import type { GatewayConfig } from '../../edge/config/core.js';
import { tempDir, testConfig } from '../helpers/gateway.js';
import { pileConfig } from './peer.js';

async function run(check: DoctorCheck, config: GatewayConfig, devDir: string): Promise<Array<Pick<Finding, 'level' | 'message'>>> {
  const out: Array<Pick<Finding, 'level' | 'message'>> = [];
  const ctx: DoctorContext = {
    config,
    secrets: new Map(),
    devDir,
    timeoutMs: 1000,
    showSetupToken: false,
    add: (level, message) => out.push({ level, message }),
    device: (where, dev, available) => checkDevice((level, message) => out.push({ level, message }), where, dev, undefined, 'the service', available),
    listDevices: (re) => listDevices(devDir, re),
  };
  await check.run(ctx);
  return out;
}

/** A config that validates (the doctor sees the same), with a line that does not exist. */
function valid(devDir: string, edit?: (c: ReturnType<typeof pileConfig>) => void): GatewayConfig {
  const c = pileConfig(join(devDir, 'rs485-1'));
  edit?.(c);
  return testConfig(c).config;
}

t.test('charging: a meter that is not a meters device, a missing line, a pile without detector', async (t) => {
  const dev = tempDir('ee-doctor-dev-');
  const good = valid(dev, (c) => {
    (c.charging.piles[0] as { smoke: unknown[] }).smoke = [];
  });
  let f = await run(chargingWiringCheck, good, dev);
  t.ok(
    f.some((x) => x.level === 'FAIL' && /meters bus pile-line \(charging\) .*rs485-1: missing/.test(x.message)),
    'missing RS-485 line is a FAIL',
  );
  t.ok(
    f.some((x) => x.level === 'WARN' && x.message === 'pile(s) without a smoke or heat input: shed-1'),
    'pile without detector is a WARN',
  );
  t.ok(
    f.some((x) => x.level === 'OK' && /1 pile\(s\), 3 port\(s\)/.test(x.message)),
    'wiring itself is fine',
  );
  // The config file was edited after validation (or a meters device was removed): the
  // doctor runs the same cross-checks and names the missing device.
  const broken = structuredClone(good);
  broken.charging.piles[0]!.ports[1]!.meter.device = 'meter-b';
  (broken.charging.piles[0]!.ports[2]!.relay as { device: string }).device = 'relays-b';
  writeFileSync(join(dev, 'rs485-1'), '');
  f = await run(chargingWiringCheck, broken, dev);
  const fails = f.filter((x) => x.level === 'FAIL').map((x) => x.message);
  t.ok(
    fails.some((m) => /ports\[1\]\.meter\.device: no device "meter-b"/.test(m)),
    'missing meter device named',
  );
  t.ok(
    fails.some((m) => /ports\[2\]\.relay\.device: no device "relays-b"/.test(m)),
    'missing relay board named',
  );
  t.ok(
    fails.some((m) => /rs485-1: not a character device/.test(m)),
    'a plain file in place of the line is a FAIL',
  );
  t.notOk(
    f.some((x) => x.level === 'OK' && /pile\(s\)/.test(x.message)),
    'no OK summary while something is missing',
  );
  // Disabled / no piles: skipped.
  const none = structuredClone(good);
  none.charging.piles = [];
  t.same(await run(chargingWiringCheck, none, dev), [{ level: 'SKIP', message: 'no charging piles configured' }]);
});

t.test('charging-gpio: nothing on GPIO, simulated, no chip, a chip that is not a device', async (t) => {
  const dev = tempDir('ee-doctor-dev-');
  const modbusOnly = valid(dev, (c) => {
    (c.charging.piles[0] as { smoke: unknown[] }).smoke = [];
  });
  t.same(await run(chargingGpioCheck, modbusOnly, dev), [{ level: 'SKIP', message: 'no charging relay or detector on GPIO' }]);
  const onGpio = (backend: string) =>
    valid(dev, (c) => {
      (c.charging as Record<string, unknown>).gpio = { backend };
      (c.charging.piles[0]!.ports[0] as { relay: unknown }).relay = { kind: 'gpio', pin: 17, activeLow: true };
    });
  t.same(await run(chargingGpioCheck, onGpio('simulated'), dev), [{ level: 'WARN', message: '2 charging GPIO line(s) on simulated GPIO: no real relay or detector' }], 'relay + smoke input counted');
  const chardev = onGpio('chardev');
  let f = await run(chargingGpioCheck, chardev, dev);
  t.equal(f.length, 1);
  t.equal(f[0]!.level, 'FAIL');
  t.match(f[0]!.message, /no GPIO character device .*gpiochip\*.*GPIO relays and detector inputs cannot work/);
  writeFileSync(join(dev, 'gpiochip0'), '');
  f = await run(chargingGpioCheck, chardev, dev);
  t.same(f, [{ level: 'FAIL', message: `charging gpio ${join(dev, 'gpiochip0')}: not a character device` }]);
});
