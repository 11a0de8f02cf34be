// Codec tests on published frames (DL/T 645 example from the issue and the standard's
// worked examples, Modbus frames from the Modbus over Serial Line guide, CJ/T 188 frames
// from a field tool's test vectors).
import t from 'tap';
import * as mb from '../../drivers/modbus/codec.js';
import * as dlt from '../../drivers/dlt645/codec.js';
import * as cjt from '../../drivers/cjt188/codec.js';

const h = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

t.test('Modbus CRC and read requests match published frames', async (t) => {
  t.same(mb.readRequest(0x11, 3, 0x006b, 3), h('11 03 00 6B 00 03 76 87'), 'spec example: slave 17 reads 3 holding registers at 107');
  t.same(mb.readRequest(1, 3, 0, 10), h('01 03 00 00 00 0A C5 CD'));
  t.ok(mb.crcOk(h('11 03 06 AE 41 56 52 43 40 49 AD')), 'published reply CRC checks');
  t.notOk(mb.crcOk(h('11 03 06 AE 41 56 52 43 40 49 AE')), 'one bit flipped fails');
  t.equal(mb.expectedReplyLength(4, 2), 9);
  t.equal(mb.expectedReplyLength(1, 10), 7);
});

t.test('Modbus reply scanning: noise, late replies, wrong unit, exceptions, CRC errors', async (t) => {
  const reply = h('11 03 06 AE 41 56 52 43 40 49 AD');
  t.same(mb.scanReply(reply, 0x11, 3, 11), { kind: 'frame', start: 0, length: 11 });
  t.same(mb.scanReply(Buffer.concat([h('00 FF 13'), reply]), 0x11, 3, 11), { kind: 'frame', start: 3, length: 11 }, 'leading noise skipped');
  t.same(mb.scanReply(reply.subarray(0, 7), 0x11, 3, 11), { kind: 'need-more' }, 'truncated frame waits');
  const wrongUnit = mb.withCrc(h('12 03 06 AE 41 56 52 43 40'));
  t.same(mb.scanReply(wrongUnit, 0x11, 3, 11), { kind: 'frame', start: 0, length: 11 }, 'CRC-valid frame of another unit is handed over (caller reports wrong unit)');
  const exc = mb.withCrc(h('11 83 02'));
  t.same(mb.scanReply(exc, 0x11, 3, 11), { kind: 'frame', start: 0, length: 5 });
  const bad = Buffer.from(reply);
  bad[5] ^= 0x10;
  t.same(mb.scanReply(bad, 0x11, 3, 11), { kind: 'need-more', suspect: { start: 0, length: 11 } }, 'complete corrupt frame is a suspect until the line goes quiet');
  t.same(mb.scanReply(Buffer.concat([bad, reply]), 0x11, 3, 11), { kind: 'frame', start: 11, length: 11 }, 'a valid reply after a corrupt leftover wins');
  t.same(mb.scanReply(h('55 AA 55'), 0x11, 3, 11), { kind: 'garbage', drop: 2 });
});

t.test('register data types, word and byte orders', async (t) => {
  t.equal(mb.decodeValue(h('43 66 00 00'), 'float32'), 230, 'SDM float 230 V (ABCD)');
  t.equal(mb.decodeValue(h('00 00 43 66'), 'float32', 'little'), 230, 'CDAB');
  t.equal(mb.decodeValue(h('66 43 00 00'), 'float32', 'big', 'little'), 230, 'BADC');
  t.equal(mb.decodeValue(h('00 00 66 43'), 'float32', 'little', 'little'), 230, 'DCBA');
  t.equal(mb.decodeValue(h('FF FE'), 's16'), -2);
  t.equal(mb.decodeValue(h('FF FE'), 'u16'), 65534);
  t.equal(mb.decodeValue(h('00 01 00 00'), 'u32'), 65536);
  t.equal(mb.decodeValue(h('00 00 00 01'), 'u32', 'little'), 65536);
  t.equal(mb.decodeValue(h('FF FF FF FF'), 's32'), -1);
  t.equal(mb.decodeValue(h('00 00 00 00 00 01 E2 40'), 'u64'), 123456);
  t.equal(mb.decodeValue(h('12 34 56 78'), 'bcd32'), 12345678);
  t.equal(mb.decodeValue(h('7F C0 00 00'), 'float32'), undefined, 'NaN is no value');
  t.equal(mb.decodeValue(h('1A 00'), 'bcd16'), undefined, 'invalid BCD is no value');
  t.throws(() => mb.decodeValue(h('00'), 'u16'), RangeError);
  for (const type of ['u16', 's16', 'u32', 's32', 'float32', 'u64', 's64', 'float64', 'bcd16', 'bcd32'] as const)
    for (const wo of ['big', 'little'] as const)
      for (const bo of ['big', 'little'] as const) {
        const v = type.startsWith('s') ? -1234 : 1234;
        t.equal(mb.decodeValue(mb.encodeValue(v, type, wo, bo), type, wo, bo), v, `${type} ${wo}/${bo} round trip`);
      }
});

