// Builds a second fixture root with the parity fixtures' layout but other sizes (non-square latents, other channel
// and head counts, layers_per_block 1, batch 2), so the runner is shown to read every size from the fixture.
// The references are computed by reno itself on the pure-JS cpu backend; the runner is then run on another backend.
// (The upstream fixtures prove the port; this root proves the runner and the models are size-agnostic.)
import * as tf from '../../src/runtime/tf.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { loadTextEncoder, loadUnet, loadVae } from '../../src/models/sd-turbo/load.js';
import { oneStep } from '../../generators/sd-turbo/scheduler.js';
import { schedulerConfig, unetConfig, vaeConfig } from '../../src/models/sd-turbo/config.js';
import { UNet2DConditionModel } from '../../src/models/sd-turbo/unet.js';
import { AutoencoderKL } from '../../src/models/sd-turbo/vae.js';
import { useBackend } from '../../src/runtime/backend.js';
import { clipTextModelConfig } from '../../src/models/clip/config.js';
import { ClipTextModel } from '../../src/models/clip/text.js';
import type { Module } from '../../src/nn/module.js';
import { gaussian } from '../../src/optimize/noise.js';
import { nchwValues, nhwcTensor } from '../../src/parity/tensors.js';
import { writeNpy } from '../../src/weights/npy.js';
import { randomStateDict } from '../../src/weights/random.js';
import { writeSafetensors } from '../../src/weights/safetensors.js';

const TE = {
  hidden_act: 'gelu',
  hidden_size: 24,
  intermediate_size: 40,
  num_attention_heads: 3,
  num_hidden_layers: 2,
  max_position_embeddings: 77,
  vocab_size: 96,
  layer_norm_eps: 1e-5,
  eos_token_id: 2,
};
const UNET = {
  block_out_channels: [12, 24],
  attention_head_dim: [3, 2],
  down_block_types: ['CrossAttnDownBlock2D', 'DownBlock2D'],
  up_block_types: ['UpBlock2D', 'CrossAttnUpBlock2D'],
  layers_per_block: 1,
  cross_attention_dim: 24,
  norm_num_groups: 4,
  in_channels: 4,
  out_channels: 4,
  use_linear_projection: true,
  sample_size: 6,
};
const VAE = {
  block_out_channels: [8, 12],
  layers_per_block: 1,
  norm_num_groups: 4,
  latent_channels: 4,
  in_channels: 3,
  out_channels: 3,
  down_block_types: ['DownEncoderBlock2D', 'DownEncoderBlock2D'],
  up_block_types: ['UpDecoderBlock2D', 'UpDecoderBlock2D'],
};
const SCHED = {
  beta_start: 0.00085,
  beta_end: 0.012,
  beta_schedule: 'scaled_linear',
  num_train_timesteps: 1000,
  prediction_type: 'epsilon',
  timestep_spacing: 'trailing',
  steps_offset: 1,
};
const LAT = { h: 6, w: 10 }; // non-square latents

function save(dir: string, file: string, cfg: object, m: Module, seed: number): void {
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(cfg));
  writeSafetensors(path.join(dir, file), randomStateDict(m, seed));
}

function npyOut(dir: string, name: string, shape: number[], data: Float32Array | Int32Array): void {
  fs.mkdirSync(path.join(dir, 'io'), { recursive: true });
  writeNpy(path.join(dir, 'io', `${name}.npy`), shape, data);
}

const randn = (shape: number[], seed: number) =>
  gaussian(
    shape.reduce((a, b) => a * b, 1),
    seed,
  );

