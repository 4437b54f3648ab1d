// A second fixture root for the BLIP cases with other sizes than the upstream fixtures: imagereward (ViT 48 px,
// 8 px patches, width 20 in 5 heads, 1 block; med BERT 24 wide, 3 heads, 3 layers; a 3-Linear head at indices
// 0, 2, 3; one prompt [1, L] shared by 2 images; weights as torch zip AND safetensors), blip_text and blip_text_lm
// (16 wide, 2 heads, 1 layer, encoder width 12, batch 3). Random weights; references computed by reno on cpu.
import * as tf from '../../src/runtime/tf.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { writeTorchZip } from '../../scripts/tiny/torch-zip-writer.js';
import { useBackend } from '../../src/runtime/backend.js';
import { blipTextConfig, blipVitConfig, medConfig } from '../../src/models/blip/config.js';
import { ImageRewardModel, loadImageReward } from '../../src/models/blip/image-reward.js';
import { BlipTextLMHeadModel } from '../../src/models/blip/lm-head.js';
import { loadBlipText, loadBlipTextLm } from '../../src/models/blip/load.js';
import { BertModel } from '../../src/models/blip/med.js';
import { gaussian } from '../../src/optimize/noise.js';
import { nchwValues, nhwcTensor } from '../../src/parity/tensors.js';
import { writeNpy } from '../../src/weights/npy.js';
import { randomStateDict, type StateDict } from '../../src/weights/random.js';
import { writeSafetensors } from '../../src/weights/safetensors.js';

export const VIT2 = { img_size: 48, patch_size: 8, embed_dim: 20, depth: 1, num_heads: 5 };
export const MED2 = {
  architectures: ['BertModel'],
  hidden_act: 'gelu',
  hidden_size: 24,
  intermediate_size: 40,
  layer_norm_eps: 1e-12,
  max_position_embeddings: 20,
  num_attention_heads: 3,
  num_hidden_layers: 3,
  pad_token_id: 0,
  vocab_size: 50,
  encoder_width: 20,
  add_cross_attention: true,
};
export const TEXT2 = {
  architectures: ['BlipTextModel'],
  hidden_act: 'gelu',
  hidden_size: 16,
  encoder_hidden_size: 12,
  intermediate_size: 20,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  max_position_embeddings: 16,
  is_decoder: true,
  layer_norm_eps: 1e-12,
  vocab_size: 60,
  pad_token_id: 0,
};

const randn = (shape: number[], seed: number) =>
  gaussian(
    shape.reduce((a, b) => a * b, 1),
    seed,
  );

function npyOut(dir: string, name: string, shape: number[], data: Float32Array | Int32Array): void {
  fs.mkdirSync(path.join(dir, 'io'), { recursive: true });
  writeNpy(path.join(dir, 'io', `${name}.npy`), shape, data);
}

function json(file: string, obj: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(obj, null, 1));
}

/** ids [rows, L]: [CLS]-like first id, `n[r]` tokens, a [SEP]-like id, then 0 padding; and the 0/1 mask. */
function tokens(rows: number, l: number, n: number[], vocab: number, seed: number): { ids: Int32Array; mask: Int32Array } {
  const ids = new Int32Array(rows * l);
  const mask = new Int32Array(rows * l);
  const g = gaussian(rows * l, seed);
  for (let r = 0; r < rows; r++)
    for (let j = 0; j < n[r] + 2; j++) {
      ids[r * l + j] = j === 0 ? 1 : j === n[r] + 1 ? 2 : 3 + (Math.floor(Math.abs(g[r * l + j]) * 1000) % (vocab - 3));
      mask[r * l + j] = 1;
    }
  return { ids, mask };
}

