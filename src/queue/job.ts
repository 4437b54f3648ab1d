// One queue job = one cell: a resolved run config to run into one run folder (the same code path as a sweep cell
// and `reno generate`: src/run/session.ts runGeneration). The job id is a hash of the cell's resolved config and its
// folder, so submitting the same cells again adds nothing new.
import { createHash } from 'node:crypto';
import * as path from 'node:path';
import { SCHEMA, validatePartial, type RunConfig } from '../config/run-config.js';
import { DataError } from '../errors.js';

export const JOB_VERSION = 1;

/** Where the worker finds the models, as the submitter named them (a worker's own flags take precedence). */
export interface JobModels {
  preset?: string;
  modelDir?: string;
  modelsDir?: string;
}

export interface CellJob {
  v: typeof JOB_VERSION;
  /** the cell's index in its sweep or batch (0-based) */
  index: number;
  /** the grid values of this cell (for done.json and the summary) */
  values: Record<string, unknown>;
  config: RunConfig;
  /** the cell's config hash (sweep.ts configHash): done.json holds it */
  hash: string;
  /** the run folder (absolute; a folder every worker can reach: NFS, a mounted bucket) */
  dir: string;
  /** a user's history.json (absolute): turns on the personal reward */
  user?: string;
  /** the preference checkpoint folder (absolute) */
  preferenceModel?: string;
  models: JobModels;
  /** extra facts for run.yaml */
  meta?: Record<string, unknown>;
}

/** The deterministic job id of a cell: a hash of its resolved config hash and folder. */
export function cellJobId(c: { hash: string; dir: string }): string {
  return `cell-${createHash('sha256')
    .update(JSON.stringify([c.hash, path.resolve(c.dir)]))
    .digest('hex')
    .slice(0, 32)}`;
}

const isObj = (v: unknown): v is Record<string, unknown> => !!v && typeof v === 'object' && !Array.isArray(v);

/** The payload of a job, checked field by field; a DataError naming the field otherwise. */
export function parseCellJob(data: unknown, id = '?'): CellJob {
  const bad = (field: string, want: string) => new DataError(`job ${id}: ${field} must be ${want}`);
  if (!isObj(data)) throw bad('the payload', 'an object');
  if (data.v !== JOB_VERSION) throw bad('"v"', `${JOB_VERSION} (this worker's job format; found ${JSON.stringify(data.v)})`);
  if (!Number.isInteger(data.index) || (data.index as number) < 0) throw bad('"index"', 'a non-negative integer');
  if (!isObj(data.values)) throw bad('"values"', 'an object');
  if (typeof data.hash !== 'string' || !/^[0-9a-f]{6,64}$/.test(data.hash)) throw bad('"hash"', 'a hex string');
  if (typeof data.dir !== 'string' || !path.isAbsolute(data.dir)) throw bad('"dir"', 'an absolute folder path');
  for (const k of ['user', 'preferenceModel'] as const)
    if (data[k] !== undefined && (typeof data[k] !== 'string' || !path.isAbsolute(data[k] as string))) throw bad(`"${k}"`, 'an absolute path');
  if (!isObj(data.models)) throw bad('"models"', 'an object');
  for (const k of ['preset', 'modelDir', 'modelsDir'])
    if (data.models[k] !== undefined && typeof data.models[k] !== 'string') throw bad(`"models.${k}"`, 'a string');
  if (data.meta !== undefined && !isObj(data.meta)) throw bad('"meta"', 'an object');
  if (!isObj(data.config)) throw bad('"config"', 'an object');
  try {
    validatePartial(data.config, `job ${id} config`);
  } catch (e) {
    throw new DataError((e as Error).message);
  }
  for (const k of Object.keys(SCHEMA)) if (data.config[k] === undefined) throw bad(`"config.${k}"`, 'set');
  if (typeof data.config.prompt !== 'string' || !data.config.prompt.trim()) throw bad('"config.prompt"', 'a non-empty string');
  return data as unknown as CellJob;
}
