// drivers/modbus/modbus-serial-adapter.ts: what estate-edge relies on in modbus-serial
// beyond its documented API. These tests fail, naming the version and the missing piece,
// when an upgrade of modbus-serial changes that shape.
import t from 'tap';
import { createRequire } from 'node:module';
import { checkModbusSerial, createModbusSerialClient, modbusSerialError, ModbusSerialPort } from '../../drivers/modbus/modbus-serial-adapter.js';

const require = createRequire(import.meta.url);
const version = (require('modbus-serial/package.json') as { version: string }).version;
const ModbusRTU = require('modbus-serial') as new (port: unknown) => unknown;

function crc(body: number[]): Buffer {
  let c = 0xffff;
  for (const b of body) {
    c ^= b;
    for (let i = 0; i < 8; i++) c = c & 1 ? (c >>> 1) ^ 0xa001 : c >>> 1;
  }
  return Buffer.from([...body, c & 0xff, c >>> 8]);
}

class MemPort extends ModbusSerialPort {
  isOpen = false;
  readonly written: Buffer[] = [];
  open(cb: (err?: Error) => void): void {
    this.isOpen = true;
    cb();
  }
  close(cb?: () => void): void {
    this.isOpen = false;
    cb?.();
  }
  write(b: Buffer): void {
    this.written.push(Buffer.from(b));
  }
}

t.test(`the installed modbus-serial (${version}) has the shape the adapter relies on`, async (t) => {
  t.doesNotThrow(() => checkModbusSerial(), 'checkModbusSerial() passes');
});

t.test('the custom-port round trip through the adapter: FC1–FC4, exception, timeout, closed port', async (t) => {
  const port = new MemPort();
  const client = createModbusSerialClient(port);
  await new Promise<void>((res, rej) => client.open((e) => (e ? rej(e) : res())));
  t.equal(port._transactionIdRead, 1, 'open() resets the transaction ids');
  t.equal(port._transactionIdWrite, 1);
  const ask = (fc: 1 | 2 | 3 | 4, reply: number[] | undefined) =>
    new Promise<{ err?: unknown; data?: unknown; buffer?: Buffer }>((res) => {
      const next = (err: unknown, d?: { data: unknown; buffer: Buffer }) => res(err ? { err } : { data: d!.data, buffer: d!.buffer });
      (client[`writeFC${fc}`] as (u: number, a: number, c: number, n: typeof next) => void)(5, 16, 2, next);
      if (reply) port.emit('data', crc(reply));
    });
  let r = await ask(3, [5, 3, 4, 0, 1, 0, 2]);
  t.same(port.written.at(-1), crc([5, 3, 0, 16, 0, 2]), 'FC3 request frame as RTU with CRC');
  t.same(r.data, [1, 2]);
  t.same(r.buffer, Buffer.from([0, 1, 0, 2]), 'raw register bytes in .buffer');
  r = await ask(4, [5, 4, 4, 0, 3, 0, 4]);
  t.same(r.data, [3, 4], 'FC4');
  r = await ask(1, [5, 1, 1, 0b01]);
  t.same((r.data as boolean[]).slice(0, 2), [true, false], 'FC1');
  r = await ask(2, [5, 2, 1, 0b10]);
  t.same((r.data as boolean[]).slice(0, 2), [false, true], 'FC2');
  r = await ask(3, [5, 0x83, 2]);
  t.equal(modbusSerialError(r.err).exceptionCode, 2, 'exception reply: err.modbusCode');
  client.setTimeout(30);
  r = await ask(3, undefined);
  t.ok(modbusSerialError(r.err).timeout, `no reply: err.name TransactionTimedOutError (got ${(r.err as Error)?.name})`);
  port.isOpen = false;
  r = await ask(3, undefined);
  t.ok(modbusSerialError(r.err).portNotOpen, `closed port: err.name PortNotOpenError (got ${(r.err as Error)?.name})`);
});

t.test('a package of another shape fails loudly, naming the version and what is missing', async (t) => {
  class NoFC4 extends (ModbusRTU as new (port: unknown) => object) {}
  Object.defineProperty(NoFC4.prototype, 'writeFC4', { value: undefined });
  t.throws(() => checkModbusSerial({ version: '9.9.9', ctor: NoFC4 as never }), /^modbus-serial 9\.9\.9 does not have the shape .*missing ModbusRTU\.prototype\.writeFC4\(\)/);

  // A version that keeps its pending requests elsewhere and no longer resets the port's ids.
  class Renamed extends (ModbusRTU as new (port: unknown) => { _transactions?: unknown; open(cb: () => void): void }) {
    constructor(port: unknown) {
      super(port);
      delete this._transactions;
    }
    override open(cb: () => void): void {
      cb();
    }
  }
  t.throws(() => checkModbusSerial({ version: '10.0.0', ctor: Renamed as never }), /modbus-serial 10\.0\.0 .*missing client\._transactions.*open\(\) resetting port\._transactionIdRead/);
});

t.test('modbusSerialError reads only what is there', async (t) => {
  t.same(modbusSerialError(new Error('x')), { timeout: false, portNotOpen: false, message: 'x' });
  t.same(modbusSerialError('plain'), { timeout: false, portNotOpen: false, message: 'plain' });
  t.equal(modbusSerialError(Object.assign(new Error('e'), { modbusCode: 4 })).exceptionCode, 4);
});
