// The tiny CLIP-family reward models: random HF CLIPModels in the real hub layouts (config.json in transformers'
// CLIPConfig format, model.safetensors with HF key names), the real 49408-token CLIP vocabulary and the real input
// size (224, patch 32: 7x7 patches), so the rewards run their full preprocessing and loading paths.
//   root/yuvalkirstain/PickScore_v1              pickscore
//   root/laion/CLIP-ViT-H-14-laion2B-s32B-b79K   clip (+ the tokenizer files of clip-h-tokenizer)
//   root/openai/clip-vit-large-patch14           aesthetic's CLIP ViT-L/14 (QuickGELU, projection_dim 768)
import * as path from 'node:path';
import { clipConfig } from '../../src/models/clip/config.js';
import { ClipModel } from '../../src/models/clip/model.js';
import { SEED, copyFiles, writeJson, writeRandomWeights } from './common.js';

const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073];
const CLIP_STD = [0.26862954, 0.26130258, 0.27577711];

/** A tiny transformers CLIPConfig (hidden 16, 2 layers, 2 heads per tower). */
export function tinyClipConfig(act: 'gelu' | 'quick_gelu', projectionDim: number): Record<string, unknown> {
  const tower = { hidden_size: 16, intermediate_size: 32, num_attention_heads: 2, num_hidden_layers: 2, hidden_act: act, layer_norm_eps: 1e-5 };
  return {
    architectures: ['CLIPModel'],
    model_type: 'clip',
    _reno_note: 'tiny smoke-test preset with random weights, written by scripts/make-tiny-preset.ts',
    initializer_factor: 1.0,
    logit_scale_init_value: 2.6592,
    projection_dim: projectionDim,
    torch_dtype: 'float32',
    text_config: {
      model_type: 'clip_text_model',
      ...tower,
      max_position_embeddings: 77,
      vocab_size: 49408,
      bos_token_id: 0,
      eos_token_id: 2,
      pad_token_id: 1,
      projection_dim: projectionDim,
    },
    vision_config: { model_type: 'clip_vision_model', ...tower, image_size: 224, patch_size: 32, num_channels: 3, projection_dim: projectionDim },
  };
}

/** CLIPImageProcessor settings of the real repos (resize shortest edge 224 bicubic, crop 224, CLIP mean/std). */
const PREPROCESSOR = {
  crop_size: { height: 224, width: 224 },
  do_center_crop: true,
  do_convert_rgb: true,
  do_normalize: true,
  do_rescale: true,
  do_resize: true,
  image_mean: CLIP_MEAN,
  image_std: CLIP_STD,
  image_processor_type: 'CLIPImageProcessor',
  resample: 3,
  rescale_factor: 1 / 255,
  size: { shortest_edge: 224 },
};

function writeClipModel(dir: string, cfg: Record<string, unknown>, seed: number): void {
  writeJson(path.join(dir, 'config.json'), cfg);
  const model = new ClipModel(clipConfig(cfg, `${dir}/config.json`));
  // exp(logit_scale) = 100, as trained CLIP models have it
  writeRandomWeights(path.join(dir, 'model.safetensors'), model, seed, {
    extra: { logit_scale: { shape: [], data: Float32Array.of(Math.log(100)) } },
  });
}

export function writeTinyClipRewards(root: string, assetsDir: string): void {
  const tokenizerDir = path.join(assetsDir, 'clip_tokenizer_hf');
  const pick = path.join(root, 'yuvalkirstain', 'PickScore_v1');
  writeClipModel(pick, tinyClipConfig('gelu', 16), SEED + 101);

  const laion = path.join(root, 'laion', 'CLIP-ViT-H-14-laion2B-s32B-b79K');
  writeClipModel(laion, tinyClipConfig('gelu', 16), SEED + 102);
  copyFiles(tokenizerDir, laion, ['vocab.json', 'merges.txt', 'tokenizer_config.json', 'special_tokens_map.json']);
  writeJson(path.join(laion, 'preprocessor_config.json'), PREPROCESSOR);

  // the aesthetic head (LAION improved-aesthetic-predictor) reads 768-d ViT-L/14 image embeddings
  const vitL = path.join(root, 'openai', 'clip-vit-large-patch14');
  writeClipModel(vitL, tinyClipConfig('quick_gelu', 768), SEED + 103);
  writeJson(path.join(vitL, 'preprocessor_config.json'), PREPROCESSOR);
}
