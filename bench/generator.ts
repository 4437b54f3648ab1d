// Generator benchmark: forward and forward + input-gradient time and peak memory for the text encoder, the UNet and
// the VAE decoder, at the tiny preset size or the full SD-Turbo architecture (random weights), per backend.
//   npx tsx bench/generator.ts [--arch tiny|full] [--px 256|512] [--backends cpu,wasm] [--parts te,unet,vae] [--reps 3]
import * as tf from '../src/runtime/tf.js';
import { unetConfig, vaeConfig } from '../src/models/sd-turbo/config.js';
import { UNet2DConditionModel } from '../src/models/sd-turbo/unet.js';
import { AutoencoderKL } from '../src/models/sd-turbo/vae.js';
import { useBackend } from '../src/runtime/backend.js';
import { clipTextModelConfig } from '../src/models/clip/config.js';
import { ClipTextModel } from '../src/models/clip/text.js';
import { causalMask } from '../src/nn/ops.js';
import { randomInit } from '../src/weights/load.js';
import { TEXT_ENCODER as TINY_TE, UNET as TINY_UNET, VAE as TINY_VAE } from '../scripts/tiny/sd-turbo.js';
import { SD_TURBO_TEXT_ENCODER, SD_TURBO_UNET, SD_TURBO_VAE } from './sd-turbo-configs.js';
import { backends, flag, machine, measure, row } from './util.js';

const arch = flag('arch', 'tiny');
const full = arch === 'full';
const parts = flag('parts', 'te,unet,vae').split(',');
const reps = Number(flag('reps', full ? '1' : '3'));
const tec = clipTextModelConfig(full ? SD_TURBO_TEXT_ENCODER : TINY_TE, 'te');
const uc = unetConfig(full ? SD_TURBO_UNET : TINY_UNET, 'unet');
const vc = vaeConfig(full ? SD_TURBO_VAE : TINY_VAE, 'vae');
const vaeScale = 2 ** (vc.blockOutChannels.length - 1);
const px = Number(flag('px', String(uc.sampleSize * vaeScale)));
const lat = px / vaeScale;

console.log(`# generator benchmark, ${arch} architecture, ${px} px (latent ${lat}x${lat}), ${new Date().toISOString().slice(0, 10)}`);
console.log(`# ${machine()}`);
console.log(row(['backend', 'part', 'pass', 'seconds', 'peak tensor MB', 'RSS MB']));
console.log(row(['---', '---', '---', '---', '---', '---']));
for (const b of await backends(flag('backends', full ? 'wasm' : 'cpu,wasm'))) {
  await useBackend(b, { quiet: true });
  const report = (part: string, pass: string, m: { seconds: number; peakMB: number; rssMB: number }) =>
    console.log(row([b, part, pass, m.seconds, m.peakMB.toFixed(0), m.rssMB.toFixed(0)]));
  const fail = (part: string, pass: string, e: unknown) =>
    console.log(row([b, part, pass, `failed: ${String((e as Error).message ?? e).slice(0, 60)}`, '', '']));
  const ctx = tf.randomNormal([1, 77, tec.hiddenSize]);
  if (parts.includes('te')) {
    const te = new ClipTextModel(tec);
    randomInit(te, 1);
    const ids = tf.tensor2d(
      Int32Array.from({ length: 77 }, (_, i) => (i < 10 ? 100 + i : 0)),
      [1, 77],
      'int32',
    );
    const tm = te.text_model;
    const mask = causalMask(77);
    // the input gradient is taken with respect to the token embeddings (ids are not differentiable)
    const emb = tf.tidy(() => tm.embeddings.forward(ids));
    const fromEmb = (e: tf.Tensor) => tm.final_layer_norm.forward(tm.encoder.forward(e, mask)[0]);
    for (const [pass, fn] of [
      ['forward', () => tf.tidy(() => te.forward(ids).lastHiddenState)],
      ['forward+grad', () => tf.tidy(() => tf.grad((e: tf.Tensor) => tf.sum(fromEmb(e)))(emb))],
    ] as const) {
      try {
        report('text encoder', pass, await measure(fn, reps));
      } catch (e) {
        fail('text encoder', pass, e);
      }
    }
    tf.dispose([mask, emb]);
    te.dispose();
    ids.dispose();
  }
  if (parts.includes('unet')) {
    const unet = new UNet2DConditionModel(uc);
    randomInit(unet, 2);
    const x = tf.randomNormal([1, lat, lat, uc.inChannels]) as tf.Tensor4D;
    for (const [pass, fn] of [
      ['forward', () => tf.tidy(() => unet.forward(x, [999], ctx))],
      ['forward+grad', () => tf.tidy(() => tf.grad((z: tf.Tensor) => tf.sum(unet.forward(z as tf.Tensor4D, [999], ctx)))(x))],
    ] as const) {
      try {
        report('unet', pass, await measure(fn, reps));
      } catch (e) {
        fail('unet', pass, e);
      }
    }
    unet.dispose();
    x.dispose();
  }
  if (parts.includes('vae')) {
    const vae = new AutoencoderKL(vc, false);
    randomInit(vae, 3);
    const z = tf.randomNormal([1, lat, lat, vc.latentChannels]) as tf.Tensor4D;
    for (const [pass, fn] of [
      ['forward', () => tf.tidy(() => vae.decode(z))],
      ['forward+grad', () => tf.tidy(() => tf.grad((q: tf.Tensor) => tf.sum(vae.decode(q as tf.Tensor4D)))(z))],
    ] as const) {
      try {
        report('vae decoder', pass, await measure(fn, reps));
      } catch (e) {
        fail('vae decoder', pass, e);
      }
    }
    vae.dispose();
    z.dispose();
  }
  ctx.dispose();
}
