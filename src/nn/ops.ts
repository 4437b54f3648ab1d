// Stateless ops shared by every model: activations, convolution and attention. Backend-specific fast paths live
// here only, so models read the same on every backend.
import * as tf from '../runtime/tf.js';
import { chunkedAttention, withGrad } from './attention.js';
import { fusedKernels } from '../runtime/fused.js';
import { elementwise, flipFilter, geglu as gegluProgram, type ElementwiseOp } from '../runtime/webgpu/elementwise.js';
import { matMulTiled, tiledConv2d, tiledConvFits } from '../runtime/webgpu/gemm.js';
import { winogradConv2d, winogradFits } from '../runtime/webgpu/winograd.js';
import { flashAttention, flashFits } from '../runtime/webgpu/flash.js';
import '../runtime/gradients.js'; // device-side Sum/Mean gradients (no CPU-filled ones tensors), shape-only saves
import '../runtime/backprop.js'; // a backward pass that frees each gradient once used
import { Param } from './module.js';
import { hostValues, overBindingLimit } from '../runtime/webgpu/bindings.js';
import { DeviceLimitError } from '../errors.js';

const SQRT1_2 = Math.SQRT1_2;

/**
 * Exact GELU, x Phi(x) with Phi(x) = 0.5 (1 + erf(x / sqrt 2)) (torch.nn.functional.gelu, approximate='none').
 * Its own gradient, Phi(x) + x phi(x) from the saved Phi: a handful of kernels instead of tfjs' op-by-op
 * composite (activations are a good part of the kernels a backward pass issues; see src/nn/norm.ts).
 */
export function gelu(x: tf.Tensor): tf.Tensor {
  if (fusedKernels()) return fusedActivation(x, 'geluForward', 'geluBackward', 0);
  const f = withGrad<[tf.Tensor]>((xx, save) => {
    const cdf = tf.tidy(() => tf.mul(tf.add(tf.erf(tf.mul(xx, SQRT1_2)), 1), 0.5));
    save([xx, cdf]);
    return {
      value: tf.mul(xx, cdf),
      gradFunc: (dy: tf.Tensor, [xs, c]: tf.Tensor[]) =>
        tf.tidy(() => {
          const pdf = tf.mul(tf.exp(tf.mul(tf.square(xs), -0.5)), INV_SQRT_2PI); // phi(x)
          return tf.mul(dy, tf.add(c, tf.mul(xs, pdf)));
        }),
    };
  });
  return f(x);
}

const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/** An activation as one WebGPU program forward and one backward, from the saved x alone (./webgpu-elementwise.ts). */
function fusedActivation(x: tf.Tensor, forward: ElementwiseOp, backward: ElementwiseOp, a: number): tf.Tensor {
  const f = withGrad<[tf.Tensor]>((xx, save) => {
    save([xx]);
    return { value: elementwise(forward, xx, undefined, a), gradFunc: (dy: tf.Tensor, [xs]: tf.Tensor[]) => elementwise(backward, xs, dy, a) };
  });
  return f(x);
}

/** x sigmoid(a x) with its own gradient: s + a x s (1 - s), from the saved a x and s. */
function xSigmoid(x: tf.Tensor, a: number): tf.Tensor {
  if (fusedKernels()) return fusedActivation(x, 'xSigmoidForward', 'xSigmoidBackward', a);
  const f = withGrad<[tf.Tensor]>((xx, save) => {
    const ax = a === 1 ? xx : tf.mul(xx, a);
    const sg = tf.sigmoid(ax);
    save([ax, sg]);
    return {
      value: tf.mul(xx, sg),
      gradFunc: (dy: tf.Tensor, [axs, s]: tf.Tensor[]) => tf.tidy(() => tf.mul(dy, tf.add(s, tf.mul(tf.mul(axs, s), tf.sub(1, s))))),
    };
  });
  return f(x);
}

/**
 * GEGLU (diffusers GEGLU after its proj): u [..., 2F] = [value | gate] -> value * gelu(gate) [..., F]. One program
 * each way on WebGPU (./webgpu-elementwise.ts), from the saved u alone.
 */
export function geglu(u: tf.Tensor): tf.Tensor {
  if (!fusedKernels()) {
    return tf.tidy(() => {
      const [value, gate] = tf.split(u, 2, -1);
      return tf.mul(value, gelu(gate));
    });
  }
  const f = withGrad<[tf.Tensor]>((uu, save) => {
    save([uu]);
    return { value: gegluProgram(uu), gradFunc: (dy: tf.Tensor, [us]: tf.Tensor[]) => gegluProgram(us, dy) };
  });
  return f(u);
}

