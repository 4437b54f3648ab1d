// CLIP vision tower (transformers models/clip/modeling_clip.py: CLIPVisionEmbeddings, CLIPVisionTransformer,
// CLIPVisionModel). Used by the CLIP-family rewards (PickScore, CLIP score: OpenCLIP ViT-H/14 in the HF layout,
// exact GELU; the aesthetic reward's OpenAI ViT-L/14, QuickGELU). Images are NHWC, already CLIP-normalised.
import * as tf from '../../runtime/tf.js';
import { Conv2d, Embedding, LayerNorm } from '../../nn/layers.js';
import { Module, Param } from '../../nn/module.js';
import type { ClipVisionConfig } from './config.js';
import { ClipEncoder } from './encoder.js';

/** CLIPVisionEmbeddings: patch conv (stride = kernel = patch, no bias), [CLS] token first, learned positions. */
export class ClipVisionEmbeddings extends Module {
  class_embedding: Param;
  patch_embedding: Conv2d;
  position_embedding: Embedding;
  constructor(readonly config: ClipVisionConfig) {
    super();
    const c = config;
    const patches = (c.imageSize / c.patchSize) ** 2;
    if (!Number.isInteger(patches)) throw new Error(`image_size ${c.imageSize} is not a multiple of patch_size ${c.patchSize}`);
    this.class_embedding = new Param([c.hiddenSize]);
    this.patch_embedding = new Conv2d(c.numChannels, c.hiddenSize, c.patchSize, c.patchSize, 0, false);
    this.position_embedding = new Embedding(patches + 1, c.hiddenSize);
  }

  /** pixels [B, S, S, C] with S = image_size -> [B, 1 + (S/p)^2, D] */
  forward(pixels: tf.Tensor4D): tf.Tensor3D {
    return tf.tidy(() => {
      const { imageSize, hiddenSize: d } = this.config;
      const [b, h, w] = pixels.shape;
      if (h !== imageSize || w !== imageSize) throw new Error(`CLIP vision expects ${imageSize}x${imageSize} pixels, got ${h}x${w}`);
      const grid = this.patch_embedding.forward(pixels); // [B, g, g, D]
      const patches = grid.reshape([b, -1, d]); // [B, g, g, D] -> [B, g*g, D] (row-major, as flatten(2).transpose(1, 2))
      const cls = tf.tile(this.class_embedding.v.reshape([1, 1, d]), [b, 1, 1]); // [D] -> [1, 1, D] -> [B, 1, D]
      return tf.add(tf.concat([cls, patches], 1), this.position_embedding.weight.v) as tf.Tensor3D; // [B, 1 + g*g, D]
    });
  }
}

export interface ClipVisionOutput {
  lastHiddenState: tf.Tensor3D; // [B, 1 + g*g, D]
  /** post_layernorm of the [CLS] state: [B, D] */
  pooled: tf.Tensor2D;
}

/** CLIPVisionTransformer: embeddings -> pre_layrnorm (sic) -> encoder -> post_layernorm on [CLS]. */
export class ClipVisionTransformer extends Module {
  embeddings: ClipVisionEmbeddings;
  pre_layrnorm: LayerNorm;
  encoder: ClipEncoder;
  post_layernorm: LayerNorm;
  constructor(readonly config: ClipVisionConfig) {
    super();
    const c = config;
    this.embeddings = new ClipVisionEmbeddings(c);
    this.pre_layrnorm = new LayerNorm(c.hiddenSize, c.layerNormEps);
    this.encoder = new ClipEncoder(c.numLayers, c.hiddenSize, c.numHeads, c.intermediateSize, c.hiddenAct, c.layerNormEps);
    this.post_layernorm = new LayerNorm(c.hiddenSize, c.layerNormEps);
  }

  /** pixels NHWC [B, S, S, C] (CLIP-normalised). */
  forward(pixels: tf.Tensor4D): ClipVisionOutput {
    return tf.tidy(() => {
      const h = this.pre_layrnorm.forward(this.embeddings.forward(pixels));
      const [last] = this.encoder.forward(h);
      const [b, , d] = last.shape as [number, number, number];
      const cls = tf.slice(last, [0, 0, 0], [b, 1, d]).reshape([b, d]); // [B, 1, D] -> [B, D]
      return { lastHiddenState: last as tf.Tensor3D, pooled: this.post_layernorm.forward(cls) as tf.Tensor2D };
    });
  }
}

/** CLIPVisionModel: the vision tower alone (keys "vision_model.*"). */
export class ClipVisionModel extends Module {
  vision_model: ClipVisionTransformer;
  constructor(readonly config: ClipVisionConfig) {
    super();
    this.vision_model = new ClipVisionTransformer(config);
  }

  forward(pixels: tf.Tensor4D): ClipVisionOutput {
    return this.vision_model.forward(pixels);
  }
}
