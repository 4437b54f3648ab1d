// Standardisation (x - mean) / sqrt(var + eps) over some axes, with its own gradient: the shared core of GroupNorm
// and LayerNorm (torch.nn.functional.group_norm / layer_norm, biased variance). tfjs differentiates the composite
// (moments, sub, rsqrt, mul) op by op: about 30 kernels per norm in the backward pass, plus a clone of every saved
// input. Here the backward pass is the closed form
//   dx = rstd * (dy - mean(dy) - xhat * mean(dy * xhat))      (means over the normalised axes)
// in 7 kernels from the saved xhat and rstd. On WebGPU, where a UNet backward pass is bound by issuing kernels, this
// matters (bench/RESULTS.md); the affine weight and bias stay outside, so their gradients (trainable or not) are
// tfjs' own.
import * as tf from '@tensorflow/tfjs';
import { withGrad } from './attention.js';

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
