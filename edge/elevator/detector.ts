// The object detectors of the elevator blocker, both COCO (80 classes), built as ONNX in the
// project and run in onnxruntime-node: MobileNet-v3 CenterNet (models/centernet-build.ts)
// and NanoDet-g (models/nanodet-build.ts). This file holds the decoding of their outputs
// (pure JS, no onnxruntime: tested on synthetic maps), the input tensor and the e-bike rule.
// Only the classes the blocker needs are decoded (person, bicycle, motorcycle): 3 of 80.
//
// CenterNet: a detection is a heatmap cell that is the maximum of its 3×3 neighbourhood
// (the TF graph's max-pool peak test) with a score above the threshold; its box is the
// cell centre (stride 4) minus/plus the four wh distances.
//
// NanoDet (GFL head, upstream's legacy NanoDetHead): every cell of the stride-8/16/32 grids
// scores each class; its box sides are distributions over 0…regMax strides from the cell
// centre ((x + 0.5)·stride), the distance is their expectation. Overlapping boxes of a class
// are suppressed (NMS, IoU 0.6 as upstream): unlike CenterNet's peaks, neighbouring cells
// all fire on one object.
/** COCO class indices (0-based, the 80-class order of the model). */
export const COCO = { person: 0, bicycle: 1, motorcycle: 3 } as const;
export type ObjectClass = keyof typeof COCO;
const CLASSES = Object.entries(COCO) as [ObjectClass, number][];

export interface Detection {
  cls: ObjectClass;
  score: number;
  /** Box in frame pixels: x, y = top-left. */
  box: { x: number; y: number; w: number; h: number };
}

export interface DecodeOptions {
  /** Network input side (square). */
  input: number;
  stride: number;
  /** Minimum peak score per class. */
  minScore: number;
  /** Frame size the input was scaled from (a plain resize: x and y scale separately). */
  frame: { width: number; height: number };
  /** At most this many detections (highest scores first). */
  max?: number;
}

/** Decode heatmap [80, g, g] and wh [4, g, g] (NCHW, batch 1, flattened). */
export function decodeCenternet(heatmap: Float32Array, wh: Float32Array, o: DecodeOptions): Detection[] {
  const g = o.input / o.stride;
  const plane = g * g;
  if (heatmap.length !== 80 * plane || wh.length !== 4 * plane) throw new Error(`centernet outputs of ${heatmap.length}/${wh.length} values, expected ${80 * plane}/${4 * plane}`);
  const sx = o.frame.width / o.input;
  const sy = o.frame.height / o.input;
  const out: Detection[] = [];
  for (const [cls, c] of CLASSES) {
    const base = c * plane;
    for (let y = 0; y < g; y++) {
      for (let x = 0; x < g; x++) {
        const v = heatmap[base + y * g + x]!;
        if (!(v >= o.minScore)) continue;
        let peak = true;
        for (let dy = -1; dy <= 1 && peak; dy++) {
          const yy = y + dy;
          if (yy < 0 || yy >= g) continue;
          for (let dx = -1; dx <= 1; dx++) {
            const xx = x + dx;
            if (xx < 0 || xx >= g || (dx === 0 && dy === 0)) continue;
            if (heatmap[base + yy * g + xx]! > v) {
              peak = false;
              break;
            }
          }
        }
        if (!peak) continue;
        const i = y * g + x;
        const cx = x * o.stride;
        const cy = y * o.stride;
        const x1 = Math.max(0, cx - wh[i]!);
        const y1 = Math.max(0, cy - wh[plane + i]!);
        const x2 = Math.min(o.input, cx + wh[2 * plane + i]!);
        const y2 = Math.min(o.input, cy + wh[3 * plane + i]!);
        if (!(x2 > x1 && y2 > y1)) continue;
        out.push({ cls, score: v, box: { x: x1 * sx, y: y1 * sy, w: (x2 - x1) * sx, h: (y2 - y1) * sy } });
      }
    }
  }
  out.sort((a, b) => b.score - a.score);
  return o.max !== undefined ? out.slice(0, o.max) : out;
}

export interface NanodetDecodeOptions {
  /** Network input side (square). */
  input: number;
  strides: readonly number[];
  /** Bins per box side minus one (upstream reg_max). */
  regMax: number;
  minScore: number;
  frame: { width: number; height: number };
  /** IoU above which a lower-scoring box of the same class is dropped (upstream 0.6). */
  nmsIou?: number;
  max?: number;
}

