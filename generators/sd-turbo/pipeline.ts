// SD-Turbo's one-step text-to-image chain (diffusers StableDiffusionPipeline with EulerDiscreteScheduler, 1 step,
// guidance 0): tokens -> CLIPTextModel -> UNet at t = 999 -> x0 = x_T - sigma * eps -> VAE decode -> [0, 1].
import * as tf from '../../src/runtime/tf.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { WeightsError } from '../../src/errors.js';
import type { ClipTextModel } from '../../src/models/clip/text.js';
import { ClipTokenizer } from '../../src/tokenizers/clip-bpe.js';
import type { Conditioning, Generator, ImageSize } from '../types.js';
import { readSchedulerConfig } from '../../src/models/sd-turbo/config.js';
import { loadTextEncoder, loadUnet, loadVae, openCheckpointFile } from '../../src/models/sd-turbo/load.js';
import { oneStep, type EulerStep } from './scheduler.js';
import type { UNet2DConditionModel } from '../../src/models/sd-turbo/unet.js';
import type { AutoencoderKL } from '../../src/models/sd-turbo/vae.js';

/** Intermediates of one step, for parity checks and debugging. */
export interface StepTrace {
  latents: tf.Tensor4D;
  unetIn: tf.Tensor4D;
  eps: tf.Tensor4D;
  x0: tf.Tensor4D;
  /** raw VAE output, about [-1, 1] */
  decoded: tf.Tensor4D;
}

export class SdTurboPipeline implements Generator {
  readonly name = 'sd-turbo';
  readonly step: EulerStep;
  private constructor(
    readonly source: { dir: string; smokeTest: boolean },
    readonly tokenizer: ClipTokenizer,
    readonly textEncoder: ClipTextModel,
    readonly unet: UNet2DConditionModel,
    readonly vae: AutoencoderKL,
    scheduler: ReturnType<typeof readSchedulerConfig>,
  ) {
    this.step = oneStep(scheduler);
  }

  /**
   * Load a model folder in the diffusers layout (text_encoder/, tokenizer/, unet/, vae/, scheduler/); with modelFile,
   * the weights come from that single-file checkpoint in the original SD layout and the folder gives the configs and
   * the tokenizer.
   */
  static load(dir: string, opts: { smokeTest?: boolean; withEncoder?: boolean; modelFile?: string } = {}): SdTurboPipeline {
    if (!fs.existsSync(dir)) throw new WeightsError(`model folder not found: ${dir}`);
    const p = (...s: string[]) => path.join(dir, ...s);
    const scheduler = readSchedulerConfig(p('scheduler', 'scheduler_config.json'));
    const tokenizer = ClipTokenizer.fromFolder(p('tokenizer'));
    const single = opts.modelFile ? openCheckpointFile(opts.modelFile, dir) : null;
    let te: ClipTextModel | null = null;
    let unet: UNet2DConditionModel | null = null;
    try {
      te = loadTextEncoder(p('text_encoder'), single?.components.text_encoder);
      unet = loadUnet(p('unet'), single?.components.unet);
      const vae = loadVae(p('vae'), opts.withEncoder ?? false, single?.components.vae);
      return new SdTurboPipeline({ dir, smokeTest: opts.smokeTest ?? false }, tokenizer, te, unet, vae, scheduler);
    } catch (e) {
      te?.dispose();
      unet?.dispose();
      throw e;
    } finally {
      single?.close();
    }
  }

  /** A pipeline from modules already built (benchmarks of the full architecture with random weights). */
  static fromModules(m: {
    tokenizer: ClipTokenizer;
    textEncoder: ClipTextModel;
    unet: UNet2DConditionModel;
    vae: AutoencoderKL;
    scheduler: ReturnType<typeof readSchedulerConfig>;
    source: { dir: string; smokeTest: boolean };
  }): SdTurboPipeline {
    return new SdTurboPipeline(m.source, m.tokenizer, m.textEncoder, m.unet, m.vae, m.scheduler);
  }

