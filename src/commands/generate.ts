// `reno generate`: resolve the config (defaults, --config, flags), find every model, then optimise SD-Turbo's noise
// against the weighted rewards and write a run folder (src/run/session.ts).
import * as path from 'node:path';
import { useBackend } from '../backend.js';
import { resolveConfig, type RunConfig } from '../config/run-config.js';
import { ConfigError } from '../errors.js';
import { newRunDir } from '../run/files.js';
import { withInterrupt, stopFlag } from '../run/interrupt.js';
import { activeRewardNames, openSession, runGeneration, type RunOutcome } from '../run/session.js';
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
  log?: (line: string) => void;
  /** for tests: stop after the current step when this returns true */
  shouldStop?: () => boolean;
}

export interface GenerateResult extends RunOutcome {
  config: RunConfig;
}

export function generateConfig(o: GenerateOptions): RunConfig {
  const overrides: Record<string, unknown> = { ...(o.overrides ?? {}), prompt: o.prompt };
  if (o.seed !== undefined) overrides.seed = o.seed;
  if (o.steps !== undefined) overrides.steps = o.steps;
  if (o.guidance !== undefined) overrides.guidance = o.guidance;
  if (o.noOptimize) overrides.optimize = false;
  if (o.size !== undefined) Object.assign(overrides, parseSize(o.size));
  const config = resolveConfig({ file: o.config, overrides });
  if (!config.prompt.trim()) throw new ConfigError('--prompt is empty');
  return config;
}

export async function generateCommand(o: GenerateOptions): Promise<GenerateResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const config = generateConfig(o);
  const places = modelPlaces(o);
  const { active, inactive } = activeRewardNames(config.weights, !!o.user);
  const personal = personalOptions(o.user, config.guidance, config.n_ref, o.preferenceModel);
  const backend = await useBackend(o.backend, { quiet: o.quiet });
  const session = await openSession({ places, generator: config.generator, rewards: active, personal, backend });
  try {
    const dir = newRunDir(o.out ?? path.join(process.cwd(), 'outputs'), config.prompt);
    if (places.smokeTest && !o.quiet) log('reno: tiny smoke-test preset (random weights): the image and rewards are not meaningful');
    const flag = stopFlag();
    const shouldStop = () => flag.requested || (o.shouldStop?.() ?? false);
    const out = await withInterrupt(flag, () => runGeneration(session, config, active, dir, { quiet: o.quiet, log, shouldStop, meta: { inactive_rewards: inactive, user: personal?.historyFile ?? null } }), log);
    const r = out.result;
    for (const n of out.notes) if (!o.quiet || r.stopped) log(`reno: ${n}`);
    if (!o.quiet && r.init && r.best)
      log(`reno: initial loss ${r.init.record.total.toFixed(4)}, best ${r.best.record.total.toFixed(4)} at step ${r.best.record.step}; wrote ${path.relative(process.cwd(), dir) || dir}`);
    return { ...out, config };
  } finally {
    session.dispose();
  }
}
