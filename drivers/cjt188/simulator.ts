// Simulator twin of CJ/T 188 water/heat meters on a Line: answers read data with DI
// 90 1F (current and settlement-day cumulative flow, meter clock, status) and read
// address (03H) with the wildcard address.
import type { Line } from '../serial/line.js';
import { FrameBuffer } from '../serial/framebuffer.js';
import * as cjt from './codec.js';

export class SimWaterMeter {
  online = true;
  requests = 0;
  settlementM3 = 0;
  constructor(
    readonly meterType: number,
    readonly address: string,
    public volume: () => number,
    readonly order: cjt.DiOrder = '901F',
  ) {}
}

export class Cjt188Sim {
  private readonly meters = new Map<string, SimWaterMeter>();
  private readonly rx = new FrameBuffer<cjt.Cjt188Frame>(cjt.findFrame, (f) => this.handle(f));
  private readonly onData = (d: Buffer) => this.rx.push(d);

  constructor(
    readonly line: Line,
    private readonly now: () => number = Date.now,
  ) {
    line.on('data', this.onData);
  }

  addMeter(meterType: number, address: string, volume: () => number, order: cjt.DiOrder = '901F'): SimWaterMeter {
    const m = new SimWaterMeter(meterType, cjt.normaliseAddress(address), volume, order);
    this.meters.set(m.address, m);
    return m;
  }

  dispose(): void {
    this.line.off('data', this.onData);
  }

  private handle(f: cjt.Cjt188Frame): void {
    if (f.control & 0x80) return;
    if (f.control === cjt.C188.readAddress) {
      const alive = [...this.meters.values()].filter((m) => m.online);
      if (alive.length === 1) {
        const m = alive[0]!;
        void this.line.write(cjt.encodeFrame(m.meterType, m.address, 0x83, Buffer.from([0x81, 0x0a, f.data[2] ?? 0]))).catch(() => {});
      }
      return;
    }
    const m = this.meters.get(f.address);
    if (!m?.online || f.control !== cjt.C188.read) return;
    if (f.meterType !== 0xaa && f.meterType !== m.meterType) return;
    m.requests++;
    const di = (f.data[0]! << 8) | f.data[1]!;
    const wanted = m.order === '901F' ? 0x901f : 0x1f90;
    if (di !== wanted) {
      void this.line.write(cjt.encodeFrame(m.meterType, m.address, 0xc1, Buffer.from([f.data[2] ?? 0, 0x00]))).catch(() => {});
      return;
    }
    const data = cjt.flowReplyData(m.volume(), m.settlementM3, new Date(this.now()), 0, f.data[2] ?? 0, m.order);
    void this.line.write(cjt.encodeFrame(m.meterType, m.address, 0x81, data)).catch(() => {});
  }
}
