// A second fixture for the 'idefics3' parity case with other sizes than the upstream one: 3 vision heads of 8,
// 1 vision layer, 48 px images with patch 8 (6 x 6 patches) and scale factor 3, text head_dim 6 with 6 query and
// 2 key/value heads (head_dim * heads != hidden), the 4.x config spelling (text_config.rope_theta), a tied lm_head
// absent from the file, and batch 2: row 0 with 3 images, row 1 shorter (right padded) with 2 real images and one
// all-zero padding image. The references are computed by reno on the cpu backend (like ./second-layout.ts); the
// runner is then run on another backend, which shows the case reads every size from the fixture.
import * as tf from '../../src/runtime/tf.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { useBackend } from '../../src/runtime/backend.js';
import { idefics3Config } from '../../src/models/idefics3/config.js';
import { EMBED_KEY, Idefics3ForConditionalGeneration, loadIdefics3Weights } from '../../src/models/idefics3/model.js';
import { gaussian } from '../../src/optimize/noise.js';
import { nchwToNhwc, nhwcToNchw } from '../../src/weights/layout.js';
import { writeNpy } from '../../src/weights/npy.js';
import { randomStateDict } from '../../src/weights/random.js';
import { writeSafetensors } from '../../src/weights/safetensors.js';
import { MemorySource } from '../../src/weights/source.js';

export const CONFIG = {
  architectures: ['Idefics3ForConditionalGeneration'],
  model_type: 'idefics3',
  image_token_id: 89,
  scale_factor: 3,
  tie_word_embeddings: true,
  text_config: {
    model_type: 'llama',
    vocab_size: 90,
    hidden_size: 30,
    intermediate_size: 50,
    num_hidden_layers: 2,
    num_attention_heads: 6,
    num_key_value_heads: 2,
    head_dim: 6,
    hidden_act: 'silu',
    rms_norm_eps: 1e-6,
    rope_theta: 5000.0,
    max_position_embeddings: 256,
  },
  vision_config: {
    hidden_size: 24,
    intermediate_size: 40,
    num_hidden_layers: 1,
    num_attention_heads: 3,
    image_size: 48,
    patch_size: 8,
    hidden_act: 'gelu_pytorch_tanh',
    layer_norm_eps: 1e-6,
  },
};
const SPECIAL = { pad: 0, bos: 1, fake_image: 86, global_img: 87, image: 89, yes: 40, no: 41 };

function npyOut(dir: string, name: string, shape: number[], data: Float32Array | Int32Array): void {
  fs.mkdirSync(path.join(dir, 'io'), { recursive: true });
  writeNpy(path.join(dir, 'io', `${name}.npy`), shape, data);
}

/** Row ids: bos, text, then per image "t <fake> <global-img> <image>*S <fake>", then text; right padded to `len`. */
function rowIds(images: number, seqLen: number, seed: number, len: number): { ids: number[]; real: number } {
  const g = gaussian(64, seed);
  let k = 0;
  const text = () => 3 + (Math.floor(Math.abs(g[k++ % 64]) * 20) % 70);
  const ids = [SPECIAL.bos, text()];
  for (let i = 0; i < images; i++)
    ids.push(text(), SPECIAL.fake_image, SPECIAL.global_img, ...new Array<number>(seqLen).fill(SPECIAL.image), SPECIAL.fake_image);
  ids.push(text(), text(), text());
  const real = ids.length;
  while (ids.length < len) ids.push(SPECIAL.pad);
  return { ids, real };
}

