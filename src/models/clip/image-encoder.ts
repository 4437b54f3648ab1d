// The image half of an HF CLIPModel (vision tower + visual_projection), loadable from a full CLIPModel checkpoint:
// the aesthetic reward's image embedding (rewards/aesthetic.ts).
import * as tf from '../../runtime/tf.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readJsonFile } from '../../config/json.js';
import { WeightsError } from '../../errors.js';
import { Linear } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';
import { loadModule } from '../../weights/load.js';
import { openWeights } from '../../weights/open.js';
import { clipConfig, type ClipVisionConfig } from './config.js';
import { ClipVisionTransformer } from './vision.js';

const CLIP_WEIGHTS = ['model.safetensors', 'model.safetensors.index.json', 'pytorch_model.bin'];

/**
 * The image half of an HF CLIPModel (transformers CLIPVisionModelWithProjection: vision_model + visual_projection),
 * keys named as inside the full CLIPModel checkpoint, so it loads from one while its text keys are skipped.
 */
export class ClipImageEncoder extends Module {
  vision_model: ClipVisionTransformer;
  visual_projection: Linear;
  constructor(readonly config: ClipVisionConfig) {
    super();
    this.vision_model = new ClipVisionTransformer(config);
    this.visual_projection = new Linear(config.hiddenSize, config.projectionDim, false);
  }

  /** get_image_features (= OpenAI encode_image): CLIP-normalised NHWC pixels [B, S, S, 3] -> [B, P]. */
  getImageFeatures(pixels: tf.Tensor4D): tf.Tensor2D {
    return tf.tidy(() => {
      const out = this.vision_model.forward(pixels);
      return this.visual_projection.forward(out.pooled) as tf.Tensor2D;
    });
  }
}

/** Keys of a CLIPModel checkpoint the image encoder does not use (text tower, text projection, logit scale, buffers). */
export const CLIP_TEXT_SIDE = /^(text_model\.|text_projection\.|logit_scale$)|position_ids$/;

/** The image encoder of an HF CLIPModel folder (config.json + model.safetensors or pytorch_model.bin). */
export function loadClipImageEncoder(dir: string): ClipImageEncoder {
  const cfgFile = path.join(dir, 'config.json');
  const config = clipConfig(readJsonFile(cfgFile, 'CLIP config'), cfgFile).vision;
  const file = CLIP_WEIGHTS.map((f) => path.join(dir, f)).find((p) => fs.existsSync(p));
  if (!file) throw new WeightsError(`aesthetic: no CLIP weights in ${dir} (looked for ${CLIP_WEIGHTS.join(', ')})`);
  const model = new ClipImageEncoder(config);
  const source = openWeights(file);
  try {
    loadModule(model, source, { ignore: (k) => CLIP_TEXT_SIDE.test(k) });
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    source.close();
  }
  return model;
}
