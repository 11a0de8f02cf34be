// Child process: face-api's own faceRecognitionNet on pure-JS @tensorflow/tfjs (cpu backend).
// Usage: node faceapi-reference.mjs PACKAGE_DIR IMAGES_FILE  (N×150×150×3 uint8 RGB, HWC)
// Prints a JSON object { tfjs, descriptors: number[][] }.
//
// face-api's node builds need tfjs-node (native), and its self-contained ESM bundle fails
// under Node (its bundled platform shim lacks TextEncoder), so the "nobundle" ESM build is
// used. It imports three tfjs entry points by their dist/index.js paths: the core+cpu one is
// redirected to the installed @tensorflow/tfjs package entry, the WebGL and WASM backends
// (browser-only; WASM is not installed) become empty modules. Only the cpu backend runs.
// It runs in its own plain Node process because these resolve hooks do not mix with the
// test runner's TypeScript loader.
import { register } from 'node:module';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

const hooks = `
export async function resolve(spec, ctx, next) {
  if (spec === '@tensorflow/tfjs/dist/index.js') return next('@tensorflow/tfjs', ctx);
  if (spec === '@tensorflow/tfjs-backend-webgl/dist/index.js' || spec === '@tensorflow/tfjs-backend-wasm/dist/index.js')
    return { url: 'data:text/javascript,export{}', shortCircuit: true };
  return next(spec, ctx);
}`;
register('data:text/javascript,' + encodeURIComponent(hooks));

const [packageDir, imagesFile] = process.argv.slice(2);
const faceapi = await import(join(packageDir, 'dist/face-api.esm-nobundle.js'));
const tf = faceapi.tf;
await tf.setBackend('cpu');
await tf.ready();
if (tf.getBackend() !== 'cpu') throw new Error(`expected the tfjs cpu backend, got ${tf.getBackend()}`);
const manifest = JSON.parse(readFileSync(join(packageDir, 'model/face_recognition_model-weights_manifest.json'), 'utf8'));
const bin = readFileSync(join(packageDir, 'model/face_recognition_model.bin'));
faceapi.nets.faceRecognitionNet.loadFromWeightMap(tf.io.decodeWeights(new Uint8Array(bin).buffer, manifest[0].weights));

const images = readFileSync(imagesFile);
const size = 150 * 150 * 3;
if (images.length === 0 || images.length % size !== 0) throw new Error(`${imagesFile}: not a whole number of 150x150 RGB images`);
const descriptors = [];
for (let off = 0; off < images.length; off += size) {
  const x = tf.tensor3d(Float32Array.from(images.subarray(off, off + size)), [150, 150, 3], 'float32');
  descriptors.push(Array.from(await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(x)));
  x.dispose();
}
process.stdout.write(JSON.stringify({ tfjs: tf.version_core, descriptors }));
