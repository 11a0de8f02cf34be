// A gateway with the meters scheduler and the charging supervisor against the pymodbus
// pile peer on a socat pty pair (the rig of the charging tests beyond e2e.test.ts), with
// the config and the clock the test wants. GPIO is the simulator.
import { ptyPair } from '../meters/helpers.js';
import { pilePeer, pileConfig, waitFor } from './peer.js';
import { startGateway } from '../helpers/gateway.js';
import { metersModule } from '../../edge/meters/module.js';
import { createChargingModule } from '../../edge/charging/module.js';
import { SimulatedGpio } from '../../drivers/gpio/simulated.js';
import type { Clock } from '../../edge/clock.js';
import type { Gateway } from '../../edge/gateway.js';
import type { ChargingStatus } from '../../edge/charging/api.js';

type Config = ReturnType<typeof pileConfig>;

export async function pileRig(t: { teardown(fn: () => Promise<void>): void }, o: { edit?: (c: Config) => void; clock?: Clock; beforeStart?: (py: Awaited<ReturnType<typeof pilePeer>>, gpio: SimulatedGpio) => Promise<void> } = {}) {
  const pty = await ptyPair();
  const py = await pilePeer(pty.b);
  const gpio = new SimulatedGpio();
  const cfg = pileConfig(pty.a);
  o.edit?.(cfg);
  await o.beforeStart?.(py, gpio);
  const g = await startGateway(cfg, { modules: [metersModule, (ctx) => createChargingModule(ctx, { backend: gpio, tickMs: 50 })], ...(o.clock ? { clock: o.clock } : {}) });
  t.teardown(async () => {
    await g.stop();
    py.stop();
    await pty.stop();
  });
  const status = () => g.services.get('charging')!.status() as ChargingStatus;
  const port = (id: string) => status().piles[0]!.ports.find((p) => p.port === id)!;
  await waitFor(() => status().piles[0]!.ports.every((p) => p.state === 'idle' && p.relay.on === true), 10_000, 'all ports enabled at start');
  return { g, py, gpio, status, port };
}

export const records = (g: Gateway, stream: 'event' | 'alarm' | 'audit') => {
  g.outbox.flush();
  return g.outbox.read(stream, 0, Number.MAX_SAFE_INTEGER, 1000, 1e9).map((r) => JSON.parse(r.body));
};

export async function cmd(g: Gateway, name: string, args: object) {
  return (await g.commands.execute(name, args, { id: crypto.randomUUID(), source: 'console', user: 'tech1', receivedAt: Date.now() })).result as { ok: boolean; error?: { code: string; message: string } };
}

/** Wall and monotonic time that a test moves on separately: an NTP step (wall only) or hours passing (both). */
export class SteppedClock implements Clock {
  wallOffsetMs = 0;
  monoOffsetMs = 0;
  now(): number {
    return Date.now() + this.wallOffsetMs;
  }
  monotonic(): number {
    return performance.now() + this.monoOffsetMs;
  }
  synced(): boolean {
    return true;
  }
  /** Time passes (both clocks). */
  advance(ms: number): void {
    this.wallOffsetMs += ms;
    this.monoOffsetMs += ms;
  }
}
