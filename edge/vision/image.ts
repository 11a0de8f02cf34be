// Pixel operations the face pipeline needs, on packed 8-bit RGB images (3 bytes per
// pixel, row-major). Kept dependency-free so they run inside the inference worker on
// camera frames without a round trip through an image library; photo decoding (JPEG/PNG)
// is sharp's job, not this module's.

export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}

export type Point = [number, number];

/** Row-major 2x3 affine matrix [a, b, tx, c, d, ty]: x' = a x + b y + tx, y' = c x + d y + ty. */
export type Affine = [number, number, number, number, number, number];

/** How a network wants its image input filled (a subset of the model manifest's input spec). */
export interface TensorLayout {
  layout: 'NCHW' | 'NHWC';
  colour: 'RGB' | 'BGR';
  /** value = (pixel - mean[c]) / std[c], per channel in the network's channel order. */
  scaling: { mean: number[]; std: number[] };
}

export function assertImage(img: RgbImage): void {
  if (!Number.isInteger(img.width) || !Number.isInteger(img.height) || img.width <= 0 || img.height <= 0) throw new Error(`bad image size ${img.width}x${img.height}`);
  if (img.data.length !== img.width * img.height * 3) throw new Error(`image buffer is ${img.data.length} bytes, expected ${img.width * img.height * 3} for ${img.width}x${img.height} RGB`);
}

/**
 * Fill an input tensor of size×size with the image scaled by `scale` (≤ 1 shrinks) and
 * placed at (padX, padY) on a zero canvas: the letterbox both detectors expect, and with
 * padding the "downscaled, padded" second pass that brings close-up faces into YuNet's
 * trained size range. Area-averaged when shrinking by more than 2x so small faces
 * do not alias away.
 */
export function letterboxTensor(img: RgbImage, size: number, scale: number, pad: Point, t: TensorLayout, padValue = 0, out?: Float32Array): Float32Array {
  const plane = size * size;
  const dst = out ?? new Float32Array(plane * 3);
  const { mean, std } = t.scaling;
  const k0 = 1 / std[0]!,
    k1 = 1 / std[1]!,
    k2 = 1 / std[2]!;
  const m0 = mean[0]!,
    m1 = mean[1]!,
    m2 = mean[2]!;
  if (t.layout === 'NCHW') {
    dst.fill((padValue - m0) * k0, 0, plane);
    dst.fill((padValue - m1) * k1, plane, 2 * plane);
    dst.fill((padValue - m2) * k2, 2 * plane);
  } else {
    for (let p = 0; p < plane * 3; p += 3) {
      dst[p] = (padValue - m0) * k0;
      dst[p + 1] = (padValue - m1) * k1;
      dst[p + 2] = (padValue - m2) * k2;
    }
  }
  const sw = Math.max(1, Math.round(img.width * scale));
  const sh = Math.max(1, Math.round(img.height * scale));
  const src = sw === img.width && sh === img.height ? img : resize(img, sw, sh);
  const w = Math.min(size - pad[0], src.width);
  const h = Math.min(size - pad[1], src.height);
  // Network channel 0 reads source channel c0 (R for RGB networks, B for BGR ones).
  const [c0, c2] = t.colour === 'RGB' ? [0, 2] : [2, 0];
  const sd = src.data;
  for (let y = 0; y < h; y++) {
    const ty = y + pad[1];
    for (let x = 0; x < w; x++) {
      const s = (y * src.width + x) * 3;
      const tx = x + pad[0];
      const v0 = (sd[s + c0]! - m0) * k0;
      const v1 = (sd[s + 1]! - m1) * k1;
      const v2 = (sd[s + c2]! - m2) * k2;
      if (t.layout === 'NCHW') {
        const p = ty * size + tx;
        dst[p] = v0;
        dst[plane + p] = v1;
        dst[2 * plane + p] = v2;
      } else {
        const p = (ty * size + tx) * 3;
        dst[p] = v0;
        dst[p + 1] = v1;
        dst[p + 2] = v2;
      }
    }
  }
  return dst;
}

/** Copy an image (already at the tensor's size) into a tensor without resampling. */
export function imageTensor(img: RgbImage, t: TensorLayout, out?: Float32Array): Float32Array {
  if (img.width !== img.height) throw new Error('imageTensor needs a square image');
  return letterboxTensor(img, img.width, 1, [0, 0], t, 0, out);
}

/** Resize: area average when shrinking (every source pixel counted once), bilinear when enlarging. */
export function resize(img: RgbImage, w: number, h: number): RgbImage {
  if (w === img.width && h === img.height) return img;
  if (w < img.width && h < img.height) return resizeArea(img, w, h);
  return warpAffine(img, [img.width / w, 0, (0.5 * img.width) / w - 0.5, 0, img.height / h, (0.5 * img.height) / h - 0.5], w, h);
}

