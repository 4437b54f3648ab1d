// Typed configs for SD-Turbo's parts, built field by field from the diffusers config files
// (unet/config.json, vae/config.json, scheduler/scheduler_config.json). Unsupported options fail naming the key.
import { Fields, readJsonFile, type Json } from '../../config/json.js';
import { ConfigError } from '../../errors.js';

export interface UNetConfig {
  inChannels: number;
  outChannels: number;
  blockOutChannels: number[];
  downBlockTypes: ('CrossAttnDownBlock2D' | 'DownBlock2D')[];
  upBlockTypes: ('CrossAttnUpBlock2D' | 'UpBlock2D')[];
  layersPerBlock: number[];
  /** Heads per level (diffusers: num_attention_heads or, by its naming bug, attention_head_dim). */
  heads: number[];
  crossAttentionDim: number[];
  transformerLayers: number[];
  useLinearProjection: boolean;
  normGroups: number;
  normEps: number;
  flipSinToCos: boolean;
  freqShift: number;
  convInKernel: number;
  convOutKernel: number;
  downsamplePadding: number;
  timeEmbedDim: number;
  sampleSize: number;
}

export interface VaeConfig {
  inChannels: number;
  outChannels: number;
  latentChannels: number;
  blockOutChannels: number[];
  layersPerBlock: number;
  normGroups: number;
  scalingFactor: number;
  midBlockAddAttention: boolean;
  useQuantConv: boolean;
  usePostQuantConv: boolean;
  sampleSize: number;
}

export interface SchedulerConfig {
  numTrainTimesteps: number;
  betaStart: number;
  betaEnd: number;
  betaSchedule: 'scaled_linear' | 'linear';
  predictionType: 'epsilon' | 'v_prediction';
  timestepSpacing: 'trailing' | 'leading' | 'linspace';
  stepsOffset: number;
}

function unsupported(f: Fields, key: string, allowed: unknown[]): void {
  const v = f.obj[key] ?? null;
  if (!allowed.some((a) => a === v))
    throw new ConfigError(
      `${f.src}: "${key}" = ${JSON.stringify(v)} is not supported (reno supports ${allowed.map((a) => JSON.stringify(a)).join(', ')})`,
    );
}

export function unetConfig(json: Json, src: string): UNetConfig {
  const f = new Fields(json, src);
  const blockOut = f.ints('block_out_channels');
  const n = blockOut.length;
  const down = f.strs('down_block_types');
  const up = f.strs('up_block_types');
  if (down.length !== n || up.length !== n)
    throw new ConfigError(`${src}: down_block_types and up_block_types need ${n} entries (one per block_out_channels)`);
  for (const t of down)
    if (t !== 'CrossAttnDownBlock2D' && t !== 'DownBlock2D') throw new ConfigError(`${src}: down block type ${t} is not supported`);
  for (const t of up) if (t !== 'CrossAttnUpBlock2D' && t !== 'UpBlock2D') throw new ConfigError(`${src}: up block type ${t} is not supported`);
  unsupported(f, 'mid_block_type', ['UNetMidBlock2DCrossAttn', null]);
  unsupported(f, 'act_fn', ['silu', null]);
  unsupported(f, 'time_embedding_type', ['positional', null]);
  unsupported(f, 'class_embed_type', [null]);
  unsupported(f, 'addition_embed_type', [null]);
  unsupported(f, 'encoder_hid_dim', [null]);
  unsupported(f, 'time_cond_proj_dim', [null]);
  unsupported(f, 'timestep_post_act', [null]);
  unsupported(f, 'time_embedding_act_fn', [null]);
  unsupported(f, 'resnet_time_scale_shift', ['default', null]);
  unsupported(f, 'only_cross_attention', [false, null]);
  unsupported(f, 'dual_cross_attention', [false, null]);
  unsupported(f, 'center_input_sample', [false, null]);
  const heads = f.has('num_attention_heads') ? f.intOrList('num_attention_heads', n) : f.intOrList('attention_head_dim', n, 8);
  const cfg: UNetConfig = {
    inChannels: f.int('in_channels', 4),
    outChannels: f.int('out_channels', 4),
    blockOutChannels: blockOut,
    downBlockTypes: down as UNetConfig['downBlockTypes'],
    upBlockTypes: up as UNetConfig['upBlockTypes'],
    layersPerBlock: f.intOrList('layers_per_block', n, 2),
    heads,
    crossAttentionDim: f.intOrList('cross_attention_dim', n, 1280),
    transformerLayers: f.intOrList('transformer_layers_per_block', n, 1),
    useLinearProjection: f.bool('use_linear_projection', false),
    normGroups: f.int('norm_num_groups', 32),
    normEps: f.num('norm_eps', 1e-5),
    flipSinToCos: f.bool('flip_sin_to_cos', true),
    freqShift: f.num('freq_shift', 0),
    convInKernel: f.int('conv_in_kernel', 3),
    convOutKernel: f.int('conv_out_kernel', 3),
    downsamplePadding: f.int('downsample_padding', 1),
    timeEmbedDim: f.int('time_embedding_dim', blockOut[0] * 4),
    sampleSize: f.int('sample_size', 64),
  };
  for (let i = 0; i < n; i++)
    if (blockOut[i] % heads[i] !== 0)
      throw new ConfigError(`${src}: block_out_channels[${i}] = ${blockOut[i]} is not divisible by ${heads[i]} heads`);
  return cfg;
}