  /** VAE downsampling factor: 2^(levels - 1). */
  get vaeScale(): number {
    return 2 ** (this.vae.config.blockOutChannels.length - 1);
  }

  nativeSize(): ImageSize {
    const s = this.unet.config.sampleSize * this.vaeScale;
    return { width: s, height: s };
  }

  latentShape(size: ImageSize): [number, number, number, number] {
    const f = this.vaeScale;
    const unetF = 2 ** (this.unet.config.blockOutChannels.length - 1);
    if (size.height % (f * unetF) || size.width % (f * unetF))
      throw new WeightsError(`image size ${size.width}x${size.height} must be a multiple of ${f * unetF} for this model`);
    return [1, size.height / f, size.width / f, this.unet.config.inChannels];
  }

  /** Token ids for prompts, padded with "!" (id 0) to 77 like SD 2.x / SD-Turbo. */
  tokenize(prompts: string[]): tf.Tensor2D {
    const t = this.tokenizer.tokenize(prompts, { pad: 'bang', clean: 'hf', length: this.textEncoder.config.maxPositions });
    return tf.tensor2d(t.ids, t.shape, 'int32');
  }

  /** The UNet's context: the text encoder's last hidden state (final layer norm applied) [B, 77, D]. */
  encodeIds(ids: tf.Tensor2D): tf.Tensor {
    this.textEncoder.unpark(); // back from host memory if parkPromptModels moved it there
    const out = this.textEncoder.forward(ids);
    out.pooled.dispose();
    return out.lastHiddenState;
  }

  prepare(prompt: string): Conditioning {
    const ids = this.tokenize([prompt]);
    const ctx = this.encodeIds(ids);
    ids.dispose();
    return {
      tensors: [ctx],
      dispose: () => {
        this.unet.conditioning.release(); // the values the UNet made from this context
        ctx.dispose();
      },
    };
  }

  /** The text encoder runs once per prompt: its weights (1.3 GB for SD-Turbo's) wait in host memory meanwhile. */
  async parkPromptModels(): Promise<void> {
    await this.textEncoder.park();
  }

  /** The one-step chain with every intermediate (noise z is unit variance, NHWC). */
  trace(z: tf.Tensor4D, ctx: tf.Tensor): StepTrace {
    return tf.tidy(() => {
      const s = this.step;
      const latents = tf.mul(z, s.initNoiseSigma) as tf.Tensor4D; // x_T
      const unetIn = tf.mul(latents, s.inputScale) as tf.Tensor4D; // scale_model_input
      // the timestep and the prompt's context are constants of every gradient taken here (the noise is optimised)
      const eps = this.unet.forward(unetIn, [s.timestep], ctx, { constantConditioning: true });
      const x0 = tf.sub(latents, tf.mul(eps, s.sigma)) as tf.Tensor4D; // epsilon prediction, Euler to sigma 0
      const decoded = this.vae.decode(tf.div(x0, this.vae.config.scalingFactor) as tf.Tensor4D);
      return { latents, unetIn, eps, x0, decoded };
    });
  }

  /**
   * z [B, h, w, 4] -> image [B, H, W, 3] in [0, 1] (x / 2 + 0.5, clamped like diffusers' postprocess). A non-finite
   * pixel stays NaN as torch.clamp keeps it (tfjs' wasm clip turns NaN into 0, a black pixel that would look valid):
   * + x * 0 is 0 for a finite x and NaN otherwise, and adds nothing to the gradient, so the loop can see it.
   */
  generate(z: tf.Tensor4D, cond: Conditioning): tf.Tensor4D {
    return tf.tidy(() => {
      const img = this.trace(z, cond.tensors[0]).decoded; // the other intermediates are freed by tidy
      const x = tf.add(tf.mul(img, 0.5), 0.5);
      return tf.add(tf.clipByValue(x, 0, 1), tf.mul(x, 0)) as tf.Tensor4D;
    });
  }

  dispose(): void {
    this.textEncoder.dispose();
    this.unet.dispose();
    this.vae.dispose();
  }
}
