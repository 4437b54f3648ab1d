// The reward registry: one line per reward, and every list of rewards elsewhere (the CLI's weight flags and --help,
// the run summary, preference-eval's baselines and labels, the benchmarks) is derived from it. Adding a reward is
// one file (rewards/NAME.ts exporting its RewardSpec: name, label, description, offset, the registry models it loads,
// load), plus one line here, plus its models' entries in configs/models.yaml (and its default weight in
// configs/default.yaml if it is on by default).
import { UsageError } from '../src/errors.js';
import { aestheticReward } from './aesthetic.js';
import { clipScoreReward } from './clip-score.js';
import { hpsv2Reward } from './hpsv2.js';
import { imageRewardSpec } from './imagereward.js';
import { personalReward } from './personal.js';
import { pickscoreReward } from './pickscore.js';
import type { Reward, RewardSpec } from './types.js';

export const REWARDS: RewardSpec[] = [imageRewardSpec, aestheticReward, pickscoreReward, clipScoreReward, hpsv2Reward, personalReward];

/** Plot and table names by reward name (RewardSpec.label, else the name). */
export function rewardLabel(name: string): string {
  return REWARDS.find((s) => s.name === name)?.label ?? name;
}

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
