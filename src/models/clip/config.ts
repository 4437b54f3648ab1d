// Typed configs for the Hugging Face CLIP towers, built from config.json (CLIPTextConfig / CLIPVisionConfig /
// CLIPConfig in transformers' configuration_clip.py).
import { Fields, type Json } from '../../config/json.js';

export interface ClipTextConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  maxPositions: number;
  hiddenAct: string;
  layerNormEps: number;
  /** 2 selects transformers' legacy argmax(input_ids) pooling; any other id pools at its first occurrence. */
  eosTokenId: number;
  projectionDim: number;
}

export interface ClipVisionConfig {
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  imageSize: number;
  patchSize: number;
  numChannels: number;
  hiddenAct: string;
  layerNormEps: number;
  projectionDim: number;
}

export interface ClipConfig {
  text: ClipTextConfig;
  vision: ClipVisionConfig;
  projectionDim: number;
  logitScaleInit: number;
}

export function clipTextConfig(f: Fields): ClipTextConfig {
  return {
    vocabSize: f.int('vocab_size', 49408),
    hiddenSize: f.int('hidden_size', 512),
    intermediateSize: f.int('intermediate_size', 2048),
    numLayers: f.int('num_hidden_layers', 12),
    numHeads: f.int('num_attention_heads', 8),
    maxPositions: f.int('max_position_embeddings', 77),
    hiddenAct: f.str('hidden_act', 'quick_gelu'),
    layerNormEps: f.num('layer_norm_eps', 1e-5),
    eosTokenId: f.int('eos_token_id', 2),
    projectionDim: f.int('projection_dim', 512),
  };
}

export function clipVisionConfig(f: Fields): ClipVisionConfig {
  return {
    hiddenSize: f.int('hidden_size', 768),
    intermediateSize: f.int('intermediate_size', 3072),
    numLayers: f.int('num_hidden_layers', 12),
    numHeads: f.int('num_attention_heads', 12),
    imageSize: f.int('image_size', 224),
    patchSize: f.int('patch_size', 32),
    numChannels: f.int('num_channels', 3),
    hiddenAct: f.str('hidden_act', 'quick_gelu'),
    layerNormEps: f.num('layer_norm_eps', 1e-5),
    projectionDim: f.int('projection_dim', 512),
  };
}

/** CLIPConfig (text_config + vision_config + projection_dim + logit_scale_init_value). */
export function clipConfig(json: Json, src: string): ClipConfig {
  const f = new Fields(json, src);
  const projectionDim = f.int('projection_dim', 512);
  const text = clipTextConfig(f.sub('text_config'));
  const vision = clipVisionConfig(f.sub('vision_config'));
  return {
    text: { ...text, projectionDim },
    vision: { ...vision, projectionDim },
    projectionDim,
    logitScaleInit: f.num('logit_scale_init_value', 2.6592),
  };
}

/** CLIPTextModel's own config.json (the SD-Turbo text encoder). */
export function clipTextModelConfig(json: Json, src: string): ClipTextConfig {
  return clipTextConfig(new Fields(json, src));
}