/** GELU with the tanh approximation (approximate='tanh', "gelu_pytorch_tanh"). */
export function geluTanh(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const inner = tf.mul(tf.add(x, tf.mul(tf.pow(x, 3), 0.044715)), Math.sqrt(2 / Math.PI));
    return tf.mul(tf.mul(x, 0.5), tf.add(tf.tanh(inner), 1));
  });
}

/** QuickGELU, x sigmoid(1.702 x) (OpenAI CLIP). */
export function quickGelu(x: tf.Tensor): tf.Tensor {
  return xSigmoid(x, 1.702);
}

/** SiLU, x sigmoid(x) (torch.nn.functional.silu). */
export function silu(x: tf.Tensor): tf.Tensor {
  return xSigmoid(x, 1);
}

/** An activation by its Hugging Face config name. */
export function activation(name: string): (x: tf.Tensor) => tf.Tensor {
  switch (name) {
    case 'gelu':
      return gelu;
    case 'quick_gelu':
      return quickGelu;
    case 'gelu_pytorch_tanh':
    case 'gelu_new':
      return geluTanh;
    case 'silu':
    case 'swish':
      return silu;
    case 'relu':
      return tf.relu;
    default:
      throw new Error(`unknown activation ${name}`);
  }
}

/** A tensor that training updates (gradients must reach it): the fast paths here are for frozen weights only. */
export const isTrainable = (t: tf.Tensor | Param | null) => {
  const v = t instanceof Param ? t.value : t;
  return v instanceof tf.Variable && v.trainable;
};

/**
 * A weight as a tensor or as its Param. A Param stored as float16 (./module.ts setHalfWeights) is unpacked by each
 * `weightOf` (inside the caller's tidy), so the forward pass and the gradient unpack it where they use it and no
 * float32 copy outlives either.
 */
export type Weight = tf.Tensor | Param;
const weightOf = (w: Weight): tf.Tensor => (w instanceof Param ? w.v : w);
const shapeOf = (w: Weight): number[] => (w instanceof Param ? w.tfShape : w.shape);

/**
 * 2-D convolution, NHWC input, [kh, kw, in, out] filter, symmetric zero padding `pad` on H and W (PyTorch's), plus an
 * optional per-channel bias. For frozen filters and stride 1 the input gradient is computed as a forward convolution
 * of the output gradient with the filter flipped spatially and in/out swapped (exact; wasm's Conv2DBackpropInput
 * kernel is much slower than its forward conv: bench/RESULTS.md, "CPU kernels"); other strides take Conv2DBackpropInput.
 * No gradient flows to a frozen filter or bias. On WebGPU the bias is added inside the convolution's program (tfjs'
 * FusedConv2D): one dispatch fewer; 3x3 stride-1 convs of large enough images run by Winograd (./webgpu-winograd.ts,
 * both ways), others by reno's tiled program where switched on (./webgpu-gemm.ts). A trainable filter or bias takes
 * tf.conv2d and tfjs' gradients.
 */
