// diffusers attention modules, NHWC: Attention (models/attention_processor.py, AttnProcessor2_0), GEGLU and
// FeedForward (models/activations.py, attention.py), BasicTransformerBlock and Transformer2DModel
// (models/attention.py, models/transformers/transformer_2d.py, continuous input).
import * as tf from '../../runtime/tf.js';
import { Conv2d, GroupNorm, LayerNorm, Linear } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';
import { attention, geglu } from '../../nn/ops.js';
import type { ConstantConditioning } from './conditioning.js';

export class Attention extends Module {
  group_norm: GroupNorm | null;
  to_q: Linear;
  to_k: Linear;
  to_v: Linear;
  to_out: [Linear];
  /** The UNet's cache of values made from a constant context (./conditioning.ts); null elsewhere. */
  conditioning: ConstantConditioning | null = null;
  constructor(
    queryDim: number,
    readonly heads: number,
    headDim: number,
    opts: { crossDim?: number; bias?: boolean; groupNorm?: { groups: number; eps: number } } = {},
  ) {
    super();
    const inner = heads * headDim;
    const kvDim = opts.crossDim ?? queryDim;
    this.group_norm = opts.groupNorm ? new GroupNorm(opts.groupNorm.groups, queryDim, opts.groupNorm.eps) : null;
    this.to_q = new Linear(queryDim, inner, opts.bias ?? false);
    this.to_k = new Linear(kvDim, inner, opts.bias ?? false);
    this.to_v = new Linear(kvDim, inner, opts.bias ?? false);
    this.to_out = [new Linear(inner, queryDim, true)];
  }

  /** x [B, L, C]; ctx [B, Lk, Ck] for cross-attention (self-attention when absent). */
  forward(x: tf.Tensor, ctx?: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const h = this.group_norm ? this.group_norm.forward(x) : x;
      const q = this.to_q.forward(h);
      if (ctx && this.conditioning?.isConstant(ctx)) {
        // keys and values of a constant context: made once per prompt, and no gradient for them
        const [k, v] = this.conditioning.of(this, () => [this.to_k.forward(ctx), this.to_v.forward(ctx)]);
        return this.to_out[0].forward(attention(q, k, v, this.heads, { constantKV: true }));
      }
      const kv = ctx ?? h;
      const o = attention(q, this.to_k.forward(kv), this.to_v.forward(kv), this.heads);
      return this.to_out[0].forward(o);
    });
  }
}

/** GEGLU: proj to 2*inner, value = first half, gate = second half, out = value * gelu(gate). */
export class GEGLU extends Module {
  proj: Linear;
  constructor(
    dim: number,
    readonly inner: number,
  ) {
    super();
    this.proj = new Linear(dim, inner * 2);
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => geglu(this.proj.forward(x))); // [..., 2 inner] -> [..., inner]
  }
}

export class FeedForward extends Module {
  net: [GEGLU, null, Linear]; // net.1 is Dropout (no weights)
  constructor(dim: number, mult = 4) {
    super();
    this.net = [new GEGLU(dim, dim * mult), null, new Linear(dim * mult, dim)];
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.net[2].forward(this.net[0].forward(x)));
  }
}

export class BasicTransformerBlock extends Module {
  norm1: LayerNorm;
  attn1: Attention;
  norm2: LayerNorm;
  attn2: Attention;
  norm3: LayerNorm;
  ff: FeedForward;
  constructor(dim: number, heads: number, headDim: number, crossDim: number) {
    super();
    this.norm1 = new LayerNorm(dim, 1e-5);
    this.attn1 = new Attention(dim, heads, headDim);
    this.norm2 = new LayerNorm(dim, 1e-5);
    this.attn2 = new Attention(dim, heads, headDim, { crossDim });
    this.norm3 = new LayerNorm(dim, 1e-5);
    this.ff = new FeedForward(dim);
  }

  forward(x: tf.Tensor, ctx: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      let h = tf.add(x, this.attn1.forward(this.norm1.forward(x)));
      h = tf.add(h, this.attn2.forward(this.norm2.forward(h), ctx));
      return tf.add(h, this.ff.forward(this.norm3.forward(h)));
    });
  }
}

export class Transformer2DModel extends Module {
  norm: GroupNorm;
  proj_in: Linear | Conv2d;
  transformer_blocks: BasicTransformerBlock[];
  proj_out: Linear | Conv2d;
  constructor(
    channels: number,
    heads: number,
    crossDim: number,
    layers: number,
    groups: number,
    readonly linearProjection: boolean,
  ) {
    super();
    const headDim = channels / heads;
    this.norm = new GroupNorm(groups, channels, 1e-6);
    this.proj_in = linearProjection ? new Linear(channels, channels) : new Conv2d(channels, channels, 1);
    this.transformer_blocks = Array.from({ length: layers }, () => new BasicTransformerBlock(channels, heads, headDim, crossDim));
    this.proj_out = linearProjection ? new Linear(channels, channels) : new Conv2d(channels, channels, 1);
  }

  /** x [B, H, W, C], ctx [B, Lk, Ck]. */
  forward(x: tf.Tensor4D, ctx: tf.Tensor): tf.Tensor4D {
    return tf.tidy(() => {
      const [b, h, w, c] = x.shape;
      let y: tf.Tensor = this.norm.forward(x);
      if (!this.linearProjection) y = (this.proj_in as Conv2d).forward(y as tf.Tensor4D);
      y = y.reshape([b, h * w, c]); // [B, H, W, C] -> [B, HW, C] (same token order as diffusers' permute+reshape)
      if (this.linearProjection) y = (this.proj_in as Linear).forward(y);
      for (const blk of this.transformer_blocks) y = blk.forward(y, ctx);
      if (this.linearProjection) y = (this.proj_out as Linear).forward(y);
      y = y.reshape([b, h, w, c]); // [B, HW, C] -> [B, H, W, C]
      if (!this.linearProjection) y = (this.proj_out as Conv2d).forward(y as tf.Tensor4D);
      return tf.add(y, x);
    });
  }
}
