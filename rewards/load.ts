// Loading the active rewards: every model they need is located first (so a missing file fails before any compute),
// then each reward is loaded once.
import { rewardSpec } from './index.js';
import type { Reward, RewardLoadContext, RewardSpec } from './types.js';

/** Locate every model of every named reward; throws the first "not found" with all searched places. */
export function checkRewardModels(names: string[], ctx: RewardLoadContext): void {
  for (const n of names) {
    const spec = rewardSpec(n);
    for (const m of spec.modelsFor?.(ctx) ?? spec.models) ctx.locate(m);
  }
}

export async function loadRewards(names: string[], ctx: RewardLoadContext): Promise<Map<string, Reward>> {
  const out = new Map<string, Reward>();
  try {
    for (const n of names) {
      const spec: RewardSpec = rewardSpec(n);
      out.set(n, await spec.load(ctx));
    }
  } catch (e) {
    for (const r of out.values()) r.dispose();
    throw e;
  }
  return out;
}
