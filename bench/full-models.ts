// Models for the benchmarks: every reward model and the SD-Turbo generator either at the full published
// architecture with random weights (the real files are not needed) or at the tiny preset size (presets/tiny, loaded
// through the rewards' own loaders). The measuring helpers are in ./measure.ts.
// Imports stay clear of sharp (src/image/png.ts, src/run/*): the GPU bundle leaves it out.
import * as tf from '../src/runtime/tf.js';
import * as path from 'node:path';
import { readVaeConfig, schedulerConfig, unetConfig, vaeConfig } from '../src/models/sd-turbo/config.js';
import { loadTextEncoder, loadUnet, loadVae } from '../src/models/sd-turbo/load.js';
import { SdTurboPipeline } from '../generators/sd-turbo/pipeline.js';
import { UNet2DConditionModel } from '../src/models/sd-turbo/unet.js';
import { AutoencoderKL } from '../src/models/sd-turbo/vae.js';
import { AestheticReward, ClipImageEncoder } from '../rewards/aesthetic.js';
import { ClipSimilarityReward } from '../rewards/clip/similarity.js';
import { Hpsv2Reward } from '../rewards/hpsv2.js';
import { ImageReward, IMAGE_REWARD_FILES } from '../rewards/imagereward.js';
import { REWARDS } from '../rewards/index.js';
import type { PreparedReward, Reward, RewardLoadContext, RewardSpec } from '../rewards/types.js';
import { modelPlaces } from '../src/commands/common.js';
import { defaultsFile, readConfigFile } from '../src/config/run-config.js';
import { AestheticHead } from '../src/models/aesthetic-head.js';
import { blipVitConfig, medConfig } from '../src/models/blip/config.js';
import { ImageRewardModel, type MlpLayer } from '../src/models/blip/image-reward.js';
import { clipConfig, clipTextModelConfig } from '../src/models/clip/config.js';
import { ClipModel } from '../src/models/clip/model.js';
import { ClipTextModel } from '../src/models/clip/text.js';
import { builtinOpenClipConfigFile, openClipConfig } from '../src/models/openclip/config.js';
import { OpenClipModel } from '../src/models/openclip/model.js';
import { readJsonFile } from '../src/config/json.js';
import { getModel } from '../src/config/models.js';
import type { Module } from '../src/nn/module.js';
import { ClipTokenizer } from '../src/tokenizers/clip-bpe.js';
import { imageRewardTokenizer } from '../src/tokenizers/wordpiece.js';
import { requireModel } from '../src/weights/hub.js';
import { overBindingLimit } from '../src/runtime/webgpu/bindings.js';
import { SD_TURBO_TEXT_ENCODER, SD_TURBO_UNET, SD_TURBO_VAE } from './sd-turbo-configs.js';

export type Arch = 'tiny' | 'full';
/** The prompt every benchmark prepares. */
export const BENCH_PROMPT = 'a photo of an astronaut riding a horse on the moon';
/**
 * The rewards with a published architecture, from the reward registry: those whose first model is a `reward` entry
 * of configs/models.yaml (the personal reward's is the user's own preference model). A new one needs its case in
 * fullReward and fullRewardBytes below, which say so.
 */
export const REWARD_NAMES: readonly string[] = REWARDS.filter((s) => getModel(s.models[0]).kind === 'reward').map((s) => s.name);
export type RewardName = string;
const SPECS: Record<RewardName, RewardSpec> = Object.fromEntries(REWARDS.map((s) => [s.name, s]));
const noArchitecture = (name: string): never => {
  throw new Error(`bench/full-models.ts builds no full architecture for reward "${name}": add its case to fullReward and fullRewardBytes`);
};

// ---- full architectures (the released configs; SD-Turbo's in sd-turbo-configs.ts) ----------------

/** HF CLIPModel config of laion/CLIP-ViT-H-14-laion2B-s32B-b79K; PickScore_v1 and ReNO's CLIP score use it. */
export const CLIP_H14 = {
  projection_dim: 1024,
  logit_scale_init_value: 2.6592,
  text_config: {
    hidden_act: 'gelu',
    hidden_size: 1024,
    intermediate_size: 4096,
    num_attention_heads: 16,
    num_hidden_layers: 24,
    max_position_embeddings: 77,
    vocab_size: 49408,
    layer_norm_eps: 1e-5,
    eos_token_id: 2,
  },
  vision_config: {
    hidden_act: 'gelu',
    hidden_size: 1280,
    intermediate_size: 5120,
    num_attention_heads: 16,
    num_hidden_layers: 32,
    image_size: 224,
    patch_size: 14,
    num_channels: 3,
    layer_norm_eps: 1e-5,
  },
};

