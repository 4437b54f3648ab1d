// What `reno generate --json` prints: the run folder, the best step, the total loss and every reward's score at the
// initial and at the best step, and why the run stopped early if it did.
import * as path from 'node:path';
import { REWARDS } from '../../rewards/index.js';
import type { LoopResult, StepRecord } from '../optimize/loop.js';
import { PERSONAL } from './session.js';

/**
 * A reward's score (higher is better) from its loss in metrics.jsonl: offset - loss for the general rewards (ReNO's
 * "const - score"), and for the personal reward Q(+), the probability that the user likes the image: exp(-loss)
 * with like guidance, 1 - exp(-loss) with dislike (rewards/personal.ts).
 */
export function scoreFromLoss(name: string, loss: number, guidance: 'like' | 'dislike'): number {
  if (name === PERSONAL) return guidance === 'dislike' ? 1 - Math.exp(-loss) : Math.exp(-loss);
  const spec = REWARDS.find((r) => r.name === name);
  return (spec?.offset ?? 0) - loss;
}

export interface StepSummary {
  step: number;
  total_loss: number;
  /** every active reward's score (higher is better) */
  scores: Record<string, number>;
}

export interface RunSummary {
  folder: string;
  smoke_test: boolean;
  best_step: number | null;
  init: StepSummary | null;
  best: StepSummary | null;
  stopped: { reason: string; message: string; step: number } | null;
}

export function runSummary(dir: string, result: LoopResult, guidance: 'like' | 'dislike', smokeTest: boolean): RunSummary {
  const step = (r: StepRecord): StepSummary => ({
    step: r.step,
    total_loss: r.total,
    scores: Object.fromEntries(Object.entries(r.rewards).map(([n, l]) => [n, scoreFromLoss(n, l, guidance)])),
  });
  return {
    folder: path.resolve(dir),
    smoke_test: smokeTest,
    best_step: result.best?.record.step ?? null,
    init: result.init ? step(result.init.record) : null,
    best: result.best ? step(result.best.record) : null,
    stopped: result.stopped ? { ...result.stopped } : null,
  };
}
