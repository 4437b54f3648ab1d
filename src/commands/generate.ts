// `reno generate`: resolve the config (defaults, --config, flags), find every model, then optimise SD-Turbo's noise
// against the weighted rewards and write a run folder (src/run/session.ts).
import * as path from 'node:path';
import type * as tf from '../runtime/tf.js';
import { useBackend } from '../runtime/backend.js';
import type { StepRecord } from '../optimize/loop.js';
import { resolveConfig, validatePartial, type RunConfig } from '../config/run-config.js';
import { ConfigError, RunStopped, UsageError } from '../errors.js';
import { readImageRecord, shortHash, type ImageRecord } from '../image/a1111.js';
import { checkWritableDir, keepIfValid, newRunDir } from '../util/files.js';
import { withInterrupt, stopFlag } from '../run/interrupt.js';
import { activeRewardNames, openSession, RUN_FOLDER_FILES, runGeneration, runSize, type RunOutcome } from '../run/session.js';
import { runSummary } from '../run/summary.js';
import { modelPlaces, parseSize, personalOptions } from './common.js';

export interface GenerateOptions {
  /** the prompt (optional with configFrom: the image's) */
  prompt?: string;
  /** a PNG written by reno: its stored config (the `reno` chunk) is the base that config files and flags override */
  configFrom?: string;
  seed?: number;
  size?: string;
  steps?: number;
  /** a user's history.json: turns on the personal reward */
  user?: string;
  /** the preference checkpoint folder (else history.json's "model", else the tiny preset's with --preset tiny) */
  preferenceModel?: string;
  guidance?: 'like' | 'dislike';
  /** which personal model (--personal; config personal_model): auto, vlm or embedding */
  personal?: 'auto' | 'vlm' | 'embedding';
  noOptimize?: boolean;
  config?: string;
  /** dotted overrides, e.g. { weights: { pickscore: 0.1 }, lr: 3 } */
  overrides?: Record<string, unknown>;
  modelDir?: string;
  /** the generator's weights from one single-file checkpoint (original SD layout), or a registry entry holding one */
  modelFile?: string;
  modelsDir?: string;
  preset?: string;
  /** the outputs root (default <cwd>/outputs) */
  out?: string;
  backend?: string;
  quiet?: boolean;
  /** print a machine-readable summary (src/run/summary.ts) on stdout instead of the run folder's path */
  json?: boolean;
  log?: (line: string) => void;
  /** where the folder (or the --json summary) goes: stdout by default */
  stdout?: (text: string) => void;
  /** for tests: stop after the current step when this returns true */
  shouldStop?: () => boolean;
  /** every evaluated step of the run in `dir` (`reno ui`'s live progress) */
  onStep?: (dir: string, rec: StepRecord, image: tf.Tensor4D) => Promise<void> | void;
}

export interface GenerateResult extends RunOutcome {
  config: RunConfig;
}

/** The `reno` record of --config-from's image, and its config checked as a config layer. */
function imageConfig(file: string): { record: ImageRecord; config: Partial<RunConfig> } {
  const record = readImageRecord(file);
  return { record, config: validatePartial(record.config, `${file} ("reno" chunk's config)`) };
}

