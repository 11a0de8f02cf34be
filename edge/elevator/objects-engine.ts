// The object detector's onnxruntime session, inside the inference worker thread
// (edge/vision/worker.ts serves `objects-init` / `objects` requests with it), so camera
// frames of the elevator cars never block the gateway's event loop. Loaded only when an
// elevator is configured: a gateway without one never creates this session.
import type * as Ort from 'onnxruntime-node';
import type { ObjectDetectorModel } from '../../models/manifest.js';
import { decodeCenternet, decodeNanodet, toInputTensor, type Detection, type InputNorm } from './detector.js';

/** How to read the network's outputs (the manifest entry's decoder, with its tensor names). */
export type ObjectDecoder = ObjectDetectorModel['decoder'];

export interface ObjectEngineOptions {
  /** Absolute path of the ONNX file (verified by the loader against the manifest's hash). */
  file: string;
  input: number;
  norm: InputNorm;
  decoder: ObjectDecoder;
  threads: number;
  minScore: number;
}

/** Engine options for a manifest entry (everything model-specific comes from the manifest). */
export function objectEngineOptions(m: ObjectDetectorModel, file: string, threads: number, minScore: number): ObjectEngineOptions {
  return { file, input: Number(m.input.shape[2]), norm: { colour: m.input.colour, mean: m.input.scaling.mean, std: m.input.scaling.std }, decoder: m.decoder, threads, minScore };
}

export interface ObjectsResult {
  detections: Detection[];
  timings: { prepare: number; run: number; decode: number };
}

function outputNames(d: ObjectDecoder): string[] {
  return d.kind === 'centernet' ? [d.heatmap, d.wh] : [d.scores, d.boxes];
}

export class ObjectEngine {
  private readonly tensor: Float32Array<ArrayBuffer>;
  private constructor(
    private readonly ort: typeof Ort,
    private readonly session: Ort.InferenceSession,
    private readonly o: ObjectEngineOptions,
  ) {
    this.tensor = new Float32Array(3 * o.input * o.input);
  }

  static async create(o: ObjectEngineOptions): Promise<ObjectEngine> {
    const ort = await import('onnxruntime-node');
    const session = await ort.InferenceSession.create(o.file, {
      intraOpNumThreads: o.threads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      enableMemPattern: false,
      enableCpuMemArena: true,
    });
    for (const n of outputNames(o.decoder)) {
      if (!session.outputNames.includes(n)) {
        await session.release();
        throw new Error(`object detector ${o.file}: no output "${n}" (outputs: ${session.outputNames.join(', ')})`);
      }
    }
    return new ObjectEngine(ort, session, o);
  }

  async detect(image: { data: Uint8Array; width: number; height: number; pixelFormat: 'rgb24' | 'bgr24' }): Promise<ObjectsResult> {
    const t0 = performance.now();
    toInputTensor(image, this.o.input, this.tensor, this.o.norm);
    const t1 = performance.now();
    const out = await this.session.run({ input: new this.ort.Tensor('float32', this.tensor, [1, 3, this.o.input, this.o.input]) });
    const t2 = performance.now();
    const d = this.o.decoder;
    const frame = { width: image.width, height: image.height };
    const detections =
      d.kind === 'centernet'
        ? decodeCenternet(out[d.heatmap]!.data as Float32Array, out[d.wh]!.data as Float32Array, { input: this.o.input, stride: d.stride, minScore: this.o.minScore, frame, max: 20 })
        : decodeNanodet(out[d.scores]!.data as Float32Array, out[d.boxes]!.data as Float32Array, { input: this.o.input, strides: d.strides, regMax: d.regMax, nmsIou: d.nmsIou, minScore: this.o.minScore, frame, max: 20 });
    for (const t of Object.values(out)) t.dispose();
    return { detections, timings: { prepare: t1 - t0, run: t2 - t1, decode: performance.now() - t2 } };
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
