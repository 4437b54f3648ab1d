// Standardisation (x - mean) / sqrt(var + eps) over some axes, with its own gradient: the shared core of GroupNorm
// and LayerNorm (torch.nn.functional.group_norm / layer_norm, biased variance). tfjs differentiates the composite
// (moments, sub, rsqrt, mul) op by op: about 30 kernels per norm in the backward pass, plus a clone of every saved
// input. Here the backward pass is the closed form
//   dx = rstd * (dy - mean(dy) - xhat * mean(dy * xhat))      (means over the normalised axes)
// in 7 kernels from the saved xhat and rstd. On WebGPU, where a UNet backward pass is bound by issuing kernels, this
// matters (bench/RESULTS.md); the affine weight and bias stay outside, so their gradients (trainable or not) are
// tfjs' own. normAffine is what GroupNorm and LayerNorm call: this composite, or on WebGPU the fused kernels of
// ./webgpu-norm.ts (affine transform and SiLU included).
import * as tf from '@tensorflow/tfjs';
import { withGrad } from './attention.js';
import { fusedKernels } from './fused.js';
import { isTrainable, silu } from './ops.js';
import { NORM_BACKWARD, NORM_FORWARD } from './webgpu-norm.js';
import { callKernel } from './webgpu-program.js';

/** (x - mean) * rsqrt(var + eps), mean and biased variance over `axes` (kept), with the closed-form gradient. */
export function standardize(x: tf.Tensor, axes: number[], eps: number): tf.Tensor {
  const f = withGrad<[tf.Tensor]>((xx, save) => {
    const { xhat, rstd } = tf.tidy(() => {
      const mean = tf.mean(xx, axes, true);
      const xc = tf.sub(xx, mean);
      const rs = tf.rsqrt(tf.add(tf.mean(tf.square(xc), axes, true), eps));
      return { xhat: tf.mul(xc, rs), rstd: rs };
    });
    save([xhat, rstd]);
    return {
      value: xhat,
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) =>
        tf.tidy(() => {
          const [xh, rs] = saved;
          const m1 = tf.mean(dy, axes, true);
          const m2 = tf.mean(tf.mul(dy, xh), axes, true);
          return tf.mul(tf.sub(tf.sub(dy, m1), tf.mul(xh, m2)), rs);
        }),
    };
  });
  return f(x);
}

/** Kept ones / zeros of length c, for norms without an affine weight or bias on the fused path. */
const constants = new Map<string, tf.Tensor>();
function constant(value: 0 | 1, c: number): tf.Tensor {
  const key = `${value}:${c}`;
  let t = constants.get(key);
  if (!t || t.isDisposed) {
    t = tf.keep(value === 1 ? tf.ones([c]) : tf.zeros([c]));
    constants.set(key, t);
  }
  return t;
}

export interface NormOptions {
  /** GroupNorm's groups over the last (channel) axis, statistics over every other axis but the first; null: LayerNorm over the last axis */
  groups: number | null;
  eps: number;
  weight: tf.Tensor | null;
  bias: tf.Tensor | null;
  /** an activation after the affine transform (a ResnetBlock's GroupNorm -> SiLU) */
  act?: 'none' | 'silu';
}

/**
 * GroupNorm / LayerNorm, affine, then the activation. On WebGPU with frozen weights: two or three kernels each way
 * (./webgpu-norm.ts); elsewhere the composite of standardize, the affine ops and the activation.
 */
export function normAffine(x: tf.Tensor, o: NormOptions): tf.Tensor {
  const act = o.act ?? 'none';
  const c = x.shape[x.rank - 1];
  const G = o.groups ?? 1;
  if (!fusedKernels() || isTrainable(o.weight) || isTrainable(o.bias)) {
    return tf.tidy(() => {
      let y: tf.Tensor;
      if (o.groups === null) y = standardize(x, [x.rank - 1], o.eps);
      else {
        const g = x.reshape([x.shape[0], -1, o.groups, c / o.groups]); // [B, ..., C] -> [B, N, G, C/G]
        y = standardize(g, [1, 3], o.eps).reshape(x.shape); // [B, N, G, C/G] -> x's shape
      }
      if (o.weight) y = tf.mul(y, o.weight);
      if (o.bias) y = tf.add(y, o.bias);
      return act === 'silu' ? silu(y) : y;
    });
  }
  const w = o.weight ?? constant(1, c);
  const b = o.bias ?? constant(0, c);
  const N = o.groups === null ? 1 : x.size / (x.shape[0] * c);
  const attrs = { N, G, Cg: c / G, eps: o.eps, act };
  const f = withGrad<[tf.Tensor]>((xx, save) => {
    const [y, st] = callKernel<tf.Tensor[]>(NORM_FORWARD, { x: xx, w, bias: b }, attrs);
    save([xx, st]);
    return {
      value: y,
      gradFunc: (dy: tf.Tensor, [xs, sts]: tf.Tensor[]) => callKernel<tf.Tensor>(NORM_BACKWARD, { x: xs, st: sts, w, bias: b, dy }, attrs),
    };
  });
  return f(x);
}
