// A byte line to a field bus: an RS-485 serial port, a TCP socket to an RS-485-to-
// Ethernet converter, or an in-process simulated wire. Protocol drivers only see this
// interface, so the same transaction code runs on hardware, on socat ptys in tests and
// on the simulated estate.
import { EventEmitter } from 'node:events';
import { connect, type Socket } from 'node:net';
import { realpathSync } from 'node:fs';
import { requireCjs } from '../../edge/cjs.js';

import type { SerialPort as SerialPortT } from 'serialport';
const { SerialPort } = requireCjs('serialport') as typeof import('serialport');

export type Parity = 'none' | 'even' | 'odd';

export interface SerialSettings {
  baudRate: number;
  dataBits?: 7 | 8;
  parity: Parity;
  stopBits: 1 | 2;
}

/** Bits per character on the wire: start + data + parity + stop. */
export function bitsPerChar(s: SerialSettings): number {
  return 1 + (s.dataBits ?? 8) + (s.parity === 'none' ? 0 : 1) + s.stopBits;
}

/** Milliseconds one character takes on the wire. */
export function charTimeMs(s: SerialSettings): number {
  return (bitsPerChar(s) * 1000) / s.baudRate;
}

/**
 * Modbus RTU inter-frame silence: 3.5 characters, but fixed at 1.75 ms above 19200
 * baud (Modbus over Serial Line v1.02, §2.5.1.1).
 */
export function interFrameSilenceMs(s: SerialSettings): number {
  return s.baudRate > 19200 ? 1.75 : 3.5 * charTimeMs(s);
}

export interface LineEvents {
  data: [Buffer];
  /** The line went away (unplugged adapter, dropped TCP connection). */
  close: [Error | undefined];
}

export interface Line extends EventEmitter<LineEvents> {
  /** For logs and the console: "/dev/ttyUSB0@9600 8E1", "tcp 10.0.0.5:502". */
  readonly description: string;
  readonly isOpen: boolean;
  /** Serial settings when the line is a serial one (wire time, silences); undefined for TCP. */
  readonly serial: SerialSettings | undefined;
  /**
   * Bytes take their wire time on this line (a real UART, the simulated wire), so a
   * reply cannot arrive before the request's last bit has left. False for ptys (they
   * ignore the baud rate) and TCP (the converter's timing is unknown).
   */
  readonly paced?: boolean;
  open(): Promise<void>;
  close(): Promise<void>;
  /** Resolves once the bytes were handed to the OS (serial: drained to the UART). */
  write(bytes: Buffer): Promise<void>;
  /**
   * Optional: start transmitting no earlier than `delayMs` from now (the line keeps the
   * silence itself, without a timer round-trip through the caller). Simulated wires.
   */
  writeAfter?(bytes: Buffer, delayMs: number): Promise<void>;
}

export class SerialLine extends EventEmitter<LineEvents> implements Line {
  private port: SerialPortT | undefined;
  paced = true;
  constructor(
    readonly path: string,
    readonly serial: SerialSettings,
  ) {
    super();
  }

  get description(): string {
    const s = this.serial;
    return `${this.path}@${s.baudRate} ${s.dataBits ?? 8}${s.parity[0]!.toUpperCase()}${s.stopBits}`;
  }

  get isOpen(): boolean {
    return this.port?.isOpen ?? false;
  }

  open(): Promise<void> {
    // A pseudo-terminal (socat test pairs, some USB-over-network tools) delivers bytes
    // instantly whatever the baud rate: wire-time checks do not hold there.
    try {
      this.paced = !realpathSync(this.path).startsWith('/dev/pts/');
    } catch {
      this.paced = true;
    }
    return new Promise((resolve, reject) => {
      const port = new SerialPort({
        path: this.path,
        baudRate: this.serial.baudRate,
        dataBits: this.serial.dataBits ?? 8,
        parity: this.serial.parity,
        stopBits: this.serial.stopBits,
        autoOpen: false,
      });
      port.open((err) => {
        if (err) return reject(err);
        this.port = port;
        port.on('data', (d: Buffer) => this.emit('data', d));
        // 'close' with disconnected=true is an unplugged USB adapter; either way the bus
        // scheduler reopens the line with back-off.
        // Only a close we did not ask for is news (close() clears this.port first).
        port.once('close', (e: Error | null) => {
          if (this.port !== port) return;
          this.port = undefined;
          this.emit('close', e ?? undefined);
        });
        port.on('error', () => {});
        resolve();
      });
    });
  }

  close(): Promise<void> {
    const p = this.port;
    this.port = undefined;
    if (!p?.isOpen) return Promise.resolve();
    return new Promise((resolve) => p.close(() => resolve()));
  }

  write(bytes: Buffer): Promise<void> {
    const p = this.port;
    if (!p?.isOpen) return Promise.reject(new Error(`${this.path} is not open`));
    return new Promise((resolve, reject) => {
      p.write(bytes, (err) => (err ? reject(err) : p.drain((e) => (e ? reject(e) : resolve()))));
    });
  }
}

export class TcpLine extends EventEmitter<LineEvents> implements Line {
  private socket: Socket | undefined;
  readonly serial = undefined;
  readonly paced = false;
  constructor(
    readonly host: string,
    readonly port: number,
    private readonly connectTimeoutMs = 3000,
  ) {
    super();
  }

  get description(): string {
    return `tcp ${this.host}:${this.port}`;
  }

  get isOpen(): boolean {
    return this.socket !== undefined && !this.socket.destroyed && this.socket.readyState === 'open';
  }

  open(): Promise<void> {
    return new Promise((resolve, reject) => {
      const s = connect({ host: this.host, port: this.port });
      s.setNoDelay(true);
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`connect to ${this.host}:${this.port} timed out`));
      }, this.connectTimeoutMs);
      s.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
      s.once('connect', () => {
        clearTimeout(timer);
        s.removeAllListeners('error');
        s.on('error', () => {});
        s.setKeepAlive(true, 10_000);
        this.socket = s;
        s.on('data', (d) => this.emit('data', d));
        s.once('close', () => {
          if (this.socket !== s) return;
          this.socket = undefined;
          this.emit('close', new Error('connection closed by peer'));
        });
        resolve();
      });
    });
  }

  close(): Promise<void> {
    const s = this.socket;
    this.socket = undefined;
    if (!s) return Promise.resolve();
    return new Promise((resolve) => {
      s.once('close', () => resolve());
      s.destroy();
    });
  }

  write(bytes: Buffer): Promise<void> {
    const s = this.socket;
    if (!s || s.destroyed) return Promise.reject(new Error(`${this.description} is not connected`));
    return new Promise((resolve, reject) => s.write(bytes, (err) => (err ? reject(err) : resolve())));
  }
}