function resizeArea(img: RgbImage, w: number, h: number): RgbImage {
  const out = new Uint8Array(w * h * 3);
  const sx = img.width / w;
  const sy = img.height / h;
  const d = img.data;
  for (let y = 0; y < h; y++) {
    const y0 = Math.floor(y * sy);
    const y1 = Math.max(y0 + 1, Math.min(img.height, Math.floor((y + 1) * sy)));
    for (let x = 0; x < w; x++) {
      const x0 = Math.floor(x * sx);
      const x1 = Math.max(x0 + 1, Math.min(img.width, Math.floor((x + 1) * sx)));
      let r = 0;
      let g = 0;
      let b = 0;
      for (let yy = y0; yy < y1; yy++) {
        let p = (yy * img.width + x0) * 3;
        for (let xx = x0; xx < x1; xx++, p += 3) {
          r += d[p]!;
          g += d[p + 1]!;
          b += d[p + 2]!;
        }
      }
      const n = (y1 - y0) * (x1 - x0);
      const o = (y * w + x) * 3;
      out[o] = (r / n + 0.5) | 0;
      out[o + 1] = (g / n + 0.5) | 0;
      out[o + 2] = (b / n + 0.5) | 0;
    }
  }
  return { data: out, width: w, height: h };
}

/**
 * Sample `w`×`h` output pixels where output (x, y) reads the source at `inv`·(x, y, 1),
 * bilinear, zero outside the source (the recognizer's chips have black borders).
 */
export function warpAffine(img: RgbImage, inv: Affine, w: number, h: number): RgbImage {
  const out = new Uint8Array(w * h * 3);
  const [a, b, tx, c, d, ty] = inv;
  const W = img.width;
  const H = img.height;
  const s = img.data;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const fx = a * x + b * y + tx;
      const fy = c * x + d * y + ty;
      const x0 = Math.floor(fx);
      const y0 = Math.floor(fy);
      if (x0 < -1 || y0 < -1 || x0 >= W || y0 >= H) continue;
      const ax = fx - x0;
      const ay = fy - y0;
      const o = (y * w + x) * 3;
      for (let ch = 0; ch < 3; ch++) {
        const p00 = x0 >= 0 && y0 >= 0 ? s[(y0 * W + x0) * 3 + ch]! : 0;
        const p01 = x0 + 1 < W && y0 >= 0 ? s[(y0 * W + x0 + 1) * 3 + ch]! : 0;
        const p10 = x0 >= 0 && y0 + 1 < H ? s[((y0 + 1) * W + x0) * 3 + ch]! : 0;
        const p11 = x0 + 1 < W && y0 + 1 < H ? s[((y0 + 1) * W + x0 + 1) * 3 + ch]! : 0;
        const top = p00 + (p01 - p00) * ax;
        const bot = p10 + (p11 - p10) * ax;
        out[o + ch] = Math.round(top + (bot - top) * ay);
      }
    }
  }
  return { data: out, width: w, height: h };
}

/**
 * Least-squares similarity transform (rotation, uniform scale, translation) mapping
 * `src` points onto `dst` (Umeyama 1991, 2-D closed form). Returns the forward matrix.
 */
export function umeyama(src: readonly Point[], dst: readonly Point[]): Affine {
  const n = src.length;
  if (n < 2 || n !== dst.length) throw new Error('umeyama needs at least two point pairs of equal count');
  let msx = 0,
    msy = 0,
    mdx = 0,
    mdy = 0;
  for (let i = 0; i < n; i++) {
    msx += src[i]![0];
    msy += src[i]![1];
    mdx += dst[i]![0];
    mdy += dst[i]![1];
  }
  msx /= n;
  msy /= n;
  mdx /= n;
  mdy /= n;
  // With complex numbers z = x + iy the optimal similarity is dst ≈ k·src + t where
  // k = Σ conj(s)·d / Σ |s|² over the centred points; k encodes scale and rotation.
  let num_re = 0,
    num_im = 0,
    den = 0;
  for (let i = 0; i < n; i++) {
    const sx = src[i]![0] - msx,
      sy = src[i]![1] - msy;
    const dx = dst[i]![0] - mdx,
      dy = dst[i]![1] - mdy;
    num_re += sx * dx + sy * dy;
    num_im += sx * dy - sy * dx;
    den += sx * sx + sy * sy;
  }
  if (den < 1e-9) throw new Error('degenerate landmarks');
  const a = num_re / den;
  const b = num_im / den;
  return [a, -b, mdx - (a * msx - b * msy), b, a, mdy - (b * msx + a * msy)];
}

