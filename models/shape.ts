// Tensor geometry of a manifest entry, kept apart from manifest.ts (schema, loader) so
// the inference worker can use it without loading the manifest's TypeBox schema: the
// worker receives the already validated entries from the main thread.

/** Input height and width in pixels. */
export function inputSize(e: { input: { shape: ReadonlyArray<number | string>; layout: 'NCHW' | 'NHWC' } }): { width: number; height: number } {
  const s = e.input.shape;
  const [h, w] = e.input.layout === 'NCHW' ? [s[2], s[3]] : [s[1], s[2]];
  return { width: Number(w), height: Number(h) };
}
