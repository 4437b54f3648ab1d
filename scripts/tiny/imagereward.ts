// The tiny ImageReward: the real file layout (THUDM/ImageReward/{ImageReward.pt, med_config.json} and
// google-bert/bert-base-uncased/vocab.txt) with a small random BLIP ViT, med BERT and MLP head. ImageReward.pt is a
// torch.save zip (fp16 storages) holding the same keys as the released state dict (vision_proj / text_proj included,
// the int64 position_ids buffer left out). The ViT keeps the real input geometry (224 px, 16 px patches, 64-wide
// heads) so it reads ReNO's shared 224 CLIP view; its width and depth are small.
//
// vocab.txt: the real bert-base-uncased vocabulary (30522 lines) is not available offline, so this writes a small
// WordPiece vocabulary with the special tokens at their bert-base-uncased ids ([PAD] 0, [unused0..98] 1-99,
// [UNK] 100, [CLS] 101, [SEP] 102, [MASK] 103), then ASCII punctuation, digits and letters, a few hundred common
// lowercase words, and ## continuations (every letter and digit, so any ASCII word tokenizes without [UNK]).
// The text encoder's vocab_size is that vocabulary + [DEC] + [ENC] (BLIP's init_tokenizer adds them).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { imageRewardConfig, ImageRewardModel } from '../../src/models/blip/image-reward.js';
import { Linear } from '../../src/nn/layers.js';
import { Module } from '../../src/nn/module.js';
import { MemorySource } from '../../src/weights/source.js';
import { randomStateDict } from '../../src/weights/random.js';
import { SEED, writeJson } from './common.js';
import { writeTorchZip } from './torch-zip-writer.js';

const WORDS = `a an the of and or in on at to with from by for over under near behind above below between into
is are was be has have this that these those it its his her their my your our one two three four five many some
all no not very more most small big large little tiny huge tall short long old new young red orange yellow green
blue purple pink brown black white gray grey gold silver dark light bright colorful beautiful pretty cute happy
sad angry calm quiet sunny rainy snowy cloudy foggy misty golden glowing shiny wooden stone glass metal paper
cat dog bird fish horse cow sheep lion tiger bear fox wolf rabbit mouse owl eagle dragon unicorn robot monster
man woman boy girl child baby person people king queen knight wizard witch princess astronaut soldier farmer
house home castle tower city town village street road bridge river lake sea ocean beach island mountain hill
forest tree trees flower flowers garden field grass sky cloud clouds sun moon star stars night day morning
evening sunset sunrise rain snow fire water ice wind storm light shadow space planet earth world car train ship
boat plane bicycle book table chair window door room kitchen bed lamp cup bottle apple banana cake bread pizza
food coffee tea hat dress shirt shoes painting photo photograph portrait picture drawing sketch illustration art
style digital oil watercolor realistic detailed highly render rendering cinematic lighting background scene
view close up wide angle high quality resolution masterpiece anime cartoon fantasy futuristic ancient vintage
modern abstract surreal epic dramatic soft sharp focus trending sitting standing walking running flying eating
playing holding wearing looking reading dancing swimming sleeping`
  .split(/\s+/)
  .filter(Boolean);

const SUFFIXES = ['s', 'es', 'ed', 'ing', 'er', 'est', 'ly', 'y', 'ness', 'ful', 'less', 'tion'];

/** The tiny vocab.txt lines (id = line number). */
export function tinyBertVocab(): string[] {
  const v = ['[PAD]'];
  for (let i = 0; i < 99; i++) v.push(`[unused${i}]`);
  v.push('[UNK]', '[CLS]', '[SEP]', '[MASK]');
  for (let c = 33; c < 127; c++) {
    const ch = String.fromCharCode(c);
    if (ch >= 'A' && ch <= 'Z') continue; // uncased
    v.push(ch);
  }
  for (const w of WORDS) if (!v.includes(w)) v.push(w);
  for (const s of SUFFIXES) v.push(`##${s}`);
  for (let c = 0; c < 26; c++) v.push(`##${String.fromCharCode(97 + c)}`);
  for (let d = 0; d < 10; d++) v.push(`##${d}`);
  return v;
}

