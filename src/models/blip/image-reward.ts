// ImageReward (THUDM/ImageReward ImageReward/ImageReward.py: ImageReward, MLP; models/BLIP/blip_pretrain.py
// BLIP_Pretrain): BLIP's ViT encodes the image, the med BERT text encoder reads the prompt while cross-attending to
// the image tokens, and an MLP on the [CLS] feature gives the raw reward, standardised by ImageReward's mean/std.
// This is score_gard()/score() without the PIL path: the image arrives preprocessed (224, CLIP mean/std), NHWC.
import * as tf from '../../runtime/tf.js';
import { readJsonFile, type Json } from '../../config/json.js';
import { ConfigError } from '../../errors.js';
import { Linear } from '../../nn/layers.js';
import { Module, type ModuleArray } from '../../nn/module.js';
import { loadModule } from '../../weights/load.js';
import { openWeights } from '../../weights/open.js';
import type { TensorSource } from '../../weights/source.js';
import { blipVitConfigFromWeights, medConfig, type BertTextConfig, type BlipVitConfig } from './config.js';
import { BertModel, bertMasks, disposeMasks, firstToken, type BertMasks } from './med.js';
import { BlipVisionTransformer } from './vit.js';

/** ImageReward.py: `self.mean`, `self.std` of the raw MLP output on ImageReward's data. */
export const IMAGE_REWARD_MEAN = 0.16717362830052426;
export const IMAGE_REWARD_STD = 1.0333394966054072;

/** One Linear of the head at its nn.Sequential index (the Dropouts between them hold no weights). */
export interface MlpLayer {
  index: number;
  inDim: number;
  outDim: number;
}

export interface ImageRewardConfig {
  vision: BlipVitConfig;
  text: BertTextConfig;
  /** MLP(768): Linear(768,1024) Dropout Linear(1024,128) Dropout Linear(128,64) Dropout Linear(64,16) Linear(16,1). */
  mlp: MlpLayer[];
}

/** The head's Linears as the checkpoint has them: `mlp.layers.<i>.weight` [out, in], chained in index order. */
export function mlpLayersFromWeights(source: TensorSource, prefix = 'mlp.layers.'): MlpLayer[] {
  const re = new RegExp(`^${prefix.replace(/\./g, '\\.')}(\\d+)\\.weight$`);
  const layers: MlpLayer[] = [];
  for (const k of source.keys()) {
    const m = re.exec(k);
    if (!m) continue;
    const [outDim, inDim] = source.info(k)!.shape;
    layers.push({ index: Number(m[1]), inDim, outDim });
  }
  layers.sort((a, b) => a.index - b.index);
  if (layers.length === 0) throw new ConfigError(`${source.path}: no ${prefix}N.weight keys (not an ImageReward checkpoint?)`);
  for (let i = 1; i < layers.length; i++)
    if (layers[i].inDim !== layers[i - 1].outDim)
      throw new ConfigError(
        `${source.path}: ${prefix}${layers[i].index} takes ${layers[i].inDim} inputs but ${prefix}${layers[i - 1].index} gives ${layers[i - 1].outDim}`,
      );
  if (layers.at(-1)!.outDim !== 1) throw new ConfigError(`${source.path}: the last MLP layer must output 1 value, not ${layers.at(-1)!.outDim}`);
  return layers;
}

/**
 * The whole configuration: the ViT read off the checkpoint's shapes (or given, e.g. a fixture's config.vit), the
 * text encoder from med_config.json with encoder_width = the ViT width (blip_pretrain.py), the head from the shapes.
 */
export function imageRewardConfig(source: TensorSource, medJson: Json, medSrc: string, vision?: BlipVitConfig): ImageRewardConfig {
  const v = vision ?? blipVitConfigFromWeights(source, 'blip.visual_encoder.');
  const text = medConfig(medJson, medSrc, v.embedDim);
  if (!text.crossAttention) throw new ConfigError(`${medSrc}: ImageReward's text encoder needs "add_cross_attention": true`);
  const mlp = mlpLayersFromWeights(source);
  if (mlp[0].inDim !== text.hiddenSize)
    throw new ConfigError(`${source.path}: the MLP takes ${mlp[0].inDim} features, the text encoder gives ${text.hiddenSize}`);
  return { vision: v, text, mlp };
}

/** ImageReward.py MLP: the Linears at their Sequential indices, no activations (the ReLUs are commented out). */
export class ImageRewardMlp extends Module {
  layers: ModuleArray<Linear>;
  constructor(spec: MlpLayer[]) {
    super();
    this.layers = [];
    for (const s of spec) this.layers[s.index] = new Linear(s.inDim, s.outDim);
    for (let i = 0; i < this.layers.length; i++) this.layers[i] ??= null; // Dropout: identity at eval
  }

  /** [B, hidden] -> [B, 1] */
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      let h = x;
      for (const layer of this.layers) if (layer) h = layer.forward(h);
      return h;
    });
  }
}

