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

export class SimulatedWire {
  private readonly endpoints = new Set<WireEndpoint>();
  private busyUntil = 0;
  readonly stats: WireStats = { bytes: 0, busyMs: 0, writes: 0 };
  private readonly msPerByte: number;

  constructor(readonly serial: SerialSettings, readonly name = 'sim') {
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
  constructor(private readonly wire: SimulatedWire, readonly label: string) {
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
    return this.wire.transmit(this, bytes);
  }
  writeAfter(bytes: Buffer, delayMs: number): Promise<void> {
    if (!this.opened) return Promise.reject(new Error(`${this.description} is not open`));
    return this.wire.transmit(this, bytes, delayMs);
  }
  /** @internal */
  deliver(bytes: Buffer): void {
    this.emit('data', bytes);
  }
}
