// The simulator twin of a Wiegand reader/keypad: it drives the simulated GPIO lines D0
// and D1 with real pulse trains (each bit a low pulse on its line, then back high), so
// the decoder under test is the very code that runs on hardware, fed edge by edge.
//
// With injected virtual timers (tests) the edges are scheduled at their true times —
// 50 µs pulses 2 ms apart, frames separated by the quiet gap — and happen as the test
// advances time. Without them (the simulated estate, tests on real time) a frame's
// edges are driven in one burst, in order, and frames/keys are separated by real
// pauses: Node's timers cannot make 50 µs pulses, and the decoder does not need them
// (it counts pulses and ends a frame on a quiet gap).
import type { SimulatedGpio } from '../gpio/simulated.js';
import type { Timers } from '../gpio/types.js';
import { encodeCard, encodeKey, type Bit, type Key } from './codec.js';

export interface TwinOptions {
  d0: number;
  d1: number;
  /** Virtual timers to schedule edges at their real times; absent = bursts on real time. */
  timers?: Timers;
  /** Pulse width (µs), timed mode only. Default 50. */
  pulseUs?: number;
  /** Bit period (ms), timed mode only. Default 2. */
  bitMs?: number;
  /** Pause after each frame (ms): longer than the decoder's frame gap. Default 60. */
  gapMs?: number;
}

export class WiegandTwin {
  private readonly pulseMs: number;
  private readonly bitMs: number;
  private readonly gapMs: number;
  /** When the next frame may start (timed mode, ms from now on the injected timers). */
  private queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly gpio: SimulatedGpio,
    private readonly o: TwinOptions,
  ) {
    this.pulseMs = (o.pulseUs ?? 50) / 1000;
    this.bitMs = o.bitMs ?? 2;
    this.gapMs = o.gapMs ?? 60;
    // Idle: both lines high (pulled up by the reader).
    gpio.drive(o.d0, true);
    gpio.drive(o.d1, true);
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => (this.o.timers ? this.o.timers.setTimeout(resolve, ms) : setTimeout(resolve, ms)));
  }

  private pulse(bit: Bit): void {
    const line = bit === 0 ? this.o.d0 : this.o.d1;
    this.gpio.drive(line, false);
    this.gpio.drive(line, true);
  }

  private async frame(bits: readonly Bit[]): Promise<void> {
    const t = this.o.timers;
    if (!t) {
      for (const b of bits) this.pulse(b);
    } else {
      await new Promise<void>((resolve) => {
        if (bits.length === 0) return resolve();
        bits.forEach((b, i) => {
          const line = b === 0 ? this.o.d0 : this.o.d1;
          t.setTimeout(() => this.gpio.drive(line, false), i * this.bitMs);
          t.setTimeout(
            () => {
              this.gpio.drive(line, true);
              if (i === bits.length - 1) resolve();
            },
            i * this.bitMs + this.pulseMs,
          );
        });
      });
    }
    await this.sleep(this.gapMs);
  }

  /** Send raw bits as one frame (any length: tests send truncated frames and noise). Frames queue in order. */
  send(bits: readonly Bit[]): Promise<void> {
    const next = this.queue.then(() => this.frame(bits));
    this.queue = next.catch(() => {});
    return next;
  }

  card(format: 26 | 34, facility: number, number: number): Promise<void> {
    return this.send(encodeCard(format, facility, number));
  }

  /** Type keys ("1234#"), one frame per key, in 4- or 8-bit burst mode. */
  async keys(keys: string, bits: 4 | 8 = 4): Promise<void> {
    for (const k of keys) await this.send(encodeKey(k as Key, bits));
  }

  /** A glitch: `n` pulses on one line in one burst. */
  noise(n: number, line: 0 | 1 = 0): Promise<void> {
    return this.send(Array.from({ length: n }, () => line));
  }
}
