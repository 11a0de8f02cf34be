// Modbus master over a Line: RTU on a serial port or simulated wire, Modbus TCP (MBAP)
// and RTU framed over TCP (transparent RS-485-to-Ethernet converters).
//
// modbus-serial does the protocol work (request encoding, CRC, exception and reply
// validation, parsing); it is given our own port object instead of its serial ports so
// that framing runs through the shared Transactor: 3.5-character silence before each
// request, a receive buffer that tolerates noise and finds the reply by function code
// and CRC (a buffered RTU transport), a flush after every timeout, MBAP transaction-id
// matching so a late TCP reply is dropped, and a tap that shows the frames in hex.
// What this relies on in modbus-serial beyond its documented API (the custom-port
// contract, its error shapes) lives in modbus-serial-adapter.ts, checked on first use.
import type { Line } from '../serial/line.js';
import { Transactor, TransactionTimeout, type FramerResult } from '../serial/transactor.js';
import { crc16, expectedReplyLength, mbapFrameLength, mbapWrap, scanReply, EXCEPTION_NAMES } from './codec.js';
import { createModbusSerialClient, modbusSerialError, ModbusSerialPort, type ModbusSerialClient } from './modbus-serial-adapter.js';

export type ModbusFraming = 'rtu' | 'tcp';

export type ModbusErrorKind = 'timeout' | 'crc' | 'exception' | 'wrong_unit' | 'bad_reply' | 'port';

export class ModbusError extends Error {
  constructor(
    readonly kind: ModbusErrorKind,
    message: string,
    readonly exceptionCode?: number,
  ) {
    super(message);
    this.name = 'ModbusError';
  }
}

/** The port object modbus-serial drives (its "custom port" contract, see the adapter). */
class TransactorPort extends ModbusSerialPort {
  /** Our own MBAP transaction id (Modbus TCP framing), not modbus-serial's. */
  private tid = 0;
  timeoutMs = 1000;
  /** Guard after a timeout for the next request; undefined = the transactor's default. */
  guardMs: number | undefined;
  /** Set by ModbusClient.read: the transactor's verdict (timeout, line error) ends the read. */
  onFail: ((err: Error) => void) | undefined;
  constructor(
    private readonly tx: Transactor,
    private readonly framing: ModbusFraming,
  ) {
    super();
  }
  get isOpen(): boolean {
    return this.tx.line.isOpen;
  }
  open(cb: (err?: Error) => void): void {
    if (this.tx.line.isOpen) return cb();
    this.tx.line.open().then(() => cb(), cb);
  }
  close(cb?: () => void): void {
    cb?.();
  }

  /** modbus-serial hands us a complete RTU frame (unit, PDU, CRC). */
  write(rtu: Buffer): void {
    const unit = rtu[0]!;
    const fc = rtu[1]!;
    const count = rtu.length >= 6 ? rtu.readUInt16BE(4) : 0;
    const replyLen = expectedReplyLength(fc, count);
    let request: Buffer;
    let framer: (b: Buffer) => FramerResult;
    let toRtu: (frame: Buffer) => Buffer = (f) => f;
    if (this.framing === 'rtu') {
      request = rtu;
      framer = (b) => {
        const s = scanReply(b, unit, fc, replyLen);
        if (s.kind === 'frame') return { kind: 'frame', start: s.start, end: s.start + s.length };
        if (s.kind === 'garbage') return { kind: 'need-more', skip: s.drop };
        return s.suspect ? { kind: 'need-more', skip: 0, suspect: { start: s.suspect.start, end: s.suspect.start + s.suspect.length } } : { kind: 'need-more', skip: 0 };
      };
    } else {
      this.tid = (this.tid + 1) & 0xffff;
      const tid = this.tid;
      request = mbapWrap(tid, unit, rtu.subarray(1, rtu.length - 2));
      framer = (b) => {
        const off = 0;
        while (off < b.length) {
          const len = mbapFrameLength(b.subarray(off));
          if (len === 0) return { kind: 'need-more', skip: off };
          if (len < 0) return { kind: 'need-more', skip: off + 1 };
          if (b.readUInt16BE(off) === tid) return { kind: 'frame', start: off, end: off + len };
          // A whole frame of another transaction: a late reply, dropped and counted.
          return { kind: 'other', start: off, end: off + len };
        }
        return { kind: 'need-more', skip: off };
      };
      toRtu = (f) => {
        const body = f.subarray(6);
        const out = Buffer.alloc(body.length + 2);
        body.copy(out);
        out.writeUInt16LE(crc16(body), body.length);
        return out;
      };
    }
    this.tx.request(request, framer, this.timeoutMs, this.guardMs === undefined ? {} : { guardMs: this.guardMs }).then(
      (frame) => this.emit('data', toRtu(frame)),
      (err: Error) => this.onFail?.(err),
    );
  }
}