/** BLIP adds [DEC] (bos) and [ENC] to the BERT vocabulary. */
const BLIP_ADDED_TOKENS = 2;

export function tinyMedConfig(vocabLines: number): Record<string, unknown> {
  return {
    architectures: ['BertModel'],
    attention_probs_dropout_prob: 0.1,
    hidden_act: 'gelu',
    hidden_dropout_prob: 0.1,
    hidden_size: 32,
    initializer_range: 0.02,
    intermediate_size: 64,
    layer_norm_eps: 1e-12,
    max_position_embeddings: 40,
    model_type: 'bert',
    num_attention_heads: 2,
    num_hidden_layers: 2,
    pad_token_id: 0,
    type_vocab_size: 2,
    vocab_size: vocabLines + BLIP_ADDED_TOKENS,
    encoder_width: 64,
    add_cross_attention: true,
    _reno_note: 'tiny smoke-test preset with random weights, written by scripts/make-tiny-preset.ts',
  };
}

/** The tiny ViT: 224 px, 16 px patches (197 tokens), width 64 (one 64-wide head), 2 blocks, mlp 4x. */
export const TINY_VIT = {
  imageSize: 224,
  patchSize: 16,
  inChannels: 3,
  embedDim: 64,
  depth: 2,
  numHeads: 1,
  mlpHidden: 256,
  qkvBias: true,
  layerNormEps: 1e-6,
};

/** ImageReward.py MLP(hidden): Linear(h,1024) Dropout Linear(1024,128) Dropout Linear(128,64) Dropout Linear(64,16) Linear(16,1). */
function mlpSpec(hidden: number) {
  const dims = [hidden, 1024, 128, 64, 16, 1];
  const index = [0, 2, 4, 6, 7];
  return index.map((i, k) => ({ index: i, inDim: dims[k], outDim: dims[k + 1] }));
}

export function writeTinyImageReward(root: string): void {
  const vocab = tinyBertVocab();
  const tokDir = path.join(root, 'google-bert', 'bert-base-uncased');
  fs.mkdirSync(tokDir, { recursive: true });
  fs.writeFileSync(path.join(tokDir, 'vocab.txt'), vocab.join('\n') + '\n');

  const dir = path.join(root, 'THUDM', 'ImageReward');
  const med = tinyMedConfig(vocab.length);
  writeJson(path.join(dir, 'med_config.json'), med);
  // sizes of the head come from the checkpoint: a shape-only source of the MLP keys is enough to build the config
  const shapes = new Map(
    mlpSpec(med.hidden_size as number).map((l) => [`mlp.layers.${l.index}.weight`, { shape: [l.outDim, l.inDim], data: new Float32Array(0) }]),
  );
  const model = new ImageRewardModel(imageRewardConfig(new MemorySource(shapes), med, 'tiny med_config.json', TINY_VIT));
  const sd = randomStateDict(model, SEED + 40);
  // present in the released file, unused by the score (blip_pretrain.py vision_proj / text_proj, embed_dim 256)
  const extra = randomStateDict(new ProjOnly(TINY_VIT.embedDim, med.hidden_size as number), SEED + 41, { prefix: 'blip.' });
  for (const [k, v] of extra) sd.set(k, v);
  writeTorchZip(path.join(dir, 'ImageReward.pt'), sd, { dtype: 'F16', root: 'ImageReward' });
}

/** blip_pretrain.py's vision_proj / text_proj alone (to write their keys). */
class ProjOnly extends Module {
  vision_proj: Linear;
  text_proj: Linear;
  constructor(visionWidth: number, textWidth: number) {
    super();
    this.vision_proj = new Linear(visionWidth, 256);
    this.text_proj = new Linear(textWidth, 256);
  }
}
