// `estate-edge doctor` for the meters: every serial port a bus names exists and the
// service account may open it (a port is only stat'ed, never taken from the service).
import type { DoctorCheck } from '../doctor-kit.js';

export const serialCheck: DoctorCheck = {
  id: 'serial',
  label: '串口 serial',
  run(ctx) {
    const available = () => [...ctx.listDevices(/^rs485-/), ...ctx.listDevices(/^tty(USB|ACM)\d+$/)];
    const ports = (ctx.config.meters?.buses ?? []).flatMap((b, i) => ((b.transport ?? 'serial') === 'serial' && b.port ? [{ path: `meters.buses[${i}].port`, dev: b.port }] : []));
    if (!ports.length) {
      const a = available();
      ctx.add('SKIP', `no serial port in the config${a.length ? ` (present: ${a.join(', ')})` : ''}`);
      return;
    }
    for (const p of ports) ctx.device(p.path, p.dev, available);
  },
};

export const metersDoctor: readonly DoctorCheck[] = [serialCheck];
