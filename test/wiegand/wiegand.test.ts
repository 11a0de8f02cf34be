// The Wiegand decoder as it runs on hardware (drivers/wiegand/reader.ts over the GPIO
// layer's pulse mode), fed by its simulator twin with real pulse trains on simulated
// lines: 50 µs pulses 2 ms apart on virtual time, and bursts on real time.
import t from 'tap';
import { SimulatedGpio } from '../../drivers/gpio/simulated.js';
import { VirtualTime } from '../../drivers/gpio/virtual-time.js';
import { realTimers } from '../../drivers/gpio/types.js';
import { canonicalCard, decodeFrame, encodeCard, encodeKey, type Bit, type WiegandFrame } from '../../drivers/wiegand/codec.js';
import { WiegandReader } from '../../drivers/wiegand/reader.js';
import { WiegandTwin } from '../../drivers/wiegand/simulator.js';
import { KeypadEntry, type EntryEvent } from '../../drivers/wiegand/keypad.js';

/** Run the twin's promise to its end, advancing virtual time in small steps. */
async function play(vt: VirtualTime, p: Promise<void>): Promise<void> {
  let done = false;
  void p.then(() => (done = true));
  for (let i = 0; !done && i < 100_000; i++) {
    await new Promise((r) => setImmediate(r));
    vt.advance(1);
  }
  await p;
}

async function rig(opts: { interrupts?: boolean } = {}) {
  const vt = new VirtualTime(Date.UTC(2026, 10, 27, 4));
  const gpio = new SimulatedGpio({ timers: vt, ...(opts.interrupts === false ? { interrupts: false } : {}) });
  const twin = new WiegandTwin(gpio, { d0: 5, d1: 6, timers: vt });
  const reader = new WiegandReader(gpio, { d0: 5, d1: 6, label: 'test reader' }, vt);
  const problem = await reader.open();
  const frames: WiegandFrame[] = [];
  reader.onFrame((f) => frames.push(f));
  return { vt, gpio, twin, reader, problem, frames };
}

t.test('codec: H10301 26-bit and 34-bit frames, parities, keys, canonical card numbers', async (t) => {
  // A known H10301 frame: facility 123, card 4567.
  const bits = encodeCard(26, 123, 4567);
  t.equal(bits.length, 26);
  t.same(decodeFrame(bits), { kind: 'card', format: 26, facility: 123, number: 4567, card: '26:123:4567' });
  // Even parity over bits 1–12, odd over 13–24, checked by hand.
  const ones = (a: Bit[]) => a.reduce<number>((n, b) => n + b, 0);
  t.equal(ones(bits.slice(0, 13)) % 2, 0, 'even parity over P + first 12');
  t.equal(ones(bits.slice(13, 26)) % 2, 1, 'odd parity over last 12 + P');
  t.same(decodeFrame(encodeCard(34, 54321, 65535)), { kind: 'card', format: 34, facility: 54321, number: 65535, card: '34:54321:65535' });
  for (const [fc, n] of [
    [0, 0],
    [255, 65535],
    [1, 1],
    [170, 43690],
  ] as const)
    t.equal((decodeFrame(encodeCard(26, fc, n)) as { card: string }).card, `26:${fc}:${n}`);
  for (let i = 0; i < 26; i++) {
    const b = [...bits];
    b[i] = (1 - b[i]!) as Bit;
    t.match(decodeFrame(b), { kind: 'rejected', code: 'parity' }, `bit ${i} flipped → parity`);
  }
  const b34 = encodeCard(34, 1, 2);
  b34[20] = (1 - b34[20]!) as Bit;
  t.match(decodeFrame(b34), { kind: 'rejected', code: 'parity' });
  for (const k of ['0', '5', '9', '*', '#'] as const) {
    t.same(decodeFrame(encodeKey(k, 4)), { kind: 'key', key: k, bits: 4 });
    t.same(decodeFrame(encodeKey(k, 8)), { kind: 'key', key: k, bits: 8 });
  }
  t.same(encodeKey('1', 8), [1, 1, 1, 0, 0, 0, 0, 1], "8-bit '1' = 1110 0001");
  t.match(decodeFrame([1, 1, 1, 1, 0, 0, 0, 1]), { kind: 'rejected', code: 'bad_key' }, 'complement nibble wrong');
  t.match(decodeFrame([1, 1, 0, 0]), { kind: 'rejected', code: 'bad_key' }, '4-bit 12 is no key');
  t.match(decodeFrame([1, 0]), { kind: 'rejected', code: 'noise' });
  t.match(decodeFrame(bits.slice(0, 25)), { kind: 'rejected', code: 'bad_length' });
  t.match(decodeFrame(Array(65).fill(0)), { kind: 'rejected', code: 'too_long' });
  t.equal(canonicalCard('26:0123:04567'), '26:123:4567');
  t.equal(canonicalCard(' 34 : 1 : 2 '), '34:1:2');
  for (const bad of ['26:256:1', '26:1:65536', '35:1:1', '123:4567', '0012345678', '', '26:1:2:3']) t.equal(canonicalCard(bad), undefined, `"${bad}" refused`);
});

