// The CLIP-similarity reward shared by PickScore and the CLIP score (ReNO rewards/pickscore.py PickScoreLoss,
// rewards/clip.py CLIPLoss, via BaseRewardLoss.__call__ in rewards/base_reward.py): L2-normalised image and text
// features of an HF CLIPModel, score = exp(logit_scale) * mean(cos(img, txt)), loss = offset - score. The text
// features are computed once per prompt; the image goes through the shared 224 CLIP preprocessing.
import * as tf from '../../src/runtime/tf.js';
import { ClipModel } from '../../src/models/clip/model.js';
import { l2Normalize } from '../../src/nn/ops.js';
import type { ClipTokenizer } from '../../src/tokenizers/clip-bpe.js';
import type { RewardInput } from '../input.js';
import { CLIP224, clipPreprocess } from '../../src/image/preprocess.js';
import type { PreparedReward, Reward } from '../types.js';
import { tokenizeForClip } from '../../src/models/clip/load.js';

/** cos(a, b) of normalised rows, averaged over the image batch: [Bi, P] x [1, P] -> scalar. */
function meanCos(img: tf.Tensor2D, txt: tf.Tensor2D): tf.Scalar {
  return tf.mean(tf.sum(tf.mul(img, txt), -1));
}

export class ClipSimilarityReward implements Reward {
  constructor(
    readonly name: string,
    readonly model: ClipModel,
    readonly tokenizer: ClipTokenizer,
    /** The const of ReNO's `const - score` loss (30 PickScore, 100 CLIP). */
    readonly offset: number,
    /** Frees the model (a shared model's release: rewards/clip/load.ts acquireClipModel); default model.dispose(). */
    private readonly release?: () => void,
  ) {}

  /** Normalised text features [1, P] of the prompt (no gradient needed: computed once, kept until dispose). */
  textFeatures(prompt: string): tf.Tensor2D {
    this.model.text_model.unpark();
    this.model.text_projection.unpark();
    const maxLen = Math.min(77, this.model.config.text.maxPositions);
    const { ids, mask } = tokenizeForClip(this.tokenizer, [prompt], maxLen);
    const feats = tf.tidy(() => l2Normalize(this.model.getTextFeatures(ids, mask)) as tf.Tensor2D);
    tf.dispose([ids, mask]);
    return feats;
  }

  prepare(prompt: string): PreparedReward {
    const txt = this.textFeatures(prompt);
    // exp(logit_scale) * mean cos; the shared view is made outside any tidy here: it belongs to the input (and the
    // caller's scope), so the next reward asking for it gets a live tensor
    // exp(logit_scale) of the checkpoint, on the device (no read-back: WebGPU in Node has no synchronous one)
    const scoreOf = (pixels: tf.Tensor4D): tf.Scalar =>
      tf.mul(meanCos(l2Normalize(this.model.getImageFeatures(pixels)) as tf.Tensor2D, txt), tf.exp(this.model.logit_scale.v)) as tf.Scalar;
    // ReNO's shared 224 view; a model of another input size (tiny test models) gets its own view of that size
    const size = this.model.config.vision.imageSize;
    const view = (input: RewardInput) =>
      size === 224 ? input.view(CLIP224, clipPreprocess) : input.view(`clip${size}`, (x) => clipPreprocess(x, size));
    return {
      score: (input) => {
        const pixels = view(input);
        return tf.tidy(() => scoreOf(pixels));
      },
      loss: (input) => {
        const pixels = view(input);
        return tf.tidy(() => tf.sub(this.offset, scoreOf(pixels)) as tf.Scalar);
      },
      dispose: () => txt.dispose(),
    };
  }

  /** The text tower runs once per prompt: its weights (1.4 GB for ViT-H/14's) wait in host memory meanwhile. */
  async parkPromptModels(): Promise<void> {
    await this.model.text_model.park();
    await this.model.text_projection.park();
  }

  dispose(): void {
    if (this.release) this.release();
    else this.model.dispose();
  }
}
