import t from 'tap';
import ort from 'onnxruntime-node';
import { loadManifest } from '../../models/manifest.js';
import { modelPath } from './shared.js';

const manifest = loadManifest();

t.test('every model loads in onnxruntime-node with the declared inputs and outputs', async (t) => {
  for (const [id, e] of Object.entries(manifest.models)) {
    const session = await ort.InferenceSession.create(modelPath(e.file), { intraOpNumThreads: 1, logSeverityLevel: 3 });
    t.same(
      session.inputMetadata.map((m) => [m.name, m.isTensor && m.type, m.isTensor && m.shape]),
      [[e.input.name, e.input.dtype, e.input.shape]],
      `${id}: input`,
    );
    t.same(session.outputMetadata.map((m) => [m.name, m.isTensor && m.type, m.isTensor && m.shape]).sort(), e.outputs.map((o) => [o.name, o.dtype, o.shape]).sort(), `${id}: outputs`);
    // One run on a blank image of the declared shape (batch 1): every output has its declared shape.
    const dims = e.input.shape.map((d) => (typeof d === 'number' ? d : 1));
    const out = await session.run({ [e.input.name]: new ort.Tensor('float32', new Float32Array(dims.reduce((a, b) => a * b, 1)), dims) });
    for (const o of e.outputs) {
      t.same(
        out[o.name]?.dims,
        o.shape.map((d) => (typeof d === 'number' ? d : 1)),
        `${id}: ${o.name} dims after a run`,
      );
    }
    await session.release();
  }
});