t.test('reader: valid frames from real pulse trains (50 µs pulses, 2 ms apart, virtual time)', async (t) => {
  const r = await rig();
  t.equal(r.problem, undefined, 'interrupt-driven lines');
  await play(r.vt, r.twin.card(26, 123, 4567));
  await play(r.vt, r.twin.card(34, 4660, 22136));
  t.same(
    r.frames.map((f) => (f.kind === 'card' ? f.card : f.kind)),
    ['26:123:4567', '34:4660:22136'],
  );
  t.match(r.reader.counters, { frames: 2, cards: 2, keys: 0 });
  // Slow readers (bits 20 ms apart, under the 25 ms gap) and long pulses work too: nothing is timed but the gap.
  const slow = new WiegandTwin(r.gpio, { d0: 5, d1: 6, timers: r.vt, bitMs: 20, pulseUs: 2000 });
  await play(r.vt, slow.card(26, 1, 2));
  t.match(r.frames.at(-1), { kind: 'card', card: '26:1:2' }, 'slow reader');
  r.reader.close();
});

t.test('reader: bad parity, truncated frames, noise bursts and overlong trains are rejected and counted', async (t) => {
  const r = await rig();
  const good = encodeCard(26, 12, 3456);
  const badParity = [...good];
  badParity[3] = (1 - badParity[3]!) as Bit;
  await play(r.vt, r.twin.send(badParity));
  await play(r.vt, r.twin.send(good.slice(0, 20))); // a card pulled away mid-frame
  await play(r.vt, r.twin.noise(1));
  await play(r.vt, r.twin.noise(3, 1));
  await play(r.vt, r.twin.noise(200)); // a line chattering (relay coupled into the cable)
  await play(r.vt, r.twin.send(good));
  t.same(
    r.frames.map((f) => (f.kind === 'rejected' ? f.code : f.kind)),
    ['parity', 'bad_length', 'noise', 'noise', 'too_long', 'card'],
    'each burst judged on its own; the next good frame decodes',
  );
  t.same(r.reader.counters.rejected, { parity: 1, bad_length: 1, noise: 2, too_long: 1 });
  t.equal(r.reader.pending(), 0, 'nothing left over between frames');
  // Two frames with too short a gap between them merge into one bad frame — never into a wrong card.
  const fast = new WiegandTwin(r.gpio, { d0: 5, d1: 6, timers: r.vt, gapMs: 5 });
  const p1 = fast.card(26, 1, 1);
  const p2 = fast.card(26, 2, 2);
  await play(
    r.vt,
    Promise.all([p1, p2]).then(() => {}),
  );
  r.vt.advance(100);
  t.match(r.frames.at(-1), { kind: 'rejected', code: 'bad_length', bits: 52 });
  r.reader.close();
});

