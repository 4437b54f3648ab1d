// The CLIP score reward of ReNO (rewards/clip.py CLIPLoss): laion/CLIP-ViT-H-14-laion2B-s32B-b79K through HF
// CLIPModel, loss = 100 - exp(logit_scale) * cos(img, txt). The tokenizer files live in the same hub repo (the
// registry's clip-h-tokenizer entry, which `clip` uses).
import { acquireClipModel, loadClipTokenizer } from '../src/models/clip/load.js';
import { ClipSimilarityReward } from './clip/similarity.js';
import type { RewardSpec } from './types.js';

export const clipScoreReward: RewardSpec = {
  name: 'clip',
  label: 'CLIP Score',
  description: 'CLIP score with OpenCLIP ViT-H/14 LAION-2B: 100 - exp(logit_scale) * cos(image, prompt)',
  offset: 100,
  models: ['clip', 'clip-h-tokenizer'],
  async load(ctx) {
    const tokenizer = loadClipTokenizer(ctx.locate('clip-h-tokenizer'));
    const { model, release } = acquireClipModel(ctx.locate('clip')); // shared with the embedding personal model
    return new ClipSimilarityReward('clip', model, tokenizer, 100, release);
  },
};
