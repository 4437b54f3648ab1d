// What `reno generate --json` prints: the run folder, the best step, the total loss and every reward's score at the
// initial and at the best step, and why the run stopped early if it did.
import * as path from 'node:path';
import type { LoopResult, StepRecord } from '../optimize/loop.js';

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

/** The scores are the loop's own (StepRecord.scores: each loss read back by scoreFromLoss in rewards/index.ts). */
export function runSummary(dir: string, result: LoopResult, smokeTest: boolean): RunSummary {
  const step = (r: StepRecord): StepSummary => ({ step: r.step, total_loss: r.total, scores: { ...r.scores } });
  return {
    folder: path.resolve(dir),
    smoke_test: smokeTest,
    best_step: result.best?.record.step ?? null,
    init: result.init ? step(result.init.record) : null,
    best: result.best ? step(result.best.record) : null,
    stopped: result.stopped ? { ...result.stopped } : null,
  };
}
