// Everything estate-edge relies on in modbus-serial beyond its documented API, in one place.
//
// drivers/modbus/client.ts gives modbus-serial its own port object (so framing runs through
// the shared Transactor) and reads its errors. That uses parts of the package that its
// README does not promise:
//   - the "custom port" contract: `new ModbusRTU(port)` with any object that has
//     open(cb), close(cb), isOpen, write(buffer) and emits "data"; modbus-serial keys its
//     pending transactions (`_transactions`) by the port's `_transactionIdWrite` when
//     sending and `_transactionIdRead` when a reply arrives, and resets both to 1 in open();
//   - the callback API writeFC1/2/3/4(unit, address, count, next), writeFC5(unit, address,
//     state, next), writeFC15(unit, address, states, next) and setTimeout(ms);
//   - its error objects: name "TransactionTimedOutError" and "PortNotOpenError", and
//     `modbusCode` on a Modbus exception reply.
// checkModbusSerial() verifies all of it against the installed package (run once, on the
// first ModbusClient, and by test/meters/modbus-serial-adapter.test.ts): an upgrade that
// changes any of it fails loudly, naming the version and what is missing, instead of
// reads that silently never match their replies.
import { EventEmitter } from 'node:events';
import type ModbusRTUT from 'modbus-serial';
import { requireCjs } from '../../edge/cjs.js';

/** The callback API of modbus-serial used by ModbusClient. */
export interface ModbusSerialClient {
  writeFC1(unit: number, address: number, count: number, next: (err: unknown, data?: { data: boolean[]; buffer: Buffer }) => void): void;
  writeFC2(unit: number, address: number, count: number, next: (err: unknown, data?: { data: boolean[]; buffer: Buffer }) => void): void;
  writeFC3(unit: number, address: number, count: number, next: (err: unknown, data?: { data: number[]; buffer: Buffer }) => void): void;
  writeFC4(unit: number, address: number, count: number, next: (err: unknown, data?: { data: number[]; buffer: Buffer }) => void): void;
  /** Write one coil (FC 5); `next` gets the echo. */
  writeFC5(unit: number, address: number, state: boolean, next: (err: unknown, data?: unknown) => void): void;
  /** Write a run of coils (FC 15). */
  writeFC15(unit: number, address: number, states: boolean[], next: (err: unknown, data?: unknown) => void): void;
  setTimeout(ms: number): void;
  open(cb: (err?: Error) => void): void;
  readonly isOpen: boolean;
}

/**
 * Base of a port object modbus-serial can drive (its custom-port contract). The two
 * transaction ids are modbus-serial's bookkeeping, not ours: it sets them, we only carry
 * them. Subclasses implement open/close/isOpen/write and emit "data" with whole RTU frames.
 */
export abstract class ModbusSerialPort extends EventEmitter {
  _transactionIdRead = 1;
  _transactionIdWrite = 1;
  abstract readonly isOpen: boolean;
  abstract open(cb: (err?: Error) => void): void;
  abstract close(cb?: () => void): void;
  /** A complete RTU request frame (unit, PDU, CRC). */
  abstract write(rtu: Buffer): void;
}

/** What a modbus-serial error means, as far as its (undocumented) error shapes tell. */
export interface ModbusSerialErrorInfo {
  timeout: boolean;
  portNotOpen: boolean;
  /** The Modbus exception code of an exception reply. */
  exceptionCode?: number;
  message: string;
}

export function modbusSerialError(err: unknown): ModbusSerialErrorInfo {
  const e = err as { name?: string; message?: string; modbusCode?: number } | undefined;
  return {
    timeout: e?.name === 'TransactionTimedOutError',
    portNotOpen: e?.name === 'PortNotOpenError',
    ...(typeof e?.modbusCode === 'number' ? { exceptionCode: e.modbusCode } : {}),
    message: e?.message ?? String(err),
  };
}

type ModbusRTUCtor = new (port: unknown) => ModbusSerialClient;
interface ModbusSerialPackage {
  version: string;
  ctor: ModbusRTUCtor;
}

function load(): ModbusSerialPackage {
  const ctor = requireCjs('modbus-serial') as typeof ModbusRTUT as unknown as ModbusRTUCtor;
  let version = 'unknown';
  try {
    version = (requireCjs('modbus-serial/package.json') as { version: string }).version;
  } catch {
    /* exports map without package.json: the version stays unknown in messages */
  }
  return { version, ctor };
}

let pkg: ModbusSerialPackage | undefined;
let checked = false;

