// Pure PyTorch -> tfjs layout mappers on flat float32 arrays (no tfjs involved, unit-tested in test/unit/layout).
import type { Layout } from '../nn/module.js';

/** Linear weight [out, in] -> [in, out] (so y = x W needs no transpose flag). */
export function linearToTf(data: Float32Array, out: number, inp: number): Float32Array {
  const r = new Float32Array(data.length);
  for (let o = 0; o < out; o++) {
    const row = o * inp;
    for (let i = 0; i < inp; i++) r[i * out + o] = data[row + i];
  }
  return r;
}

/** Conv2d weight [out, in, kh, kw] -> [kh, kw, in, out] (tf.conv2d's filter layout for NHWC). */
export function conv2dToTf(data: Float32Array, out: number, inp: number, kh: number, kw: number): Float32Array {
  const r = new Float32Array(data.length);
  for (let o = 0; o < out; o++)
    for (let i = 0; i < inp; i++)
      for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) r[((y * kw + x) * inp + i) * out + o] = data[((o * inp + i) * kh + y) * kw + x];
  return r;
}

/** Inverse of conv2dToTf: [kh, kw, in, out] -> [out, in, kh, kw]. */
export function conv2dFromTf(data: Float32Array, out: number, inp: number, kh: number, kw: number): Float32Array {
  const r = new Float32Array(data.length);
  for (let o = 0; o < out; o++)
    for (let i = 0; i < inp; i++)
      for (let y = 0; y < kh; y++) for (let x = 0; x < kw; x++) r[((o * inp + i) * kh + y) * kw + x] = data[((y * kw + x) * inp + i) * out + o];
  return r;
}

/** Map one checkpoint tensor (PyTorch layout, `shape`) to the tfjs layout. */
export function toTfLayout(layout: Layout, shape: readonly number[], data: Float32Array): Float32Array {
  switch (layout) {
    case 'none':
      return data;
    case 'linear':
      return linearToTf(data, shape[0], shape[1]);
    case 'conv2d':
      return conv2dToTf(data, shape[0], shape[1], shape[2], shape[3]);
  }
}

/** Map a tfjs-layout tensor back to PyTorch layout (for writing checkpoints by their original key names). */
export function fromTfLayout(layout: Layout, torchShape: readonly number[], data: Float32Array): Float32Array {
  switch (layout) {
    case 'none':
      return data;
    case 'linear':
      return linearToTf(data, torchShape[1], torchShape[0]);
    case 'conv2d':
      return conv2dFromTf(data, torchShape[0], torchShape[1], torchShape[2], torchShape[3]);
  }
}

/** NCHW (PyTorch activations) -> NHWC for a flat array. */
export function nchwToNhwc(data: Float32Array, n: number, c: number, h: number, w: number): Float32Array {
  const r = new Float32Array(data.length);
  for (let b = 0; b < n; b++)
    for (let ch = 0; ch < c; ch++)
      for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) r[((b * h + y) * w + x) * c + ch] = data[((b * c + ch) * h + y) * w + x];
  return r;
}

export function nhwcToNchw(data: Float32Array, n: number, h: number, w: number, c: number): Float32Array {
  const r = new Float32Array(data.length);
  for (let b = 0; b < n; b++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) for (let ch = 0; ch < c; ch++) r[((b * c + ch) * h + y) * w + x] = data[((b * h + y) * w + x) * c + ch];
  return r;
}
