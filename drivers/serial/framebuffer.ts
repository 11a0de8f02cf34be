// Receive-side framing for the simulator twins of frame-delimited protocols (DL/T 645,
// CJ/T 188): accumulate bytes, hand every complete frame over in order, drop noise and
// frames that fail their checksum, and never grow without bound.

/** What a protocol's frame finder reports about the start of a buffer. */
export type FrameFind<F> = { kind: 'frame'; frame: F; start: number; end: number } | { kind: 'bad'; start: number; end: number } | { kind: 'need-more'; skip: number };

export class FrameBuffer<F> {
  private buf: Buffer = Buffer.alloc(0);
  constructor(
    private readonly find: (buf: Buffer) => FrameFind<F>,
    private readonly onFrame: (frame: F) => void,
    private readonly maxBytes = 512,
  ) {}

  push(d: Buffer): void {
    this.buf = Buffer.concat([this.buf, d]);
    for (;;) {
      const r = this.find(this.buf);
      if (r.kind === 'need-more') {
        this.buf = this.buf.subarray(r.skip);
        break;
      }
      this.buf = this.buf.subarray(r.end);
      if (r.kind === 'frame') this.onFrame(r.frame);
    }
    if (this.buf.length > this.maxBytes) this.buf = Buffer.alloc(0);
  }
}
