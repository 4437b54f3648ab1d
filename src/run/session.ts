// A session holds the loaded generator and rewards so that several runs (generate, compare, sweep cells) reuse
// them; runGeneration performs one run into one run folder.
import * as tf from '../runtime/tf.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GENERATORS } from '../../generators/index.js';
import type { Generator, ImageSize } from '../../generators/types.js';
import { REWARDS } from '../../rewards/index.js';
import { checkRewardModels, loadRewards } from '../../rewards/load.js';
import type { Reward, RewardLoadContext } from '../../rewards/types.js';
import type { ModelPlaces } from '../config/places.js';
import type { RunConfig } from '../config/run-config.js';
import { ConfigError, DataError, ModelNotFoundError, RenoError, RunStopped } from '../errors.js';
import { localName, sha256File, type ModelIdentity } from '../image/a1111.js';
import { getModel, registry, type ModelEntry } from '../config/models.js';
import { seededNoise } from '../optimize/noise.js';
import { halfWeightsOn } from '../nn/module.js';
import { disposeResult, runReno, type ActiveReward, type LoopResult, type StepRecord } from '../optimize/loop.js';
import { renoVersion } from '../paths.js';
import { requireModel } from '../weights/hub.js';
import { collectTruncations, truncationWarning } from '../tokenizers/truncation.js';
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
  /** the generator's weights by name, repository and sha256, for the images' metadata (no local path) */
  model: ModelIdentity;
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
    else if (!known.has(name))
      throw new ConfigError(`weights.${name}: unknown reward "${name}" (known: ${[...new Set([...known, PERSONAL])].join(', ')})`);
    else if (w > 0) active.push(name);
    else inactive[name] = 'weight 0';
  }
  if (hasUser && !active.includes(PERSONAL)) throw new ConfigError('--user needs weights.personal > 0');
  return { active, inactive };
}

export function rewardContext(places: ModelPlaces, personal?: RewardLoadContext['personal']): RewardLoadContext {
  return { locate: (m) => requireModel(getModel(m), places).dir, smokeTest: places.smokeTest, personal };
}

/** A registry entry without its weight files: the configs and tokenizer a single-file checkpoint is read with. */
const withoutWeights = (e: ModelEntry): ModelEntry => ({ ...e, files: e.files.filter((f) => !/\.(safetensors|bin|ckpt|pt)$/.test(f)) });

/**
 * Where the generator's configs are, and its single-file checkpoint when --model-file names one (a path, or a
 * registry entry holding one .safetensors file, e.g. sd-turbo-file).
 */
function locateGenerator(model: string, places: ModelPlaces): { dir: string; modelFile?: string } {
  if (places.modelFile === undefined) return { dir: requireModel(getModel(model), places).dir };
  let file = places.modelFile;
  let entry = getModel(model);
  if (!fs.existsSync(file) && registry().models.has(file)) {
    const named = getModel(file);
    const weights = named.files.filter((f) => f.endsWith('.safetensors'));
    if (weights.length !== 1)
      throw new ConfigError(
        `--model-file ${file}: the registry entry lists ${weights.length} .safetensors files, expected one single-file checkpoint`,
      );
    const dir = requireModel(named, places).dir;
    return { dir, modelFile: path.join(dir, weights[0]) };
  }
  if (!fs.existsSync(file)) throw new DataError(`--model-file: ${file} not found`);
  file = path.resolve(file);
  entry = withoutWeights(entry);
  try {
    return { dir: requireModel(entry, places).dir, modelFile: file };
  } catch (e) {
    if (e instanceof ModelNotFoundError)
      throw new ModelNotFoundError(
        `--model-file ${places.modelFile} is read with ${model}'s configs and tokenizer (${entry.files.join(', ')}): ${e.message}`,
      );
    throw e;
  }
}

