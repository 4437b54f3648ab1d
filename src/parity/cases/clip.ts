// Parity case "clip": transformers' CLIPModel (both towers, projections, logit scale) on the fixture's token ids,
// attention mask and NCHW pixel values. Sizes come from config.json and the arrays.
import * as tf from '../../runtime/tf.js';
import { loadClipModel } from '../../models/clip/load.js';
import { nhwcTensor, tensorOf, values } from '../tensors.js';
import { check, type Check, type ParityCase } from '../types.js';
import { readFixtureNpy as npy } from './preprocess.js';

export const clipCase: ParityCase = {
  name: 'clip',
  async run(dir, ctx) {
    const m = loadClipModel(dir);
    const ids = tensorOf(npy(dir, 'input_ids'), 'int32') as tf.Tensor2D;
    const mask = tensorOf(npy(dir, 'attention_mask'), 'int32') as tf.Tensor2D;
    const pixels = nhwcTensor(npy(dir, 'pixel_values'));
    const out = m.forward(ids, mask, pixels);
    const pairs: [string, tf.Tensor][] = [
      ['text_last_hidden_state', out.text.lastHiddenState],
      ['vision_last_hidden_state', out.vision.lastHiddenState],
      ['vision_pooler_output', out.vision.pooled],
      ['text_embeds', out.textEmbeds],
      ['image_embeds', out.imageEmbeds],
      ['logits_per_image', out.logitsPerImage],
    ];
    const checks: Check[] = [];
    for (const [name, t] of pairs) checks.push(check(`clip/${name}`, await values(t), npy(dir, name).data, 'output', ctx));
    // the reward path: getImageFeatures / getTextFeatures give the same (unnormalised) projections
    const feats = tf.tidy(() => {
      const img = m.getImageFeatures(pixels);
      const txt = m.getTextFeatures(ids, mask);
      const unit = (x: tf.Tensor) => tf.div(x, tf.norm(x, 2, -1, true));
      return tf.concat([unit(img), unit(txt)], 0);
    });
    const ref = new Float32Array([...npy(dir, 'image_embeds').data, ...npy(dir, 'text_embeds').data]);
    checks.push(check('clip/get_image_features+get_text_features (normalised)', await values(feats), ref, 'output', ctx));
    tf.dispose([
      ids,
      mask,
      pixels,
      feats,
      out.text.lastHiddenState,
      out.text.pooled,
      out.vision.lastHiddenState,
      out.vision.pooled,
      out.textEmbeds,
      out.imageEmbeds,
      out.logitsPerImage,
    ]);
    m.dispose();
    return checks;
  },
};
