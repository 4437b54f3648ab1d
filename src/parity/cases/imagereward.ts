// Parity cases for BLIP's text towers and ImageReward: imagereward (THUDM code: ViT, med BERT with cross-attention,
// MLP head, score and its gradient to the image; once per weight file, torch zip and safetensors), blip_text
// (transformers BlipTextModel with pooler) and blip_text_lm (BlipTextLMHeadModel: logits and the shifted,
// label-smoothed loss). Every size comes from the fixture's config files and arrays.
import * as tf from '../../runtime/tf.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readJsonFile, type Json } from '../../config/json.js';
import { blipVitConfig } from '../../models/blip/config.js';
import { loadImageReward } from '../../models/blip/image-reward.js';
import { loadBlipText, loadBlipTextLm } from '../../models/blip/load.js';
import { nchwValues, nhwcTensor, tensorOf, values } from '../tensors.js';
import { check, npy, type Check, type ParityCase } from '../types.js';

const WEIGHT_EXT = /\.(pt|pth|bin|safetensors)$/;
const has = (dir: string, name: string) => fs.existsSync(path.join(dir, 'io', `${name}.npy`));

export const imagerewardCase: ParityCase = {
  name: 'imagereward',
  async run(dir, ctx) {
    // The released ImageReward has no vision config (blip.py hard-codes 'large'); the fixture's manifest records
    // the tiny ViT it built (config.vit). Without it the ViT is read off the checkpoint's shapes.
    const manifestFile = path.join(dir, 'manifest.json');
    const manifest = fs.existsSync(manifestFile) ? readJsonFile(manifestFile) : {};
    const vitJson = (manifest.config as Json | undefined)?.vit as Json | undefined;
    const vision = vitJson ? blipVitConfig(vitJson, `${manifestFile} config.vit`) : undefined;
    const files = fs
      .readdirSync(dir)
      .filter((f) => WEIGHT_EXT.test(f))
      .sort();
    if (files.length === 0) throw new Error(`no ImageReward weights in ${dir}`);
    const image = nhwcTensor(npy(dir, 'image'));
    const ids = tensorOf(npy(dir, 'input_ids'), 'int32') as tf.Tensor2D;
    const mask = tensorOf(npy(dir, 'attention_mask'), 'int32') as tf.Tensor2D;
    const checks: Check[] = [];
    for (const file of files) {
      const tag = path.extname(file).slice(1);
      const model = loadImageReward(path.join(dir, file), path.join(dir, 'med_config.json'), vision);
      const text = model.text(ids, mask);
      const o = model.forward(image, text);
      const out: [string, tf.Tensor][] = [
        ['image_embeds', o.imageEmbeds],
        ['text_last_hidden_state', o.lastHiddenState],
        ['text_cls_feature', o.clsFeature],
        ['mlp_raw', o.mlpRaw],
        ['score', o.score],
      ];
      for (const [name, t] of out)
        if (has(dir, name)) checks.push(check(`imagereward/${name}/${tag}`, await values(t), npy(dir, name).data, 'output', ctx));
      tf.dispose(out.map(([, t]) => t));
      if (has(dir, 'grad_image')) {
        // d sum(score) / d image, the ReFL-style reward gradient (score_gard), NHWC -> NCHW to compare
        const grad = tf.tidy(() => tf.grad((x: tf.Tensor) => tf.sum(model.score(x as tf.Tensor4D, text)))(image));
        checks.push(check(`imagereward/grad_image/${tag}`, await nchwValues(grad), npy(dir, 'grad_image').data, 'gradient', ctx));
        grad.dispose();
      }
      model.disposeText(text);
      model.dispose();
    }
    tf.dispose([image, ids, mask]);
    return checks;
  },
};

/** transformers BlipTextModel: is_decoder=False (BlipTextModel.forward's default), cross-attention to the given states. */
export const blipTextCase: ParityCase = {
  name: 'blip_text',
  async run(dir, ctx) {
    const model = loadBlipText(dir);
    const ids = tensorOf(npy(dir, 'input_ids'), 'int32') as tf.Tensor2D;
    const mask = tensorOf(npy(dir, 'attention_mask'), 'int32');
    const enc = has(dir, 'encoder_hidden_states') ? tensorOf(npy(dir, 'encoder_hidden_states')) : undefined;
    const o = model.forward(ids, { attentionMask: mask, encoderHiddenStates: enc });
    const checks: Check[] = [
      check('blip_text/last_hidden_state', await values(o.lastHiddenState), npy(dir, 'last_hidden_state').data, 'output', ctx),
    ];
    if (o.pooled && has(dir, 'pooler_output'))
      checks.push(check('blip_text/pooler_output', await values(o.pooled), npy(dir, 'pooler_output').data, 'output', ctx));
    tf.dispose([ids, mask, o.lastHiddenState, ...(enc ? [enc] : []), ...(o.pooled ? [o.pooled] : [])]);
    model.dispose();
    return checks;
  },
};

/** transformers BlipTextLMHeadModel: causal (is_decoder=True), logits and the loss against `labels`. */
export const blipTextLmCase: ParityCase = {
  name: 'blip_text_lm',
  async run(dir, ctx) {
    const model = loadBlipTextLm(dir);
    const ids = tensorOf(npy(dir, 'input_ids'), 'int32') as tf.Tensor2D;
    const mask = tensorOf(npy(dir, 'attention_mask'), 'int32');
    const enc = has(dir, 'encoder_hidden_states') ? tensorOf(npy(dir, 'encoder_hidden_states')) : undefined;
    const labels = has(dir, 'labels') ? npy(dir, 'labels').data : undefined;
    const o = model.forward(ids, { attentionMask: mask, encoderHiddenStates: enc, labels });
    const checks: Check[] = [check('blip_text_lm/logits', await values(o.logits), npy(dir, 'logits').data, 'output', ctx)];
    if (o.loss && has(dir, 'loss')) checks.push(check('blip_text_lm/loss', await values(o.loss), npy(dir, 'loss').data, 'output', ctx));
    tf.dispose([ids, mask, o.logits, ...(enc ? [enc] : []), ...(o.loss ? [o.loss] : [])]);
    model.dispose();
    return checks;
  },
};

export const BLIP_PARITY_CASES: ParityCase[] = [imagerewardCase, blipTextCase, blipTextLmCase];
