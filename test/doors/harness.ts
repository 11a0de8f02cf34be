// A gateway with only the doors module, on the simulated GPIO backend and virtual time:
// pulses, debounce and alarms run in microseconds, nothing sleeps.
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { startGateway } from '../helpers/gateway.js';
import { VirtualTime } from '../../drivers/gpio/virtual-time.js';
import { SimulatedGpio } from '../../drivers/gpio/simulated.js';
import { createDoorsModule } from '../../edge/doors/module.js';
import type { Gateway } from '../../edge/gateway.js';
import type { StreamName } from '../../edge/outbox/streams.js';
import type { CommandMeta } from '../../edge/commands/registry.js';

/** Friday 2026-11-27 12:00 in Asia/Shanghai (04:00 UTC). */
export const FRI_NOON_CST = Date.UTC(2026, 10, 27, 4, 0, 0);

export const baseDoors = () => ({
  fire: { input: { pin: 26 } },
  groups: [
    { id: 'residents-a', doors: ['gate', 'bldg-a'] },
    { id: 'residents-b', doors: ['gate', 'bldg-b'] },
  ],
  doors: [
    { id: 'gate', name: 'Gate', lock: { pin: 17 }, contact: { pin: 27 }, exitButton: { pin: 22 }, led: { pin: 5 }, unlockMs: 5000, heldOpenAlarmS: 30 },
    { id: 'bldg-a', lock: { pin: 23, activeLow: true }, contact: { pin: 24, activeLow: true }, exitButton: { pin: 25 }, buzzer: { pin: 6 }, unlockMs: 3000, heldOpenAlarmS: 20 },
    { id: 'bldg-b', lock: { pin: 16, failMode: 'failSafe' }, contact: { pin: 20 }, unlockMs: 4000 },
    { id: 'garage', lock: { pin: 12 }, fireRelease: false },
  ],
});

export interface DoorsRig {
  g: Gateway;
  vt: VirtualTime;
  gpio: SimulatedGpio;
  cmd(name: string, args?: Record<string, unknown>, meta?: Partial<CommandMeta>): Promise<{ ok: boolean; result?: any; error?: { code: string; message: string; details?: any } }>;
  records(stream: StreamName): Array<{ type: string; ts: number; data: any }>;
  metric(name: string): Promise<string>;
  stop(): Promise<void>;
}

export async function doorsRig(doors: Record<string, unknown> = baseDoors(), opts: { start?: number; gpio?: SimulatedGpio; vt?: VirtualTime; dataDir?: string; extra?: Record<string, unknown> } = {}): Promise<DoorsRig> {
  const vt = opts.vt ?? new VirtualTime(opts.start ?? FRI_NOON_CST);
  let gpio = opts.gpio;
  if (!gpio) {
    gpio = new SimulatedGpio({ timers: vt });
    // bldg-a's contact is active-low with a pull-up: a closed door reads high.
    gpio.drive(24, true);
  }
  const sim = gpio;
  const g = await startGateway({ doors, uplink: { enabled: false }, ...(opts.dataDir ? { gateway: { id: 't-gw', dataDir: opts.dataDir } } : {}), ...(opts.extra ?? {}) }, { clock: vt, modules: [(ctx) => createDoorsModule(ctx, { backend: gpio, timers: vt })] });
  let stopped = false;
  return {
    g,
    vt,
    gpio: sim,
    async cmd(name, args = {}, meta = {}) {
      const out = await g.commands.execute(name, args, { id: randomUUID(), source: 'mqtt', receivedAt: vt.now(), ts: vt.now(), ...meta });
      return out.result as any;
    },
    records(stream) {
      if (g.isStarted() && !stopped) {
        g.outbox.flush();
        return g.outbox.read(stream, 0, Number.MAX_SAFE_INTEGER, 100000, 1e12).map((r) => JSON.parse(r.body));
      }
      // After stop: read the committed outbox file itself.
      const db = new Database(join(g.dataDir, 'outbox.db'), { readonly: true });
      try {
        return (db.prepare(`SELECT body FROM rec_${stream} ORDER BY seq`).all() as Array<{ body: string }>).map((r) => JSON.parse(r.body));
      } finally {
        db.close();
      }
    },
    metric: async (name) =>
      (await g.metrics.text())
        .split('\n')
        .filter((l) => l.startsWith(name))
        .join('\n'),
    stop: async () => {
      await g.stop();
      stopped = true;
    },
  };
}
