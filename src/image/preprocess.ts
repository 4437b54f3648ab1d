// The shared differentiable image preprocessing of the CLIP-family rewards (ReNO rewards/utils.py
// clip_img_transform: torchvision Resize(224, BICUBIC) -> CenterCrop(224) -> Normalize(OpenAI CLIP mean, std) on a
// float tensor, antialias=True) and the antialiased bilinear resize of the preference model.
// torchvision's tensor resize calls F.interpolate(antialias=True), i.e. ATen's separable "_upsample_*_aa" kernels
// (UpSampleKernel.cpp _compute_indices_min_size_weights_aa, taken from Pillow's Resample.c). Each side is one dense
// [out, in] weight matrix, so a resize is two matrix products and its gradient is two more (no custom gradient).
import * as tf from '../runtime/tf.js';

export const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
export const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;
/** The RewardInput.view key of the 224x224 CLIP tensor shared by every CLIP-family reward. */
export const CLIP224 = 'clip224';

export type AaFilter = 'bicubic' | 'bilinear';

/** Keys' cubic with a = -0.5 (Pillow's bicubic, ATen's antialias bicubic; plain bicubic would be -0.75). */
function cubic(x: number, a = -0.5): number {
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

function triangle(x: number): number {
  x = Math.abs(x);
  return x < 1 ? 1 - x : 0;
}

const cache = new Map<string, Float32Array>();

/**
 * The [out, in] antialiased resampling matrix of one side (rows are output pixels, each summing to 1), restricted
 * to output rows [start, start + count) (a centre crop folded into the resize). Computed in float64, cached.
 * ATen/Pillow: scale = in/out, support = (2 bicubic | 1 bilinear) * max(scale, 1), center = scale (i + 0.5),
 * taps j in [max(trunc(center - support + 0.5), 0), min(trunc(center + support + 0.5), in)),
 * w_j = filter((j - center + 0.5) / max(scale, 1)), normalised per row.
 */
export function resampleMatrix(filter: AaFilter, inSize: number, outSize: number, start = 0, count = outSize): Float32Array {
  const key = `${filter}:${inSize}:${outSize}:${start}:${count}`;
  const hit = cache.get(key);
  if (hit) return hit;
  if (!(inSize > 0 && outSize > 0 && start >= 0 && start + count <= outSize)) {
    throw new Error(`bad resample request: ${inSize} -> ${outSize}, rows ${start}..${start + count}`);
  }
  const f = filter === 'bicubic' ? cubic : triangle;
  const scale = inSize / outSize;
  const fscale = Math.max(scale, 1);
  const support = (filter === 'bicubic' ? 2 : 1) * fscale;
  const m = new Float32Array(count * inSize);
  const w = new Float64Array(inSize);
  for (let r = 0; r < count; r++) {
    const i = start + r;
    const center = scale * (i + 0.5);
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize);
    let sum = 0;
    for (let j = xmin; j < xmax; j++) {
      w[j] = f((j - center + 0.5) / fscale);
      sum += w[j];
    }
    for (let j = xmin; j < xmax; j++) m[r * inSize + j] = sum !== 0 ? w[j] / sum : w[j];
  }
  cache.set(key, m);
  return m;
}

/** One side of a resize: output rows [start, start + count) of an `inSize -> outSize` resample (null = identity). */
interface Side {
  in: number;
  out: number;
  start: number;
  count: number;
}

const isIdentity = (s: Side) => s.in === s.out && s.start === 0 && s.count === s.out;

/**
 * Separable resampling of NHWC images: y[b, :, :, c] = Mh . x[b, :, :, c] . Mw^T, where Mh/Mw are the (cropped)
 * resampling matrices. A side whose size does not change is left untouched (torchvision returns such input as is).
 */
