// HPS v2.1 as a ReNO reward (ReNO rewards/hps.py HPSLoss): open_clip's ViT-H-14 with the xswu/HPSv2 checkpoint
// HPS_v2.1_compressed.pt ({'state_dict': ...}, open_clip key names, strict load), the open_clip tokenizer
// (get_tokenizer('ViT-H-14'): SimpleTokenizer, 77 tokens, padded with 0), both feature vectors L2-normalised
// (BaseRewardLoss.process_features), score = cos(img, txt) with no logit scale, loss = 1 - score.
// The hub repo holds only the checkpoint: the architecture is reno's copy of open_clip's ViT-H-14 config
// (configs/open_clip/ViT-H-14.json), overridden by an open_clip_config.json in the model folder when there is one.
import * as tf from '../src/runtime/tf.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError, WeightsError } from '../src/errors.js';
import { readOpenClipConfig } from '../src/models/openclip/config.js';
import { l2Normalize, loadOpenClip, type OpenClipModel } from '../src/models/openclip/model.js';
import { CLIP_MODES, ClipTokenizer } from '../src/tokenizers/clip-bpe.js';
import type { RewardInput } from './input.js';
import { CLIP224, clipPreprocess } from '../src/image/preprocess.js';
import type { PreparedReward, Reward, RewardSpec } from './types.js';

/** The checkpoint ReNO loads (hps.py: hf_hub_download("xswu/HPSv2", "HPS_v2.1_compressed.pt")). */
export const HPSV2_CHECKPOINT = 'HPS_v2.1_compressed.pt';
/** open_clip model name whose config is the architecture when the folder has none. */
export const HPSV2_ARCH = 'ViT-H-14';
export const HPSV2_OFFSET = 1;

export class Hpsv2Reward implements Reward {
  readonly name = 'hpsv2';
  constructor(
    readonly model: OpenClipModel,
    readonly tokenizer: ClipTokenizer,
  ) {
    const vocab = model.config.text.vocabSize;
    if (tokenizer.vocabSize > vocab)
      throw new ConfigError(`hpsv2: the tokenizer has ${tokenizer.vocabSize} tokens but the model's text tower only ${vocab} (vocab_size)`);
  }

  /** L2-normalised encode_text of the prompt, [1, E]: computed once per prompt, outside any gradient. */
  textFeatures(prompt: string): tf.Tensor2D {
    this.model.unpark();
    const length = this.model.config.text.contextLength;
    const b = this.tokenizer.tokenize([prompt], { ...CLIP_MODES.openClip, length });
    const ids = tf.tensor2d(b.ids, b.shape, 'int32');
    const out = this.model.encodeText(ids);
    const feats = tf.tidy(() => l2Normalize(out.features) as tf.Tensor2D);
    tf.dispose([ids, out.tokens, out.features]);
    return feats;
  }

  /** The text tower (open_clip keeps it at the model's top level) runs once per prompt: host memory meanwhile. */
  async parkPromptModels(): Promise<void> {
    await this.model.park((name) => !name.startsWith('visual.') && name !== 'logit_scale');
  }

  prepare(prompt: string): PreparedReward {
    const txt = this.textFeatures(prompt);
    // ReNO's shared 224 view; a model of another input size (tiny test models) gets its own view of that size
    const size = this.model.config.vision.imageSize;
    const view = (input: RewardInput) =>
      size === 224 ? input.view(CLIP224, clipPreprocess) : input.view(`clip${size}`, (x) => clipPreprocess(x, size));
    // 1 - diag(img . txt^T)[0]: the first image against the prompt (ReNO compute_loss)
    const cos = (pixels: tf.Tensor4D): tf.Scalar => {
      const img = l2Normalize(this.model.encodeImage(pixels));
      return tf.sum(tf.mul(tf.slice(img, [0, 0], [1, -1]), txt)); // [1, E] . [1, E] -> scalar
    };
    return {
      // the view is made outside tidy: it belongs to the input and is shared with the other rewards
      score: (input) => {
        const pixels = view(input);
        return tf.tidy(() => cos(pixels));
      },
      loss: (input) => {
        const pixels = view(input);
        return tf.tidy(() => tf.sub(HPSV2_OFFSET, cos(pixels)) as tf.Scalar);
      },
      dispose: () => txt.dispose(),
    };
  }

  dispose(): void {
    this.model.dispose();
  }
}

/** HPS_v2.1_compressed.pt in the model folder (a safetensors conversion with the same stem is accepted too). */
export function hpsv2CheckpointFile(dir: string): string {
  const stem = HPSV2_CHECKPOINT.replace(/\.pt$/, '');
  for (const f of [HPSV2_CHECKPOINT, `${stem}.safetensors`]) {
    const p = path.join(dir, f);
    if (fs.existsSync(p)) return p;
  }
  throw new WeightsError(`hpsv2: ${HPSV2_CHECKPOINT} not found in ${dir}`);
}

/** The HPSv2 model of a folder: its checkpoint, and its open_clip_config.json or the ViT-H-14 config. */
export function loadHpsv2Model(dir: string): OpenClipModel {
  return loadOpenClip(hpsv2CheckpointFile(dir), readOpenClipConfig(dir, HPSV2_ARCH)).model;
}

export const hpsv2Reward: RewardSpec = {
  name: 'hpsv2',
  label: 'HPSv2',
  description: 'HPS v2.1 (OpenCLIP ViT-H/14 fine-tuned on human preferences, HPD v2): 1 - cos(image, prompt)',
  offset: HPSV2_OFFSET,
  models: ['hpsv2', 'clip-h-tokenizer'],
  async load(ctx) {
    const tokenizer = ClipTokenizer.fromFolder(ctx.locate('clip-h-tokenizer'));
    const model = loadHpsv2Model(ctx.locate('hpsv2'));
    try {
      return new Hpsv2Reward(model, tokenizer);
    } catch (e) {
      model.dispose();
      throw e;
    }
  },
};
