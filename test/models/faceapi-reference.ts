// Runs face-api's own recognizer (faceapi-reference.mjs, a plain Node child process) on
// 150x150 RGB images and returns its descriptors: the reference for the ONNX build.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);

export async function faceApiDescriptors(packageDir: string, images: Uint8Array[], workDir: string): Promise<{ tfjs: string; descriptors: Float32Array[] }> {
  const file = join(workDir, 'images.rgb');
  writeFileSync(file, Buffer.concat(images.map((i) => Buffer.from(i))));
  const script = fileURLToPath(new URL('./faceapi-reference.mjs', import.meta.url));
  const { stdout } = await run(process.execPath, [script, packageDir, file], { timeout: 120_000, maxBuffer: 8 * 1024 * 1024 });
  const out = JSON.parse(stdout) as { tfjs: string; descriptors: number[][] };
  return { tfjs: out.tfjs, descriptors: out.descriptors.map((d) => Float32Array.from(d)) };
}
