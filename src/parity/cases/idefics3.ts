// Parity case for the Idefics3 (SmolVLM) backbone: the fixture's Idefics3ForConditionalGeneration with a
// multi-image prompt (padding images, padded rows), compared stage by stage, then the preference score
// logit[yes] - logit[no] at each row's last real token and its gradients with respect to the pixels and to
// inputs_embeds. Sizes, token ids and the score's ids come from the fixture (model/config.json, manifest.json, io/).
import * as tf from '../../runtime/tf.js';
import * as path from 'node:path';
import { readJsonFile } from '../../config/json.js';
import { loadIdefics3, type Idefics3ForConditionalGeneration } from '../../models/idefics3/model.js';
import { nchwToNhwc, nhwcToNchw } from '../../weights/layout.js';
import { tensorOf, values } from '../tensors.js';
import { check, npy, type Check, type ParityCase } from '../types.js';

/** [B, N, C, H, W] fixture pixels -> NHWC tensor [B, N, H, W, C]. */
function pixelsNhwc(a: { shape: number[]; data: ArrayLike<number> }): tf.Tensor5D {
  const [b, n, c, h, w] = a.shape;
  return tf.tensor5d(nchwToNhwc(Float32Array.from(a.data), b * n, c, h, w), [b, n, h, w, c]);
}

/** The values of [B, L, ...] at the positions whose mask is 1, in order. */
function maskedRows(values: ArrayLike<number>, mask: ArrayLike<number>, width: number): Float32Array {
  const out: number[] = [];
  for (let i = 0; i < mask.length; i++) if (mask[i]) for (let j = 0; j < width; j++) out.push(values[i * width + j]);
  return Float32Array.from(out);
}

/** sum_b (logit[yes] - logit[no]) at each row's last real token, for the given pixels and ids. */
function scoreSum(
  m: Idefics3ForConditionalGeneration,
  ids: tf.Tensor2D,
  mask: number[][],
  last: number[],
  yes: number,
  no: number,
  real: number[],
  idsHost: ArrayLike<number>,
) {
  return (pixels: tf.Tensor5D) => {
    const embeds = m.inputsEmbeds(ids, pixels, undefined, { real, ids: idsHost });
    const { hidden } = m.forwardEmbeds(embeds, { attentionMask: mask });
    return tf.sum(m.logitDiffAt(hidden, last, yes, no));
  };
}

export const idefics3Case: ParityCase = {
  name: 'idefics3',
  async run(dir, ctx) {
    const manifest = readJsonFile(path.join(dir, 'manifest.json'));
    const special = manifest.special_tokens as Record<string, number>;
    const yes = special.yes;
    const no = special.no;
    const m = loadIdefics3(path.join(dir, 'model'));
    const idsNpy = npy(dir, 'input_ids');
    const ids = tensorOf(idsNpy, 'int32') as tf.Tensor2D;
    const [b, l] = ids.shape;
    const maskFlat = npy(dir, 'attention_mask').data;
    const mask = Array.from({ length: b }, (_, i) => Array.from(maskFlat.slice(i * l, (i + 1) * l), Number));
    const last = Array.from(npy(dir, 'last_index').data, Number);
    const pvNpy = npy(dir, 'pixel_values');
    const pixels = pixelsNhwc(pvNpy);
    // real (non-padding) images, found on the host: no device read-back (WebGPU has no synchronous one)
    const [pb, pn] = pvNpy.shape;
    const per = pvNpy.data.length / (pb * pn);
    const realList = Array.from({ length: pb * pn }, (_, i) => i).filter((i) => pvNpy.data.subarray(i * per, (i + 1) * per).some((x) => x !== 0));
    const real = realList.length ? realList : [0];
    const [, n, h, w, c] = pixels.shape;

    const feats = m.imageFeatures(pixels, real);
    const embeds = m.inputsEmbeds(ids, null, feats.imageHidden, { ids: idsNpy.data });
    const { hidden } = m.forwardEmbeds(embeds, { attentionMask: mask });
    const logits = m.logits(hidden);
    const v = m.config.text.vocabSize;
    const lastLogits = m.logitsAt(hidden, last);
    const score = m.logitDiffAt(hidden, last, yes, no);

    // the same score from a cache of the first half of the sequence plus the second half
    const cut = Math.floor(l / 2);
    const headE = tf.slice(embeds, [0, 0, 0], [b, cut, -1]) as tf.Tensor3D;
    const tailE = tf.slice(embeds, [0, cut, 0], [b, l - cut, -1]) as tf.Tensor3D;
    const pre = m.forwardEmbeds(headE, { attentionMask: mask.map((r) => r.slice(0, cut)), returnCache: true });
    const post = m.forwardEmbeds(tailE, { attentionMask: mask.map((r) => r.slice(cut)), past: pre.cache });
    const cachedScore = m.logitDiffAt(
      post.hidden,
      last.map((p) => p - cut),
      yes,
      no,
    );

    const gradPixels = tf.grad((x: tf.Tensor) => scoreSum(m, ids, mask, last, yes, no, real, idsNpy.data)(x as tf.Tensor5D))(pixels);
    const gradEmbeds = tf.grad((e: tf.Tensor) => {
      const out = m.forwardEmbeds(e as tf.Tensor3D, { attentionMask: mask });
      return tf.sum(m.logitDiffAt(out.hidden, last, yes, no));
    })(embeds);

    const checks: Check[] = [
      check('idefics3/vision_last_hidden_state', await values(feats.visionHidden), npy(dir, 'vision_last_hidden_state').data, 'output', ctx),
      check('idefics3/image_hidden_states', await values(feats.imageHidden), npy(dir, 'image_hidden_states').data, 'output', ctx),
      check('idefics3/inputs_embeds', await values(embeds), npy(dir, 'inputs_embeds').data, 'output', ctx),
      check(
        'idefics3/logits (attention_mask 1)',
        maskedRows(await values(logits), maskFlat, v),
        maskedRows(npy(dir, 'logits').data, maskFlat, v),
        'output',
        ctx,
      ),
      check('idefics3/last_logits', await values(lastLogits), npy(dir, 'last_logits').data, 'output', ctx),
      check('idefics3/score', await values(score), npy(dir, 'score').data, 'output', ctx),
      check(`idefics3/score (cache of ${cut} positions)`, await values(cachedScore), npy(dir, 'score').data, 'output', ctx),
      check('idefics3/grad_pixel_values', nhwcToNchw(await values(gradPixels), b * n, h, w, c), npy(dir, 'grad_pixel_values').data, 'gradient', ctx),
      check('idefics3/grad_inputs_embeds', await values(gradEmbeds), npy(dir, 'grad_inputs_embeds').data, 'gradient', ctx),
    ];
    pre.cache?.dispose();
    tf.dispose([ids, pixels, feats.visionHidden, feats.imageHidden, embeds, hidden, logits, lastLogits, score]);
    tf.dispose([headE, tailE, pre.hidden, post.hidden, cachedScore, gradPixels, gradEmbeds]);
    m.dispose();
    return checks;
  },
};