/** openai/clip-vit-large-patch14 (the aesthetic predictor's backbone): vision 1024 / 24 / 16, QuickGELU, proj 768. */
export const CLIP_L14 = {
  projection_dim: 768,
  text_config: { hidden_act: 'quick_gelu', hidden_size: 768, intermediate_size: 3072, num_attention_heads: 12, num_hidden_layers: 12 },
  vision_config: {
    hidden_act: 'quick_gelu',
    hidden_size: 1024,
    intermediate_size: 4096,
    num_attention_heads: 16,
    num_hidden_layers: 24,
    image_size: 224,
    patch_size: 14,
    num_channels: 3,
    layer_norm_eps: 1e-5,
  },
};
export const AESTHETIC_HEAD_SIZES = [768, 1024, 128, 64, 16, 1];

/** ImageReward: BLIP ViT-L/16 (blip.py create_vit 'large') and med_config.json (BERT-base with cross-attention). */
export const BLIP_VIT_L16 = { img_size: 224, patch_size: 16, embed_dim: 1024, depth: 24, num_heads: 16 };
export const MED_CONFIG = {
  vocab_size: 30524,
  hidden_size: 768,
  num_hidden_layers: 12,
  num_attention_heads: 12,
  intermediate_size: 3072,
  max_position_embeddings: 512,
  hidden_act: 'gelu',
  layer_norm_eps: 1e-12,
  add_cross_attention: true,
  encoder_width: 768,
};
/** ImageReward.py MLP(768): the Linears at nn.Sequential indices 0, 2, 4, 6, 7. */
export const IMAGE_REWARD_MLP: MlpLayer[] = [
  { index: 0, inDim: 768, outDim: 1024 },
  { index: 2, inDim: 1024, outDim: 128 },
  { index: 4, inDim: 128, outDim: 64 },
  { index: 6, inDim: 64, outDim: 16 },
  { index: 7, inDim: 16, outDim: 1 },
];

/** stabilityai/sd-turbo scheduler/scheduler_config.json. */
export const SD_TURBO_SCHEDULER = {
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  beta_start: 0.00085,
  num_train_timesteps: 1000,
  prediction_type: 'epsilon',
  steps_offset: 1,
  timestep_spacing: 'trailing',
};

// ---- random weights made where the tensors live -----------------------------------------------------------------

const NORM_WEIGHT = /norm.*\.weight$|ln.*\.weight$|layer_norm.*weight$|LayerNorm\.weight$|\.gamma$/;
const DEVICE_MIN = 1 << 20;

/**
 * Seeded random weights like randomInit (normal, std `scale`; norm weights 1) for the parameters `only` selects.
 * On cpu and wasm each tensor comes from tf.randomNormal (one parameter at a time: never the whole model in JS). On
 * a GPU backend, where tf.randomNormal would fill every value in JS and upload it, a large parameter is made on the
 * device from two short random vectors instead: w[i, j] = scale * sqrt(2) * sin(1000 u_i v_j) (std `scale`),
 * unless it is over the adapter's binding limit (src/runtime/webgpu/bindings.ts).
 */
export function initWeights(module: Module, seed: number, scale = 0.02, only: (name: string) => boolean = () => true): void {
  const onDevice = !['cpu', 'wasm'].includes(tf.getBackend());
  let s = seed * 100_003;
  for (const [name, p] of module.namedParams()) {
    if (!only(name)) continue;
    s += 2;
    const shape = p.tfShape;
    const size = shape.reduce((a, b) => a * b, 1);
    let t: tf.Tensor;
    if (NORM_WEIGHT.test(name)) t = tf.ones(shape);
    // over the binding limit (lavapipe: the text towers' token embeddings) no device program may write it: made in JS
    else if (!onDevice || size < DEVICE_MIN || overBindingLimit({ shape })) t = tf.randomNormal(shape, 0, scale, 'float32', s);
    else {
      const cols = shape[shape.length - 1];
      t = tf.tidy(() => {
        const u = tf.randomNormal([size / cols, 1], 0, 1, 'float32', s);
        const v = tf.randomNormal([1, cols], 0, 1, 'float32', s + 1);
        return tf.reshape(tf.mul(tf.sin(tf.mul(tf.mul(u, v), 1000)), scale * Math.SQRT2), shape); // [rows, cols] -> shape
      });
    }
    p.store(t);
  }
}

