// The full SD-Turbo architecture (stabilityai/sd-turbo configs) for benchmarks
// with random weights, where the real files are not available.
export const SD_TURBO_TEXT_ENCODER = {
  hidden_act: 'gelu',
  hidden_size: 1024,
  intermediate_size: 4096,
  num_attention_heads: 16,
  num_hidden_layers: 23,
  max_position_embeddings: 77,
  vocab_size: 49408,
  layer_norm_eps: 1e-5,
  projection_dim: 512,
  eos_token_id: 2,
};

export const SD_TURBO_UNET = {
  act_fn: 'silu',
  attention_head_dim: [5, 10, 20, 20],
  block_out_channels: [320, 640, 1280, 1280],
  cross_attention_dim: 1024,
  down_block_types: ['CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'CrossAttnDownBlock2D', 'DownBlock2D'],
  up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D', 'CrossAttnUpBlock2D'],
  mid_block_type: 'UNetMidBlock2DCrossAttn',
  downsample_padding: 1,
  flip_sin_to_cos: true,
  freq_shift: 0,
  in_channels: 4,
  out_channels: 4,
  layers_per_block: 2,
  norm_eps: 1e-5,
  norm_num_groups: 32,
  sample_size: 64,
  transformer_layers_per_block: 1,
  use_linear_projection: true,
};

export const SD_TURBO_VAE = {
  act_fn: 'silu',
  block_out_channels: [128, 256, 512, 512],
  down_block_types: ['DownEncoderBlock2D', 'DownEncoderBlock2D', 'DownEncoderBlock2D', 'DownEncoderBlock2D'],
  up_block_types: ['UpDecoderBlock2D', 'UpDecoderBlock2D', 'UpDecoderBlock2D', 'UpDecoderBlock2D'],
  in_channels: 3,
  out_channels: 3,
  latent_channels: 4,
  layers_per_block: 2,
  norm_num_groups: 32,
  sample_size: 768,
  scaling_factor: 0.18215,
};
