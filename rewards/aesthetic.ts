// The LAION aesthetic score as a ReNO reward (ReNO rewards/aesthetic.py AestheticLoss): the OpenAI CLIP ViT-L/14
// image embedding (here the HF port openai/clip-vit-large-patch14: vision tower + visual_projection, QuickGELU),
// L2-normalised with a zero-norm guard, through the improved-aesthetic-predictor head
// (sac+logos+ava1-l14-linearMSE.pth, linear); score = mean(head(e)), loss = 10 - score. No text side.
// ReNO feeds it the same 224 CLIP tensor as every other reward (clip_img_transform), which is also
// OpenAI CLIP's own preprocessing for square images; upstream runs it under fp16 autocast, reno in float32.
import * as tf from '../src/runtime/tf.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, WeightsError } from '../src/errors.js';
import { AestheticHead, loadAestheticHead } from '../src/models/aesthetic-head.js';
import { ClipImageEncoder, loadClipImageEncoder } from '../src/models/clip/image-encoder.js';
import { l2Normalize } from '../src/models/openclip/model.js';
import type { RewardInput } from './input.js';
import { CLIP224, clipPreprocess } from '../src/image/preprocess.js';
import type { PreparedReward, Reward, RewardSpec } from './types.js';

export { ClipImageEncoder, CLIP_TEXT_SIDE, loadClipImageEncoder } from '../src/models/clip/image-encoder.js';

export const AESTHETIC_OFFSET = 10;
/** The head file of the registry's aesthetic-head entry (the one ImageReward and the predictor's README use). */
export const AESTHETIC_HEAD = 'sac+logos+ava1-l14-linearMSE.pth';

/** The head file of the aesthetic-head folder: the registry's file name, else the folder's only .pth. */
export function aestheticHeadPath(dir: string): string {
  const named = path.join(dir, AESTHETIC_HEAD);
  if (fs.existsSync(named)) return named;
  const pths = fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.pth')) : [];
  if (pths.length === 1) return path.join(dir, pths[0]);
  throw new WeightsError(`aesthetic: ${AESTHETIC_HEAD} not found in ${dir}${pths.length ? ` (found ${pths.join(', ')}: which one?)` : ''}`);
}

export class AestheticReward implements Reward {
  readonly name = 'aesthetic';
  constructor(
    readonly encoder: ClipImageEncoder,
    readonly head: AestheticHead,
  ) {
    const dim = encoder.config.projectionDim;
    if (head.inFeatures !== dim)
      throw new ConfigError(`aesthetic: the head takes ${head.inFeatures}-d embeddings but the CLIP model projects to ${dim} (projection_dim)`);
  }

  /** mean over the batch of head(normalised CLIP image embedding): [B, S, S, 3] -> scalar. */
  scoreOf(pixels: tf.Tensor4D): tf.Scalar {
    return tf.tidy(() => {
      const e = l2Normalize(this.encoder.getImageFeatures(pixels), true); // [B, P], zero norm guarded
      return tf.mean(this.head.forward(e)) as tf.Scalar; // [B, 1] -> scalar
    });
  }

  /** The aesthetic score has no text side: `prompt` is ignored. */
  prepare(_prompt: string): PreparedReward {
    const size = this.encoder.config.imageSize;
    // ReNO's shared 224 view (made outside tidy: it belongs to the input); other sizes (tiny models) get their own
    const view = (input: RewardInput) =>
      size === 224 ? input.view(CLIP224, clipPreprocess) : input.view(`clip${size}`, (x) => clipPreprocess(x, size));
    return {
      score: (input) => this.scoreOf(view(input)),
      loss: (input) => {
        const pixels = view(input);
        return tf.tidy(() => tf.sub(AESTHETIC_OFFSET, this.scoreOf(pixels)) as tf.Scalar);
      },
      dispose: () => {},
    };
  }

  dispose(): void {
    this.encoder.dispose();
    this.head.dispose();
  }
}

export const aestheticReward: RewardSpec = {
  name: 'aesthetic',
  label: 'Aes Score',
  description: 'LAION aesthetic predictor (linear head on CLIP ViT-L/14 image embeddings): 10 - score',
  offset: AESTHETIC_OFFSET,
  models: ['aesthetic', 'aesthetic-head'],
  async load(ctx) {
    const head = loadAestheticHead(aestheticHeadPath(ctx.locate('aesthetic-head')));
    let encoder: ClipImageEncoder | null = null;
    try {
      encoder = loadClipImageEncoder(ctx.locate('aesthetic'));
      return new AestheticReward(encoder, head);
    } catch (e) {
      head.dispose();
      encoder?.dispose();
      throw e;
    }
  },
};
