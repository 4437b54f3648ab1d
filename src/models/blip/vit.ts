// BLIP's vision tower: the timm-style ViT of ImageReward models/BLIP/vit.py (VisionTransformer, Block, Attention, Mlp;
// timm.models.vision_transformer.PatchEmbed). Pre-LN blocks, packed qkv with bias, exact GELU, LayerNorm eps 1e-6, a
// class token and learned absolute positions, and a final LayerNorm over every token. No pre-norm before the blocks.
// Images are NHWC inside reno; parameter names are the state_dict's under `blip.visual_encoder.`.
import * as tf from '../../runtime/tf.js';
import { DataError } from '../../errors.js';
import { Conv2d, LayerNorm, Linear } from '../../nn/layers.js';
import { Module, Param } from '../../nn/module.js';
import { attention, gelu } from '../../nn/ops.js';
import type { BlipVitConfig } from './config.js';

/** timm PatchEmbed: a patch x patch convolution with stride patch (with bias), then the grid flattened row-major. */
export class PatchEmbed extends Module {
  proj: Conv2d;
  constructor(readonly c: BlipVitConfig) {
    super();
    this.proj = new Conv2d(c.inChannels, c.embedDim, c.patchSize, c.patchSize, 0, true);
  }

  /** x [B, H, W, C] -> [B, (H/p)(W/p), D] */
  forward(x: tf.Tensor4D): tf.Tensor3D {
    return tf.tidy(() => {
      const y = this.proj.forward(x); // [B, H/p, W/p, D]
      const [b, gh, gw, d] = y.shape;
      return y.reshape([b, gh * gw, d]) as tf.Tensor3D; // [B, gh, gw, D] -> [B, gh*gw, D] (torch flatten(2).transpose(1, 2))
    });
  }
}

/** vit.py Attention: qkv packed as (3, heads, head_dim) along the output axis, softmax(q k^T * head_dim^-0.5) v, proj. */
export class VitAttention extends Module {
  qkv: Linear;
  proj: Linear;
  constructor(
    dim: number,
    readonly heads: number,
    qkvBias: boolean,
  ) {
    super();
    this.qkv = new Linear(dim, 3 * dim, qkvBias);
    this.proj = new Linear(dim, dim);
  }

  /** x [B, N, D] -> [B, N, D] */
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      // upstream: reshape(B, N, 3, heads, head_dim): the first D outputs are q (head-major), then k, then v
      const [q, k, v] = tf.split(this.qkv.forward(x), 3, -1); // [B, N, 3D] -> 3 x [B, N, D]
      return this.proj.forward(attention(q, k, v, this.heads));
    });
  }
}

/** vit.py Mlp: fc1 -> GELU (exact, nn.GELU) -> fc2. */
export class VitMlp extends Module {
  fc1: Linear;
  fc2: Linear;
  constructor(dim: number, hidden: number) {
    super();
    this.fc1 = new Linear(dim, hidden);
    this.fc2 = new Linear(hidden, dim);
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.fc2.forward(gelu(this.fc1.forward(x))));
  }
}

/** vit.py Block: x + attn(norm1 x), then x + mlp(norm2 x) (drop_path is the identity at eval). */
export class VitBlock extends Module {
  norm1: LayerNorm;
  attn: VitAttention;
  norm2: LayerNorm;
  mlp: VitMlp;
  constructor(c: BlipVitConfig) {
    super();
    this.norm1 = new LayerNorm(c.embedDim, c.layerNormEps);
    this.attn = new VitAttention(c.embedDim, c.numHeads, c.qkvBias);
    this.norm2 = new LayerNorm(c.embedDim, c.layerNormEps);
    this.mlp = new VitMlp(c.embedDim, c.mlpHidden);
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const h = tf.add(x, this.attn.forward(this.norm1.forward(x)));
      return tf.add(h, this.mlp.forward(this.norm2.forward(h)));
    });
  }
}

/** vit.py VisionTransformer (keys patch_embed.proj.*, cls_token, pos_embed, blocks.N.*, norm.*). */
export class BlipVisionTransformer extends Module {
  patch_embed: PatchEmbed;
  cls_token: Param;
  pos_embed: Param;
  blocks: VitBlock[];
  norm: LayerNorm;
  constructor(readonly config: BlipVitConfig) {
    super();
    const c = config;
    if (c.embedDim % c.numHeads !== 0) throw new DataError(`ViT width ${c.embedDim} is not divisible by ${c.numHeads} heads`);
    const grid = c.imageSize / c.patchSize;
    this.patch_embed = new PatchEmbed(c);
    this.cls_token = new Param([1, 1, c.embedDim]);
    this.pos_embed = new Param([1, grid * grid + 1, c.embedDim]);
    this.blocks = Array.from({ length: c.depth }, () => new VitBlock(c));
    this.norm = new LayerNorm(c.embedDim, c.layerNormEps);
  }

  /** Image tokens before the blocks: [cls, patches] + pos_embed. x [B, H, W, C] normalised -> [B, 1 + N, D]. */
  embed(x: tf.Tensor4D): tf.Tensor3D {
    const { imageSize, inChannels } = this.config;
    const [, h, w, ch] = x.shape;
    // timm's PatchEmbed asserts the configured input size (strict_img_size)
    if (h !== imageSize || w !== imageSize || ch !== inChannels)
      throw new DataError(`BLIP ViT expects [B, ${imageSize}, ${imageSize}, ${inChannels}] images, got [${x.shape.join(', ')}]`);
    return tf.tidy(() => {
      const patches = this.patch_embed.forward(x); // [B, N, D]
      const [b, n, d] = patches.shape;
      const cls = tf.tile(this.cls_token.v, [b, 1, 1]); // [1, 1, D] -> [B, 1, D]
      const tokens = tf.concat([cls, patches], 1); // [B, 1 + N, D]
      const pos = tf.slice(this.pos_embed.v, [0, 0, 0], [1, n + 1, d]); // pos_embed[:, :1+N]
      return tf.add(tokens, pos) as tf.Tensor3D;
    });
  }

  /** x [B, H, W, C] (CLIP-normalised) -> image_embeds [B, 1 + N, D] after the final LayerNorm. */
  forward(x: tf.Tensor4D): tf.Tensor3D {
    let h: tf.Tensor = this.embed(x);
    for (const block of this.blocks) {
      const next = block.forward(h);
      h.dispose();
      h = next;
    }
    const out = this.norm.forward(h) as tf.Tensor3D;
    h.dispose();
    return out;
  }
}
