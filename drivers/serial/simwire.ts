// An in-process simulated RS-485 wire that takes real wire time. Pseudo-terminals
// deliver bytes instantly whatever the baud rate, which makes cycle-time figures
// meaningless; this wire holds every write for bits-per-character × bytes / baud and
// delivers it to every other attached endpoint only when its last bit would have
// arrived. Writes are serialised on the shared medium (half-duplex: one talker at a
// time), so overlapping talkers queue behind each other as they would collide on a
// real bus. Used by the simulated estate and by `npm run bench:meters`.
import { EventEmitter } from 'node:events';
import { bitsPerChar, type Line, type LineEvents, type SerialSettings } from './line.js';

export interface WireStats {
  /** Bytes carried. */
  bytes: number;
  /** Milliseconds the medium was busy carrying bytes. */
  busyMs: number;
  writes: number;
}

/** What a fault does to one write: drop it, replace its bytes, and/or hold it back. */
export type WireFault = { drop: true } | { bytes?: Buffer; delayMs?: number };

/**
 * The lower bound of the time a run of transactions takes on a line: every byte's wire
 * time plus two inter-frame silences per transaction (before the request, before the
 * reply). The simulated wire can never beat it (a test holds it to that).
 */
export function wireBoundMs(bytes: number, transactions: number, serial: SerialSettings, silenceMs: number): number {
  return (bytes * bitsPerChar(serial) * 1000) / serial.baudRate + 2 * silenceMs * transactions;
}

export class SimulatedWire {
  private readonly endpoints = new Set<WireEndpoint>();
  private busyUntil = 0;
  readonly stats: WireStats = { bytes: 0, busyMs: 0, writes: 0 };
  private readonly msPerByte: number;
  /**
   * Fault injection (bench, tests): asked for every write. A held-back write keeps the
   * writer's later writes behind it (a slow meter answers its requests in order); the
   * medium is only busy while bytes are actually on it.
   */
  faults: ((from: WireEndpoint, bytes: Buffer) => WireFault | undefined) | undefined;
  private readonly releaseAt = new Map<WireEndpoint, number>();

  constructor(
    readonly serial: SerialSettings,
    readonly name = 'sim',
  ) {
    this.msPerByte = (bitsPerChar(serial) * 1000) / serial.baudRate;
  }

  /** A new station on the wire (the gateway's port, or one simulated meter). */
  attach(label: string): WireEndpoint {
    const e = new WireEndpoint(this, label);
    this.endpoints.add(e);
    return e;
  }

  detach(e: WireEndpoint): void {
    this.endpoints.delete(e);
  }

  /** @internal A write from an endpoint, through the fault hook. */
  send(from: WireEndpoint, bytes: Buffer, delayMs = 0): Promise<void> {
    const f = this.faults?.(from, bytes);
    if (f && 'drop' in f) return Promise.resolve();
    const out = f?.bytes ?? bytes;
    const now = performance.now();
    const held = this.releaseAt.get(from) ?? 0;
    if (f?.delayMs) this.releaseAt.set(from, Math.max(held, now + delayMs + f.delayMs));
    const release = this.releaseAt.get(from) ?? 0;
    if (release <= now + delayMs) return this.transmit(from, out, delayMs);
    return new Promise((resolve) => setTimeout(() => void this.transmit(from, out).then(resolve), Math.ceil(release - now)));
  }

  /** @internal */
  transmit(from: WireEndpoint, bytes: Buffer, delayMs = 0): Promise<void> {
    const now = performance.now();
    const start = Math.max(now + delayMs, this.busyUntil);
    const duration = bytes.length * this.msPerByte;
    this.busyUntil = start + duration;
    this.stats.bytes += bytes.length;
    this.stats.busyMs += duration;
    this.stats.writes++;
    const copy = Buffer.from(bytes);
    const end = this.busyUntil;
    return new Promise((resolve) => {
      // Never before the last bit has arrived: Node timers truncate fractional ms and
      // count from the event loop's cached time, so a plain setTimeout fires up to ~1 ms
      // early, which made the wire faster than physics (cycles below the wire-time bound).
      const fire = () => {
        const left = end - performance.now();
        if (left > 0) return void setTimeout(fire, Math.max(1, Math.ceil(left)));
        for (const e of this.endpoints) if (e !== from && e.isOpen) e.deliver(copy);
        resolve();
      };
      setTimeout(fire, Math.ceil(Math.max(0, end - now)));
    });
  }
}

export class WireEndpoint extends EventEmitter<LineEvents> implements Line {
  private opened = false;
  readonly paced = true;
  constructor(
    private readonly wire: SimulatedWire,
    readonly label: string,
  ) {
    super();
  }
  get serial(): SerialSettings {
    return this.wire.serial;
  }
  get description(): string {
    const s = this.wire.serial;
    return `simulated ${this.wire.name}@${s.baudRate} ${s.dataBits ?? 8}${s.parity[0]!.toUpperCase()}${s.stopBits}`;
  }
  get isOpen(): boolean {
    return this.opened;
  }
  async open(): Promise<void> {
    this.opened = true;
  }
  async close(): Promise<void> {
    this.opened = false;
  }
  write(bytes: Buffer): Promise<void> {
    if (!this.opened) return Promise.reject(new Error(`${this.description} is not open`));
    return this.wire.send(this, bytes);
  }
  writeAfter(bytes: Buffer, delayMs: number): Promise<void> {
    if (!this.opened) return Promise.reject(new Error(`${this.description} is not open`));
    return this.wire.send(this, bytes, delayMs);
  }
  /** @internal */
  deliver(bytes: Buffer): void {
    this.emit('data', bytes);
  }
}