export function generateConfig(o: GenerateOptions, from = o.configFrom ? imageConfig(o.configFrom) : undefined): RunConfig {
  // guidance steers the personal reward, which runs only with a user's history: asked for without one, it would do nothing
  const guidance = o.guidance ?? o.overrides?.guidance;
  if (guidance !== undefined && !o.user)
    throw new UsageError(
      `--guidance ${String(guidance)} needs --user history.json (it steers the personal reward, which runs only with a user's history)`,
    );
  const mode = o.personal ?? o.overrides?.personal_model;
  if (mode !== undefined && !o.user)
    throw new UsageError(
      `--personal ${String(mode)} needs --user history.json (it chooses the personal model, which runs only with a user's history)`,
    );
  if (o.size !== undefined && (o.overrides?.width !== undefined || o.overrides?.height !== undefined))
    throw new UsageError('--size and --width/--height cannot be used together');
  if (o.prompt === undefined && !from)
    throw new UsageError('--prompt is required (or --config-from IMAGE.png to take the prompt and settings of an image reno wrote)');
  const overrides: Record<string, unknown> = { ...(o.overrides ?? {}) };
  if (o.prompt !== undefined) overrides.prompt = o.prompt;
  if (o.seed !== undefined) overrides.seed = o.seed;
  if (o.steps !== undefined) overrides.steps = o.steps;
  if (o.guidance !== undefined) overrides.guidance = o.guidance;
  if (o.personal !== undefined) overrides.personal_model = o.personal;
  if (o.noOptimize) overrides.optimize = false;
  if (o.size !== undefined) Object.assign(overrides, parseSize(o.size));
  const config = resolveConfig({ file: o.config, overrides, from: from?.config });
  if (!config.prompt.trim()) throw new ConfigError('--prompt is empty');
  if (config.guidance !== 'like' && !o.user) {
    const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
    log(`reno: guidance: ${config.guidance}${o.config ? ` (from ${o.config})` : ''} has no effect without --user: no personal reward runs`);
  }
  return config;
}

export async function generateCommand(o: GenerateOptions): Promise<GenerateResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const stdout = o.stdout ?? ((l: string) => process.stdout.write(l + '\n'));
  // everything that can be checked is checked before the run folder exists: a run that cannot start leaves nothing
  const from = o.configFrom ? imageConfig(o.configFrom) : undefined;
  const config = generateConfig(o, from);
  const places = modelPlaces(o);
  const root = o.out ?? path.join(process.cwd(), 'outputs');
  checkWritableDir(root, '--out');
  const { active, inactive } = activeRewardNames(config.weights, !!o.user);
  const personal = personalOptions(o.user, config.guidance, config.n_ref, o.preferenceModel, {
    mode: config.personal_model,
    tower: config.personal_tower,
    log,
  });
  const backend = await useBackend(o.backend, { quiet: o.quiet });
  const session = await openSession({ places, generator: config.generator, rewards: active, personal, backend });
  try {
    runSize(session.generator, config);
    if (from && from.record.model.sha256 !== session.model.sha256)
      log(
        `reno: ${o.configFrom} was made with ${from.record.model.name} (hash ${shortHash(from.record.model.sha256)}); this run uses ${session.model.name} (hash ${shortHash(session.model.sha256)}): the image will differ`,
      );
    const dir = newRunDir(root, config.prompt);
    if (places.smokeTest && !o.quiet) log('reno: tiny smoke-test preset (random weights): the image and rewards are not meaningful');
    const flag = stopFlag();
    const shouldStop = () => flag.requested || (o.shouldStop?.() ?? false);
    let out: RunOutcome;
    try {
      out = await withInterrupt(
        flag,
        () =>
          runGeneration(session, config, active, dir, {
            quiet: o.quiet,
            log,
            shouldStop,
            onStep: o.onStep && ((rec, image) => o.onStep!(dir, rec, image)),
            meta: { inactive_rewards: inactive, user: personal?.historyFile ?? null },
          }),
        log,
      );
    } catch (e) {
      // a folder that is not a complete run folder goes; a run stopped because not even its first image was finite
      // is complete without best.png (run.yaml, metrics and report say what happened) and stays
      if (!(e instanceof RunStopped)) keepIfValid(dir, RUN_FOLDER_FILES);
      throw e;
    }
    const r = out.result;
    for (const n of out.notes) if (!o.quiet || r.stopped) log(`reno: ${n}`);
    if (!o.quiet && r.init && r.best)
      log(
        `reno: initial loss ${r.init.record.total.toFixed(4)}, best ${r.best.record.total.toFixed(4)} at step ${r.best.record.step}; wrote ${path.relative(process.cwd(), dir) || dir}`,
      );
    // stdout is for scripts: the folder, or the summary with --json (the folder is complete even for a stopped run)
    stdout(o.json ? JSON.stringify(runSummary(dir, r, places.smokeTest), null, 2) : path.resolve(dir));
    return { ...out, config };
  } finally {
    session.dispose();
  }
}
