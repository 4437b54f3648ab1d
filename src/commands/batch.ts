// `reno batch --prompts prompts.txt [--users a.json,b.json] [--seeds 0-3] --queue URL`: one run per user x prompt x
// seed, each a job for `reno worker`s (src/queue/), then the same summary.csv, grid and report as a sweep (its grid
// keys: user, prompt, seed). --detach returns once enqueued; --collect writes the summary from the finished folders.
// Everything (prompts file, seeds, users' histories, every config and model) is checked before anything is created.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GENERATORS } from '../../generators/index.js';
import { checkRewardModels } from '../../rewards/load.js';
import { resolveConfig, SCHEMA, type ConfigKey, type RunConfig } from '../config/run-config.js';
import { readHistory } from '../data/history.js';
import { ConfigError, DataError, RenoError, UsageError } from '../errors.js';
import { getModel } from '../config/models.js';
import { queuedSweepOutcome } from '../queue/outcome.js';
import { submitCells } from '../queue/submit.js';
import { slugify } from '../util/files.js';
import { activeRewardNames, rewardContext } from '../run/session.js';
import { requireModel } from '../weights/hub.js';
import { modelPlaces, personalOptions } from './common.js';
import { configHash, writeSweepSummary, type SweepCell, type SweepSpec } from './sweep.js';

export interface BatchOptions {
  prompts: string;
  /** comma-separated history.json files */
  users?: string;
  /** "0-3", "1,5,9" (default 0) */
  seeds?: string;
  preferenceModel?: string;
  config?: string;
  overrides?: Record<string, unknown>;
  out?: string;
  queue?: string;
  detach?: boolean;
  collect?: boolean;
  modelDir?: string;
  modelsDir?: string;
  preset?: string;
  quiet?: boolean;
  log?: (line: string) => void;
}

/** "0-3" -> [0,1,2,3]; "1,5,9"; "0-1,7". */
export function parseSeeds(s: string): number[] {
  const out: number[] = [];
  for (const part of s.split(',').map((p) => p.trim())) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m || (m[2] !== undefined && Number(m[2]) < Number(m[1])))
      throw new UsageError(`--seeds must be N, A-B or a comma-separated list of them (e.g. 0-3 or 1,5,9), found "${s}"`);
    for (let v = Number(m[1]); v <= Number(m[2] ?? m[1]); v++) out.push(v);
  }
  return [...new Set(out)];
}

/** The prompts file: one prompt per line; blank lines and lines starting with # are skipped. */
export function readPrompts(file: string): string[] {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new DataError(`cannot read --prompts ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const prompts = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  if (!prompts.length) throw new DataError(`--prompts ${file} holds no prompt (one per line)`);
  return prompts;
}

export async function batchCommand(o: BatchOptions): Promise<{ dir: string; cells: SweepCell[] }> {
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  if (!o.queue && !o.collect)
    throw new UsageError(
      'reno batch runs on a job queue: give --queue redis://HOST:PORT (and start `reno worker --queue ...` on each machine), or --collect to write the summary of a batch submitted before',
    );
  if (o.queue && o.collect) throw new UsageError('--queue and --collect cannot be used together');
  if (o.detach && !o.queue) throw new UsageError('--detach needs --queue (it returns once the cells are enqueued)');
  const prompts = readPrompts(o.prompts);
  const seeds = parseSeeds(o.seeds ?? '0');
  const users = o.users
    ? o.users
        .split(',')
        .map((u) => u.trim())
        .filter(Boolean)
    : [];
  for (const u of users) readHistory(u); // a missing or broken history fails here
  const places = modelPlaces(o);
  const dir = path.resolve(o.out ?? path.join(process.cwd(), 'outputs', `batch-${slugify(path.basename(o.prompts, path.extname(o.prompts)))}`));
  const grid: [string, unknown[]][] = [...(users.length ? [['user', users] as [string, unknown[]]] : []), ['prompt', prompts], ['seed', seeds]];
  const planned: (SweepCell & { user?: string })[] = [];
  const checked = new Set<string>();
  for (const user of users.length ? users : [undefined]) {
    for (const prompt of prompts)
      for (const seed of seeds) {
        const index = planned.length;
        const values = { ...(user ? { user } : {}), prompt, seed };
        const where = `batch cell ${index + 1} (${user ? `user ${user}, ` : ''}prompt "${prompt}", seed ${seed})`;
        try {
          const config = resolveConfig({ file: o.config, overrides: { ...(o.overrides ?? {}), prompt, seed } });
          const active = activeRewardNames(config.weights, !!user).active;
          const personal = personalOptions(user, config.guidance, config.n_ref, o.preferenceModel);
          const key = JSON.stringify([config.generator, active, personal ?? null]);
          if (!checked.has(key)) {
            checked.add(key);
            const gen = GENERATORS[config.generator];
            if (!gen) throw new ConfigError(`unknown generator "${config.generator}" (known: ${Object.keys(GENERATORS).join(', ')})`);
            requireModel(getModel(gen.model), places);
            checkRewardModels(active, rewardContext(places, personal));
          }
          const hash = configHash(config, { user: user ? path.resolve(user) : null, smoke: places.smokeTest, generatorDir: o.modelDir ?? null });
          planned.push({
            index,
            values,
            config,
            hash,
            dir: path.join(dir, `cell-${String(index).padStart(4, '0')}-${hash}`),
            skipped: false,
            user: user && path.resolve(user),
          });
        } catch (e) {
          if (e instanceof RenoError) e.message = `${where}: ${e.message}`;
          throw e;
        }
      }
  }
  const spec: SweepSpec = { base: o.overrides ?? {}, grid };
  const sub = o.queue
    ? await submitCells({
        url: o.queue,
        cells: planned.map((c) => ({ ...c, preferenceModel: o.preferenceModel })),
        models: { preset: o.preset, modelDir: o.modelDir, modelsDir: o.modelsDir },
        meta: (c) => ({ batch: path.resolve(o.prompts), cell: c.values }),
        detach: o.detach,
        quiet: o.quiet,
        log,
      })
    : null;
  if (!sub?.interrupted && !o.detach) await writeSweepSummary(dir, spec, planned);
  const again = `reno batch --prompts ${o.prompts}${o.users ? ` --users ${o.users}` : ''}${o.seeds ? ` --seeds ${o.seeds}` : ''} --collect`;
  queuedSweepOutcome({ what: 'batch', again, dir, cells: planned, sub, detach: o.detach, quiet: o.quiet, log });
  return { dir, cells: planned };
}

/** The config keys `reno batch` takes as flags: all but prompt and seed (from --prompts and --seeds). */
export const BATCH_KEYS = (Object.keys(SCHEMA) as (keyof RunConfig)[]).filter(
  (k): k is ConfigKey => k !== 'weights' && k !== 'prompt' && k !== 'seed',
);