export function vaeConfig(json: Json, src: string): VaeConfig {
  const f = new Fields(json, src);
  unsupported(f, 'act_fn', ['silu', null]);
  for (const t of f.strs('down_block_types', []))
    if (t !== 'DownEncoderBlock2D') throw new ConfigError(`${src}: down block type ${t} is not supported`);
  for (const t of f.strs('up_block_types', [])) if (t !== 'UpDecoderBlock2D') throw new ConfigError(`${src}: up block type ${t} is not supported`);
  return {
    inChannels: f.int('in_channels', 3),
    outChannels: f.int('out_channels', 3),
    latentChannels: f.int('latent_channels', 4),
    blockOutChannels: f.ints('block_out_channels'),
    layersPerBlock: f.int('layers_per_block', 1),
    normGroups: f.int('norm_num_groups', 32),
    scalingFactor: f.num('scaling_factor', 0.18215),
    midBlockAddAttention: f.bool('mid_block_add_attention', true),
    useQuantConv: f.bool('use_quant_conv', true),
    usePostQuantConv: f.bool('use_post_quant_conv', true),
    sampleSize: f.int('sample_size', 512),
  };
}

export function schedulerConfig(json: Json, src: string): SchedulerConfig {
  const f = new Fields(json, src);
  unsupported(f, 'use_karras_sigmas', [false, null]);
  unsupported(f, 'rescale_betas_zero_snr', [false, null]);
  unsupported(f, 'trained_betas', [null]);
  unsupported(f, 'interpolation_type', ['linear', null]);
  return {
    numTrainTimesteps: f.int('num_train_timesteps', 1000),
    betaStart: f.num('beta_start', 0.0001),
    betaEnd: f.num('beta_end', 0.02),
    betaSchedule: f.oneOf('beta_schedule', ['scaled_linear', 'linear'] as const, 'linear'),
    predictionType: f.oneOf('prediction_type', ['epsilon', 'v_prediction'] as const, 'epsilon'),
    timestepSpacing: f.oneOf('timestep_spacing', ['trailing', 'leading', 'linspace'] as const, 'linspace'),
    stepsOffset: f.int('steps_offset', 0),
  };
}

export function readUnetConfig(file: string): UNetConfig {
  return unetConfig(readJsonFile(file, 'UNet config'), file);
}
export function readVaeConfig(file: string): VaeConfig {
  return vaeConfig(readJsonFile(file, 'VAE config'), file);
}
export function readSchedulerConfig(file: string): SchedulerConfig {
  return schedulerConfig(readJsonFile(file, 'scheduler config'), file);
}
