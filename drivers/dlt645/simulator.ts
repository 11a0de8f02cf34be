// Simulator twin of DL/T 645 meters (2007 or 1997) sharing one Line: each meter
// answers reads of the identifiers it knows (BCD with the identifier's decimals, +33H),
// an error reply for identifiers it does not know, read-address (13H) when it is the
// only meter asked with the AA wildcard, and takes broadcast time (08H) silently.
import type { Line } from '../serial/line.js';
import { FrameBuffer } from '../serial/framebuffer.js';
import * as dlt from './codec.js';

export interface SimRegister {
  bytes: number;
  decimals: number;
  signed?: boolean;
  value: () => number;
  /** Send the value in frames of at most this many bytes (B1H + 12H follow-ups). */
  frameBytes?: number;
}

export class SimMeter {
  readonly registers = new Map<string, SimRegister>();
  online = true;
  requests = 0;
  /** Last time received by broadcast (08H), as the raw BCD digits "YYMMDDhhmmss". */
  lastTimeSync: string | undefined;
  constructor(
    readonly address: string,
    readonly version: dlt.Dlt645Version,
    readonly latencyMs = 0,
  ) {}

  define(identifier: string, reg: SimRegister): this {
    this.registers.set(identifier.toUpperCase(), reg);
    return this;
  }
}

export class Dlt645Sim {
  private readonly meters = new Map<string, SimMeter>();
  private readonly rx = new FrameBuffer<dlt.Dlt645Frame>(dlt.findFrame, (f) => this.handle(f));
  private readonly onData = (d: Buffer) => this.rx.push(d);

  constructor(readonly line: Line) {
    line.on('data', this.onData);
  }

  addMeter(address: string, version: dlt.Dlt645Version, latencyMs = 0): SimMeter {
    const m = new SimMeter(dlt.normaliseAddress(address), version, latencyMs);
    this.meters.set(m.address, m);
    return m;
  }

  meter(address: string): SimMeter | undefined {
    return this.meters.get(dlt.normaliseAddress(address));
  }

  dispose(): void {
    this.line.off('data', this.onData);
  }

  private handle(f: dlt.Dlt645Frame): void {
    if (f.control & 0x80) return; // a reply from another meter on the same wire
    if (f.control === dlt.C2007.broadcastTime && f.address === dlt.BROADCAST_ADDRESS) {
      const b = f.data;
      const two = (i: number) => b[i]!.toString(16).padStart(2, '0');
      for (const m of this.meters.values()) if (m.online) m.lastTimeSync = `${two(5)}${two(4)}${two(3)}${two(2)}${two(1)}${two(0)}`;
      return;
    }
    if (f.control === dlt.C2007.readAddress) {
      const alive = [...this.meters.values()].filter((m) => m.online && m.version === '2007');
      // On a real bus several meters answering the wildcard at once collide; a single one answers cleanly.
      if (alive.length === 1 || (f.address !== dlt.WILDCARD_ADDRESS && alive.some((m) => m.address === f.address))) {
        const m = alive.length === 1 ? alive[0]! : alive.find((x) => x.address === f.address)!;
        this.reply(m, dlt.encodeFrame(m.address, 0x93, dlt.encodeAddress(m.address)));
      }
      return;
    }
    const m = this.meters.get(f.address);
    if (!m?.online) return;
    const readC = m.version === '2007' ? dlt.C2007.read : dlt.C1997.read;
    const followC = m.version === '2007' ? dlt.C2007.readFollow : dlt.C1997.readFollow;
    if (f.control === followC) return this.followUp(m, f);
    if (f.control !== readC) return;
    m.requests++;
    const diLen = m.version === '2007' ? 4 : 2;
    const di = dlt.decodeAddress(f.data.subarray(0, diLen));
    const reg = m.registers.get(di);
    if (!reg || f.data.length !== diLen) {
      this.reply(m, dlt.encodeFrame(m.address, readC | 0xc0, Buffer.from([0x02])));
      return;
    }
    const value = dlt.encodeBcd(reg.value(), reg.bytes, reg.decimals, reg.signed);
    const chunk = reg.frameBytes ?? value.length;
    const more = value.length > chunk;
    if (more) this.pendingFollow.set(m.address, { di, rest: value.subarray(chunk) });
    this.reply(m, dlt.encodeFrame(m.address, readC | 0x80 | (more ? 0x20 : 0), Buffer.concat([f.data.subarray(0, diLen), value.subarray(0, chunk)])));
  }

  private readonly pendingFollow = new Map<string, { di: string; rest: Buffer }>();

  private followUp(m: SimMeter, f: dlt.Dlt645Frame): void {
    const diLen = m.version === '2007' ? 4 : 2;
    const di = dlt.decodeAddress(f.data.subarray(0, diLen));
    const p = this.pendingFollow.get(m.address);
    const followC = m.version === '2007' ? dlt.C2007.readFollow : dlt.C1997.readFollow;
    if (!p || p.di !== di) return this.reply(m, dlt.encodeFrame(m.address, followC | 0xc0, Buffer.from([0x02])));
    const chunk = m.registers.get(di)!.frameBytes ?? p.rest.length;
    const part = p.rest.subarray(0, chunk);
    const more = p.rest.length > chunk;
    if (more) p.rest = p.rest.subarray(chunk);
    else this.pendingFollow.delete(m.address);
    const seq = m.version === '2007' ? Buffer.from([f.data[diLen] ?? 0]) : Buffer.alloc(0);
    this.reply(m, dlt.encodeFrame(m.address, followC | 0x80 | (more ? 0x20 : 0), Buffer.concat([f.data.subarray(0, diLen), part, seq])));
  }

  private reply(m: SimMeter, frame: Buffer): void {
    if (this.line.writeAfter) void this.line.writeAfter(frame, m.latencyMs).catch(() => {});
    else if (m.latencyMs) setTimeout(() => void this.line.write(frame).catch(() => {}), m.latencyMs);
    else void this.line.write(frame).catch(() => {});
  }
}