/** Free the parameters `only` selects (e.g. a text tower whose output is already computed). */
export function freeWeights(module: Module, only: (name: string) => boolean): void {
  for (const [name, p] of module.namedParams()) {
    if (!only(name)) continue;
    p.clear();
  }
}

/**
 * Bytes of a module's parameters as reno stores them: 4 a value, or with `dtype` fp16 2 a value for frozen conv and
 * Linear weights (Param.store with half weights on; norms, biases and embeddings stay float32).
 */
export function paramBytes(module: Module, dtype: 'fp32' | 'fp16' = 'fp32'): number {
  let n = 0;
  for (const [, p] of module.namedParams()) {
    const size = p.torchShape.reduce((a, b) => a * b, 1);
    n += size * (dtype === 'fp16' && p.layout !== 'none' && !p.opts.trainable ? 2 : 4);
  }
  return n;
}

// ---- the tiny preset ----------------------------------------------------------------------------------------------

/** rewardContext(modelPlaces({preset: 'tiny'})) of src/run/session.ts, without session.ts's image-writer imports. */
export function tinyContext(): RewardLoadContext {
  const places = modelPlaces({ preset: 'tiny' });
  return { locate: (m) => requireModel(getModel(m), places).dir, smokeTest: true };
}

/** The real tokenizers (the CLIP BPE vocabulary; a small BERT vocabulary) from the tiny preset. */
function clipTokenizer(): ClipTokenizer {
  return ClipTokenizer.fromFolder(tinyContext().locate('clip-h-tokenizer'));
}

// ---- the generator ------------------------------------------------------------------------------------------------

export const fullConfigs = {
  textEncoder: () => clipTextModelConfig(SD_TURBO_TEXT_ENCODER, 'SD-Turbo text_encoder'),
  unet: () => unetConfig(SD_TURBO_UNET, 'SD-Turbo unet'),
  vae: () => vaeConfig(SD_TURBO_VAE, 'SD-Turbo vae'),
};

function sdTurboDir(): string {
  return tinyContext().locate('sd-turbo');
}

export function buildTextEncoder(arch: Arch, seed = 1): ClipTextModel {
  if (arch === 'tiny') return loadTextEncoder(path.join(sdTurboDir(), 'text_encoder'));
  const m = new ClipTextModel(fullConfigs.textEncoder());
  initWeights(m, seed);
  return m;
}

export function buildUnet(arch: Arch, seed = 2): UNet2DConditionModel {
  if (arch === 'tiny') return loadUnet(path.join(sdTurboDir(), 'unet'));
  const m = new UNet2DConditionModel(fullConfigs.unet());
  initWeights(m, seed);
  return m;
}

/** The VAE's decoder half (SD-Turbo never encodes). */
export function buildVae(arch: Arch, seed = 3): AutoencoderKL {
  if (arch === 'tiny') return loadVae(path.join(sdTurboDir(), 'vae'), false);
  const m = new AutoencoderKL(fullConfigs.vae(), false);
  initWeights(m, seed);
  return m;
}

/** The VAE's downsampling factor, 2^(levels - 1): image px = latent px * vaeScale. */
export function vaeScale(arch: Arch): number {
  const c = arch === 'full' ? fullConfigs.vae() : readVaeConfig(path.join(sdTurboDir(), 'vae', 'config.json'));
  return 2 ** (c.blockOutChannels.length - 1);
}

/** SD-Turbo: the tiny preset's folder, or the full architecture with random weights and the real CLIP tokenizer. */
export function buildGenerator(arch: Arch): SdTurboPipeline {
  if (arch === 'tiny') return SdTurboPipeline.load(sdTurboDir(), { smokeTest: true });
  const parts: Module[] = [];
  try {
    const textEncoder = buildTextEncoder('full');
    parts.push(textEncoder);
    const unet = buildUnet('full');
    parts.push(unet);
    const vae = buildVae('full');
    return SdTurboPipeline.fromModules({
      tokenizer: ClipTokenizer.fromFolder(path.join(sdTurboDir(), 'tokenizer')),
      textEncoder,
      unet,
      vae,
      scheduler: schedulerConfig(SD_TURBO_SCHEDULER, 'SD-Turbo scheduler'),
      source: { dir: '(full SD-Turbo architecture, random weights)', smokeTest: true },
    });
  } catch (e) {
    for (const p of parts) p.dispose();
    throw e;
  }
}

/**
 * Bytes of the full generator's weights, without building any tensor: what stays on the device during the loop
 * (UNet, VAE decoder) and the text encoder, used once per prompt and parked in host memory meanwhile.
 */