/** Locate every model first (fail before compute), then load the generator and the rewards. */
export async function openSession(o: SessionOptions): Promise<Session> {
  const spec = GENERATORS[o.generator];
  if (!spec) throw new ConfigError(`unknown generator "${o.generator}" (known: ${Object.keys(GENERATORS).join(', ')})`);
  const loc = locateGenerator(spec.model, o.places);
  const ctx = rewardContext(o.places, o.personal);
  checkRewardModels(o.rewards, ctx);
  const entry = getModel(spec.model);
  const idFile = loc.modelFile ?? spec.identityFile(loc.dir);
  const model: ModelIdentity = {
    name: spec.model,
    repo: entry.repo,
    file: loc.modelFile ? path.basename(loc.modelFile) : localName(loc.dir, idFile),
    sha256: sha256File(idFile),
    smoke_test: o.places.smokeTest,
  };
  const generator = spec.load(loc.dir, { smokeTest: o.places.smokeTest, ...(loc.modelFile ? { modelFile: loc.modelFile } : {}) });
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
    modelLabel: `${spec.model}${o.places.smokeTest ? ' (tiny smoke-test preset, random weights)' : ''} from ${loc.modelFile ? `${loc.modelFile} (configs from ${loc.dir})` : loc.dir}`,
    model,
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
  /** every evaluated step, after it is recorded (e.g. `reno ui`'s live progress); the image is disposed afterwards */
  onStep?: (rec: StepRecord, image: tf.Tensor4D) => Promise<void> | void;
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
    if (e instanceof RenoError)
      throw new ConfigError(`size ${size.width}x${size.height} (--size, or width/height): ${e.message.replace(/^image size \d+x\d+ /, '')}`);
    throw e;
  }
  return size;
}

/** One run into `dir`: run.yaml first, then the loop with progress and metrics, then images and the report. */
export async function runGeneration(s: Session, config: RunConfig, rewardNames: string[], dir: string, o: RunOptions = {}): Promise<RunOutcome> {
  const gen = s.generator;
  const size = runSize(gen, config);
  const weights = Object.fromEntries(rewardNames.map((n) => [n, config.weights[n]]));
  const weightDtype = halfWeightsOn() ? 'fp16' : 'fp32';
  // what the rewards report of themselves (the personal model's mode): run.yaml, and the PNG record without paths
  const info: Record<string, string> = Object.assign({}, ...rewardNames.map((n) => s.rewards.get(n)?.info ?? {}));
  const personalModel = Object.fromEntries(
    Object.entries(info).filter(([k]) => ['personal_model', 'personal_tower', 'personal_formula'].includes(k)),
  );
  const personal = rewardNames.includes(PERSONAL) ? { guidance: config.guidance, n_ref: config.n_ref, ...personalModel } : null;
  // the size actually used, not null for "native"
  const writer = new RunWriter(dir, {
    prompt: config.prompt,
    seed: config.seed,
    weights,
    backend: s.backend,
    renoVersion: renoVersion(),
    model: s.model,
    config: { ...config, ...size },
    weightDtype,
    personal,
    smokeTest: s.places.smokeTest,
  });
  const fullConfig = {
    ...config,
    ...size,
    run: {
      reno_version: renoVersion(),
      backend: s.backend,
      weight_dtype: weightDtype,
      model: s.modelLabel,
      model_sha256: s.model.sha256,
      smoke_test: s.places.smokeTest,
      active_rewards: rewardNames,
      ...info,
      ...o.meta,
    },
  };
  writer.writeConfig(fullConfig); // before any compute
  // every text encoder tokenizes the prompt here: one warning for all of their cuts
  const {
    value: [cond, prepared],
    cuts,
  } = collectTruncations(() => {
    const c = gen.prepare(config.prompt);
    const p: ActiveReward[] = rewardNames.map((n) => ({
      name: n,
      weight: config.weights[n],
      prepared: s.rewards.get(n)!.prepare(config.prompt),
      reward: s.rewards.get(n)!,
    }));
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
    result = await runReno(
      gen,
      cond,
      z0,
      prepared,
      {
        steps,
        optimize: config.optimize && rewardNames.length > 0,
        optimizer: config.optimizer,
        lr: config.lr,
        momentum: config.momentum,
        nesterov: config.nesterov,
        gradClip: config.grad_clip,
        regWeight: config.reg_weight,
      },
      {
        onStep: async (rec, image) => {
          writer.appendMetrics(rec);
          if (config.save_steps) await writer.writeStep(rec, image);
          seconds.push(rec.seconds);
          bar.update(rec.step + 1, stepStatus(rec, { done: rec.step + 1, total: steps, seconds }));
          await o.onStep?.(rec, image);
        },
        shouldStop: o.shouldStop,
      },
    );
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
  if (!result.best && result.stopped?.reason === 'non-finite')
    throw new RunStopped(`${result.stopped.message}; wrote no best.png (the run folder ${dir} holds the metrics and report)`);
  return { dir, result, notes };
}