async function imagereward(dir: string): Promise<void> {
  const vision = blipVitConfig(VIT2, 'VIT2');
  const mlp = [
    { index: 0, inDim: 24, outDim: 16 },
    { index: 2, inDim: 16, outDim: 8 },
    { index: 3, inDim: 8, outDim: 1 },
  ];
  const sd: StateDict = randomStateDict(new ImageRewardModel({ vision, text: medConfig(MED2, 'MED2', vision.embedDim), mlp }), 31);
  // the unused keys of the released file, which the loader must skip
  sd.set('blip.vision_proj.weight', { shape: [256, 20], data: randn([256, 20], 32) });
  sd.set('blip.text_proj.bias', { shape: [256], data: randn([256], 33) });
  sd.set('blip.text_encoder.embeddings.position_ids', { shape: [1, 20], data: Float32Array.from({ length: 20 }, (_, i) => i) });
  json(path.join(dir, 'manifest.json'), { fixture: 'imagereward', config: { vit: VIT2 } });
  json(path.join(dir, 'med_config.json'), MED2);
  writeSafetensors(path.join(dir, 'ImageReward_small.safetensors'), sd);
  writeTorchZip(path.join(dir, 'ImageReward_small.pt'), sd, { root: 'ImageReward_small' });

  const model = loadImageReward(path.join(dir, 'ImageReward_small.safetensors'), path.join(dir, 'med_config.json'), vision);
  const l = 13;
  const { ids, mask } = tokens(1, l, [7], MED2.vocab_size, 34);
  const image = randn([2, 3, 48, 48], 35);
  const x = nhwcTensor({ shape: [2, 3, 48, 48], dtype: 'float32', data: image });
  const idsT = tf.tensor2d(ids, [1, l], 'int32');
  const maskT = tf.tensor2d(mask, [1, l], 'int32');
  const text = model.text(idsT, maskT);
  const o = model.forward(x, text);
  const grad = tf.grad((t: tf.Tensor) => tf.sum(model.score(t as tf.Tensor4D, text)))(x);
  npyOut(dir, 'image', [2, 3, 48, 48], image);
  npyOut(dir, 'input_ids', [1, l], ids);
  npyOut(dir, 'attention_mask', [1, l], mask);
  npyOut(dir, 'image_embeds', o.imageEmbeds.shape, o.imageEmbeds.dataSync() as Float32Array);
  npyOut(dir, 'text_last_hidden_state', o.lastHiddenState.shape, o.lastHiddenState.dataSync() as Float32Array);
  npyOut(dir, 'text_cls_feature', o.clsFeature.shape, o.clsFeature.dataSync() as Float32Array);
  npyOut(dir, 'mlp_raw', o.mlpRaw.shape, o.mlpRaw.dataSync() as Float32Array);
  npyOut(dir, 'score', o.score.shape, o.score.dataSync() as Float32Array);
  npyOut(dir, 'grad_image', [2, 3, 48, 48], await nchwValues(grad));
  tf.dispose([x, idsT, maskT, grad, o.imageEmbeds, o.lastHiddenState, o.clsFeature, o.mlpRaw, o.score]);
  model.disposeText(text);
  model.dispose();
}

function blipText(dir: string): void {
  const c = blipTextConfig(TEXT2, 'TEXT2');
  json(path.join(dir, 'config.json'), TEXT2);
  writeSafetensors(path.join(dir, 'model.safetensors'), randomStateDict(new BertModel(c, true), 41));
  const model = loadBlipText(dir);
  const l = 9;
  const { ids, mask } = tokens(3, l, [4, 7, 2], TEXT2.vocab_size, 42);
  const enc = randn([3, 5, 12], 43);
  const [idsT, maskT, encT] = [tf.tensor2d(ids, [3, l], 'int32'), tf.tensor2d(mask, [3, l], 'int32'), tf.tensor3d(enc, [3, 5, 12])];
  const o = model.forward(idsT, { attentionMask: maskT, encoderHiddenStates: encT });
  npyOut(dir, 'input_ids', [3, l], ids);
  npyOut(dir, 'attention_mask', [3, l], mask);
  npyOut(dir, 'encoder_hidden_states', [3, 5, 12], enc);
  npyOut(dir, 'last_hidden_state', [3, l, 16], o.lastHiddenState.dataSync() as Float32Array);
  npyOut(dir, 'pooler_output', [3, 16], o.pooled!.dataSync() as Float32Array);
  tf.dispose([idsT, maskT, encT, o.lastHiddenState, o.pooled!]);
  model.dispose();
}

function blipTextLm(dir: string): void {
  const c = blipTextConfig(TEXT2, 'TEXT2');
  json(path.join(dir, 'config.json'), { ...TEXT2, architectures: ['BlipTextLMHeadModel'] });
  writeSafetensors(path.join(dir, 'model.safetensors'), randomStateDict(new BlipTextLMHeadModel(c), 51));
  const model = loadBlipTextLm(dir);
  const l = 9;
  const { ids, mask } = tokens(3, l, [4, 7, 2], TEXT2.vocab_size, 52);
  const labels = Int32Array.from(ids, (v, i) => (mask[i] ? v : -100));
  const enc = randn([3, 5, 12], 53);
  const [idsT, maskT, encT] = [tf.tensor2d(ids, [3, l], 'int32'), tf.tensor2d(mask, [3, l], 'int32'), tf.tensor3d(enc, [3, 5, 12])];
  const o = model.forward(idsT, { attentionMask: maskT, encoderHiddenStates: encT, labels });
  npyOut(dir, 'input_ids', [3, l], ids);
  npyOut(dir, 'attention_mask', [3, l], mask);
  npyOut(dir, 'labels', [3, l], labels);
  npyOut(dir, 'encoder_hidden_states', [3, 5, 12], enc);
  npyOut(dir, 'logits', [3, l, 60], o.logits.dataSync() as Float32Array);
  npyOut(dir, 'loss', [1], o.loss!.dataSync() as Float32Array);
  tf.dispose([idsT, maskT, encT, o.logits, o.loss!]);
  model.dispose();
}

export async function buildBlipSecondLayout(root: string): Promise<void> {
  await useBackend('cpu', { quiet: true });
  await imagereward(path.join(root, 'imagereward'));
  blipText(path.join(root, 'blip_text'));
  blipTextLm(path.join(root, 'blip_text_lm'));
}
