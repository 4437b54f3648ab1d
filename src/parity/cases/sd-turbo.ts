// Parity cases for SD-Turbo's parts: text_encoder, unet, vae and the whole one-step chain with its gradient.
import * as tf from '../../runtime/tf.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readJsonFile } from '../../config/json.js';
import { readSchedulerConfig, schedulerConfig } from '../../models/sd-turbo/config.js';
import { loadTextEncoder, loadUnet, loadVae } from '../../models/sd-turbo/load.js';
import { oneStep } from '../../../generators/sd-turbo/scheduler.js';
import { nchwValues, nhwcTensor, tensorOf, values } from '../tensors.js';
import { check, npy, type Check, type ParityCase, type ParityContext } from '../types.js';

export const textEncoderCase: ParityCase = {
  name: 'text_encoder',
  async run(dir, ctx) {
    const m = loadTextEncoder(dir);
    const ids = tensorOf(npy(dir, 'input_ids'), 'int32') as tf.Tensor2D;
    const out = m.forward(ids, undefined, true);
    const checks: Check[] = [
      check('text_encoder/last_hidden_state', await values(out.lastHiddenState), npy(dir, 'last_hidden_state').data, 'output', ctx),
      check('text_encoder/pooler_output', await values(out.pooled), npy(dir, 'pooler_output').data, 'output', ctx),
    ];
    if (fs.existsSync(path.join(dir, 'io', 'hidden_states.npy'))) {
      const hs = tf.stack(out.hiddenStates!);
      checks.push(check('text_encoder/hidden_states', await values(hs), npy(dir, 'hidden_states').data, 'output', ctx));
      hs.dispose();
    }
    tf.dispose([ids, out.lastHiddenState, out.pooled, ...(out.hiddenStates ?? [])]);
    m.dispose();
    return checks;
  },
};

export const unetCase: ParityCase = {
  name: 'unet',
  async run(dir, ctx) {
    const m = loadUnet(dir);
    const sample = nhwcTensor(npy(dir, 'sample'));
    const ctxT = tensorOf(npy(dir, 'encoder_hidden_states'));
    const ts = [...npy(dir, 'timesteps').data];
    const ref = npy(dir, 'out_sample');
    const out = m.forward(sample, ts, ctxT);
    const all = await nchwValues(out);
    const per = all.length / ref.shape[0];
    const checks: Check[] = [check('unet/out_sample', all, ref.data, 'output', ctx)];
    // one line per batch item, each with its own timestep
    for (let b = 0; b < ref.shape[0] && ref.shape[0] > 1; b++)
      checks.push(
        check(
          `unet/out_sample[${b}] (t=${ts[b] ?? ts[0]})`,
          all.subarray(b * per, (b + 1) * per),
          ref.data.subarray(b * per, (b + 1) * per),
          'output',
          ctx,
        ),
      );
    tf.dispose([sample, ctxT, out]);
    m.dispose();
    return checks;
  },
};

export const vaeCase: ParityCase = {
  name: 'vae',
  async run(dir, ctx) {
    const hasEnc = fs.existsSync(path.join(dir, 'io', 'image_in.npy'));
    const m = loadVae(dir, hasEnc);
    const z = nhwcTensor(npy(dir, 'latents'));
    const dec = m.decode(z);
    const checks: Check[] = [check('vae/decoded', await nchwValues(dec), npy(dir, 'decoded').data, 'output', ctx)];
    if (hasEnc) {
      const x = nhwcTensor(npy(dir, 'image_in'));
      const { mean, logvar } = m.encode(x);
      checks.push(check('vae/enc_mean', await nchwValues(mean), npy(dir, 'enc_mean').data, 'output', ctx));
      checks.push(check('vae/enc_logvar', await nchwValues(logvar), npy(dir, 'enc_logvar').data, 'output', ctx));
      tf.dispose([x, mean, logvar]);
    }
    tf.dispose([z, dec]);
    m.dispose();
    return checks;
  },
};

/** The one-step chain of pipeline_onestep, with the weights of the sibling text_encoder, unet and vae fixtures. */
export const pipelineOnestepCase: ParityCase = {
  name: 'pipeline_onestep',
  async run(dir, ctx: ParityContext) {
    const manifest = readJsonFile(path.join(dir, 'manifest.json'));
    const uses = (manifest.uses_weights_of as string[] | undefined) ?? ['text_encoder', 'unet', 'vae'];
    const [teDir, unetDir, vaeDir] = uses.map((u) => path.join(ctx.root, u));
    const sched = manifest.scheduler_config
      ? schedulerConfig(manifest.scheduler_config as Record<string, unknown>, `${dir}/manifest.json scheduler_config`)
      : readSchedulerConfig(path.join(ctx.root, 'scheduler', 'scheduler_config.json'));
    const step = oneStep(sched);
    const te = loadTextEncoder(teDir);
    const unet = loadUnet(unetDir);
    const vae = loadVae(vaeDir, false);
    const ids = tensorOf(npy(dir, 'input_ids'), 'int32') as tf.Tensor2D;
    const text = te.forward(ids);
    const noise = nhwcTensor(npy(dir, 'noise'));
    const chain = (z: tf.Tensor4D) => {
      const latents = tf.mul(z, step.initNoiseSigma) as tf.Tensor4D;
      const unetIn = tf.mul(latents, step.inputScale) as tf.Tensor4D;
      const eps = unet.forward(unetIn, [step.timestep], text.lastHiddenState);
      const x0 = tf.sub(latents, tf.mul(eps, step.sigma)) as tf.Tensor4D;
      const image = vae.decode(tf.div(x0, vae.config.scalingFactor) as tf.Tensor4D);
      return { latents, unetIn, eps, x0, image };
    };
    const out = tf.tidy(() => chain(noise));
    const loss = tf.tidy(() => tf.sum(tf.square(out.image)));
    // the gradient is taken by tf.grad through the same chain: d sum(image^2) / d noise
    const grad = tf.tidy(() => tf.grad((z: tf.Tensor) => tf.sum(tf.square(chain(z as tf.Tensor4D).image)))(noise));
    const checks: Check[] = [
      check('pipeline_onestep/text_emb', await values(text.lastHiddenState), npy(dir, 'text_emb').data, 'output', ctx),
      check('pipeline_onestep/latents', await nchwValues(out.latents), npy(dir, 'latents').data, 'output', ctx),
      check('pipeline_onestep/unet_in', await nchwValues(out.unetIn), npy(dir, 'unet_in').data, 'output', ctx),
      check('pipeline_onestep/eps', await nchwValues(out.eps), npy(dir, 'eps').data, 'output', ctx),
      check('pipeline_onestep/x0', await nchwValues(out.x0), npy(dir, 'x0').data, 'output', ctx),
      check('pipeline_onestep/image', await nchwValues(out.image), npy(dir, 'image').data, 'output', ctx),
      check('pipeline_onestep/loss', await values(loss), npy(dir, 'loss').data, 'output', ctx),
      check('pipeline_onestep/grad_noise', await nchwValues(grad), npy(dir, 'grad_noise').data, 'gradient', ctx),
    ];
    tf.dispose([ids, text.lastHiddenState, text.pooled, noise, out.latents, out.unetIn, out.eps, out.x0, out.image, loss, grad]);
    te.dispose();
    unet.dispose();
    vae.dispose();
    return checks;
  },
};
