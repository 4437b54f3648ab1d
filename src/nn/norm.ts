// Standardisation (x - mean) / sqrt(var + eps) over some axes, with its own gradient: the shared core of GroupNorm
// and LayerNorm (torch.nn.functional.group_norm / layer_norm, biased variance). tfjs differentiates the composite
// (moments, sub, rsqrt, mul) op by op: about 30 kernels per norm in the backward pass, plus a clone of every saved
// input. Here the backward pass is the closed form
//   dx = rstd * (dy - mean(dy) - xhat * mean(dy * xhat))      (means over the normalised axes)
// in 7 kernels from the saved xhat and rstd. On WebGPU, where a UNet backward pass is bound by issuing kernels, this
// matters (bench/RESULTS.md); the affine weight and bias stay outside, so their gradients (trainable or not) are
// tfjs' own. normAffine is what GroupNorm and LayerNorm call: this composite, or on WebGPU the fused kernels of
// ./webgpu-norm.ts (affine transform and SiLU included).
import * as tf from '../runtime/tf.js';
import { withGrad } from './attention.js';
import { fusedKernels } from '../runtime/fused.js';
import { isTrainable, silu } from './ops.js';
import { NORM_BACKWARD, NORM_FORWARD } from '../runtime/webgpu/norm.js';
import { callKernel } from '../runtime/webgpu/program.js';

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

/**
 * Applies the (one or more) steps in turn, each in its own tidy, freeing each intermediate as soon as the next one is
 * made: at most the input, two full-size tensors and one step's temporaries are alive (a tidy around the whole chain
 * keeps them all). The input itself is not freed.
 */
function pipe(x: tf.Tensor, steps: ((t: tf.Tensor) => tf.Tensor)[]): tf.Tensor {
  return steps.reduce((t, step) => then(() => step(t), ...(t === x ? [] : [t])), x);
}

/** fn's result (made in a tidy of its own), then `free` disposed: the result is made before its inputs go. */
function then(fn: () => tf.Tensor, ...free: tf.Tensor[]): tf.Tensor {
  const r = tf.tidy(fn);
  tf.dispose(free);
  return r;
}

/**
 * GroupNorm / LayerNorm, affine and activation as one op for frozen weights on the CPU backends, the counterpart of
 * the fused WebGPU kernels: the forward pass keeps x and the per-group mean and rstd only (the composite op by op
 * keeps x-hat, the affine output and the sigmoid, three tensors of x's size per norm), and the backward pass
 * recomputes x-hat (and for SiLU the affine output) from them. Peak memory of a VAE decoder's backward pass at 512 px
 * is bound by these norms (bench/RESULTS.md); every step frees its input as it goes (`pipe`).
 *   forward:  xhat = (x - mean) rstd,  y = xhat w + b,  out = act(y)
 *   backward: g = dy act'(y) w,  dx = rstd (g - mean(g) - xhat mean(g xhat))   (means over the normalised axes)
 */
