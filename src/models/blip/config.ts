// Typed configs for BLIP's two towers: the timm-style ViT (ImageReward models/BLIP/vit.py VisionTransformer, built by
// blip.py create_vit) and the BERT "med" text encoder (med.py BertModel with a BertConfig read from med_config.json;
// transformers' BlipTextConfig for the HF BlipTextModel / BlipTextLMHeadModel, same modules).
import { Fields, type Json } from '../../config/json.js';
import { ConfigError } from '../../errors.js';
import type { TensorSource } from '../../weights/source.js';

/** VisionTransformer(img_size, patch_size, embed_dim, depth, num_heads, mlp_ratio, qkv_bias) of BLIP's vit.py. */
export interface BlipVitConfig {
  imageSize: number;
  patchSize: number;
  inChannels: number;
  embedDim: number;
  depth: number;
  numHeads: number;
  /** fc1 width (int(embed_dim * mlp_ratio)). */
  mlpHidden: number;
  qkvBias: boolean;
  /** partial(nn.LayerNorm, eps=1e-6) in vit.py. */
  layerNormEps: number;
}

/** BertConfig as med.py uses it (BLIP's med_config.json), or transformers' BlipTextConfig. */
export interface BertTextConfig {
  vocabSize: number;
  hiddenSize: number;
  numLayers: number;
  numHeads: number;
  intermediateSize: number;
  maxPositions: number;
  hiddenAct: string;
  layerNormEps: number;
  padTokenId: number;
  /** Width of the cross-attention memory (the image tokens): key/value are Linear(encoderWidth -> hidden). */
  encoderWidth: number;
  /** Whether every layer has a `crossattention` block (med: add_cross_attention; HF BlipText: is_decoder). */
  crossAttention: boolean;
}

/** BLIP's ViT from timm-style keys (the fixture manifest's config.vit: img_size, patch_size, embed_dim, depth, num_heads). */
export function blipVitConfig(json: Json, src: string): BlipVitConfig {
  const f = new Fields(json, src);
  const embedDim = f.int('embed_dim');
  return {
    imageSize: f.int('img_size'),
    patchSize: f.int('patch_size'),
    inChannels: f.int('in_chans', 3),
    embedDim,
    depth: f.int('depth'),
    numHeads: f.int('num_heads'),
    mlpHidden: Math.trunc(embedDim * f.num('mlp_ratio', 4)),
    qkvBias: f.bool('qkv_bias', true),
    layerNormEps: f.num('layer_norm_eps', 1e-6),
  };
}

/**
 * BLIP's ViT read off a checkpoint's shapes (the released ImageReward.pt has no vision config: blip.py hard-codes
 * 'large' = 224 / 16 / 1024 / 24 / 16 heads). Width from cls_token, patch and channels from patch_embed.proj.weight,
 * depth from the block count, image size from pos_embed (1 + (size / patch)^2 tokens), mlp width from fc1. The head
 * count is not in the shapes: BLIP's 'base' (768/12) and 'large' (1024/16) both use 64-wide heads, the default here.
 */
export function blipVitConfigFromWeights(source: TensorSource, prefix: string, opts: { numHeads?: number; headDim?: number } = {}): BlipVitConfig {
  const shape = (k: string): number[] => {
    const info = source.info(prefix + k);
    if (!info) throw new ConfigError(`${source.path}: missing ${prefix}${k} (needed to size the BLIP ViT)`);
    return info.shape;
  };
  const embedDim = shape('cls_token').at(-1)!;
  const [, inChannels, patchSize] = shape('patch_embed.proj.weight');
  const tokens = shape('pos_embed')[1];
  const grid = Math.round(Math.sqrt(tokens - 1));
  if (grid * grid !== tokens - 1) throw new ConfigError(`${source.path}: ${prefix}pos_embed has ${tokens} tokens, not 1 + a square grid`);
  const blockRe = new RegExp(`^${prefix.replace(/\./g, '\\.')}blocks\\.(\\d+)\\.`);
  let depth = 0;
  for (const k of source.keys()) {
    const m = blockRe.exec(k);
    if (m) depth = Math.max(depth, Number(m[1]) + 1);
  }
  const headDim = opts.headDim ?? 64;
  const numHeads = opts.numHeads ?? embedDim / headDim;
  if (!Number.isInteger(numHeads) || embedDim % numHeads !== 0)
    throw new ConfigError(`${source.path}: ViT width ${embedDim} is not a multiple of the head width ${headDim}; give the head count`);
  return {
    imageSize: grid * patchSize,
    patchSize,
    inChannels,
    embedDim,
    depth,
    numHeads,
    mlpHidden: shape('blocks.0.mlp.fc1.weight')[0],
    qkvBias: source.info(`${prefix}blocks.0.attn.qkv.bias`) !== undefined,
    layerNormEps: 1e-6,
  };
}

/**
 * med_config.json (a BertConfig). blip_pretrain.py overrides `encoder_width` with the ViT width, so pass it as
 * `encoderWidth`; the file's own value is used only without one.
 */
export function medConfig(json: Json, src: string, encoderWidth?: number): BertTextConfig {
  const f = new Fields(json, src);
  absolutePositions(f, src);
  return {
    vocabSize: f.int('vocab_size'),
    hiddenSize: f.int('hidden_size', 768),
    numLayers: f.int('num_hidden_layers', 12),
    numHeads: f.int('num_attention_heads', 12),
    intermediateSize: f.int('intermediate_size', 3072),
    maxPositions: f.int('max_position_embeddings', 512),
    hiddenAct: f.str('hidden_act', 'gelu'),
    layerNormEps: f.num('layer_norm_eps', 1e-12),
    padTokenId: f.int('pad_token_id', 0),
    encoderWidth: encoderWidth ?? f.int('encoder_width', 768),
    crossAttention: f.bool('add_cross_attention', false),
  };
}

/** transformers' BlipTextConfig (config.json of BlipTextModel / BlipTextLMHeadModel): cross-attention iff is_decoder. */
export function blipTextConfig(json: Json, src: string): BertTextConfig {
  const f = new Fields(json, src);
  absolutePositions(f, src);
  return {
    vocabSize: f.int('vocab_size', 30524),
    hiddenSize: f.int('hidden_size', 768),
    numLayers: f.int('num_hidden_layers', 12),
    numHeads: f.int('num_attention_heads', 8),
    intermediateSize: f.int('intermediate_size', 3072),
    maxPositions: f.int('max_position_embeddings', 512),
    hiddenAct: f.str('hidden_act', 'gelu'),
    layerNormEps: f.num('layer_norm_eps', 1e-12),
    padTokenId: f.int('pad_token_id', 0),
    encoderWidth: f.int('encoder_hidden_size', 768),
    crossAttention: f.bool('is_decoder', true),
  };
}

/** med.py and modeling_blip_text.py also know relative position scores; no BLIP checkpoint uses them. */
function absolutePositions(f: Fields, src: string): void {
  const posType = f.str('position_embedding_type', 'absolute');
  if (posType !== 'absolute') throw new ConfigError(`${src}: position_embedding_type "${posType}" is not supported (only "absolute")`);
}
