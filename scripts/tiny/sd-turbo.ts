// The tiny SD-Turbo: the real diffusers layout and CLIP vocabulary, small random networks (64 px images), and the
// same weights as the single file sd_turbo.safetensors in the original SD layout (fp16, as the registry entry
// sd-turbo-file expects; src/weights/single-file.ts).
import * as path from 'node:path';
import { unetConfig, vaeConfig } from '../../src/models/sd-turbo/config.js';
import { UNet2DConditionModel } from '../../src/models/sd-turbo/unet.js';
import { AutoencoderKL } from '../../src/models/sd-turbo/vae.js';
import { clipTextModelConfig } from '../../src/models/clip/config.js';
import { ClipTextModel } from '../../src/models/clip/text.js';
import { singleFileLayout } from '../../src/models/sd-turbo/load.js';
import { openSafetensors, writeSafetensors } from '../../src/weights/safetensors.js';
import { COMPONENTS, toSingleFile, type Component } from '../../src/weights/single-file.js';
import type { TensorSource } from '../../src/weights/source.js';
import { SEED, copyFiles, writeJson, writeRandomWeights } from './common.js';

export const TEXT_ENCODER = {
  architectures: ['CLIPTextModel'],
  model_type: 'clip_text_model',
  hidden_act: 'gelu',
  hidden_size: 16,
  intermediate_size: 32,
  num_attention_heads: 2,
  num_hidden_layers: 2,
  max_position_embeddings: 77,
  vocab_size: 49408,
  layer_norm_eps: 1e-5,
  projection_dim: 16,
  bos_token_id: 0,
  eos_token_id: 2,
  pad_token_id: 1,
  torch_dtype: 'float32',
};

export const UNET = {
  _class_name: 'UNet2DConditionModel',
  _diffusers_version: '0.25.1',
  act_fn: 'silu',
  attention_head_dim: [2, 4],
  block_out_channels: [32, 64],
  cross_attention_dim: 16,
  down_block_types: ['CrossAttnDownBlock2D', 'DownBlock2D'],
  up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D'],
  mid_block_type: 'UNetMidBlock2DCrossAttn',
  downsample_padding: 1,
  flip_sin_to_cos: true,
  freq_shift: 0,
  in_channels: 4,
  out_channels: 4,
  layers_per_block: 1,
  norm_eps: 1e-5,
  norm_num_groups: 8,
  sample_size: 8,
  transformer_layers_per_block: 1,
  use_linear_projection: true,
};

export const VAE = {
  _class_name: 'AutoencoderKL',
  _diffusers_version: '0.25.1',
  act_fn: 'silu',
  block_out_channels: [8, 16, 16, 16],
  down_block_types: ['DownEncoderBlock2D', 'DownEncoderBlock2D', 'DownEncoderBlock2D', 'DownEncoderBlock2D'],
  up_block_types: ['UpDecoderBlock2D', 'UpDecoderBlock2D', 'UpDecoderBlock2D', 'UpDecoderBlock2D'],
  in_channels: 3,
  out_channels: 3,
  latent_channels: 4,
  layers_per_block: 1,
  norm_num_groups: 4,
  sample_size: 64,
  scaling_factor: 0.18215,
  force_upcast: true,
};

export const SCHEDULER = {
  _class_name: 'EulerDiscreteScheduler',
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  beta_start: 0.00085,
  interpolation_type: 'linear',
  num_train_timesteps: 1000,
  prediction_type: 'epsilon',
  steps_offset: 1,
  timestep_spacing: 'trailing',
  timestep_type: 'discrete',
  trained_betas: null,
  use_karras_sigmas: false,
};

export function writeTinySdTurbo(root: string, clipTokenizerDir: string): void {
  const dir = path.join(root, 'stabilityai', 'sd-turbo');
  writeJson(path.join(dir, 'model_index.json'), {
    _class_name: 'StableDiffusionPipeline',
    _diffusers_version: '0.25.1',
    _reno_note: 'tiny smoke-test preset with random weights, written by scripts/make-tiny-preset.ts',
    scheduler: ['diffusers', 'EulerDiscreteScheduler'],
    text_encoder: ['transformers', 'CLIPTextModel'],
    tokenizer: ['transformers', 'CLIPTokenizer'],
    unet: ['diffusers', 'UNet2DConditionModel'],
    vae: ['diffusers', 'AutoencoderKL'],
  });
  writeJson(path.join(dir, 'scheduler', 'scheduler_config.json'), SCHEDULER);
  writeJson(path.join(dir, 'text_encoder', 'config.json'), TEXT_ENCODER);
  writeJson(path.join(dir, 'unet', 'config.json'), UNET);
  writeJson(path.join(dir, 'vae', 'config.json'), VAE);
  copyFiles(clipTokenizerDir, path.join(dir, 'tokenizer'), ['vocab.json', 'merges.txt']);
  writeJson(path.join(dir, 'tokenizer', 'special_tokens_map.json'), {
    bos_token: '<|startoftext|>',
    eos_token: '<|endoftext|>',
    pad_token: '!',
    unk_token: '<|endoftext|>',
  });
  writeJson(path.join(dir, 'tokenizer', 'tokenizer_config.json'), {
    model_max_length: 77,
    pad_token: '!',
    do_lower_case: true,
    tokenizer_class: 'CLIPTokenizer',
  });
  const te = new ClipTextModel(clipTextModelConfig(TEXT_ENCODER, 'tiny text_encoder'));
  writeRandomWeights(path.join(dir, 'text_encoder', 'model.safetensors'), te, SEED + 1);
  writeRandomWeights(
    path.join(dir, 'unet', 'diffusion_pytorch_model.safetensors'),
    new UNet2DConditionModel(unetConfig(UNET, 'tiny unet')),
    SEED + 2,
  );
  writeRandomWeights(path.join(dir, 'vae', 'diffusion_pytorch_model.safetensors'), new AutoencoderKL(vaeConfig(VAE, 'tiny vae')), SEED + 3);
  // the single file (writeSingleFile) is not shipped: it would repeat these weights in the checkout; tests write it
}

/** dir/sd_turbo.safetensors: the folder's three components as one fp16 file in the original SD key layout. */
export function writeSingleFile(dir: string): void {
  const files: Record<Component, string> = {
    unet: 'unet/diffusion_pytorch_model.safetensors',
    vae: 'vae/diffusion_pytorch_model.safetensors',
    text_encoder: 'text_encoder/model.safetensors',
  };
  const srcs = Object.fromEntries(COMPONENTS.map((c) => [c, openSafetensors(path.join(dir, files[c]))])) as Record<Component, TensorSource>;
  try {
    writeSafetensors(
      path.join(dir, 'sd_turbo.safetensors'),
      toSingleFile(srcs, singleFileLayout(dir), { skip: (k) => k.endsWith('position_ids') }),
      { format: 'pt' },
      'F16',
    );
  } finally {
    for (const s of Object.values(srcs)) s.close();
  }
}