/** A modbus-serial client driving `port`. Checks the package's shape on first use. */
export function createModbusSerialClient(port: ModbusSerialPort): ModbusSerialClient {
  pkg ??= load();
  if (!checked) {
    checkModbusSerial(pkg);
    checked = true;
  }
  return new pkg.ctor(port);
}

/** The crc16 (Modbus) of a frame body, little-endian as appended on the wire. */
function withCrc(body: number[]): Buffer {
  let crc = 0xffff;
  for (const b of body) {
    crc ^= b;
    for (let i = 0; i < 8; i++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return Buffer.from([...body, crc & 0xff, crc >>> 8]);
}

/**
 * Verify the parts of modbus-serial this adapter relies on, with a probe port and one
 * request answered in memory (no timers, no I/O). Throws an Error naming the package
 * version and every missing piece. `p` is injectable for the test of this check itself.
 */
export function checkModbusSerial(p: ModbusSerialPackage = (pkg ??= load())): void {
  const missing: string[] = [];
  const proto = (p.ctor as unknown as { prototype?: Record<string, unknown> }).prototype ?? {};
  for (const m of ['open', 'setTimeout', 'writeFC1', 'writeFC2', 'writeFC3', 'writeFC4', 'writeFC5', 'writeFC15']) if (typeof proto[m] !== 'function') missing.push(`ModbusRTU.prototype.${m}()`);
  if (!missing.length) {
    const written: Buffer[] = [];
    class Probe extends ModbusSerialPort {
      isOpen = false;
      open(cb: (err?: Error) => void): void {
        this.isOpen = true;
        cb();
      }
      close(cb?: () => void): void {
        cb?.();
      }
      write(b: Buffer): void {
        written.push(Buffer.from(b));
      }
    }
    const port = new Probe();
    port._transactionIdRead = 7;
    port._transactionIdWrite = 7;
    type Reply = { data?: number[]; err?: unknown };
    let reply: Reply | undefined;
    // Read through a function: the callbacks assign `reply`, which control flow cannot see.
    const got = (): Reply | undefined => reply;
    try {
      const client = new p.ctor(port) as ModbusSerialClient & { _transactions?: unknown };
      if (typeof client._transactions !== 'object' || client._transactions === null) missing.push('client._transactions (pending requests keyed by the port’s transaction id)');
      client.open(() => {});
      if (port._transactionIdRead !== 1 || port._transactionIdWrite !== 1) missing.push('open() resetting port._transactionIdRead/_transactionIdWrite to 1');
      if (port.listenerCount('data') !== 1) missing.push('open() listening to the custom port’s "data" event');
      // One FC3 read of 1 register at 0 from unit 1, answered with 0x002a.
      client.writeFC3(1, 0, 1, (err, data) => (reply = err ? { err } : { data: data?.data ?? [] }));
      const req = written[0];
      if (!req?.equals(withCrc([1, 3, 0, 0, 0, 1]))) missing.push(`writeFC3() writing one RTU frame to port.write() (got ${req ? req.toString('hex') : 'nothing'})`);
      else {
        port.emit('data', withCrc([1, 3, 2, 0, 0x2a]));
        const first = got();
        if (!first) missing.push('a reply on "data" settling the transaction of port._transactionIdRead');
        else if (first.err) missing.push(`a valid reply accepted (got error: ${String((first.err as Error).message ?? first.err)})`);
        else if (first.data?.[0] !== 0x2a) missing.push(`reply data parsed (got ${JSON.stringify(first.data)})`);
        // An exception reply: the code must come back as err.modbusCode.
        reply = undefined;
        client.writeFC3(1, 0, 1, (err) => (reply = { err }));
        port.emit('data', withCrc([1, 0x83, 2]));
        if (modbusSerialError(got()?.err).exceptionCode !== 2) missing.push('err.modbusCode on a Modbus exception reply');
      }
      // A request on a closed port: err.name PortNotOpenError.
      port.isOpen = false;
      reply = undefined;
      client.writeFC3(1, 0, 1, (err) => (reply = { err }));
      if (!modbusSerialError(got()?.err).portNotOpen) missing.push('err.name "PortNotOpenError" on a closed port');
    } catch (err) {
      missing.push(`the custom-port round trip (threw: ${(err as Error).message})`);
    }
  }
  if (missing.length) throw new Error(`modbus-serial ${p.version} does not have the shape drivers/modbus/modbus-serial-adapter.ts relies on: missing ${missing.join('; ')}. ` + 'Pin the previous version or adapt the adapter before upgrading.');
}