function leanNormAffine(x: tf.Tensor, o: NormOptions): tf.Tensor {
  const { weight: w, bias: b, eps } = o;
  const silu = (o.act ?? 'none') === 'silu';
  const c = x.shape[x.rank - 1];
  const axes = o.groups === null ? [x.rank - 1] : [1, 3];
  // [B, ..., C] -> [B, N, G, C/G] for GroupNorm (statistics per item and group); LayerNorm keeps x's shape
  const grouped = (t: tf.Tensor) => (o.groups === null ? t : t.reshape([x.shape[0], -1, o.groups, c / o.groups]));
  const xhatOf = (xs: tf.Tensor, mean: tf.Tensor, rstd: tf.Tensor) => tf.mul(tf.sub(grouped(xs), mean), rstd).reshape(x.shape); // back to x's shape
  const affine = [...(w ? [(t: tf.Tensor) => tf.mul(t, w)] : []), ...(b ? [(t: tf.Tensor) => tf.add(t, b)] : [])];
  const f = withGrad<[tf.Tensor]>((xx, save) => {
    const { mean, rstd } = tf.tidy(() => {
      const g = grouped(xx);
      const m = tf.mean(g, axes, true);
      return { mean: m, rstd: tf.rsqrt(tf.add(tf.mean(tf.square(tf.sub(g, m)), axes, true), eps)) };
    });
    save([xx, mean, rstd]);
    const value = pipe(xx, [(t) => xhatOf(t, mean, rstd), ...affine, ...(silu ? [(t: tf.Tensor) => tf.mul(t, tf.sigmoid(t))] : [])]);
    return {
      value,
      gradFunc: (dy: tf.Tensor, [xs, m, rs]: tf.Tensor[]) => {
        // Each step makes its result, then frees what no later step reads: at most three tensors of x's size besides
        // dy and x are alive at once (the largest part of a VAE decoder's backward peak at 512 px is this pass).
        // g = dy act'(y) w, the gradient at xhat, owned unless it is dy. SiLU'(y) = s (1 + y (1 - s)), s = sigmoid(y),
        // is taken as (1 + y sn) (1 - sn) with sn = sigmoid(-y) = 1 - s: y is freed before s is made.
        let g = dy;
        if (silu) {
          const y = pipe(xs, [(t) => xhatOf(t, m, rs), ...affine]);
          const sn = then(() => tf.sigmoid(tf.neg(y)));
          const ysn = then(() => tf.mul(y, sn), y);
          const c = then(() => tf.add(ysn, 1), ysn);
          const s = then(() => tf.sub(1, sn), sn);
          const cs = then(() => tf.mul(c, s), c, s);
          g = then(() => tf.mul(cs, dy), cs);
          if (w) g = then(() => tf.mul(g, w), g);
        } else if (w) g = tf.mul(dy, w);
        // dx = rstd (g - mean(g) - xhat mean(g xhat))
        const xhat = tf.tidy(() => xhatOf(xs, m, rs));
        const gg = grouped(g); // a view of g (g itself for LayerNorm)
        const { m1, m2 } = tf.tidy(() => ({ m1: tf.mean(gg, axes, true), m2: tf.mean(tf.mul(gg, grouped(xhat)), axes, true) }));
        const xm = then(() => tf.mul(grouped(xhat), m2), xhat);
        const owned = g === dy ? (gg === dy ? [] : [gg]) : [gg, g];
        const d = then(() => tf.sub(gg, xm), xm, ...owned);
        const dc = then(() => tf.sub(d, m1), d, m1);
        return then(() => tf.mul(dc, rs).reshape(x.shape), dc, m2); // [B, N, G, C/G] -> x's shape
      },
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

/** The composite of standardize, the affine ops and the activation, op by op (tfjs differentiates every part). */
function compositeNormAffine(x: tf.Tensor, o: NormOptions): tf.Tensor {
  const c = x.shape[x.rank - 1];
  return tf.tidy(() => {
    let y: tf.Tensor;
    if (o.groups === null) y = standardize(x, [x.rank - 1], o.eps);
    else {
      const g = x.reshape([x.shape[0], -1, o.groups, c / o.groups]); // [B, ..., C] -> [B, N, G, C/G]
      y = standardize(g, [1, 3], o.eps).reshape(x.shape); // [B, N, G, C/G] -> x's shape
    }
    if (o.weight) y = tf.mul(y, o.weight);
    if (o.bias) y = tf.add(y, o.bias);
    return (o.act ?? 'none') === 'silu' ? silu(y) : y;
  });
}

/**
 * GroupNorm / LayerNorm, affine, then the activation. With frozen weights: on WebGPU two or three kernels each way
 * (./webgpu-norm.ts; op by op with RENO_WEBGPU_FUSED=off, the programs the fused ones are compared with), on the CPU
 * backends one op (leanNormAffine). With a trainable weight or bias: the composite, so that tfjs differentiates the
 * weight and bias too.
 */
export function normAffine(x: tf.Tensor, o: NormOptions): tf.Tensor {
  const act = o.act ?? 'none';
  const c = x.shape[x.rank - 1];
  const G = o.groups ?? 1;
  if (isTrainable(o.weight) || isTrainable(o.bias)) return compositeNormAffine(x, o);
  if (tf.getBackend() !== 'webgpu') return leanNormAffine(x, o);
  if (!fusedKernels()) return compositeNormAffine(x, o);
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