t.test('reader: keypad keys in 4- and 8-bit bursts; keypad entry (* clears, # ends, timeout)', async (t) => {
  const r = await rig();
  const entries: EntryEvent[] = [];
  const pad = new KeypadEntry(r.vt, 10_000, (e) => entries.push(e));
  r.reader.onFrame((f) => f.kind === 'key' && pad.key(f.key));
  await play(r.vt, r.twin.keys('12*', 4));
  await play(r.vt, r.twin.keys('4321#', 8));
  await play(r.vt, r.twin.keys('99', 4));
  r.vt.advance(10_001);
  await play(r.vt, r.twin.keys('#'));
  await play(r.vt, r.twin.keys('0000#', 4));
  t.same(
    entries,
    [
      { kind: 'cleared', reason: 'star', digits: 2 },
      { kind: 'entry', digits: '4321', overflow: false },
      { kind: 'cleared', reason: 'timeout', digits: 2 },
      { kind: 'entry', digits: '0000', overflow: false },
    ],
    'a lone # after a timeout is not an entry',
  );
  t.equal(r.reader.counters.keys, 16, '3 + 5 + 2 + 1 + 5 keys');
  pad.close();
  r.reader.close();
});

t.test('reader on real time: bursts through the asynchronous simulated backend (as in the simulated estate)', async (t) => {
  const gpio = new SimulatedGpio({ async: true });
  const reader = new WiegandReader(gpio, { d0: 12, d1: 13, label: 'rt reader' }, realTimers);
  await reader.open();
  const frames: WiegandFrame[] = [];
  reader.onFrame((f) => frames.push(f));
  const twin = new WiegandTwin(gpio, { d0: 12, d1: 13 });
  await twin.card(26, 200, 60000);
  await twin.keys('7#', 8);
  await new Promise((r) => setTimeout(r, 80));
  t.same(
    frames.map((f) => (f.kind === 'card' ? f.card : f.kind === 'key' ? f.key : f.code)),
    ['26:200:60000', '7', '#'],
  );
  reader.close();
});

t.test('reader: a polled line cannot see pulses and says so', async (t) => {
  const r = await rig({ interrupts: false });
  t.match(r.problem, /no edge interrupts/);
  r.reader.close();
});

t.test('sysfs: Wiegand lines interrupt on the active-going edge only; a reader on polled files reports it', async (t) => {
  const { FakeSysfs } = await import('../gpio/fake-sysfs.js');
  const { SysfsGpio } = await import('../../drivers/gpio/sysfs.js');
  const fs = new FakeSysfs('pi4');
  t.teardown(() => fs.close());
  fs.presets.set(517, 1);
  fs.presets.set(518, 1);
  const vt = new VirtualTime(Date.UTC(2026, 0, 1));
  const b = new SysfsGpio({ root: fs.root, pollMs: 5, timers: vt });
  const reader = new WiegandReader(b, { d0: 5, d1: 6, label: 'gate reader' }, vt);
  const problem = await reader.open();
  t.equal(fs.read(517, 'edge'), 'falling', 'D0: falling edges (pulses are low)');
  t.equal(fs.read(518, 'edge'), 'falling', 'D1: falling edges');
  t.match(problem, /gate reader: the D0\/D1 lines have no edge interrupts/, 'a regular file cannot be epoll-ed here: said, not misread');
  reader.close();
});

t.test('pulse mode on a polled line: a line held low is one pulse, not one per poll', async (t) => {
  const vt = new VirtualTime(Date.UTC(2026, 0, 1));
  const gpio = new SimulatedGpio({ timers: vt, interrupts: false, pollMs: 5 });
  gpio.drive(3, true);
  const input = await gpio.openInput({ line: 3, activeLow: true, pulses: true, label: 'polled pulse line' });
  let pulses = 0;
  input.onChange((v) => v && pulses++);
  gpio.drive(3, false);
  vt.advance(50);
  t.equal(pulses, 1);
  gpio.drive(3, true);
  vt.advance(50);
  t.equal(pulses, 1, 'the return to idle is no pulse');
  t.equal(input.value(), false, 'value() stays inactive in pulse mode');
  input.close();
});
