// PickScore v1 (yuvalkirstain/PickScore_v1, an HF CLIPModel fine-tuned from laion CLIP-ViT-H-14 on Pick-a-Pic)
// as a ReNO reward: loss = 30 - exp(logit_scale) * cos(img, txt) (ReNO rewards/pickscore.py PickScoreLoss; the
// processor, hence the tokenizer, is laion/CLIP-ViT-H-14-laion2B-s32B-b79K's).
import { acquireClipModel, loadClipTokenizer } from '../src/models/clip/load.js';
import { ClipSimilarityReward } from './clip/similarity.js';
import type { RewardSpec } from './types.js';

export const pickscoreReward: RewardSpec = {
  name: 'pickscore',
  label: 'PickScore',
  description: 'PickScore v1 (CLIP ViT-H/14 fine-tuned on Pick-a-Pic): 30 - exp(logit_scale) * cos(image, prompt)',
  offset: 30,
  models: ['pickscore', 'clip-h-tokenizer'],
  async load(ctx) {
    const tokenizer = loadClipTokenizer(ctx.locate('clip-h-tokenizer'));
    const { model, release } = acquireClipModel(ctx.locate('pickscore')); // shared with the embedding personal model
    return new ClipSimilarityReward('pickscore', model, tokenizer, 30, release);
  },
};