/** blip_pretrain.py BLIP_Pretrain, the parts ImageReward scores with (vision_proj / text_proj are unused). */
export class BlipPretrain extends Module {
  visual_encoder: BlipVisionTransformer;
  text_encoder: BertModel;
  constructor(c: ImageRewardConfig) {
    super();
    this.visual_encoder = new BlipVisionTransformer(c.vision);
    this.text_encoder = new BertModel(c.text, false);
  }
}

export interface ImageRewardOutputs {
  imageEmbeds: tf.Tensor3D; // [B, 1 + N, Dv]
  lastHiddenState: tf.Tensor3D; // [B, L, H]
  clsFeature: tf.Tensor2D; // [B, H]
  mlpRaw: tf.Tensor2D; // [B, 1]
  score: tf.Tensor2D; // [B, 1]
}

/** A tokenized prompt ready for the text encoder: ids [Bt, L] and its additive self-attention mask. */
export interface ImageRewardText {
  ids: tf.Tensor2D;
  masks: BertMasks;
}

/** ImageReward.py ImageReward (keys blip.visual_encoder.*, blip.text_encoder.*, mlp.layers.N.*). */
export class ImageRewardModel extends Module {
  blip: BlipPretrain;
  mlp: ImageRewardMlp;
  constructor(readonly config: ImageRewardConfig) {
    super();
    this.blip = new BlipPretrain(config);
    this.mlp = new ImageRewardMlp(config.mlp);
  }

  /**
   * The text side of score_gard, made once per prompt (and outside any tf.grad: the attention gradient reads the
   * mask in the backward pass). ids / attentionMask [Bt, L] int; Bt = 1 shares the prompt with every image.
   * The image tokens are all attended to (image_atts = ones), so there is no cross-attention mask.
   */
  text(ids: tf.Tensor2D, attentionMask: tf.Tensor2D): ImageRewardText {
    const [b, l] = ids.shape;
    return { ids: ids.clone(), masks: bertMasks(b, l, { attentionMask }) };
  }

  disposeText(t: ImageRewardText): void {
    t.ids.dispose();
    disposeMasks(t.masks);
  }

  /** Every intermediate of score_gard: image [B, S, S, 3] CLIP-normalised, NHWC. */
  forward(image: tf.Tensor4D, text: ImageRewardText): ImageRewardOutputs {
    const imageEmbeds = this.blip.visual_encoder.forward(image);
    const b = image.shape[0];
    const bt = text.ids.shape[0];
    if (bt !== b && bt !== 1) throw new Error(`${bt} prompts for ${b} images`);
    const ids = bt === b ? text.ids : (tf.tile(text.ids, [b, 1]) as tf.Tensor2D); // one prompt for every image
    const { lastHiddenState } = this.blip.text_encoder.forward(ids, { masks: text.masks, encoderHiddenStates: imageEmbeds });
    if (ids !== text.ids) ids.dispose();
    const clsFeature = firstToken(lastHiddenState); // last_hidden_state[:, 0, :]
    const mlpRaw = this.mlp.forward(clsFeature) as tf.Tensor2D;
    const score = tf.tidy(() => tf.div(tf.sub(mlpRaw, IMAGE_REWARD_MEAN), IMAGE_REWARD_STD)) as tf.Tensor2D;
    return { imageEmbeds, lastHiddenState, clsFeature, mlpRaw, score };
  }

  /** The standardised reward [B, 1] (differentiable in the image). */
  score(image: tf.Tensor4D, text: ImageRewardText): tf.Tensor2D {
    const o = this.forward(image, text);
    tf.dispose([o.imageEmbeds, o.lastHiddenState, o.clsFeature, o.mlpRaw]);
    return o.score;
  }
}

/** Keys of ImageReward.pt that the score does not use. */
export function ignoredImageRewardKey(k: string): boolean {
  return k.endsWith('.position_ids') || k.startsWith('blip.vision_proj.') || k.startsWith('blip.text_proj.');
}

/** Load from an open source (strict: every other key must match the model). */
export function loadImageRewardFrom(source: TensorSource, medJson: Json, medSrc: string, vision?: BlipVitConfig): ImageRewardModel {
  const model = new ImageRewardModel(imageRewardConfig(source, medJson, medSrc, vision));
  try {
    loadModule(model, source, { ignore: ignoredImageRewardKey });
  } catch (e) {
    model.dispose(); // the tensors loaded before the failure
    throw e;
  }
  return model;
}

/** Load ImageReward.pt (a torch.save zip, or the same keys as safetensors) with its med_config.json. */
export function loadImageReward(weightsFile: string, medConfigFile: string, vision?: BlipVitConfig): ImageRewardModel {
  const source = openWeights(weightsFile);
  try {
    return loadImageRewardFrom(source, readJsonFile(medConfigFile, 'ImageReward med_config.json'), medConfigFile, vision);
  } finally {
    source.close();
  }
}