export async function buildIdefics3SecondLayout(root: string): Promise<void> {
  await useBackend('cpu', { quiet: true });
  const dir = path.join(root, 'idefics3');
  const config = idefics3Config(CONFIG, 'second layout');
  const m = new Idefics3ForConditionalGeneration(config);
  const sd = randomStateDict(m, 11);
  sd.delete('lm_head.weight'); // tied: stored only as embed_tokens, like a tied hub checkpoint
  fs.mkdirSync(path.join(dir, 'model'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'model', 'config.json'), JSON.stringify(CONFIG, null, 1));
  writeSafetensors(path.join(dir, 'model', 'model.safetensors'), sd);
  loadIdefics3Weights(m, new MemorySource(sd));
  if (!sd.has(EMBED_KEY)) throw new Error('embed_tokens missing');

  const s = config.imageSeqLen;
  const r0 = rowIds(3, s, 21, 0);
  const r1 = rowIds(2, s, 22, r0.ids.length);
  const l = r0.ids.length;
  const ids = Int32Array.from([...r0.ids, ...r1.ids]);
  const mask = Int32Array.from([...r0.ids.map((_, i) => (i < r0.real ? 1 : 0)), ...r1.ids.map((_, i) => (i < r1.real ? 1 : 0))]);
  const last = Int32Array.from([r0.real - 1, r1.real - 1]);
  const hw = config.vision.imageSize;
  const nchw = gaussian(2 * 3 * 3 * hw * hw, 23).map((x) => Math.tanh(x));
  nchw.fill(0, (2 * 3 - 1) * 3 * hw * hw); // row 1, image 2: padding
  const pixels = tf.tensor5d(nchwToNhwc(nchw, 6, 3, hw, hw), [2, 3, hw, hw, 3]);
  const idsT = tf.tensor2d(ids, [2, l], 'int32');
  const maskRows = [Array.from(mask.slice(0, l)), Array.from(mask.slice(l))];

  const feats = m.imageFeatures(pixels);
  const embeds = m.inputsEmbeds(idsT, null, feats.imageHidden);
  const { hidden } = m.forwardEmbeds(embeds, { attentionMask: maskRows });
  const score = (h: tf.Tensor3D) => m.logitDiffAt(h, Array.from(last), SPECIAL.yes, SPECIAL.no);
  const gradPixels = tf.grad((x: tf.Tensor) =>
    tf.sum(score(m.forwardEmbeds(m.inputsEmbeds(idsT, x as tf.Tensor5D), { attentionMask: maskRows }).hidden)),
  )(pixels);
  const gradEmbeds = tf.grad((e: tf.Tensor) => tf.sum(score(m.forwardEmbeds(e as tf.Tensor3D, { attentionMask: maskRows }).hidden)))(embeds);
  const d = config.text.hiddenSize;
  const v = config.text.vocabSize;
  const f32 = (t: tf.Tensor) => t.dataSync() as Float32Array;
  npyOut(dir, 'input_ids', [2, l], ids);
  npyOut(dir, 'attention_mask', [2, l], mask);
  npyOut(dir, 'last_index', [2], last);
  npyOut(dir, 'pixel_values', [2, 3, 3, hw, hw], nchw);
  npyOut(dir, 'vision_last_hidden_state', feats.visionHidden.shape, f32(feats.visionHidden));
  npyOut(dir, 'image_hidden_states', feats.imageHidden.shape, f32(feats.imageHidden));
  npyOut(dir, 'inputs_embeds', [2, l, d], f32(embeds));
  tf.tidy(() => {
    npyOut(dir, 'logits', [2, l, v], f32(m.logits(hidden)));
    npyOut(dir, 'last_logits', [2, v], f32(m.logitsAt(hidden, Array.from(last))));
    npyOut(dir, 'score', [2], f32(score(hidden)));
  });
  npyOut(dir, 'grad_pixel_values', [2, 3, 3, hw, hw], nhwcToNchw(f32(gradPixels), 6, hw, hw, 3));
  npyOut(dir, 'grad_inputs_embeds', [2, l, d], f32(gradEmbeds));
  fs.writeFileSync(
    path.join(dir, 'manifest.json'),
    JSON.stringify(
      { fixture: 'idefics3', description: 'reno-made second layout (references by reno on cpu)', special_tokens: SPECIAL, image_seq_len: s },
      null,
      1,
    ),
  );
  tf.dispose([pixels, idsT, feats.visionHidden, feats.imageHidden, embeds, hidden, gradPixels, gradEmbeds]);
  m.dispose();
}
