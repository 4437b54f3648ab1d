// Moving fixture arrays (PyTorch layout) in and out of tfjs tensors (NHWC inside reno).
import * as tf from '../runtime/tf.js';
import { nchwToNhwc } from '../weights/layout.js';
import type { NpyArray } from '../weights/npy.js';

/** [N, C, H, W] fixture array -> NHWC tensor. */
export function nhwcTensor(a: NpyArray): tf.Tensor4D {
  const [n, c, h, w] = a.shape;
  return tf.tensor4d(nchwToNhwc(Float32Array.from(a.data), n, c, h, w), [n, h, w, c]);
}

/** A tensor's values, read asynchronously (the only read WebGPU offers in Node). */
export async function values(t: tf.Tensor): Promise<Float32Array> {
  return Float32Array.from(await t.data());
}

/** NHWC tensor -> flat NCHW values (to compare with a fixture). */
export async function nchwValues(t: tf.Tensor): Promise<Float32Array> {
  const tt = tf.tidy(() => tf.transpose(t, [0, 3, 1, 2]));
  const v = await values(tt);
  tt.dispose();
  return v;
}

/** Any fixture array as a tensor of its own shape. */
export function tensorOf(a: NpyArray, dtype: 'float32' | 'int32' = a.dtype === 'int32' || a.dtype === 'int64' ? 'int32' : 'float32'): tf.Tensor {
  return tf.tensor(dtype === 'int32' ? Int32Array.from(a.data) : Float32Array.from(a.data), a.shape, dtype);
}