export async function buildSecondLayout(root: string): Promise<void> {
  await useBackend('cpu', { quiet: true });
  const te = path.join(root, 'text_encoder');
  const un = path.join(root, 'unet');
  const va = path.join(root, 'vae');
  save(te, 'model.safetensors', TE, new ClipTextModel(clipTextModelConfig(TE, 'te')), 1);
  save(un, 'diffusion_pytorch_model.safetensors', UNET, new UNet2DConditionModel(unetConfig(UNET, 'unet')), 2);
  save(va, 'diffusion_pytorch_model.safetensors', VAE, new AutoencoderKL(vaeConfig(VAE, 'vae')), 3);
  fs.mkdirSync(path.join(root, 'scheduler'), { recursive: true });
  fs.writeFileSync(path.join(root, 'scheduler', 'scheduler_config.json'), JSON.stringify(SCHED));

  const ids = Int32Array.from({ length: 2 * 77 }, (_, i) => (i % 77 < 9 ? (i * 37) % 95 : 0));
  const teM = loadTextEncoder(te);
  const idsT = tf.tensor2d(ids, [2, 77], 'int32');
  const t = teM.forward(idsT, undefined, true);
  npyOut(te, 'input_ids', [2, 77], ids);
  npyOut(te, 'last_hidden_state', [2, 77, 24], t.lastHiddenState.dataSync() as Float32Array);
  npyOut(te, 'pooler_output', [2, 24], t.pooled.dataSync() as Float32Array);

  const unM = loadUnet(un);
  const sample = randn([2, 4, LAT.h, LAT.w], 4);
  const ctx = randn([2, 77, 24], 5);
  const s = nhwcTensor({ shape: [2, 4, LAT.h, LAT.w], dtype: 'float32', data: sample });
  const out = unM.forward(s, [999, 500], tf.tensor3d(ctx, [2, 77, 24]));
  npyOut(un, 'sample', [2, 4, LAT.h, LAT.w], sample);
  npyOut(un, 'timesteps', [2], Float32Array.from([999, 500]));
  npyOut(un, 'encoder_hidden_states', [2, 77, 24], ctx);
  npyOut(un, 'out_sample', [2, 4, LAT.h, LAT.w], await nchwValues(out));

  const vaM = loadVae(va, true);
  const lat = randn([2, 4, LAT.h, LAT.w], 6);
  const dec = vaM.decode(nhwcTensor({ shape: [2, 4, LAT.h, LAT.w], dtype: 'float32', data: lat }));
  npyOut(va, 'latents', [2, 4, LAT.h, LAT.w], lat);
  npyOut(va, 'decoded', [2, 3, LAT.h * 2, LAT.w * 2], await nchwValues(dec));
  const img = randn([1, 3, 12, 20], 7).map((x) => Math.tanh(x));
  const enc = vaM.encode(nhwcTensor({ shape: [1, 3, 12, 20], dtype: 'float32', data: img }));
  npyOut(va, 'image_in', [1, 3, 12, 20], img);
  npyOut(va, 'enc_mean', [1, 4, 6, 10], await nchwValues(enc.mean));
  npyOut(va, 'enc_logvar', [1, 4, 6, 10], await nchwValues(enc.logvar));

  const po = path.join(root, 'pipeline_onestep');
  fs.mkdirSync(po, { recursive: true });
  fs.writeFileSync(path.join(po, 'manifest.json'), JSON.stringify({ uses_weights_of: ['text_encoder', 'unet', 'vae'], scheduler_config: SCHED }));
  const step = oneStep(schedulerConfig(SCHED, 'sched'));
  const noise = randn([1, 4, LAT.h, LAT.w], 8);
  const pIds = ids.slice(0, 77);
  const text = teM.forward(tf.tensor2d(pIds, [1, 77], 'int32')).lastHiddenState;
  const chain = (z: tf.Tensor4D) => {
    const latents = tf.mul(z, step.initNoiseSigma) as tf.Tensor4D;
    const unetIn = tf.mul(latents, step.inputScale) as tf.Tensor4D;
    const eps = unM.forward(unetIn, [step.timestep], text);
    const x0 = tf.sub(latents, tf.mul(eps, step.sigma)) as tf.Tensor4D;
    return { latents, unetIn, eps, x0, image: vaM.decode(tf.div(x0, vaM.config.scalingFactor) as tf.Tensor4D) };
  };
  const z = nhwcTensor({ shape: [1, 4, LAT.h, LAT.w], dtype: 'float32', data: noise });
  const o = chain(z);
  const grad = tf.grad((x: tf.Tensor) => tf.sum(tf.square(chain(x as tf.Tensor4D).image)))(z);
  const lat4 = [1, 4, LAT.h, LAT.w];
  npyOut(po, 'input_ids', [1, 77], pIds);
  npyOut(po, 'text_emb', [1, 77, 24], text.dataSync() as Float32Array);
  npyOut(po, 'noise', lat4, noise);
  for (const [k, v] of Object.entries({ latents: o.latents, unet_in: o.unetIn, eps: o.eps, x0: o.x0 })) npyOut(po, k, lat4, await nchwValues(v));
  npyOut(po, 'image', [1, 3, LAT.h * 2, LAT.w * 2], await nchwValues(o.image));
  npyOut(po, 'loss', [1], tf.sum(tf.square(o.image)).dataSync() as Float32Array);
  npyOut(po, 'grad_noise', lat4, await nchwValues(grad));
  tf.disposeVariables();
  teM.dispose();
  unM.dispose();
  vaM.dispose();
}