export function fullGeneratorBytes(dtype: 'fp32' | 'fp16' = 'fp32'): { loop: number; text: number } {
  const c = fullConfigs;
  return {
    loop: paramBytes(new UNet2DConditionModel(c.unet()), dtype) + paramBytes(new AutoencoderKL(c.vae(), false), dtype),
    text: paramBytes(new ClipTextModel(c.textEncoder()), dtype),
  };
}

// ---- the rewards --------------------------------------------------------------------------------------------------

/**
 * A reward whose text side was prepared once for one prompt and then freed (the full CLIP-family text towers hold
 * up to 1.4 GB that the optimisation never uses again). prepare() answers that prompt only.
 */
class PromptBoundReward implements Reward {
  constructor(
    readonly name: string,
    private readonly inner: Reward,
    readonly prompt: string,
    private readonly prepared: PreparedReward,
  ) {}

  prepare(prompt: string): PreparedReward {
    if (prompt !== this.prompt)
      throw new Error(`${this.name}: built for the prompt "${this.prompt}" (its text tower is freed), asked for "${prompt}"`);
    return { loss: (i) => this.prepared.loss(i), score: (i) => this.prepared.score(i), dispose: () => {} };
  }

  dispose(): void {
    this.prepared.dispose();
    this.inner.dispose();
  }
}

/** Build a text-and-image reward with only the text side first, prepare the prompt, free the text side, then
 * build the image side: at most one tower's weights plus the other's features are ever resident. */
function boundReward(
  name: string,
  model: Module,
  reward: Reward,
  isText: (param: string) => boolean,
  seed: number,
  prompt: string,
  afterInit?: () => void,
): Reward {
  try {
    initWeights(model, seed, 0.02, isText);
    const prepared = reward.prepare(prompt);
    freeWeights(model, isText);
    initWeights(model, seed + 1, 0.02, (n) => !isText(n));
    afterInit?.();
    return new PromptBoundReward(name, reward, prompt, prepared);
  } catch (e) {
    model.dispose();
    throw e;
  }
}

/** The layer counts of every transformer tower scaled by `f` (at least 1 layer). */
function scaledLayers(f: number) {
  const n = (layers: number) => Math.max(1, Math.round(layers * f));
  const openClip = readJsonFile(builtinOpenClipConfigFile('ViT-H-14'), 'open_clip model config') as typeof OPEN_CLIP_H14_SHAPE;
  return {
    clipH: {
      ...CLIP_H14,
      text_config: { ...CLIP_H14.text_config, num_hidden_layers: n(24) },
      vision_config: { ...CLIP_H14.vision_config, num_hidden_layers: n(32) },
    },
    clipL: { ...CLIP_L14, vision_config: { ...CLIP_L14.vision_config, num_hidden_layers: n(24) } },
    openClip: {
      ...openClip,
      vision_cfg: { ...openClip.vision_cfg, layers: n(openClip.vision_cfg.layers) },
      text_cfg: { ...openClip.text_cfg, layers: n(openClip.text_cfg.layers) },
    },
    blipVit: { ...BLIP_VIT_L16, depth: n(BLIP_VIT_L16.depth) },
    med: { ...MED_CONFIG, num_hidden_layers: n(MED_CONFIG.num_hidden_layers) },
  };
}
const OPEN_CLIP_H14_SHAPE = { vision_cfg: { layers: 0 }, text_cfg: { layers: 0 } };

