// ImageReward v1.0 (THUDM/ImageReward) as a ReNO reward: loss = 2 - IR, IR = (MLP(h_CLS) - mean) / std, where h_CLS
// is the [CLS] state of BLIP's BERT text encoder cross-attending to the BLIP ViT's image tokens
// (ReNO rewards/imagereward.py ImageRewardLoss, which re-implements ImageReward.score_gard).
// The text branch reads the image, so nothing but the token ids can be prepared per prompt.
//
// Image: ReNO feeds the shared 224 tensor of clip_img_transform (antialiased bicubic resize of the shorter side to
// 224, centre crop, OpenAI CLIP mean/std) to every reward, ImageReward included. ImageReward's own preprocess
// (ImageReward.py _transform) is the same chain on a PIL image (PIL bicubic, a = -0.5, with antialiasing, on uint8
// pixels, then ToTensor): the geometry and normalisation agree; only the uint8 rounding of the PIL path differs.
// Text: tokenizer(prompt, padding='max_length', truncation=True, max_length=35); [CLS] stays at position 0 (neither
// ImageReward.score nor score_gard substitutes BLIP's [ENC] token).
import * as path from 'node:path';
import * as tf from '../src/runtime/tf.js';
import { ConfigError } from '../src/errors.js';
import { loadImageReward, type ImageRewardModel } from '../src/models/blip/image-reward.js';
import { IMAGE_REWARD_TEXT, imageRewardTokenizer, type WordPieceTokenizer } from '../src/tokenizers/wordpiece.js';
import type { RewardInput } from './input.js';
import { CLIP224, clipPreprocess } from '../src/image/preprocess.js';
import type { PreparedReward, Reward, RewardSpec } from './types.js';

/** ReNO's ImageRewardLoss: loss = 2 - score. */
export const IMAGE_REWARD_OFFSET = 2;

/** The files of the `imagereward` registry entry and the `bert-base-uncased` tokenizer entry. */
export const IMAGE_REWARD_FILES = { weights: 'ImageReward.pt', medConfig: 'med_config.json', vocab: 'vocab.txt' };

export class ImageReward implements Reward {
  readonly name = 'imagereward';
  constructor(
    readonly model: ImageRewardModel,
    readonly tokenizer: WordPieceTokenizer,
  ) {
    const vocab = model.config.text.vocabSize;
    if (tokenizer.vocab.size > vocab)
      throw new ConfigError(`the tokenizer has ${tokenizer.vocab.size} tokens but the text encoder only ${vocab} embeddings`);
  }

  /** Token ids and attention mask [1, L] of a prompt (L = 35, or fewer when the model has fewer positions). */
  tokens(prompt: string): { ids: tf.Tensor2D; mask: tf.Tensor2D } {
    const maxLength = Math.min(IMAGE_REWARD_TEXT.maxLength, this.model.config.text.maxPositions);
    const b = this.tokenizer.tokenize([prompt], { ...IMAGE_REWARD_TEXT, maxLength });
    return { ids: tf.tensor2d(b.ids, b.shape, 'int32'), mask: tf.tensor2d(b.mask, b.shape, 'int32') };
  }

  prepare(prompt: string): PreparedReward {
    const { ids, mask } = this.tokens(prompt);
    const text = this.model.text(ids, mask); // ids and the padding mask, kept until dispose
    tf.dispose([ids, mask]);
    // ReNO's shared 224 view; a model of another input size (tiny test models) gets its own view of that size.
    // The view is made outside any tidy: it belongs to the input, and the next reward asking for it needs it alive.
    const size = this.model.config.vision.imageSize;
    const view = (input: RewardInput) =>
      size === 224 ? input.view(CLIP224, clipPreprocess) : input.view(`clip${size}`, (x) => clipPreprocess(x, size));
    // mean over the image batch (ReNO: loss = (2 - rewards).mean())
    const scoreOf = (pixels: tf.Tensor4D): tf.Scalar => tf.mean(this.model.score(pixels, text));
    return {
      score: (input) => {
        const pixels = view(input);
        return tf.tidy(() => scoreOf(pixels));
      },
      loss: (input) => {
        const pixels = view(input);
        return tf.tidy(() => tf.sub(IMAGE_REWARD_OFFSET, scoreOf(pixels)) as tf.Scalar);
      },
      dispose: () => this.model.disposeText(text),
    };
  }

  dispose(): void {
    this.model.dispose();
  }
}

/** Load from the two model folders (THUDM/ImageReward and google-bert/bert-base-uncased). */
export function loadImageRewardReward(modelDir: string, tokenizerDir: string): ImageReward {
  const { tokenizer } = imageRewardTokenizer(path.join(tokenizerDir, IMAGE_REWARD_FILES.vocab));
  const model = loadImageReward(path.join(modelDir, IMAGE_REWARD_FILES.weights), path.join(modelDir, IMAGE_REWARD_FILES.medConfig));
  try {
    return new ImageReward(model, tokenizer);
  } catch (e) {
    model.dispose();
    throw e;
  }
}

export const imageRewardSpec: RewardSpec = {
  name: 'imagereward',
  label: 'ImageReward',
  description: 'ImageReward v1.0 (BLIP ViT-L + BERT cross-attention, human preference): 2 - (MLP(h_CLS) - mean) / std',
  offset: IMAGE_REWARD_OFFSET,
  models: ['imagereward', 'bert-base-uncased'],
  async load(ctx) {
    return loadImageRewardReward(ctx.locate('imagereward'), ctx.locate('bert-base-uncased'));
  },
};
