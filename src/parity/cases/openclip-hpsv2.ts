// Parity case `openclip_hpsv2`: open_clip's CLIP with HPSv2's naming and checkpoint format. The fixture folder holds
// open_clip_config.json and the same weights twice, as a torch.save zip of {'state_dict': ...} (the layout of
// HPS_v2.1_compressed.pt) and as safetensors; every weights file present is checked as its own group
// (openclip_hpsv2/pt/..., openclip_hpsv2/safetensors/...). Sizes come from the config and the arrays.
import * as tf from '../../runtime/tf.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readJsonFile } from '../../config/json.js';
import { DataError } from '../../errors.js';
import { OPEN_CLIP_CONFIG_FILE, openClipConfig } from '../../models/openclip/config.js';
import { l2Normalize, loadOpenClip, type OpenClipModel } from '../../models/openclip/model.js';
import { nchwValues, nhwcTensor, tensorOf, values } from '../tensors.js';
import { check, npy, type Check, type ParityCase, type ParityContext } from '../types.js';

const WEIGHTS = /\.(pt|pth|bin|safetensors)$/i;

/** The weights files of the case folder, with the group name each one's checks get (its extension). */
export function openClipWeightFiles(dir: string): { group: string; file: string }[] {
  const files = fs
    .readdirSync(dir)
    .filter((f) => WEIGHTS.test(f) && fs.statSync(path.join(dir, f)).isFile())
    .sort();
  if (files.length === 0) throw new DataError(`${dir}: no weights file (*.pt, *.pth, *.bin or *.safetensors)`);
  const ext = (f: string) => path.extname(f).slice(1).toLowerCase();
  // one group per extension; two files with the same extension are told apart by their full names
  return files.map((f) => ({ group: files.filter((g) => ext(g) === ext(f)).length > 1 ? f : ext(f), file: path.join(dir, f) }));
}

/** sum_i <img_i, txt_i> over the first min(B, N) pairs: the HPS score of each matching (image, prompt) pair. */
function hpsPairSum(imageFeatures: tf.Tensor, textFeatures: tf.Tensor): tf.Scalar {
  return tf.tidy(() => {
    const k = Math.min(imageFeatures.shape[0], textFeatures.shape[0]);
    const a = tf.slice(imageFeatures, [0, 0], [k, -1]);
    const b = tf.slice(textFeatures, [0, 0], [k, -1]);
    return tf.sum(tf.mul(a, b));
  });
}

async function runOne(m: OpenClipModel, dir: string, group: string, ctx: ParityContext): Promise<Check[]> {
  const name = (t: string) => `openclip_hpsv2/${group}/${t}`;
  const image = nhwcTensor(npy(dir, 'image'));
  const ids = tensorOf(npy(dir, 'text'), 'int32') as tf.Tensor2D;
  const vis = m.encodeImageFull(image);
  const txt = m.encodeText(ids);
  const out = tf.tidy(() => {
    const img = l2Normalize(vis.features);
    const text = l2Normalize(txt.features);
    const scale = tf.exp(m.logit_scale.v);
    const hps = tf.matMul(img, text, false, true); // [B, E] x [N, E]^T -> [B, N]
    return { img, text, scale, hps, logits: tf.mul(scale, hps) };
  });
  // d/d(image) of the HPS pair sum; the text side is constant (ReNO computes it once per prompt)
  const grad = tf.tidy(() => tf.grad((x: tf.Tensor) => hpsPairSum(l2Normalize(m.encodeImage(x as tf.Tensor4D)), out.text))(image));
  const checks: Check[] = [
    check(name('visual_ln_post'), await values(vis.tokens), npy(dir, 'visual_ln_post').data, 'output', ctx),
    check(name('text_ln_final'), await values(txt.tokens), npy(dir, 'text_ln_final').data, 'output', ctx),
    check(name('image_features_raw'), await values(vis.features), npy(dir, 'image_features_raw').data, 'output', ctx),
    check(name('text_features_raw'), await values(txt.features), npy(dir, 'text_features_raw').data, 'output', ctx),
    check(name('image_features'), await values(out.img), npy(dir, 'image_features').data, 'output', ctx),
    check(name('text_features'), await values(out.text), npy(dir, 'text_features').data, 'output', ctx),
    check(name('logit_scale_exp'), await values(out.scale), npy(dir, 'logit_scale_exp').data, 'output', ctx),
    check(name('logits_per_image'), await values(out.logits), npy(dir, 'logits_per_image').data, 'output', ctx),
    check(name('hps_logits'), await values(out.hps), npy(dir, 'hps_logits').data, 'output', ctx),
    check(name('grad_image_of_hps_pair_sum'), await nchwValues(grad), npy(dir, 'grad_image_of_hps_pair_sum').data, 'gradient', ctx),
  ];
  tf.dispose([image, ids, vis.tokens, vis.features, txt.tokens, txt.features, out.img, out.text, out.scale, out.hps, out.logits, grad]);
  return checks;
}

export const openclipHpsv2Case: ParityCase = {
  name: 'openclip_hpsv2',
  async run(dir, ctx) {
    const cfgFile = path.join(dir, OPEN_CLIP_CONFIG_FILE);
    const config = openClipConfig(readJsonFile(cfgFile, 'open_clip model config'), cfgFile);
    const checks: Check[] = [];
    for (const { group, file } of openClipWeightFiles(dir)) {
      const { model } = loadOpenClip(file, config);
      try {
        checks.push(...(await runOne(model, dir, group, ctx)));
      } finally {
        model.dispose();
      }
    }
    return checks;
  },
};