function resample(x: tf.Tensor4D, filter: AaFilter, hs: Side, ws: Side): tf.Tensor4D {
  return tf.tidy(() => {
    const [b, h, w, c] = x.shape;
    if (h !== hs.in || w !== ws.in) throw new Error(`resample: image is ${h}x${w}, expected ${hs.in}x${ws.in}`);
    let y: tf.Tensor = x;
    const oh = hs.count;
    const ow = ws.count;
    if (!isIdentity(ws)) {
      const mwT = tf.tensor2d(resampleMatrix(filter, ws.in, ws.out, ws.start, ws.count), [ow, w]).transpose(); // [W, OW]
      const rows = tf.transpose(y, [0, 1, 3, 2]).reshape([b * h * c, w]); // [B, H, W, C] -> [B, H, C, W] -> [BHC, W]
      y = tf.transpose(tf.matMul(rows, mwT).reshape([b, h, c, ow]), [0, 1, 3, 2]); // [BHC, OW] -> [B, H, OW, C]
    }
    if (!isIdentity(hs)) {
      const mh = tf.tensor2d(resampleMatrix(filter, hs.in, hs.out, hs.start, hs.count), [oh, h]); // [OH, H]
      const cols = tf.transpose(y, [1, 0, 2, 3]).reshape([h, b * ow * c]); // [B, H, OW, C] -> [H, B, OW, C] -> [H, B*OW*C]
      y = tf.transpose(tf.matMul(mh, cols).reshape([oh, b, ow, c]), [1, 0, 2, 3]); // [OH, B*OW*C] -> [B, OH, OW, C]
    }
    return y === x ? tf.clone(x) : (y as tf.Tensor4D);
  });
}

const whole = (inSize: number, outSize: number): Side => ({ in: inSize, out: outSize, start: 0, count: outSize });

/** torch F.interpolate(mode='bicubic', antialias=True, align_corners=False) of NHWC images to [outH, outW]. */
export function resizeBicubicAA(image: tf.Tensor4D, outH: number, outW: number): tf.Tensor4D {
  return resample(image, 'bicubic', whole(image.shape[1], outH), whole(image.shape[2], outW));
}

/** torch F.interpolate(mode='bilinear', antialias=True, align_corners=False) (torchvision BILINEAR, antialias=True). */
export function resizeBilinearAA(image: tf.Tensor4D, outH: number, outW: number): tf.Tensor4D {
  return resample(image, 'bilinear', whole(image.shape[1], outH), whole(image.shape[2], outW));
}

/** Python's round(): half to even (round(36.5) = 36, round(37.5) = 38). */
export function pyRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** torchvision Resize(size) with an int: the shorter side becomes `size`, the longer int(size * long / short). */
export function resizedSize(h: number, w: number, size: number): [number, number] {
  if (h <= w) return [size, Math.trunc((size * w) / h)];
  return [Math.trunc((size * h) / w), size];
}

/** torchvision center_crop offsets: top = int(round((h - size) / 2)), left likewise (Python rounding). */
export function centerCropOffsets(h: number, w: number, size: number): [number, number] {
  return [pyRound((h - size) / 2), pyRound((w - size) / 2)];
}

/**
 * ReNO's clip_img_transform(size) on NHWC [B, H, W, 3] images in [0, 1]: antialiased bicubic Resize(size) of the
 * shorter side, CenterCrop(size), Normalize(CLIP mean, std) -> [B, size, size, 3]. The crop is folded into the
 * resize matrices (only the kept output rows are computed); differentiable in the image.
 */
export function clipPreprocess(image: tf.Tensor4D, size = 224): tf.Tensor4D {
  return tf.tidy(() => {
    const [, h, w] = image.shape;
    const [rh, rw] = resizedSize(h, w, size);
    if (rh < size || rw < size) throw new Error(`clipPreprocess: ${h}x${w} resized to ${rh}x${rw} is smaller than the ${size} crop`);
    const [top, left] = centerCropOffsets(rh, rw, size);
    const resized = resample(image, 'bicubic', { in: h, out: rh, start: top, count: size }, { in: w, out: rw, start: left, count: size });
    return tf.div(tf.sub(resized, tf.tensor1d([...CLIP_MEAN])), tf.tensor1d([...CLIP_STD])) as tf.Tensor4D;
  });
}
