// The reward registry: one line per reward. Adding a reward is one file plus one line here.
import { UsageError } from '../src/errors.js';
import { aestheticReward } from './aesthetic.js';
import { clipScoreReward } from './clip-score.js';
import { hpsv2Reward } from './hpsv2.js';
import { imageRewardSpec } from './imagereward.js';
import { personalReward } from './personal.js';
import { pickscoreReward } from './pickscore.js';
import type { Reward, RewardSpec } from './types.js';

export const REWARDS: RewardSpec[] = [imageRewardSpec, aestheticReward, pickscoreReward, clipScoreReward, hpsv2Reward, personalReward];

export function rewardSpec(name: string): RewardSpec {
  const r = REWARDS.find((s) => s.name === name);
  if (!r) throw new UsageError(`unknown reward "${name}" (known: ${REWARDS.map((s) => s.name).join(', ') || 'none'})`);
  return r;
}

/**
 * The one loss -> score relation: the score (higher is better; what `reno score` prints) of the image whose loss (what
 * the loop minimises) is `loss`. The reward's own scoreFromLoss where it has one (personal), else the spec's
 * `offset - loss`. Every place that shows a value per reward name shows this score; a loss is labelled as a loss.
 */
export function scoreFromLoss(name: string, loss: number, reward?: Pick<Reward, 'scoreFromLoss'>): number {
  if (reward?.scoreFromLoss) return reward.scoreFromLoss(loss);
  return rewardSpec(name).offset - loss;
}

export type { Reward, PreparedReward, RewardSpec, RewardLoadContext } from './types.js';
export { RewardInput } from './input.js';
