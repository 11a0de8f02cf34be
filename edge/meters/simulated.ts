// The simulated estate's meters: a bus with `transport: simulated` runs on an
// in-process wire that takes real wire time (drivers/serial/simwire.ts), with one
// simulator twin per protocol answering for every configured device, driven by the
// device's own profile. Values change over time (load curves, counters that only go
// up) so a demo gateway publishes live readings.
import { SimulatedWire, type WireEndpoint } from '../../drivers/serial/simwire.js';
import { interFrameSilenceMs } from '../../drivers/serial/line.js';
import { ModbusSlaveSim } from '../../drivers/modbus/simulator.js';
import { Dlt645Sim } from '../../drivers/dlt645/simulator.js';
import { Cjt188Sim } from '../../drivers/cjt188/simulator.js';
import type { MeterBusConfig } from './schema.js';
import type { Profile } from './profiles.js';
import { deviceTarget } from './scheduler.js';
import { resolvePoints, type PointSpec } from './plan.js';

/** A plausible, slowly varying value for a point of the given kind at wall time `t`. */
export function simulatedValue(p: PointSpec, seed: number, t: number): number {
  const s = t / 1000;
  const wave = (period: number, phase = 0) => Math.sin((2 * Math.PI * s) / period + seed + phase);
  const kw = 1.5 + 1.2 * wave(600) + 0.3 * wave(37, 1);
  const inKilo = p.unit.startsWith('k');
  switch (p.kind) {
    case 'voltage':
      return 230 + 3 * wave(300, p.name.length);
    case 'current':
      return (kw * 1000) / 230;
    case 'power':
    case 'apparent_power':
      return inKilo ? kw : kw * 1000;
    case 'reactive_power':
      return inKilo ? kw * 0.2 : kw * 200;
    case 'power_factor':
      return 0.95 + 0.03 * wave(900);
    case 'frequency':
      return 50 + 0.04 * wave(120);
    case 'energy':
      // Counters grow with an average 1.5 kW load from a per-meter base.
      return p.name.startsWith('export') ? 10 + seed : 1000 * (1 + seed) + (1.5 * (t - Date.UTC(2026, 0, 1))) / 3_600_000;
    case 'water_volume':
    case 'gas_volume':
      return 100 * (1 + seed) + ((t - Date.UTC(2026, 0, 1)) / 86_400_000) * 0.3;
    default:
      return 0;
  }
}

export interface SimulatedBus {
  wire: SimulatedWire;
  /** The gateway's end of the wire. */
  endpoint: WireEndpoint;
  /** Take a simulated device off the bus (dead meter) or bring it back. */
  setOnline(deviceId: string, online: boolean): void;
  stop(): void;
}

/** A point's simulated value: (point, device seed 1…n, point index in the profile, wall time). */
export type SimulatedValueFn = (p: PointSpec, seed: number, index: number, t: number) => number;

export function buildSimulatedBus(bus: MeterBusConfig, profiles: ReadonlyMap<string, Profile>, opts: { now?: () => number; latencyMs?: number; value?: SimulatedValueFn } = {}): SimulatedBus {
  const now = opts.now ?? Date.now;
  const valueAt: SimulatedValueFn = opts.value ?? ((p, seed, _i, t) => simulatedValue(p, seed, t));
  const serial = { baudRate: bus.baudRate, parity: bus.parity, stopBits: bus.stopBits } as const;
  const wire = new SimulatedWire(serial, bus.id);
  // A real slave waits the 3.5-character silence before it answers.
  const latencyMs = opts.latencyMs ?? interFrameSilenceMs(serial);
  const endpoint = wire.attach('gateway');
  const meters = wire.attach('meters');
  void meters.open();
  const toggles = new Map<string, (on: boolean) => void>();
  const refreshers: Array<() => void> = [];
  let modbus: ModbusSlaveSim | undefined;
  let dlt: Dlt645Sim | undefined;
  let cjt: Cjt188Sim | undefined;

  bus.devices.forEach((d, idx) => {
    const profile = profiles.get(d.profile);
    if (!profile) return;
    const seed = idx + 1;
    const points = resolvePoints(profile);
    const target = deviceTarget(d, profile);
    if (profile.protocol === 'modbus') {
      modbus ??= new ModbusSlaveSim(meters);
      const unit = modbus.addUnit(Number(target.address), { maxRegisters: profile.limits?.maxRegisters ?? 125, latencyMs, lenient: true });
      const refresh = () => {
        const t = now();
        for (const [i, p] of points.entries()) {
          const v = valueAt(p, seed, i, t) / (p.scale ?? 1);
          unit.set(p.fc === 4 ? 'input' : 'holding', p.address!, v, p.dataType!, p.wordOrder, p.byteOrder);
        }
      };
      refresh();
      refreshers.push(refresh);
      toggles.set(d.id, (on) => (unit.online = on));
    } else if (profile.protocol === 'cjt188') {
      cjt ??= new Cjt188Sim(meters, now);
      const vol = points.find((p) => p.field === 'current') ?? points[0]!;
      const m = cjt.addMeter(profile.meterType, String(target.address), () => valueAt(vol, seed, points.indexOf(vol), now()), profile.diOrder ?? '901F');
      m.settlementM3 = valueAt(vol, seed, points.indexOf(vol), now() - 86_400_000 * 15);
      toggles.set(d.id, (on) => (m.online = on));
    } else {
      dlt ??= new Dlt645Sim(meters);
      const m = dlt.addMeter(String(target.address), profile.protocol === 'dlt645-2007' ? '2007' : '1997', latencyMs);
      for (const [i, p] of points.entries()) m.define(p.identifier!, { bytes: p.bytes!, decimals: p.decimals!, signed: p.signed ?? false, value: () => valueAt(p, seed, i, now()) });
      toggles.set(d.id, (on) => (m.online = on));
    }
  });

  const timer = refreshers.length ? setInterval(() => refreshers.forEach((r) => r()), 1000).unref() : undefined;
  return {
    wire,
    endpoint,
    setOnline: (id, on) => toggles.get(id)?.(on),
    stop: () => {
      if (timer) clearInterval(timer);
      modbus?.dispose();
      dlt?.dispose();
      cjt?.dispose();
    },
  };
}
