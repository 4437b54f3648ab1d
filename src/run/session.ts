// A session holds the loaded generator and rewards so that several runs (generate, compare, sweep cells) reuse
// them; runGeneration performs one run into one run folder.
import * as tf from '@tensorflow/tfjs';
import * as path from 'node:path';
import { GENERATORS } from '../../generators/index.js';
import type { Generator } from '../../generators/types.js';
import { REWARDS } from '../../rewards/index.js';
import { checkRewardModels, loadRewards } from '../../rewards/load.js';
import type { Reward, RewardLoadContext } from '../../rewards/types.js';
import type { ModelPlaces } from '../commands/common.js';
import type { RunConfig } from '../config/run-config.js';
import { ConfigError, DataError, RunStopped } from '../errors.js';
import { getModel } from '../models/registry.js';
import { seededNoise } from '../optimize/noise.js';
import { halfWeightsOn } from '../nn/module.js';
import { disposeResult, runReno, type ActiveReward, type LoopResult } from '../optimize/loop.js';
import { RENO_VERSION } from '../paths.js';
import { requireModel } from '../weights/hub.js';
import { collectTruncations, truncationWarning } from '../tokenizers/truncation.js';
import { progress, stepStatus } from './progress.js';
import { RunWriter } from './writer.js';

export const PERSONAL = 'personal';

export interface SessionOptions {
  places: ModelPlaces;
  generator: string;
  rewards: string[];
  personal?: RewardLoadContext['personal'];
  backend: string;
}

export interface Session {
  generator: Generator;
  rewards: Map<string, Reward>;
  backend: string;
  places: ModelPlaces;
  modelLabel: string;
  dispose(): void;
}

/** Which rewards a config turns on: weight > 0, known, and personal only with a user history. */
export function activeRewardNames(weights: Record<string, number>, hasUser: boolean): { active: string[]; inactive: Record<string, string> } {
  const known = new Set(REWARDS.map((r) => r.name));
  if (hasUser && !known.has(PERSONAL))
    throw new DataError('personal reward not available: this build of reno has no preference model, so --user cannot be honoured');
  const active: string[] = [];
  const inactive: Record<string, string> = {};
  for (const [name, w] of Object.entries(weights)) {
    if (name === PERSONAL && !hasUser) inactive[name] = 'no --user history given';
    else if (!known.has(name)) throw new ConfigError(`weights.${name}: unknown reward "${name}" (known: ${[...new Set([...known, PERSONAL])].join(', ')})`);
    else if (w > 0) active.push(name);
    else inactive[name] = 'weight 0';
  }
  if (hasUser && !active.includes(PERSONAL)) throw new ConfigError('--user needs weights.personal > 0');
  return { active, inactive };
}

export function rewardContext(places: ModelPlaces, personal?: RewardLoadContext['personal']): RewardLoadContext {
  return { locate: (m) => requireModel(getModel(m), places).dir, smokeTest: places.smokeTest, personal };
}

/** Locate every model first (fail before compute), then load the generator and the rewards. */
export async function openSession(o: SessionOptions): Promise<Session> {
  const spec = GENERATORS[o.generator];
  if (!spec) throw new ConfigError(`unknown generator "${o.generator}" (known: ${Object.keys(GENERATORS).join(', ')})`);
  const loc = requireModel(getModel(spec.model), o.places);
  const ctx = rewardContext(o.places, o.personal);
  checkRewardModels(o.rewards, ctx);
  const generator = spec.load(loc.dir, { smokeTest: o.places.smokeTest });
  let rewards: Map<string, Reward>;
  try {
    rewards = await loadRewards(o.rewards, ctx);
  } catch (e) {
    generator.dispose();
    throw e;
  }
  return {
    generator,
    rewards,
    backend: o.backend,
    places: o.places,
    modelLabel: `${spec.model}${o.places.smokeTest ? ' (tiny smoke-test preset, random weights)' : ''} from ${loc.dir}`,
    dispose() {
      generator.dispose();
      for (const r of rewards.values()) r.dispose();
    },
  };
}