export function conv2d(x: tf.Tensor4D, weight: Weight, stride: number, pad: number, bias: tf.Tensor | null = null): tf.Tensor4D {
  const padding = (p: number): 'valid' | [[number, number], [number, number], [number, number], [number, number]] =>
    p === 0
      ? 'valid'
      : [
          [0, 0],
          [p, p],
          [p, p],
          [0, 0],
        ];
  const wShape = shapeOf(weight);
  const [kh, kw] = wShape;
  if (isTrainable(weight) || isTrainable(bias))
    return tf.tidy(() => {
      const w = weightOf(weight) as tf.Tensor4D;
      return (bias === null ? tf.conv2d(x, w, stride, padding(pad)) : tf.add(tf.conv2d(x, w, stride, padding(pad)), bias)) as tf.Tensor4D;
    });
  // the forward program, chosen once: reno's Winograd or tiled program where switched on and fitting
  // (./webgpu-winograd.ts, ./webgpu-gemm.ts), tfjs' fused conv on WebGPU (all three add the bias), else tfjs' conv
  const path = winogradFits(x.shape, wShape, stride, pad)
    ? 'winograd'
    : tiledConvFits(x.shape, wShape, stride, pad)
      ? 'tiled'
      : fusedKernels() && bias !== null
        ? 'fused'
        : 'plain';
  const f = withGrad<[tf.Tensor]>((xx, save) => {
    save([]);
    const x4 = xx as tf.Tensor4D;
    const w = weightOf(weight) as tf.Tensor4D;
    return {
      value:
        path === 'winograd'
          ? winogradConv2d(x4, w, pad, bias)
          : path === 'tiled'
            ? tiledConv2d(x4, w, stride, pad, bias)
            : path === 'fused'
              ? tf.fused.conv2d({ x: x4, filter: w, strides: stride, pad: padding(pad), bias: bias! })
              : tf.conv2d(x4, w, stride, padding(pad)),
      gradFunc: (dy: tf.Tensor) =>
        tf.tidy(() => {
          // a host weight (wasm) is flipped in JS, not by tfjs' Reverse and Transpose kernels
          const host = stride === 1 && kh === kw && weight instanceof Param ? weight.flippedHost() : null;
          if (host) return tf.conv2d(dy as tf.Tensor4D, host, 1, padding(kh - 1 - pad));
          const w = weightOf(weight) as tf.Tensor4D;
          // tfjs' own gradient of a strided conv (Conv2DBackpropInput); its fused conv's gradient would also compute
          // the filter's and the bias' gradients, needed or not
          if (stride !== 1 || kh !== kw)
            return tf.conv2dTranspose(dy as tf.Tensor4D, w, xx.shape as [number, number, number, number], stride, padding(pad));
          // Winograd transforms the flipped filter as it reads it
          if (winogradFits(dy.shape, [kh, kw, w.shape[3], w.shape[2]], 1, kh - 1 - pad))
            return winogradConv2d(dy as tf.Tensor4D, w, kh - 1 - pad, null, true);
          const flipped = fusedKernels() ? flipFilter(w) : (tf.transpose(tf.reverse(w, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D); // [kh, kw, out, in]
          if (tiledConvFits(dy.shape, flipped.shape, 1, kh - 1 - pad)) return tiledConv2d(dy as tf.Tensor4D, flipped, 1, kh - 1 - pad, null);
          return tf.conv2d(dy as tf.Tensor4D, flipped, 1, padding(kh - 1 - pad));
        }),
    };
  });
  return tf.tidy(() => {
    const y = f(x) as tf.Tensor4D;
    return bias === null || path !== 'plain' ? y : (tf.add(y, bias) as tf.Tensor4D);
  });
}

/**
 * x [N, in] times a weight [in, out], plus an optional bias [out]. For a frozen weight the input gradient dy W^T is
 * a plain matMul with an explicitly transposed W (wasm's matMul is much slower with a transpose flag: bench/RESULTS.md, "CPU kernels"); on WebGPU it
 * takes the transpose flag instead (one dispatch and no copy of W), and the forward pass adds the bias inside the
 * product's program (tfjs' FusedMatMul). A trainable weight or bias takes tf.matMul and tfjs' gradients.
 */
export function matMulWeight(x: tf.Tensor2D, weight: Weight, bias: tf.Tensor | null = null): tf.Tensor2D {
  if (isTrainable(weight) || isTrainable(bias))
    return tf.tidy(() => {
      const w = weightOf(weight) as tf.Tensor2D;
      return (bias === null ? tf.matMul(x, w) : tf.add(tf.matMul(x, w), bias)) as tf.Tensor2D;
    });
  const gpu = fusedKernels();
  const f = withGrad<[tf.Tensor]>((xx, save) => {
    save([]);
    const w = weightOf(weight) as tf.Tensor2D;
    return {
      // on WebGPU reno's tiled program where it is switched on and fits (./webgpu-gemm.ts), else tfjs' (fused) matMul
      value: gpu ? matMulTiled(xx as tf.Tensor2D, w, false, false, bias) : tf.matMul(xx as tf.Tensor2D, w),
      gradFunc: (dy: tf.Tensor) =>
        tf.tidy(() => {
          const wt = weightOf(weight) as tf.Tensor2D;
          return gpu ? matMulTiled(dy as tf.Tensor2D, wt, false, true) : tf.matMul(dy as tf.Tensor2D, tf.transpose(wt) as tf.Tensor2D);
        }),
    };
  });
  return tf.tidy(() => {
    const y = f(x) as tf.Tensor2D;
    return bias === null || gpu ? y : (tf.add(y, bias) as tf.Tensor2D);
  });
}

/**
 * Multi-head scaled dot-product attention. q [B, Lq, H*D], k/v [B, Lk, H*D] -> [B, Lq, H*D].
 * `mask` (optional) is added to the scores and broadcasts to [B, H, Lq, Lk] (0 = keep, large negative = drop).
 * Query-chunked with its own gradient (./attention.ts): memory linear in tokens, plain 2-D matMuls only. On WebGPU
 * an unmasked attention takes the flash programs instead (./webgpu-flash.ts: one program forward, no score matrix).
 */
export function attention(
  q: tf.Tensor,
  k: tf.Tensor,
  v: tf.Tensor,
  heads: number,
  opts: { scale?: number; mask?: tf.Tensor; constantKV?: boolean } = {},
): tf.Tensor {
  const c = q.shape[q.shape.length - 1];
  if (flashFits(c, heads, opts.mask !== undefined))
    return flashAttention(q, k, v, heads, opts.scale ?? 1 / Math.sqrt(c / heads), opts.constantKV === true);
  return chunkedAttention(q, k, v, heads, opts);
}

/** Causal mask [1, 1, L, L]: 0 on and below the diagonal, -inf-like above. */
export function causalMask(l: number): tf.Tensor {
  const m = new Float32Array(l * l);
  for (let i = 0; i < l; i++) for (let j = i + 1; j < l; j++) m[i * l + j] = -1e9;
  return tf.tensor(m, [1, 1, l, l]);
}

/** Additive mask [B, 1, 1, L] from a 0/1 key mask [B, L]. */
export function keyPaddingMask(mask01: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const [b, l] = mask01.shape as [number, number];
    return tf.mul(tf.sub(1, mask01.toFloat()), -1e9).reshape([b, 1, 1, l]);
  });
}

