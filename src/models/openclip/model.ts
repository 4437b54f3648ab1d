// open_clip's CLIP (open_clip/model.py CLIP: encode_image, encode_text, forward) with its own state_dict names:
// "visual.*" for the image tower, the text tower's modules at the top level, and `logit_scale` (a scalar Parameter).
// HPSv2 is this model with the ViT-H-14 config; its checkpoint (HPS_v2.1_compressed.pt) is {'state_dict': ...},
// whose wrapper the torch reader strips, so the keys below are read as they are.
import * as tf from '../../runtime/tf.js';
import { Param } from '../../nn/module.js';
import { l2Normalize } from '../../nn/ops.js';
import { loadModule, type LoadReport } from '../../weights/load.js';
import { openWeights } from '../../weights/open.js';
import type { TensorSource } from '../../weights/source.js';
import type { OpenClipConfig } from './config.js';
import { OpenClipTextTower, type TextOutput } from './text.js';
import { openClipAct } from './transformer.js';
import { VisionTransformer, type VisionOutput } from './vision.js';

export { l2Normalize } from '../../nn/ops.js';

export interface ClipOutput {
  /** L2-normalised encode_image: [B, E] */
  imageFeatures: tf.Tensor2D;
  /** L2-normalised encode_text: [N, E] */
  textFeatures: tf.Tensor2D;
  /** logit_scale.exp(), a scalar */
  logitScaleExp: tf.Scalar;
}

export class OpenClipModel extends OpenClipTextTower {
  visual: VisionTransformer;
  logit_scale: Param;

  constructor(readonly config: OpenClipConfig) {
    const act = openClipAct(config.quickGelu);
    super(config.text, config.embedDim, act);
    this.visual = new VisionTransformer(config.vision, config.embedDim, act);
    this.logit_scale = new Param([]);
  }

  /** encode_image(normalize=False), with the ln_post tokens. `image` is preprocessed NHWC [B, S, S, 3]. */
  encodeImageFull(image: tf.Tensor4D): VisionOutput {
    return this.visual.forward(image);
  }

  /** encode_image(normalize=False): [B, E]. */
  encodeImage(image: tf.Tensor4D): tf.Tensor2D {
    const out = this.visual.forward(image);
    out.tokens.dispose();
    return out.features;
  }

  /** CLIP.forward(image, text): normalised features of both sides and logit_scale.exp(). */
  forward(image: tf.Tensor4D, ids: tf.Tensor2D): ClipOutput {
    const img = this.encodeImage(image);
    const txt: TextOutput = this.encodeText(ids);
    txt.tokens.dispose();
    const out = tf.tidy(() => ({
      imageFeatures: l2Normalize(img) as tf.Tensor2D,
      textFeatures: l2Normalize(txt.features) as tf.Tensor2D,
      logitScaleExp: tf.exp(this.logit_scale.v) as tf.Scalar,
    }));
    tf.dispose([img, txt.features]);
    return out;
  }
}

/** Buffers some open_clip versions or converters may leave in a state dict; they hold no weights. */
export const OPEN_CLIP_IGNORED = /(^|\.)attn_mask$/;

/** Strict load of every parameter (image and text towers, logit_scale) from a file or an open source. */
export function loadOpenClip(weights: string | TensorSource, config: OpenClipConfig): { model: OpenClipModel; report: LoadReport } {
  const source = typeof weights === 'string' ? openWeights(weights) : weights;
  const model = new OpenClipModel(config);
  try {
    const report = loadModule(model, source, { ignore: (k) => OPEN_CLIP_IGNORED.test(k) });
    return { model, report };
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    if (typeof weights === 'string') source.close();
  }
}