export function invertAffine(m: Affine): Affine {
  const [a, b, tx, c, d, ty] = m;
  const det = a * d - b * c;
  if (Math.abs(det) < 1e-12) throw new Error('affine matrix is singular');
  const ia = d / det,
    ib = -b / det,
    ic = -c / det,
    id = a / det;
  return [ia, ib, -(ia * tx + ib * ty), ic, id, -(ic * tx + id * ty)];
}

/**
 * Align a face to the recognizer's template: fit the similarity from the detected
 * landmarks to the template points, then sample the chip. When the face shrinks by more
 * than `prefilterAbove` the source is area-reduced first so the chip is not aliased.
 */
export function alignFace(img: RgbImage, landmarks: readonly Point[], template: readonly Point[], size: number, prefilterAbove = 2): RgbImage {
  let src = img;
  let pts = landmarks;
  const m0 = umeyama(landmarks, template);
  const scale = Math.hypot(m0[0], m0[3]);
  if (scale < 1 / prefilterAbove) {
    // Reduce only the region around the face, not the whole frame.
    const f = Math.max(1, Math.ceil(1 / prefilterAbove / scale));
    const xs = landmarks.map((p) => p[0]);
    const ys = landmarks.map((p) => p[1]);
    const span = (size / scale) * 0.75;
    const cx = (Math.min(...xs) + Math.max(...xs)) / 2;
    const cy = (Math.min(...ys) + Math.max(...ys)) / 2;
    const crop = cropImage(img, Math.floor(cx - span), Math.floor(cy - span), Math.ceil(2 * span), Math.ceil(2 * span));
    src = resizeArea(crop.image, Math.max(1, Math.round(crop.image.width / f)), Math.max(1, Math.round(crop.image.height / f)));
    const kx = src.width / crop.image.width;
    const ky = src.height / crop.image.height;
    pts = landmarks.map((p) => [(p[0] - crop.x) * kx, (p[1] - crop.y) * ky] as Point);
  }
  return warpAffine(src, invertAffine(umeyama(pts, template)), size, size);
}

/** Crop clamped to the image; returns the crop and its actual origin. */
export function cropImage(img: RgbImage, x: number, y: number, w: number, h: number): { image: RgbImage; x: number; y: number } {
  const x0 = Math.max(0, Math.min(img.width - 1, x));
  const y0 = Math.max(0, Math.min(img.height - 1, y));
  const x1 = Math.max(x0 + 1, Math.min(img.width, x + w));
  const y1 = Math.max(y0 + 1, Math.min(img.height, y + h));
  const cw = x1 - x0;
  const ch = y1 - y0;
  const out = new Uint8Array(cw * ch * 3);
  for (let r = 0; r < ch; r++) out.set(img.data.subarray(((y0 + r) * img.width + x0) * 3, ((y0 + r) * img.width + x1) * 3), r * cw * 3);
  return { image: { data: out, width: cw, height: ch }, x: x0, y: y0 };
}

/** Luma (BT.601) of an image region, as floats. */
export function luma(img: RgbImage): Float32Array {
  const n = img.width * img.height;
  const out = new Float32Array(n);
  const d = img.data;
  for (let i = 0, p = 0; i < n; i++, p += 3) out[i] = 0.299 * d[p]! + 0.587 * d[p + 1]! + 0.114 * d[p + 2]!;
  return out;
}

/** Side of the chip sharpness is measured on: about the native size of a small (LFW-like, ~60 px) face. */
const QUALITY_CHIP = 64;

/**
 * Sharpness and exposure of an aligned face chip: variance of the 4-neighbour Laplacian
 * (the usual focus measure; it collapses with blur) and mean luma, over the central half
 * of the chip (the face itself, without the warp's black borders). Measured after
 * reducing the chip to 64 px so a small but crisp face is not taken for a blurred one
 * (upscaling into the 150 px chip softens every small face equally).
 */
export function chipQuality(chip: RgbImage): { sharpness: number; brightness: number } {
  const small = resize(chip, QUALITY_CHIP, QUALITY_CHIP);
  const w = small.width;
  const h = small.height;
  const y = luma(small);
  const x0 = Math.floor(w * 0.25),
    x1 = Math.ceil(w * 0.75),
    y0 = Math.floor(h * 0.25),
    y1 = Math.ceil(h * 0.75);
  let s = 0,
    s2 = 0,
    n = 0,
    lum = 0;
  for (let r = y0; r < y1; r++) {
    for (let c = x0; c < x1; c++) {
      const i = r * w + c;
      const lap = 4 * y[i]! - y[i - 1]! - y[i + 1]! - y[i - w]! - y[i + w]!;
      s += lap;
      s2 += lap * lap;
      lum += y[i]!;
      n++;
    }
  }
  const mean = s / n;
  return { sharpness: s2 / n - mean * mean, brightness: lum / n };
}
