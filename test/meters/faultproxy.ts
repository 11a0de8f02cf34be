// A fault-injection proxy between two serial lines (two socat pty pairs): requests pass
// through unchanged; each reply can be corrupted, dropped, delayed past the timeout,
// split into single bytes, truncated, prefixed with noise, or re-addressed. Faults are
// queued by the test and consumed one per reply, so every test knows exactly which
// reply was damaged.
import { SerialLine } from '../../drivers/serial/line.js';
import { withCrc, expectedReplyLength } from '../../drivers/modbus/codec.js';
import * as dlt from '../../drivers/dlt645/codec.js';
import * as cjt from '../../drivers/cjt188/codec.js';

/** Bytes of a complete reply given the request it answers and what has arrived so far; undefined = unknown yet. */
export type ReplyLength = (request: Buffer, received: Buffer) => number | undefined;

export const modbusReplyLength: ReplyLength = (req, got) => (got.length >= 2 && got[1]! & 0x80 ? 5 : expectedReplyLength(req[1]!, req.readUInt16BE(4)));
export const dltReplyLength: ReplyLength = (_req, got) => {
  const r = dlt.findFrame(got);
  return r.kind === 'need-more' ? undefined : r.end;
};

export const cjtReplyLength: ReplyLength = (_req, got) => {
  const r = cjt.findFrame(got);
  return r.kind === 'need-more' ? undefined : r.end;
};

export type Fault =
  | { kind: 'corrupt'; at?: number }
  | { kind: 'drop' }
  | { kind: 'delay'; ms: number }
  /**
   * Delay this reply and keep every later reply behind it (a meter that is slow for a
   * moment answers its requests in order): the late reply arrives just before the
   * answer to the next request, where a reply of the same shape is indistinguishable.
   */
  | { kind: 'late'; ms: number }
  | { kind: 'split'; gapMs: number }
  | { kind: 'truncate'; keep: number }
  | { kind: 'noise'; bytes: Buffer }
  | { kind: 'modbus-unit'; unit: number };

export class FaultProxy {
  private readonly faults: Fault[] = [];
  private quietTimer: NodeJS.Timeout | undefined;
  private pending: Buffer[] = [];
  readonly applied: Fault[] = [];
  replies = 0;
  /** Called for each reply when no fault is queued (e.g. "10 % of replies late"). */
  policy: ((n: number, reply: Buffer) => Fault | undefined) | undefined;
  /** Replies held back by a `late` fault release no earlier than this (Date.now ms). */
  private releaseAt = 0;

  private lastRequest: Buffer = Buffer.alloc(0);

  private constructor(
    private readonly up: SerialLine,
    private readonly down: SerialLine,
    private readonly replyLength: ReplyLength,
  ) {
    up.on('data', (d) => {
      this.lastRequest = d;
      void down.write(d).catch(() => {});
    });
    // A reply is gathered until it is complete for the request it answers (ptys may
    // deliver it in pieces), or the line stays quiet for 30 ms.
    down.on('data', (d) => {
      this.pending.push(d);
      if (this.quietTimer) clearTimeout(this.quietTimer);
      const got = Buffer.concat(this.pending);
      const need = this.lastRequest.length >= 6 ? this.replyLength(this.lastRequest, got) : undefined;
      if (need !== undefined && got.length >= need) {
        this.pending = [];
        this.reply(got);
        return;
      }
      this.quietTimer = setTimeout(() => this.reply(Buffer.concat(this.pending.splice(0))), 30);
    });
  }

  /** `gatewaySide` is the pty end facing the gateway's pair, `meterSide` the one facing the meters' pair. */
  static async open(gatewaySide: string, meterSide: string, replyLength: ReplyLength = modbusReplyLength): Promise<FaultProxy> {
    const settings = { baudRate: 9600, parity: 'none', stopBits: 1 } as const;
    const up = new SerialLine(gatewaySide, settings);
    const down = new SerialLine(meterSide, settings);
    await up.open();
    await down.open();
    return new FaultProxy(up, down, replyLength);
  }

  inject(...f: Fault[]): void {
    this.faults.push(...f);
  }

  get queued(): number {
    return this.faults.length;
  }

  private reply(frame: Buffer): void {
    this.replies++;
    const f = this.faults.shift() ?? this.policy?.(this.replies, frame);
    const direct = (b: Buffer) => void this.up.write(b).catch(() => {});
    // In order behind a reply still held by a `late` fault.
    const send = (b: Buffer) => {
      const wait = this.releaseAt - Date.now();
      if (wait > 0) setTimeout(() => direct(b), wait);
      else direct(b);
    };
    if (!f) return send(frame);
    this.applied.push(f);
    switch (f.kind) {
      case 'corrupt': {
        const b = Buffer.from(frame);
        // `at` < 0 counts from the end (−3 = last data byte before a 2-byte trailer).
        const i = f.at === undefined ? Math.min(b.length - 3, Math.floor(b.length / 2)) : f.at < 0 ? b.length + f.at : f.at;
        b[i] = b[i]! ^ 0x5a;
        return send(b);
      }
      case 'drop':
        return;
      case 'delay':
        setTimeout(() => send(frame), f.ms);
        return;
      case 'late':
        this.releaseAt = Math.max(this.releaseAt, Date.now() + f.ms);
        return send(frame);
      case 'split': {
        let i = 0;
        const next = () => {
          if (i >= frame.length) return;
          send(frame.subarray(i, i + 1));
          i++;
          setTimeout(next, f.gapMs);
        };
        next();
        return;
      }
      case 'truncate':
        return send(frame.subarray(0, f.keep));
      case 'noise':
        return send(Buffer.concat([f.bytes, frame]));
      case 'modbus-unit': {
        const body = Buffer.from(frame.subarray(0, frame.length - 2));
        body[0] = f.unit;
        return send(withCrc(body));
      }
    }
  }

  async close(): Promise<void> {
    if (this.quietTimer) clearTimeout(this.quietTimer);
    await this.up.close();
    await this.down.close();
  }
}