export interface RunOptions {
  quiet?: boolean;
  shouldStop?: () => boolean;
  label?: string;
  stream?: NodeJS.WriteStream;
  /** the command's log (stderr) for warnings; default: `stream` */
  log?: (line: string) => void;
  /** extra facts for run.yaml (model dirs, inactive rewards, ...) */
  meta?: Record<string, unknown>;
}

export interface RunOutcome {
  dir: string;
  result: LoopResult;
  notes: string[];
}

/** One run into `dir`: run.yaml first, then the loop with progress and metrics, then images and the report. */
export async function runGeneration(s: Session, config: RunConfig, rewardNames: string[], dir: string, o: RunOptions = {}): Promise<RunOutcome> {
  const weights = Object.fromEntries(rewardNames.map((n) => [n, config.weights[n]]));
  const writer = new RunWriter(dir, { prompt: config.prompt, seed: config.seed, weights, backend: s.backend, renoVersion: RENO_VERSION, model: s.modelLabel });
  const fullConfig = { ...config, run: { reno_version: RENO_VERSION, backend: s.backend, weight_dtype: halfWeightsOn() ? 'fp16' : 'fp32', model: s.modelLabel, smoke_test: s.places.smokeTest, active_rewards: rewardNames, ...o.meta } };
  writer.writeConfig(fullConfig); // before any compute
  const gen = s.generator;
  const native = gen.nativeSize();
  const size = { width: config.width ?? native.width, height: config.height ?? native.height };
  // every text encoder tokenizes the prompt here: one warning for all of their cuts
  const { value: [cond, prepared], cuts } = collectTruncations(() => {
    const c = gen.prepare(config.prompt);
    const p: ActiveReward[] = rewardNames.map((n) => ({ name: n, weight: config.weights[n], prepared: s.rewards.get(n)!.prepare(config.prompt), reward: s.rewards.get(n)! }));
    return [c, p] as const;
  });
  const cut = truncationWarning(cuts);
  if (cut) (o.log ?? ((l: string) => (o.stream ?? process.stderr).write(l + '\n')))(`reno: warning: ${cut}`);
  // the prompt is encoded: the text encoders' weights wait in host memory, leaving the device to the loop
  await gen.parkPromptModels?.();
  for (const n of rewardNames) await s.rewards.get(n)!.parkPromptModels?.();
  const z0 = seededNoise(gen.latentShape(size), config.seed);
  const steps = config.optimize && rewardNames.length ? config.steps : 1;
  const bar = progress({ total: steps, label: o.label ?? path.basename(dir), quiet: o.quiet, stream: o.stream });
  const notes: string[] = [];
  const seconds: number[] = [];
  if (s.places.smokeTest) notes.push('Smoke test: the tiny preset has random weights, so images and rewards are not meaningful.');
  if (config.optimize && !rewardNames.length) notes.push('No reward is active (every weight is 0): one-shot image, nothing to optimise.');
  let result: LoopResult;
  try {
    result = await runReno(gen, cond, z0, prepared, {
      steps,
      optimize: config.optimize && rewardNames.length > 0,
      optimizer: config.optimizer,
      lr: config.lr,
      momentum: config.momentum,
      nesterov: config.nesterov,
      gradClip: config.grad_clip,
      regWeight: config.reg_weight,
    }, {
      onStep: async (rec, image) => {
        writer.appendMetrics(rec);
        if (config.save_steps) await writer.writeStep(rec, image);
        seconds.push(rec.seconds);
        bar.update(rec.step + 1, stepStatus(rec, { done: rec.step + 1, total: steps, seconds }));
      },
      shouldStop: o.shouldStop,
    });
  } finally {
    bar.stop();
    tf.dispose([z0]);
    cond.dispose();
    for (const p of prepared) p.prepared.dispose();
  }
  if (result.stopped) notes.push(result.stopped.message);
  await writer.finish(result, fullConfig, notes);
  disposeResult(result);
  // not even the first image was finite: there is no image to show, so the run fails (the folder keeps run.yaml,
  // metrics.jsonl and the report that say why)
  if (!result.best && result.stopped?.reason === 'non-finite') throw new RunStopped(`${result.stopped.message}; wrote no best.png (the run folder ${dir} holds the metrics and report)`);
  return { dir, result, notes };
}
