// Typed config of open_clip's CLIP (open_clip/model.py CLIPVisionCfg, CLIPTextCfg and the model config JSON files
// in open_clip/model_configs/*.json, e.g. ViT-H-14.json). Only the plain ViT + text-transformer CLIP is supported
// (what HPSv2 uses); options that would change the graph (layer scale, attentional pooling, other pool types, ...)
// are rejected by name instead of being silently ignored.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Fields, readJsonFile, type Json } from '../../config/json.js';
import { ConfigError } from '../../errors.js';
import { packageRoot } from '../../paths.js';

export interface OpenClipVisionConfig {
  imageSize: number;
  patchSize: number;
  width: number;
  layers: number;
  /** width / head_width (open_clip VisionTransformer: heads = width // head_width). */
  heads: number;
  /** int(width * mlp_ratio) */
  mlpWidth: number;
}

export interface OpenClipTextConfig {
  contextLength: number;
  vocabSize: number;
  width: number;
  layers: number;
  heads: number;
  /** int(width * mlp_ratio) */
  mlpWidth: number;
}

export interface OpenClipConfig {
  embedDim: number;
  /** true: QuickGELU (OpenAI-trained weights); false: nn.GELU, exact erf (ViT-H-14, HPSv2). */
  quickGelu: boolean;
  vision: OpenClipVisionConfig;
  text: OpenClipTextConfig;
}

/** The file name open_clip uses for a model folder's architecture (hub repos of open_clip models ship one). */
export const OPEN_CLIP_CONFIG_FILE = 'open_clip_config.json';

// Options whose non-default values change the graph; each is listed with the value reno implements.
const VISION_DEFAULTS: Record<string, unknown> = {
  ls_init_value: null,
  patch_dropout: 0,
  attentional_pool: false,
  no_ln_pre: false,
  pos_embed_type: 'learnable',
  final_ln_after_pool: false,
  pool_type: 'tok',
  timm_model_name: null,
  qk_norm: false,
  scaled_cosine_attn: false,
  scale_heads: false,
  scale_attn_inner: false,
  scale_attn: false,
  scale_fc: false,
};
const TEXT_DEFAULTS: Record<string, unknown> = {
  text_arch: 'clip',
  ls_init_value: null,
  embed_cls: false,
  no_causal_mask: false,
  final_ln_after_pool: false,
  pool_type: 'argmax',
  proj_bias: false,
  proj_type: 'linear',
  hf_model_name: null,
  qk_norm: false,
  scaled_cosine_attn: false,
  scale_heads: false,
  scale_attn_inner: false,
  scale_attn: false,
  scale_fc: false,
};

function rejectUnsupported(f: Fields, defaults: Record<string, unknown>): void {
  for (const [key, dflt] of Object.entries(defaults)) {
    const v = f.obj[key];
    if (v === undefined || v === null || v === dflt) continue;
    throw new ConfigError(
      `${f.src}: "${key}": ${JSON.stringify(v)} is not supported (reno ports open_clip's plain CLIP: ${key} = ${JSON.stringify(dflt)})`,
    );
  }
}

function visionConfig(f: Fields): OpenClipVisionConfig {
  rejectUnsupported(f, VISION_DEFAULTS);
  const width = f.int('width', 768);
  const headWidth = f.int('head_width', 64);
  if (width % headWidth !== 0) throw new ConfigError(`${f.src}: width ${width} is not a multiple of head_width ${headWidth}`);
  const imageSize = f.int('image_size', 224);
  const patchSize = f.int('patch_size', 16);
  if (imageSize % patchSize !== 0) throw new ConfigError(`${f.src}: image_size ${imageSize} is not a multiple of patch_size ${patchSize}`);
  return {
    imageSize,
    patchSize,
    width,
    layers: f.int('layers', 12),
    heads: width / headWidth,
    mlpWidth: Math.trunc(width * f.num('mlp_ratio', 4)),
  };
}

function textConfig(f: Fields): OpenClipTextConfig {
  rejectUnsupported(f, TEXT_DEFAULTS);
  const width = f.int('width', 512);
  const heads = f.int('heads', 8);
  if (width % heads !== 0) throw new ConfigError(`${f.src}: width ${width} is not a multiple of heads ${heads}`);
  return {
    contextLength: f.int('context_length', 77),
    vocabSize: f.int('vocab_size', 49408),
    width,
    layers: f.int('layers', 12),
    heads,
    mlpWidth: Math.trunc(width * f.num('mlp_ratio', 4)),
  };
}

/**
 * An open_clip model config: the bare form of open_clip/model_configs/*.json ({embed_dim, vision_cfg, text_cfg,
 * quick_gelu?}) or the hub form of open_clip_config.json ({model_cfg: {...}, preprocess_cfg: {...}}).
 */
export function openClipConfig(json: Json, src: string): OpenClipConfig {
  const top = new Fields(json, src);
  const f = top.has('model_cfg') ? top.sub('model_cfg') : top;
  for (const k of ['vision_cfg', 'text_cfg']) if (!f.has(k)) throw new ConfigError(`${f.src}: missing "${k}"`);
  return {
    embedDim: f.int('embed_dim'),
    quickGelu: f.bool('quick_gelu', false),
    vision: visionConfig(f.sub('vision_cfg')),
    text: textConfig(f.sub('text_cfg')),
  };
}

/** configs/open_clip/<name>.json shipped with reno (e.g. ViT-H-14, for checkpoints that carry no config). */
export function builtinOpenClipConfigFile(name: string): string {
  return path.join(packageRoot(), 'configs', 'open_clip', `${name}.json`);
}

/**
 * The architecture of a model folder: its own open_clip_config.json when present (the tiny preset and open_clip hub
 * repos ship one), else reno's copy of open_clip's `fallback` config (xswu/HPSv2 holds only the checkpoint).
 */
export function readOpenClipConfig(dir: string, fallback: string): OpenClipConfig {
  const own = path.join(dir, OPEN_CLIP_CONFIG_FILE);
  const file = fs.existsSync(own) ? own : builtinOpenClipConfigFile(fallback);
  return openClipConfig(readJsonFile(file, 'open_clip model config'), file);
}
