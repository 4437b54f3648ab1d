// open_clip's image tower (open_clip/transformer.py VisionTransformer, pool_type 'tok', no attentional pooling),
// keys under "visual.": conv1 (no bias), class_embedding, positional_embedding, ln_pre, transformer.resblocks.N,
// ln_post, proj. `proj` is a raw nn.Parameter [width, embed_dim] used as `pooled @ proj` (not a Linear: no transpose).
import * as tf from '../../runtime/tf.js';
import { Conv2d, LayerNorm } from '../../nn/layers.js';
import { Module, Param } from '../../nn/module.js';
import type { OpenClipVisionConfig } from './config.js';
import { Transformer, type Act } from './transformer.js';

export interface VisionOutput {
  /** ln_post over every token, CLS first: [B, 1 + grid^2, width]. */
  tokens: tf.Tensor3D;
  /** The CLS token's ln_post output @ proj: [B, embed_dim] (encode_image, not normalised). */
  features: tf.Tensor2D;
}

export class VisionTransformer extends Module {
  conv1: Conv2d;
  class_embedding: Param;
  positional_embedding: Param;
  ln_pre: LayerNorm;
  transformer: Transformer;
  ln_post: LayerNorm;
  proj: Param;
  readonly grid: number;

  constructor(
    readonly config: OpenClipVisionConfig,
    embedDim: number,
    act: Act,
  ) {
    super();
    const c = config;
    this.grid = c.imageSize / c.patchSize;
    this.conv1 = new Conv2d(3, c.width, c.patchSize, c.patchSize, 0, false);
    this.class_embedding = new Param([c.width]);
    this.positional_embedding = new Param([this.grid * this.grid + 1, c.width]);
    this.ln_pre = new LayerNorm(c.width, 1e-5);
    this.transformer = new Transformer(c.width, c.layers, c.heads, c.mlpWidth, act);
    this.ln_post = new LayerNorm(c.width, 1e-5);
    this.proj = new Param([c.width, embedDim]);
  }

  /** x: the preprocessed image, NHWC [B, S, S, 3] with S = image_size. */
  forward(x: tf.Tensor4D): VisionOutput {
    const [b, h, w, ch] = x.shape;
    const s = this.config.imageSize;
    if (h !== s || w !== s || ch !== 3) throw new Error(`open_clip vision tower expects [B, ${s}, ${s}, 3] images, got [${x.shape}]`);
    return tf.tidy(() => {
      const width = this.config.width;
      const patches = this.conv1.forward(x).reshape([b, this.grid * this.grid, width]); // [B, g, g, W] -> [B, g*g, W] (row-major patches, as flatten(2) of NCHW)
      const cls = tf.broadcastTo(this.class_embedding.v.reshape([1, 1, width]), [b, 1, width]); // [W] -> [B, 1, W]
      let t: tf.Tensor = tf.concat([cls, patches], 1); // [B, 1 + g*g, W]
      t = tf.add(t, this.positional_embedding.v);
      t = this.ln_pre.forward(t);
      t = this.transformer.forward(t);
      const tokens = this.ln_post.forward(t) as tf.Tensor3D;
      const pooled = tf.slice(tokens, [0, 0, 0], [b, 1, width]).reshape([b, width]); // CLS: [B, 1, W] -> [B, W]
      const features = tf.matMul(pooled as tf.Tensor2D, this.proj.v as tf.Tensor2D) as tf.Tensor2D; // [B, W] @ [W, E] -> [B, E]
      return { tokens, features };
    });
  }
}