t.test('MBAP framing', async (t) => {
  const f = mb.mbapWrap(0x0102, 1, h('04 00 00 00 02'));
  t.same(f, h('01 02 00 00 00 06 01 04 00 00 00 02'));
  t.equal(mb.mbapFrameLength(f), 12);
  t.equal(mb.mbapFrameLength(f.subarray(0, 9)), 0);
  t.equal(mb.mbapFrameLength(h('00 01 00 05 00 06 01')), -1, 'protocol id must be 0');
});

t.test('DL/T 645-2007: published read of total forward active energy', async (t) => {
  const req = dlt.readRequest('2007', '000000000001', '00010000');
  t.same(req.subarray(4), h('68 01 00 00 00 00 00 68 11 04 33 33 34 33 B3 16'));
  t.same(req.subarray(0, 4), h('FE FE FE FE'), 'FE preamble');
  const reply = h('FE FE 68 01 00 00 00 00 00 68 91 08 33 33 34 33 AB 89 67 45 17 16');
  const frame = dlt.decodeFrame(reply);
  t.equal(frame.address, '000000000001');
  t.equal(frame.control, 0x91);
  const r = dlt.parseReadReply('2007', frame, '000000000001', '00010000');
  t.equal(r.identifier, '00010000');
  t.equal(dlt.decodeBcd(r.value, 2), 123456.78);
  t.equal(r.followUp, false);
});

t.test('DL/T 645-2007: errors, follow-up, signed values, read address, broadcast time', async (t) => {
  const corrupt = h('68 01 00 00 00 00 00 68 91 08 33 33 34 33 AB 89 67 45 18 16');
  t.throws(() => dlt.decodeFrame(corrupt), { code: 'checksum' });
  t.throws(() => dlt.decodeFrame(h('68 01 00 00 00 00 00 68 91 08 33 33')), { code: 'format' }, 'truncated');
  const err = dlt.encodeFrame('000000000001', 0xd1, Buffer.from([0x02]));
  t.throws(() => dlt.parseReadReply('2007', dlt.decodeFrame(err), '000000000001', '00010000'), { code: 'meter_error', meterErrorCode: 2 });
  const other = dlt.encodeFrame('000000000002', 0x91, Buffer.concat([dlt.identifierBytes('00010000'), dlt.encodeBcd(1, 4, 2)]));
  t.throws(() => dlt.parseReadReply('2007', dlt.decodeFrame(other), '000000000001', '00010000'), { code: 'address' });
  const follow = dlt.encodeFrame('000000000001', 0xb1, Buffer.concat([dlt.identifierBytes('00010000'), dlt.encodeBcd(1, 4, 2)]));
  t.equal(dlt.parseReadReply('2007', dlt.decodeFrame(follow), '000000000001', '00010000').followUp, true);
  // 12H read follow-up: DI then SEQ, each +33H; the 92H reply ends with the same SEQ.
  t.same(dlt.readFollowUpRequest('2007', '000000000001', '00010000', 1).subarray(4), h('68 01 00 00 00 00 00 68 12 05 33 33 34 33 34 E9 16'));
  const last = dlt.encodeFrame('000000000001', 0x92, Buffer.concat([dlt.identifierBytes('00010000'), h('34 12'), h('01')]));
  const lr = dlt.parseReadReply('2007', dlt.decodeFrame(last), '000000000001', '00010000', 1);
  t.same([lr.value, lr.followUp], [h('34 12'), false]);
  t.throws(() => dlt.parseReadReply('2007', dlt.decodeFrame(last), '000000000001', '00010000', 2), { code: 'format' }, 'wrong sequence number');
  // Active power −1.2345 kW: XX.XXXX, sign in the top bit.
  t.same(dlt.encodeBcd(-1.2345, 3, 4, true), h('45 23 81'));
  t.equal(dlt.decodeBcd(h('45 23 81'), 4, true), -1.2345);
  t.equal(dlt.decodeBcd(h('FF FF'), 1), undefined, 'FF = no value');
  t.same(dlt.readAddressRequest().subarray(4), h('68 AA AA AA AA AA AA 68 13 00 DF 16'), 'published read-address frame');
  const addrReply = dlt.encodeFrame('123456789012', 0x93, dlt.encodeAddress('123456789012'));
  t.equal(dlt.parseReadAddressReply(dlt.decodeFrame(addrReply)), '123456789012');
  const bt = dlt.broadcastTimeRequest({ year: 2026, month: 11, day: 27, hour: 12, minute: 30, second: 5 });
  // 68 99×6 68 08 06 then ss mm hh DD MM YY each +33H.
  t.same(bt.subarray(4, 20), h('68 99 99 99 99 99 99 68 08 06 38 63 45 5A 44 59'));
  t.equal(dlt.decodeFrame(bt).address, '999999999999');
  t.equal(dlt.normaliseAddress('1'), '000000000001');
  t.throws(() => dlt.normaliseAddress('12345678901234'), RangeError);
});

