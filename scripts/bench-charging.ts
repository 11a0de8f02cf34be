// npm run bench:charging — figures for docs/ebike.md: smoke → all-ports-cut latency
// (p50/p99) while the line is busy polling, and relay write latency (FC 05 + FC 01
// read-back), against the independent pymodbus pile peer over socat ptys (the same peer
// as test/charging/e2e.test.ts). Prints figures only; asserts nothing.
import { randomUUID } from 'node:crypto';
import { ptyPair } from '../test/meters/helpers.js';
import { startGateway } from '../test/helpers/gateway.js';
import { pilePeer, pileConfig, waitFor } from '../test/charging/peer.js';
import { metersModule } from '../edge/meters/module.js';
import { createChargingModule } from '../edge/charging/module.js';
import { SimulatedGpio } from '../drivers/gpio/simulated.js';

const ROUNDS = Number(process.env.ROUNDS ?? 20);
const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!;

const pty = await ptyPair();
const py = await pilePeer(pty.b);
const gpio = new SimulatedGpio();
const g = await startGateway(pileConfig(pty.a), { modules: [metersModule, (ctx) => createChargingModule(ctx, { backend: gpio, tickMs: 50 })] });
const sup = () => g.services.get('charging')!.status();
const ports = () => sup().piles[0]!.ports;
try {
  await waitFor(() => ports().every((p) => p.state === 'idle' && p.relay.on === true), 10_000, 'ports enabled');
  await py.send({ load: { 0: 300, 1: 300, 2: 300 } });
  const cut: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    await waitFor(() => ports().every((p) => p.state === 'charging'), 5000, 'sessions');
    const t0 = performance.now();
    gpio.set(5, true);
    await waitFor(() => ports().every((p) => p.relay.on === false), 3000, 'all cut');
    cut.push(performance.now() - t0);
    gpio.set(5, false);
    await waitFor(() => !sup().piles[0]!.fire.active, 3000, 'fire cleared');
    for (const p of ['p1', 'p2', 'p3']) await g.commands.execute('charging.enable', { pile: 'shed-1', port: p }, { id: randomUUID(), source: 'local', receivedAt: Date.now() });
  }
  const meters = g.services.get('meters')!;
  const write: number[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    const t0 = performance.now();
    await meters.writeCoils('relays-a', 7, [i % 2 === 0], { urgent: true });
    await meters.readCoils('relays-a', 7, 1, { urgent: true });
    write.push(performance.now() - t0);
  }
  console.log(`smoke → all 3 ports cut + read back, meter and relay board polled every 100 ms (${ROUNDS} rounds): p50 ${pct(cut, 50).toFixed(1)} ms, p99 ${pct(cut, 99).toFixed(1)} ms`);
  console.log(`relay write FC 05 + FC 01 read-back under polling (${ROUNDS}): p50 ${pct(write, 50).toFixed(1)} ms, p99 ${pct(write, 99).toFixed(1)} ms`);
} finally {
  await g.stop();
  py.stop();
  await pty.stop();
}