/** Nearest-neighbour 2x upsampling on NHWC (a pure pixel repeat, F.interpolate(scale_factor=2, mode="nearest")). */
export function upsampleNearest2x(x: tf.Tensor4D): tf.Tensor4D {
  return tf.tidy(() => {
    // Two rank-4 concats (tile's gradient stops at rank 4, and concat's gradient is a slice on every backend).
    const [b, h, w, c] = x.shape;
    const cols = x.reshape([b * h, w, 1, c]); // [BH, W, 1, C]
    const wide = tf.concat([cols, cols], 2).reshape([b, h, 1, 2 * w * c]); // [BH, W, 2, C] -> [B, H, 1, 2W*C]
    return tf.concat([wide, wide], 2).reshape([b, 2 * h, 2 * w, c]); // [B, H, 2, 2W*C] -> [B, 2H, 2W, C]
  });
}

/**
 * Rows of an embedding table: table [V, D], ids int [...] -> [..., D] (torch.nn.functional.embedding). On WebGPU a
 * table over the adapter's binding limit (CLIP's 49408 x 1024 token embeddings are 202 MB, lavapipe binds 128 MiB)
 * cannot be bound by any program, so its rows are copied on the host instead: such a table is only ever read here,
 * so it stays in host memory, off the device (src/runtime/webgpu/bindings.ts). No gradient flows to the table (frozen).
 */
export function embeddingLookup(table: tf.Tensor, ids: tf.Tensor): tf.Tensor {
  if (!overBindingLimit(table)) return tf.gather(table, ids.dtype === 'int32' ? ids : ids.toInt());
  const rows = hostValues(table);
  const idx = hostValues(ids);
  if (!rows || !idx) {
    throw new DeviceLimitError(
      `an embedding table of shape [${table.shape}] is over this adapter's binding limit and ${rows ? 'its ids are' : 'it is'} already on the device; ` +
        'make the table (and the ids) from host values and use it only for lookups',
    );
  }
  const [v, d] = table.shape;
  const out = new Float32Array(idx.length * d);
  for (let i = 0; i < idx.length; i++) {
    const id = idx[i];
    if (!(id >= 0 && id < v)) throw new RangeError(`embedding id ${id} outside the table's ${v} rows`);
    out.set((rows as Float32Array).subarray(id * d, id * d + d), i * d);
  }
  return tf.tensor(out, [...ids.shape, d]);
}

/** x / ||x|| over the last axis (F.normalize(dim=-1); ReNO BaseRewardLoss.process_features). With `guardZero`, the
 * norm is floored at 1e-12 (F.normalize's eps), so a zero vector maps to 0 as improved-aesthetic-predictor's
 * normalized() (l2[l2 == 0] = 1) does; any other vector is unchanged. (A tf.where on norm == 0 would put Equal, which
 * has no gradient, on the tape.) */
export function l2Normalize(x: tf.Tensor, guardZero = false): tf.Tensor {
  return tf.tidy(() => {
    const norm = tf.sqrt(tf.sum(tf.square(x), -1, true)); // [..., 1]
    return tf.div(x, guardZero ? tf.maximum(norm, 1e-12) : norm);
  });
}
