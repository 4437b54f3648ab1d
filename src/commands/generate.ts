// `reno generate`: resolve the config (defaults, --config, flags), find every model, then optimise SD-Turbo's noise
// against the weighted rewards and write a run folder (src/run/session.ts).
import * as path from 'node:path';
import { useBackend } from '../runtime/backend.js';
import { resolveConfig, type RunConfig } from '../config/run-config.js';
import { ConfigError, UsageError } from '../errors.js';
import { checkWritableDir, keepIfValid, newRunDir } from '../util/files.js';
import { withInterrupt, stopFlag } from '../run/interrupt.js';
import { activeRewardNames, openSession, RUN_FOLDER_FILES, runGeneration, runSize, type RunOutcome } from '../run/session.js';
import { runSummary } from '../run/summary.js';
import { modelPlaces, parseSize, personalOptions } from './common.js';

export interface GenerateOptions {
  prompt: string;
  seed?: number;
  size?: string;
  steps?: number;
  /** a user's history.json: turns on the personal reward */
  user?: string;
  /** the preference checkpoint folder (else history.json's "model", else the tiny preset's with --preset tiny) */
  preferenceModel?: string;
  guidance?: 'like' | 'dislike';
  noOptimize?: boolean;
  config?: string;
  /** dotted overrides, e.g. { weights: { pickscore: 0.1 }, lr: 3 } */
  overrides?: Record<string, unknown>;
  modelDir?: string;
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
}

export interface GenerateResult extends RunOutcome {
  config: RunConfig;
}

export function generateConfig(o: GenerateOptions): RunConfig {
  // guidance steers the personal reward, which runs only with a user's history: asked for without one, it would do nothing
  const guidance = o.guidance ?? o.overrides?.guidance;
  if (guidance !== undefined && !o.user) throw new UsageError(`--guidance ${String(guidance)} needs --user history.json (it steers the personal reward, which runs only with a user's history)`);
  if (o.size !== undefined && (o.overrides?.width !== undefined || o.overrides?.height !== undefined)) throw new UsageError('--size and --width/--height cannot be used together');
  const overrides: Record<string, unknown> = { ...(o.overrides ?? {}), prompt: o.prompt };
  if (o.seed !== undefined) overrides.seed = o.seed;
  if (o.steps !== undefined) overrides.steps = o.steps;
  if (o.guidance !== undefined) overrides.guidance = o.guidance;
  if (o.noOptimize) overrides.optimize = false;
  if (o.size !== undefined) Object.assign(overrides, parseSize(o.size));
  const config = resolveConfig({ file: o.config, overrides });
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
  const config = generateConfig(o);
  const places = modelPlaces(o);
  const root = o.out ?? path.join(process.cwd(), 'outputs');
  checkWritableDir(root, '--out');
  const { active, inactive } = activeRewardNames(config.weights, !!o.user);
  const personal = personalOptions(o.user, config.guidance, config.n_ref, o.preferenceModel);
  const backend = await useBackend(o.backend, { quiet: o.quiet });
  const session = await openSession({ places, generator: config.generator, rewards: active, personal, backend });
  try {
    runSize(session.generator, config);
    const dir = newRunDir(root, config.prompt);
    if (places.smokeTest && !o.quiet) log('reno: tiny smoke-test preset (random weights): the image and rewards are not meaningful');
    const flag = stopFlag();
    const shouldStop = () => flag.requested || (o.shouldStop?.() ?? false);
    let out: RunOutcome;
    try {
      out = await withInterrupt(flag, () => runGeneration(session, config, active, dir, { quiet: o.quiet, shouldStop, meta: { inactive_rewards: inactive, user: personal?.historyFile ?? null } }), log);
    } catch (e) {
      keepIfValid(dir, RUN_FOLDER_FILES); // a folder that is not a complete run folder goes
      throw e;
    }
    const r = out.result;
    for (const n of out.notes) if (!o.quiet || r.stopped) log(`reno: ${n}`);
    if (!o.quiet && r.init && r.best)
      log(`reno: initial loss ${r.init.record.total.toFixed(4)}, best ${r.best.record.total.toFixed(4)} at step ${r.best.record.step}; wrote ${path.relative(process.cwd(), dir) || dir}`);
    // stdout is for scripts: the folder, or the summary with --json (the folder is complete even for a stopped run)
    stdout(o.json ? JSON.stringify(runSummary(dir, r, config.guidance, places.smokeTest), null, 2) : path.resolve(dir));
    return { ...out, config };
  } finally {
    session.dispose();
  }
}