export interface ReadResult {
  /** Raw register bytes (2 per register) or coil bytes, as on the wire. */
  bytes: Buffer;
  /** Monotonic ms from request to reply. */
  latencyMs: number;
}

export class ModbusClient {
  readonly transactor: Transactor;
  private readonly port: TransactorPort;
  private readonly client: ModbusSerialClient;

  /** Pass a Line, or a Transactor shared with other protocols on the same line. */
  constructor(
    lineOrTransactor: Line | Transactor,
    readonly framing: ModbusFraming = 'rtu',
    opts: { silenceMs?: number } = {},
  ) {
    this.transactor = lineOrTransactor instanceof Transactor ? lineOrTransactor : new Transactor(lineOrTransactor, opts.silenceMs === undefined ? {} : { silenceMs: opts.silenceMs });
    this.port = new TransactorPort(this.transactor, framing);
    this.client = createModbusSerialClient(this.port);
  }

  /** Registers the parser with modbus-serial once the line is open. */
  attach(): Promise<void> {
    return new Promise((resolve, reject) => this.client.open((err) => (err ? reject(err) : resolve())));
  }

  get line(): Line {
    return this.transactor.line;
  }

  dispose(): void {
    this.transactor.dispose();
  }

  /** Read registers (FC 3/4) or bits (FC 1/2). Throws ModbusError. */
  read(unit: number, fc: 1 | 2 | 3 | 4, address: number, count: number, timeoutMs: number, opts: { guardMs?: number } = {}): Promise<ReadResult> {
    return this.call(unit, timeoutMs, opts, (cb) => {
      if (fc === 1) this.client.writeFC1(unit, address, count, cb);
      else if (fc === 2) this.client.writeFC2(unit, address, count, cb);
      else if (fc === 3) this.client.writeFC3(unit, address, count, cb);
      else this.client.writeFC4(unit, address, count, cb);
    });
  }

  /**
   * Write coils: one with FC 5 (FF00 on, 0000 off), several in a row with FC 15. The
   * device's echo is the only acknowledgement; whether the relay really moved is for the
   * caller to check with a read-back (FC 1). Throws ModbusError.
   */
  writeCoils(unit: number, address: number, values: readonly boolean[], timeoutMs: number): Promise<{ latencyMs: number }> {
    return this.call(unit, timeoutMs, {}, (cb) => {
      const done = (err: unknown) => cb(err, err ? undefined : { buffer: Buffer.alloc(0) });
      if (values.length === 1) this.client.writeFC5(unit, address, values[0]!, done);
      else this.client.writeFC15(unit, address, [...values], done);
    }).then((r) => ({ latencyMs: r.latencyMs }));
  }

  private call(unit: number, timeoutMs: number, opts: { guardMs?: number }, send: (cb: (err: unknown, data?: { buffer: Buffer }) => void) => void): Promise<ReadResult> {
    this.port.timeoutMs = timeoutMs;
    this.port.guardMs = opts.guardMs;
    // The Transactor owns the timeout (it starts once the request is on the wire, and
    // the guard after it); modbus-serial's own timer is only a backstop.
    this.client.setTimeout(timeoutMs + this.transactor.guardFor(timeoutMs) + 1000);
    const start = performance.now();
    return new Promise((resolve, reject) => {
      let settled = false;
      const cb = (err: unknown, data?: { buffer: Buffer }) => {
        if (settled) return;
        settled = true;
        this.port.onFail = undefined;
        if (err || !data) {
          this.transactor.fail(new Error('request ended'));
          return reject(classify(err, unit));
        }
        resolve({ bytes: Buffer.from(data.buffer), latencyMs: performance.now() - start });
      };
      this.port.onFail = (err) => cb(err);
      send(cb);
    });
  }
}

function classify(err: unknown, unit: number): ModbusError {
  const e = modbusSerialError(err);
  const msg = e.message;
  if (e.timeout || err instanceof TransactionTimeout) return new ModbusError('timeout', `unit ${unit}: no reply (timeout)`);
  if (e.exceptionCode !== undefined) return new ModbusError('exception', `unit ${unit}: exception ${e.exceptionCode} (${EXCEPTION_NAMES[e.exceptionCode] ?? 'unknown'})`, e.exceptionCode);
  if (/CRC/i.test(msg)) return new ModbusError('crc', `unit ${unit}: CRC error in reply`);
  if (/expected address/i.test(msg)) return new ModbusError('wrong_unit', `unit ${unit}: ${msg}`);
  if (e.portNotOpen || (err as { kind?: string })?.kind === 'port' || /not open|not connected|closed|ECONN|EPIPE|EIO/i.test(msg)) return new ModbusError('port', `unit ${unit}: line error: ${msg}`);
  return new ModbusError('bad_reply', `unit ${unit}: ${msg}`);
}
