// `estate-edge doctor` for the charging piles: what the supervisor depends on is there —
// every meter and relay board it names is a meters device on a bus whose line exists, the
// GPIO backend for GPIO relays and detector inputs can be used, and every pile has a
// smoke or heat input (without one only the per-port limits protect it).
import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { chooseGpioBackend, SYSFS_ROOT } from '../../drivers/gpio/select.js';
import type { DoctorCheck } from '../doctor-kit.js';
import { chargingProblems } from './checks.js';

export const chargingWiringCheck: DoctorCheck = {
  id: 'charging',
  label: '充电桩 charging piles',
  run(ctx) {
    const ch = ctx.config.charging;
    const piles = ch?.piles ?? [];
    if (!ch?.enabled || piles.length === 0) return ctx.add('SKIP', 'no charging piles configured');
    const problems = chargingProblems(ctx.config);
    for (const p of problems) ctx.add('FAIL', p);
    const ports = piles.reduce((n, p) => n + p.ports.length, 0);
    const devices = new Set(piles.flatMap((p) => p.ports.flatMap((x) => [x.meter.device, ...(x.relay.kind === 'modbus' ? [x.relay.device] : [])])));
    for (const b of ctx.config.meters.buses) {
      if (!b.devices.some((d) => devices.has(d.id))) continue;
      if (b.transport === 'serial' && b.port) ctx.device(`meters bus ${b.id} (charging)`, b.port, () => [...ctx.listDevices(/^rs485-/), ...ctx.listDevices(/^tty(USB|ACM)\d+$/)]);
      if (b.transport === 'simulated') ctx.add('WARN', `bus ${b.id} is simulated: the charging relays and meters on it are not real`);
    }
    const noSmoke = piles.filter((p) => p.smoke.length === 0).map((p) => p.id);
    if (noSmoke.length) ctx.add('WARN', `pile(s) without a smoke or heat input: ${noSmoke.join(', ')}`);
    if (!problems.length) ctx.add('OK', `${piles.length} pile(s), ${ports} port(s) wired to configured meters and relays`);
  },
};

export const chargingGpioCheck: DoctorCheck = {
  id: 'charging-gpio',
  label: '充电桩 GPIO',
  run(ctx) {
    const ch = ctx.config.charging;
    const lines = (ch?.piles ?? []).reduce((n, p) => n + p.ports.filter((x) => x.relay.kind === 'gpio').length + p.smoke.filter((s) => s.kind === 'gpio').length, 0);
    if (!ch?.enabled || lines === 0) return ctx.add('SKIP', 'no charging relay or detector on GPIO');
    const backend = chooseGpioBackend({ backend: ch.gpio.backend, sysfsRoot: SYSFS_ROOT });
    if (backend === 'simulated') return ctx.add('WARN', `${lines} charging GPIO line(s) on simulated GPIO: no real relay or detector`);
    if (backend === 'sysfs') {
      let writable = true;
      try {
        accessSync(join(SYSFS_ROOT, 'export'), constants.W_OK);
      } catch {
        writable = false;
      }
      return ctx.add(writable ? 'OK' : 'FAIL', `sysfs ${join(SYSFS_ROOT, 'export')} ${writable ? 'writable' : 'missing or not writable'} (${lines} charging line(s))`);
    }
    const chips = ctx.listDevices(/^gpiochip\d+$/);
    if (!chips.length) return ctx.add('FAIL', `no GPIO character device (${ctx.devDir}/gpiochip*) and no sysfs GPIO: GPIO relays and detector inputs cannot work`);
    for (const chip of chips) ctx.device('charging gpio', chip, () => chips);
  },
};

export const chargingDoctor: readonly DoctorCheck[] = [chargingWiringCheck, chargingGpioCheck];
