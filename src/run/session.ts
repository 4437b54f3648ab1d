// A session holds the loaded generator and rewards so that several runs (generate, compare, sweep cells) reuse
// them; runGeneration performs one run into one run folder.
import * as tf from '../runtime/tf.js';
import * as path from 'node:path';
import { GENERATORS } from '../../generators/index.js';
import type { Generator, ImageSize } from '../../generators/types.js';
import { REWARDS } from '../../rewards/index.js';
import { checkRewardModels, loadRewards } from '../../rewards/load.js';
import type { Reward, RewardLoadContext } from '../../rewards/types.js';
import type { ModelPlaces } from '../config/places.js';
import type { RunConfig } from '../config/run-config.js';
import { ConfigError, DataError, RenoError } from '../errors.js';
import { getModel } from '../config/models.js';
import { seededNoise } from '../optimize/noise.js';
import { halfWeightsOn } from '../nn/module.js';
import { disposeResult, runReno, type ActiveReward, type LoopResult } from '../optimize/loop.js';
import { renoVersion } from '../paths.js';
import { requireModel } from '../weights/hub.js';
import { progress, stepStatus } from '../util/progress.js';
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
  /** extra facts for run.yaml (model dirs, inactive rewards, ...) */
  meta?: Record<string, unknown>;
}

export interface RunOutcome {
  dir: string;
  result: LoopResult;
  notes: string[];
}

/** The files a run folder holds once its run is over (stopped runs included); one missing means it is incomplete. */
export const RUN_FOLDER_FILES = ['run.yaml', 'best.png', 'report.html'];

/**
 * The image size a run uses (width/height, else the generator's native size), checked against the generator (e.g.
 * a multiple of 16 for SD-Turbo) so that a bad size fails before a run folder is made.
 */
export function runSize(gen: Generator, config: RunConfig): ImageSize {
  const native = gen.nativeSize();
  const size = { width: config.width ?? native.width, height: config.height ?? native.height };
  try {
    gen.latentShape(size);
  } catch (e) {
    if (e instanceof RenoError) throw new ConfigError(`size ${size.width}x${size.height} (--size, or width/height): ${e.message.replace(/^image size \d+x\d+ /, '')}`);
    throw e;
  }
  return size;
}

/** One run into `dir`: run.yaml first, then the loop with progress and metrics, then images and the report. */
export async function runGeneration(s: Session, config: RunConfig, rewardNames: string[], dir: string, o: RunOptions = {}): Promise<RunOutcome> {
  const gen = s.generator;
  const size = runSize(gen, config);
  const weights = Object.fromEntries(rewardNames.map((n) => [n, config.weights[n]]));
  const writer = new RunWriter(dir, { prompt: config.prompt, seed: config.seed, weights, backend: s.backend, renoVersion: renoVersion(), model: s.modelLabel, smokeTest: s.places.smokeTest });
  // the size actually used, not null for "native"
  const fullConfig = { ...config, ...size, run: { reno_version: renoVersion(), backend: s.backend, weight_dtype: halfWeightsOn() ? 'fp16' : 'fp32', model: s.modelLabel, smoke_test: s.places.smokeTest, active_rewards: rewardNames, ...o.meta } };
  writer.writeConfig(fullConfig); // before any compute
  const cond = gen.prepare(config.prompt);
  const prepared = rewardNames.map((n) => ({ name: n, weight: config.weights[n], prepared: s.rewards.get(n)!.prepare(config.prompt) }));
  // the prompt is encoded: the text encoders' weights wait in host memory, leaving the device to the loop
  await gen.parkPromptModels?.();
  for (const n of rewardNames) await s.rewards.get(n)!.parkPromptModels?.();
  const z0 = seededNoise(gen.latentShape(size), config.seed);
  const steps = config.optimize && rewardNames.length ? config.steps : 1;
  const bar = progress({ total: steps, label: o.label ?? path.basename(dir), quiet: o.quiet, stream: o.stream });
  const notes: string[] = [];
  if (s.places.smokeTest) notes.push('Smoke test: the tiny preset has random weights, so images and rewards are not meaningful.');
  if (config.optimize && !rewardNames.length) notes.push('No reward is active (every weight is 0): one-shot image, nothing to optimise.');
  let result: LoopResult;
  try {
    result = await runReno(gen, cond, z0, prepared as ActiveReward[], {
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
        bar.update(rec.step + 1, stepStatus(rec.total, rec.rewards, weights));
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
  return { dir, result, notes };
}