t.test('DL/T 645-1997: 2-byte identifiers and 81H replies', async (t) => {
  const req = dlt.readRequest('1997', '000000000001', '9010');
  // DI 9010 sent 10 90, each +33H; CS worked out by hand: 68+01+68+01+02+43+C3 = 1DA.
  t.same(req.subarray(4), h('68 01 00 00 00 00 00 68 01 02 43 C3 DA 16'));
  const reply = dlt.encodeFrame('000000000001', 0x81, Buffer.concat([dlt.identifierBytes('9010'), dlt.encodeBcd(2345.67, 4, 2)]));
  const r = dlt.parseReadReply('1997', dlt.decodeFrame(reply), '000000000001', '9010');
  t.equal(dlt.decodeBcd(r.value, 2), 2345.67);
  const err = dlt.encodeFrame('000000000001', 0xc1, Buffer.from([0x01]));
  t.throws(() => dlt.parseReadReply('1997', dlt.decodeFrame(err), '000000000001', '9010'), { code: 'meter_error' });
  t.throws(() => dlt.readRequest('1997', '000000000001', '00010000'), RangeError);
});

t.test('CJ/T 188: published read and reply frames', async (t) => {
  t.same(cjt.readRequest(0x10, '00000000000012', 0x901f, 0).subarray(2), h('68 10 12 00 00 00 00 00 00 01 03 90 1F 00 3D 16'));
  const reply = h('FE FE FE 68 10 12 00 00 00 00 00 00 81 16 90 1F 00 10 00 10 00 2C 10 00 10 00 2C 00 00 00 00 00 00 00 00 FF 67 16');
  const f = cjt.decodeFrame(reply);
  t.equal(f.meterType, 0x10);
  t.equal(f.address, '00000000000012');
  const r = cjt.parseFlowReply(f, { meterType: 0x10, address: '00000000000012' });
  t.equal(r.current, 1000.1);
  t.equal(r.unit, 'm3');
  t.equal(r.settlement, 1000.1);
  t.equal(r.status, 0xff00);
  const bad = Buffer.from(reply);
  bad[20] ^= 1;
  t.throws(() => cjt.decodeFrame(bad), { code: 'checksum' });
  t.throws(() => cjt.parseFlowReply(f, { meterType: 0x10, address: '00000000000013' }), { code: 'address' });
  const round = cjt.encodeFrame(0x10, '00000000000012', 0x81, cjt.flowReplyData(12.34, 10, new Date(Date.UTC(2026, 10, 27, 12, 30, 5)), 0, 7));
  const rr = cjt.parseFlowReply(cjt.decodeFrame(round), { address: '00000000000012' });
  t.equal(rr.current, 12.34);
  t.equal(rr.ser, 7);
  t.equal(rr.meterTime, '2026-11-27 12:30:05');
  t.same(cjt.readRequest(0x10, '00000000000012', 0x901f, 0, '1F90').subarray(13, 15), h('1F 90'), 'reversed DI order for meters that need it');
});