/** Decode scores [N, 80] and boxes [N, 4·(regMax+1)] (batch 1, flattened; levels in `strides` order). */
export function decodeNanodet(scores: Float32Array, boxes: Float32Array, o: NanodetDecodeOptions): Detection[] {
  const bins = o.regMax + 1;
  const cells = o.strides.reduce((s, st) => s + (o.input / st) ** 2, 0);
  if (scores.length !== 80 * cells || boxes.length !== 4 * bins * cells) throw new Error(`nanodet outputs of ${scores.length}/${boxes.length} values, expected ${80 * cells}/${4 * bins * cells}`);
  const sx = o.frame.width / o.input;
  const sy = o.frame.height / o.input;
  const dist = (base: number): number => {
    let m = Number.NEGATIVE_INFINITY;
    for (let k = 0; k < bins; k++) m = Math.max(m, boxes[base + k]!);
    let sum = 0;
    let acc = 0;
    for (let k = 0; k < bins; k++) {
      const e = Math.exp(boxes[base + k]! - m);
      sum += e;
      acc += e * k;
    }
    return acc / sum;
  };
  const byClass = new Map<ObjectClass, Detection[]>();
  let cell = 0;
  for (const stride of o.strides) {
    const g = o.input / stride;
    for (let i = 0; i < g * g; i++, cell++) {
      for (const [cls, c] of CLASSES) {
        const v = scores[cell * 80 + c]!;
        if (!(v >= o.minScore)) continue;
        const cx = ((i % g) + 0.5) * stride;
        const cy = (Math.floor(i / g) + 0.5) * stride;
        const b = cell * 4 * bins;
        const x1 = Math.max(0, cx - dist(b) * stride);
        const y1 = Math.max(0, cy - dist(b + bins) * stride);
        const x2 = Math.min(o.input, cx + dist(b + 2 * bins) * stride);
        const y2 = Math.min(o.input, cy + dist(b + 3 * bins) * stride);
        if (!(x2 > x1 && y2 > y1)) continue;
        let list = byClass.get(cls);
        if (!list) byClass.set(cls, (list = []));
        list.push({ cls, score: v, box: { x: x1 * sx, y: y1 * sy, w: (x2 - x1) * sx, h: (y2 - y1) * sy } });
      }
    }
  }
  const nmsIou = o.nmsIou ?? 0.6;
  const out: Detection[] = [];
  for (const list of byClass.values()) {
    list.sort((a, b) => b.score - a.score);
    const kept: Detection[] = [];
    for (const d of list) if (!kept.some((k) => iou(k.box, d.box) > nmsIou)) kept.push(d);
    out.push(...kept);
  }
  out.sort((a, b) => b.score - a.score);
  return o.max !== undefined ? out.slice(0, o.max) : out;
}

export interface EbikeRule {
  /** Minimum motorcycle score for an e-bike. */
  minScore: number;
  /** The box must cover at least this fraction of the frame (a bike in the car, not one seen through the door). */
  minAreaFraction: number;
}

/**
 * The e-bike in a frame, if any. COCO `motorcycle` covers Chinese e-bikes and scooters;
 * `bicycle` never counts (a pedal bicycle in a lift is allowed), nor does a person. A
 * motorcycle box that mostly coincides with a stronger bicycle box is the bicycle (the
 * two classes compete on the same object) and is ignored.
 */
export function findEbike(dets: readonly Detection[], rule: EbikeRule, frame: { width: number; height: number }): Detection | undefined {
  const area = frame.width * frame.height;
  for (const d of dets) {
    if (d.cls !== 'motorcycle' || d.score < rule.minScore) continue;
    if ((d.box.w * d.box.h) / area < rule.minAreaFraction) continue;
    const bike = dets.find((b) => b.cls === 'bicycle' && b.score > d.score && iou(b.box, d.box) > 0.5);
    if (bike) continue;
    return d;
  }
  return undefined;
}

export function iou(a: Detection['box'], b: Detection['box']): number {
  const x1 = Math.max(a.x, b.x);
  const y1 = Math.max(a.y, b.y);
  const x2 = Math.min(a.x + a.w, b.x + b.w);
  const y2 = Math.min(a.y + a.h, b.y + b.h);
  const inter = Math.max(0, x2 - x1) * Math.max(0, y2 - y1);
  const u = a.w * a.h + b.w * b.h - inter;
  return u > 0 ? inter / u : 0;
}

/** How the network wants its input: channel order and (v − mean) / std per network channel. */
export interface InputNorm {
  colour: 'RGB' | 'BGR';
  mean: readonly number[];
  std: readonly number[];
}
/** RGB 0–255, what CenterNet takes (its normalisation is inside the graph). */
export const RAW_RGB: InputNorm = { colour: 'RGB', mean: [0, 0, 0], std: [1, 1, 1] };

/** RGB (or BGR) interleaved frame → NCHW float32 at input×input, bilinear (plain resize), in the network's channel order and scaling. */
export function toInputTensor(frame: { data: Uint8Array; width: number; height: number; pixelFormat: 'rgb24' | 'bgr24' }, input: number, out: Float32Array<ArrayBuffer> = new Float32Array(3 * input * input), norm: InputNorm = RAW_RGB): Float32Array<ArrayBuffer> {
  const { data, width: w, height: h } = frame;
  // Frame channel c goes to network channel 2 − c when one is RGB and the other BGR.
  const flip = (frame.pixelFormat === 'bgr24') !== (norm.colour === 'BGR');
  const plane = input * input;
  const sx = w / input;
  const sy = h / input;
  const mean = [0, 1, 2].map((c) => norm.mean[flip ? 2 - c : c]!);
  const inv = [0, 1, 2].map((c) => 1 / norm.std[flip ? 2 - c : c]!);
  const dst = [0, 1, 2].map((c) => (flip ? 2 - c : c) * plane);
  for (let y = 0; y < input; y++) {
    const fy = Math.min(h - 1, Math.max(0, (y + 0.5) * sy - 0.5));
    const y0 = Math.floor(fy);
    const y1 = Math.min(h - 1, y0 + 1);
    const wy = fy - y0;
    for (let x = 0; x < input; x++) {
      const fx = Math.min(w - 1, Math.max(0, (x + 0.5) * sx - 0.5));
      const x0 = Math.floor(fx);
      const x1 = Math.min(w - 1, x0 + 1);
      const wx = fx - x0;
      const i00 = (y0 * w + x0) * 3;
      const i01 = (y0 * w + x1) * 3;
      const i10 = (y1 * w + x0) * 3;
      const i11 = (y1 * w + x1) * 3;
      for (let c = 0; c < 3; c++) {
        const v = (data[i00 + c]! * (1 - wx) + data[i01 + c]! * wx) * (1 - wy) + (data[i10 + c]! * (1 - wx) + data[i11 + c]! * wx) * wy;
        out[dst[c]! + y * input + x] = (v - mean[c]!) * inv[c]!;
      }
    }
  }
  return out;
}
