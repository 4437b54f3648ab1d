// CLIPModel (transformers models/clip/modeling_clip.py: CLIPModel.get_text_features, get_image_features, forward):
// both towers, their bias-free projections into the shared embedding space and the learned logit scale.
// Keys: text_model.*, vision_model.*, text_projection.weight, visual_projection.weight, logit_scale.
import * as tf from '../../runtime/tf.js';
import { Linear } from '../../nn/layers.js';
import { Module, Param } from '../../nn/module.js';
import { l2Normalize } from '../../nn/ops.js';
import type { ClipConfig } from './config.js';
import { ClipTextTransformer, type ClipTextOutput } from './text.js';
import { ClipVisionTransformer, type ClipVisionOutput } from './vision.js';

export interface ClipModelOutput {
  text: ClipTextOutput;
  vision: ClipVisionOutput;
  /** L2-normalised projections [B, P] */
  textEmbeds: tf.Tensor2D;
  imageEmbeds: tf.Tensor2D;
  /** exp(logit_scale) * image_embeds . text_embeds^T: [B_img, B_txt] */
  logitsPerImage: tf.Tensor2D;
}

export class ClipModel extends Module {
  text_model: ClipTextTransformer;
  vision_model: ClipVisionTransformer;
  visual_projection: Linear;
  text_projection: Linear;
  logit_scale: Param;
  constructor(readonly config: ClipConfig) {
    super();
    const c = config;
    this.text_model = new ClipTextTransformer(c.text);
    this.vision_model = new ClipVisionTransformer(c.vision);
    this.visual_projection = new Linear(c.vision.hiddenSize, c.projectionDim, false);
    this.text_projection = new Linear(c.text.hiddenSize, c.projectionDim, false);
    this.logit_scale = new Param([]);
  }

  /** exp(logit_scale) as a number (read once per prompt, not differentiated). */
  logitScale(): number {
    return Math.exp(this.logit_scale.v.dataSync()[0]);
  }

  /** text_projection(pooled text state): ids/mask [B, L] -> [B, P] (not normalised). */
  getTextFeatures(ids: tf.Tensor2D, attentionMask?: tf.Tensor2D): tf.Tensor2D {
    const out = this.text_model.forward(ids, attentionMask);
    const feats = this.text_projection.forward(out.pooled) as tf.Tensor2D;
    tf.dispose([out.lastHiddenState, out.pooled]);
    return feats;
  }

  /** visual_projection(post_layernorm(CLS)): CLIP-normalised NHWC pixels [B, S, S, C] -> [B, P] (not normalised). */
  getImageFeatures(pixels: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => this.visual_projection.forward(this.vision_model.forward(pixels).pooled) as tf.Tensor2D);
  }

  /** CLIPModel.forward: both towers, normalised embeddings and logits_per_image. */
  forward(ids: tf.Tensor2D, attentionMask: tf.Tensor2D | undefined, pixels: tf.Tensor4D): ClipModelOutput {
    const text = this.text_model.forward(ids, attentionMask);
    const vision = this.vision_model.forward(pixels);
    const rest = tf.tidy(() => {
      const textEmbeds = l2Normalize(this.text_projection.forward(text.pooled)) as tf.Tensor2D;
      const imageEmbeds = l2Normalize(this.visual_projection.forward(vision.pooled)) as tf.Tensor2D;
      const logitsPerImage = tf.mul(tf.matMul(imageEmbeds, textEmbeds, false, true), tf.exp(this.logit_scale.v)) as tf.Tensor2D; // [Bi, Bt]
      return { textEmbeds, imageEmbeds, logitsPerImage };
    });
    return { text, vision, ...rest };
  }
}
