// Typed config of an Idefics3 (SmolVLM) checkpoint, built from its config.json (transformers
// configuration_idefics3.py: Idefics3VisionConfig, Idefics3Config; configuration_llama.py: LlamaConfig).
// Both config.json spellings are accepted: transformers 5.x writes the rotary base inside
// text_config.rope_parameters (some 5.0 pre-releases: rope_scaling), 4.x and the hub files keep it at
// text_config.rope_theta (a 4.x loader ignores the 5.x form, so it must be read here).
import * as path from 'node:path';
import { Fields, readJsonFile, type Json } from '../../config/json.js';
import { ConfigError } from '../../errors.js';

/** Idefics3VisionConfig (a SigLIP-style ViT). */
export interface Idefics3VisionConfig {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numChannels: number;
  /** Side of the square input the position table was trained for (num_patches_per_side = imageSize / patchSize). */
  imageSize: number;
  patchSize: number;
  hiddenAct: string;
  layerNormEps: number;
}

/** LlamaConfig (the text model: SmolLM2 for SmolVLM). */
export interface LlamaConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  /** Grouped-query attention: numHeads is a multiple of numKvHeads. */
  numKvHeads: number;
  headDim: number;
  hiddenAct: string;
  rmsNormEps: number;
  /** Rotary base (rope_parameters.rope_theta in 5.x, rope_theta in 4.x). Only the "default" rope type is supported. */
  ropeTheta: number;
  maxPositions: number;
  attentionBias: boolean;
  mlpBias: boolean;
  padTokenId: number | null;
  bosTokenId: number | null;
  eosTokenId: number | null;
}

export interface Idefics3Config {
  vision: Idefics3VisionConfig;
  text: LlamaConfig;
  /** Pixel-shuffle factor of the connector (each side of the patch grid shrinks by it). */
  scaleFactor: number;
  imageTokenId: number;
  /** lm_head shares embed_tokens' weight (lm_head.weight may then be absent from the checkpoint). */
  tieWordEmbeddings: boolean;
  /** Image tokens per (sub-)image: (imageSize / patchSize)^2 / scaleFactor^2. */
  imageSeqLen: number;
}

export function idefics3VisionConfig(f: Fields): Idefics3VisionConfig {
  const c: Idefics3VisionConfig = {
    hiddenSize: f.int('hidden_size', 1152),
    intermediateSize: f.int('intermediate_size', 3072),
    numLayers: f.int('num_hidden_layers', 12),
    numHeads: f.int('num_attention_heads', 16),
    numChannels: f.int('num_channels', 3),
    imageSize: f.int('image_size', 224),
    patchSize: f.int('patch_size', 32),
    hiddenAct: f.str('hidden_act', 'gelu_pytorch_tanh'),
    layerNormEps: f.num('layer_norm_eps', 1e-6),
  };
  if (c.hiddenSize % c.numHeads !== 0)
    throw new ConfigError(`${f.src}: hidden_size ${c.hiddenSize} is not a multiple of num_attention_heads ${c.numHeads}`);
  if (c.imageSize % c.patchSize !== 0) throw new ConfigError(`${f.src}: image_size ${c.imageSize} is not a multiple of patch_size ${c.patchSize}`);
  return c;
}

/** The rotary base and type from whichever form the file uses (5.x rope_parameters / rope_scaling, 4.x rope_theta). */
function ropeOf(f: Fields): { theta: number; type: string } {
  for (const key of ['rope_parameters', 'rope_scaling']) {
    if (!f.has(key)) continue;
    const r = f.sub(key);
    const type = r.has('rope_type') ? r.str('rope_type') : r.str('type', 'default');
    if (r.has('rope_theta')) return { theta: r.num('rope_theta'), type };
    return { theta: f.num('rope_theta', 10000), type };
  }
  return { theta: f.num('rope_theta', 10000), type: 'default' };
}

export function llamaConfig(f: Fields): LlamaConfig {
  const hiddenSize = f.int('hidden_size', 4096);
  const numHeads = f.int('num_attention_heads', 32);
  const rope = ropeOf(f);
  if (rope.type !== 'default') throw new ConfigError(`${f.src}: rope type "${rope.type}" is not supported (only "default" rotary embeddings are)`);
  const optInt = (k: string) => (f.has(k) ? f.int(k) : null);
  const c: LlamaConfig = {
    vocabSize: f.int('vocab_size', 32000),
    hiddenSize,
    intermediateSize: f.int('intermediate_size', 11008),
    numLayers: f.int('num_hidden_layers', 32),
    numHeads,
    numKvHeads: f.int('num_key_value_heads', numHeads),
    headDim: f.int('head_dim', Math.floor(hiddenSize / numHeads)),
    hiddenAct: f.str('hidden_act', 'silu'),
    rmsNormEps: f.num('rms_norm_eps', 1e-6),
    ropeTheta: rope.theta,
    maxPositions: f.int('max_position_embeddings', 2048),
    attentionBias: f.bool('attention_bias', false),
    mlpBias: f.bool('mlp_bias', false),
    padTokenId: optInt('pad_token_id'),
    bosTokenId: optInt('bos_token_id'),
    eosTokenId: optInt('eos_token_id'),
  };
  if (c.numHeads % c.numKvHeads !== 0)
    throw new ConfigError(`${f.src}: num_attention_heads ${c.numHeads} is not a multiple of num_key_value_heads ${c.numKvHeads}`);
  if (c.headDim % 2 !== 0) throw new ConfigError(`${f.src}: head_dim ${c.headDim} must be even for rotary embeddings`);
  return c;
}

/** Idefics3Config from a parsed config.json; `src` names the file in errors. */
export function idefics3Config(json: Json, src: string): Idefics3Config {
  const f = new Fields(json, src);
  const modelType = f.str('model_type', 'idefics3');
  if (modelType !== 'idefics3' && modelType !== 'smolvlm')
    throw new ConfigError(`${src}: model_type "${modelType}" is not an Idefics3 / SmolVLM model`);
  const tc = f.sub('text_config');
  const textType = tc.str('model_type', 'llama');
  if (textType !== 'llama') throw new ConfigError(`${src}: text_config.model_type "${textType}" is not supported (llama only)`);
  const vision = idefics3VisionConfig(f.sub('vision_config'));
  const text = llamaConfig(tc);
  const scaleFactor = f.int('scale_factor', 2);
  const side = vision.imageSize / vision.patchSize;
  if (side % scaleFactor !== 0) throw new ConfigError(`${src}: ${side} patches per side are not a multiple of scale_factor ${scaleFactor}`);
  // The top-level flag wins (Idefics3Config's own default is False); a 4.x file may keep it in text_config only.
  const tie = f.has('tie_word_embeddings') ? f.bool('tie_word_embeddings') : tc.bool('tie_word_embeddings', false);
  return {
    vision,
    text,
    scaleFactor,
    imageTokenId: f.int('image_token_id', 128257),
    tieWordEmbeddings: tie,
    imageSeqLen: (side * side) / (scaleFactor * scaleFactor),
  };
}

/** Read MODEL_DIR/config.json (or a config file path). */
export function readIdefics3Config(dirOrFile: string): Idefics3Config {
  const file = dirOrFile.endsWith('.json') ? dirOrFile : path.join(dirOrFile, 'config.json');
  return idefics3Config(readJsonFile(file), file);
}
