// The object detector's onnxruntime session, inside the inference worker thread
// (edge/vision/worker.ts serves `objects-init` / `objects` requests with it), so camera
// frames of the elevator cars never block the gateway's event loop. Loaded only when an
// elevator is configured: a gateway without one never creates this session.
import type * as Ort from 'onnxruntime-node';
import { decodeCenternet, toInputTensor, type Detection } from './detector.js';

export interface ObjectEngineOptions {
  /** Absolute path of the ONNX file (verified by the loader against the manifest's hash). */
  file: string;
  input: number;
  stride: number;
  threads: number;
  minScore: number;
}

export interface ObjectsResult {
  detections: Detection[];
  timings: { prepare: number; run: number; decode: number };
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
    for (const n of ['heatmap', 'wh']) {
      if (!session.outputNames.includes(n)) {
        await session.release();
        throw new Error(`object detector ${o.file}: no output "${n}" (outputs: ${session.outputNames.join(', ')})`);
      }
    }
    return new ObjectEngine(ort, session, o);
  }

  async detect(image: { data: Uint8Array; width: number; height: number; pixelFormat: 'rgb24' | 'bgr24' }): Promise<ObjectsResult> {
    const t0 = performance.now();
    toInputTensor(image, this.o.input, this.tensor);
    const t1 = performance.now();
    const out = await this.session.run({ input: new this.ort.Tensor('float32', this.tensor, [1, 3, this.o.input, this.o.input]) });
    const t2 = performance.now();
    const detections = decodeCenternet(out.heatmap!.data as Float32Array, out.wh!.data as Float32Array, {
      input: this.o.input,
      stride: this.o.stride,
      minScore: this.o.minScore,
      frame: { width: image.width, height: image.height },
      max: 20,
    });
    for (const t of Object.values(out)) t.dispose();
    return { detections, timings: { prepare: t1 - t0, run: t2 - t1, decode: performance.now() - t2 } };
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