function fullReward(name: RewardName, prompt: string | undefined, seed: number, depthScale: number): Reward {
  const c = scaledLayers(depthScale);
  switch (name) {
    case 'pickscore':
    case 'clip': {
      const model = new ClipModel(clipConfig(c.clipH, `${name} (CLIP ViT-H/14)`));
      const reward = new ClipSimilarityReward(name, model, clipTokenizer(), SPECS[name].offset);
      // logit_scale stays: the score multiplies by exp(logit_scale) on the device at every step
      const isText = (n: string) => !n.startsWith('vision_model.') && n !== 'visual_projection.weight' && n !== 'logit_scale';
      const logitScale = () => {
        model.logit_scale.store(tf.scalar(Math.log(100))); // exp(logit_scale) = 100, about the released value
      };
      if (prompt !== undefined) return boundReward(name, model, reward, isText, seed, prompt, logitScale);
      initWeights(model, seed);
      logitScale();
      return reward;
    }
    case 'hpsv2': {
      const model = new OpenClipModel(openClipConfig(c.openClip, 'hpsv2 (open_clip ViT-H-14)'));
      const reward = new Hpsv2Reward(model, clipTokenizer());
      if (prompt !== undefined) return boundReward(name, model, reward, (n) => !n.startsWith('visual.'), seed, prompt);
      initWeights(model, seed);
      return reward;
    }
    case 'aesthetic': {
      const encoder = new ClipImageEncoder(clipConfig(c.clipL, 'aesthetic (CLIP ViT-L/14)').vision);
      const head = new AestheticHead(AESTHETIC_HEAD_SIZES);
      initWeights(encoder, seed);
      initWeights(head, seed + 1);
      return new AestheticReward(encoder, head);
    }
    case 'imagereward': {
      const vision = blipVitConfig(c.blipVit, 'ImageReward BLIP ViT-L/16');
      const model = new ImageRewardModel({ vision, text: medConfig(c.med, 'ImageReward med_config', vision.embedDim), mlp: IMAGE_REWARD_MLP });
      initWeights(model, seed);
      const vocab = path.join(tinyContext().locate('bert-base-uncased'), IMAGE_REWARD_FILES.vocab);
      return new ImageReward(model, imageRewardTokenizer(vocab).tokenizer);
    }
    default:
      return noArchitecture(name);
  }
}

/**
 * A reward ready to prepare. tiny: the preset's files through the reward's own loader. full: the published
 * architecture with random weights; with `prompt`, CLIP-family text towers are used once for it and freed.
 * `depthScale` < 1 keeps that fraction of every tower's transformer layers (full width): a ViT's cost is linear in
 * its depth, so two fractions give the full-depth time of a pass whose memory does not fit (wasm).
 */
export async function buildReward(name: RewardName, arch: Arch, o: { prompt?: string; seed?: number; depthScale?: number } = {}): Promise<Reward> {
  if (!SPECS[name]) throw new Error(`unknown reward "${name}" (known: ${REWARD_NAMES.join(', ')})`);
  if (arch === 'tiny') return SPECS[name].load(tinyContext());
  return fullReward(name, o.prompt, o.seed ?? 10 + REWARD_NAMES.indexOf(name) * 2, o.depthScale ?? 1);
}

/**
 * Bytes of a full reward's weights: what the loss reads every step (the image side; the text side too for
 * imagereward, whose text encoder attends to the image) and the text tower used once per prompt (parked meanwhile).
 */
export function fullRewardBytes(name: RewardName, dtype: 'fp32' | 'fp16' = 'fp32'): { loop: number; text: number } {
  switch (name) {
    case 'pickscore':
    case 'clip': {
      const m = new ClipModel(clipConfig(CLIP_H14, name));
      return {
        loop: paramBytes(m.vision_model, dtype) + paramBytes(m.visual_projection, dtype),
        text: paramBytes(m.text_model, dtype) + paramBytes(m.text_projection, dtype),
      };
    }
    case 'hpsv2': {
      const file = builtinOpenClipConfigFile('ViT-H-14');
      const m = new OpenClipModel(openClipConfig(readJsonFile(file, 'open_clip model config'), file));
      const visual = paramBytes(m.visual, dtype);
      return { loop: visual, text: paramBytes(m, dtype) - visual };
    }
    case 'aesthetic':
      return {
        loop: paramBytes(new ClipImageEncoder(clipConfig(CLIP_L14, name).vision), dtype) + paramBytes(new AestheticHead(AESTHETIC_HEAD_SIZES), dtype),
        text: 0,
      };
    case 'imagereward': {
      const vision = blipVitConfig(BLIP_VIT_L16, name);
      return {
        loop: paramBytes(new ImageRewardModel({ vision, text: medConfig(MED_CONFIG, name, vision.embedDim), mlp: IMAGE_REWARD_MLP }), dtype),
        text: 0,
      };
    }
    default:
      return noArchitecture(name);
  }
}

/** The ReNO loop settings and reward weights of configs/default.yaml (the seed paper's), active rewards only. */
export function paperDefaults(): {
  weights: Partial<Record<RewardName, number>>;
  lr: number;
  momentum: number;
  nesterov: boolean;
  gradClip: number;
  regWeight: number;
} {
  const c = readConfigFile(defaultsFile());
  const weights: Partial<Record<RewardName, number>> = {};
  for (const [k, w] of Object.entries(c.weights ?? {})) if (w > 0 && (REWARD_NAMES as readonly string[]).includes(k)) weights[k as RewardName] = w;
  return { weights, lr: c.lr!, momentum: c.momentum!, nesterov: c.nesterov!, gradClip: c.grad_clip!, regWeight: c.reg_weight! };
}
