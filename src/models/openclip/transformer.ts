// The residual attention transformer shared by open_clip's image and text towers, with open_clip's key names
// (open_clip/transformer.py: Attention / torch.nn.MultiheadAttention with a packed in_proj, ResidualAttentionBlock,
// Transformer). Pre-LN blocks: x + attn(ln_1 x), then x + mlp(ln_2 x); MLP = c_fc -> GELU (or QuickGELU) -> c_proj.
import * as tf from '../../runtime/tf.js';
import { LayerNorm, Linear } from '../../nn/layers.js';
import { Module, Param } from '../../nn/module.js';
import { attention, gelu, matMulWeight, quickGelu } from '../../nn/ops.js';

export type Act = (x: tf.Tensor) => tf.Tensor;

/** nn.GELU (exact erf) for open_clip's default, QuickGELU for `quick_gelu: true` configs. */
export function openClipAct(quick: boolean): Act {
  return quick ? quickGelu : gelu;
}

/**
 * The q, k, v rows of a packed in_proj (torch: `in_proj_weight.chunk(3, dim=0)`, `in_proj_bias.chunk(3)`): `packed`
 * holds [3D, D] (or [3D] for the bias) row-major in PyTorch layout; returns three copies of [D, D] (or [D]).
 */
export function chunkInProj(packed: Float32Array, dim: number): [Float32Array, Float32Array, Float32Array] {
  const per = packed.length / 3;
  if (!Number.isInteger(per) || (per !== dim && per !== dim * dim))
    throw new Error(`packed in_proj of ${packed.length} values is not 3 x [${dim}, ${dim}] or 3 x [${dim}]`);
  return [packed.slice(0, per), packed.slice(per, 2 * per), packed.slice(2 * per)];
}

/**
 * Self-attention with torch.nn.MultiheadAttention's parameters (as open_clip stores them): `in_proj_weight`
 * [3D, D] packs the q, k and v projections by rows. With the 'linear' layout it is held as [D, 3D], so one matmul
 * gives [.., 3D] whose thirds along the last axis are q, k and v (F.linear(x, in_proj_weight).chunk(3, dim=-1)).
 */
export class MultiheadAttention extends Module {
  in_proj_weight: Param;
  in_proj_bias: Param;
  out_proj: Linear;
  constructor(
    readonly dim: number,
    readonly heads: number,
  ) {
    super();
    this.in_proj_weight = new Param([3 * dim, dim], 'linear');
    this.in_proj_bias = new Param([3 * dim]);
    this.out_proj = new Linear(dim, dim);
  }

  /** x [B, L, D]; mask additive, broadcastable to [B, H, L, L]. */
  forward(x: tf.Tensor, mask?: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const [b, l, d] = x.shape as [number, number, number];
      const x2 = x.reshape([b * l, d]); // [B, L, D] -> [B*L, D]
      const qkv = matMulWeight(x2 as tf.Tensor2D, this.in_proj_weight, this.in_proj_bias.v); // [B*L, 3D]
      const [q, k, v] = tf.split(qkv.reshape([b, l, 3 * d]), 3, 2); // [B*L, 3D] -> [B, L, 3D] -> 3 x [B, L, D]
      return this.out_proj.forward(attention(q, k, v, this.heads, { mask }));
    });
  }
}

/** open_clip's MLP block (nn.Sequential c_fc, gelu, c_proj). */
export class Mlp extends Module {
  c_fc: Linear;
  c_proj: Linear;
  constructor(
    dim: number,
    hidden: number,
    private readonly act: Act,
  ) {
    super();
    this.c_fc = new Linear(dim, hidden);
    this.c_proj = new Linear(hidden, dim);
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.c_proj.forward(this.act(this.c_fc.forward(x))));
  }
}

/** open_clip ResidualAttentionBlock (no layer scale: ls_1/ls_2 are Identity when ls_init_value is None). */
export class ResidualAttentionBlock extends Module {
  ln_1: LayerNorm;
  attn: MultiheadAttention;
  ln_2: LayerNorm;
  mlp: Mlp;
  constructor(dim: number, heads: number, mlpWidth: number, act: Act) {
    super();
    this.ln_1 = new LayerNorm(dim, 1e-5);
    this.attn = new MultiheadAttention(dim, heads);
    this.ln_2 = new LayerNorm(dim, 1e-5);
    this.mlp = new Mlp(dim, mlpWidth, act);
  }

  forward(x: tf.Tensor, mask?: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const h = tf.add(x, this.attn.forward(this.ln_1.forward(x), mask));
      return tf.add(h, this.mlp.forward(this.ln_2.forward(h)));
    });
  }
}

/** open_clip Transformer: a stack of resblocks (batch-first, as open_clip >= 2.24 runs it). */
export class Transformer extends Module {
  resblocks: ResidualAttentionBlock[];
  constructor(dim: number, layers: number, heads: number, mlpWidth: number, act: Act) {
    super();
    this.resblocks = Array.from({ length: layers }, () => new ResidualAttentionBlock(dim, heads, mlpWidth, act));
  }

  /** x [B, L, D] -> [B, L, D]; intermediate block outputs are freed as soon as the next one exists. */
  forward(x: tf.Tensor, mask?: tf.Tensor): tf.Tensor {
    let h = x;
    for (const block of this.resblocks) {
      const next = block.forward(h, mask);
      if (h !== x) h.dispose();
      h = next;
    }
    return h === x ? tf.clone(x) : h;
  }
}
