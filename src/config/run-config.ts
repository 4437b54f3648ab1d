// The resolved configuration of one run: configs/default.yaml, then --config FILE, then command-line overrides
// (dotted keys like weights.pickscore). Unknown keys, wrong types and out-of-range values fail naming the key.
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { ConfigError, UsageError } from '../errors.js';
import { packageRoot } from '../paths.js';

/** The image towers the embedding personal model can use (each is also a reward's tower; rewards/personal-embedding.ts). */
export const EMBEDDING_TOWERS = ['pickscore', 'clip', 'aesthetic'] as const;
export type EmbeddingTowerName = (typeof EMBEDDING_TOWERS)[number];

export interface RunConfig {
  generator: string;
  prompt: string;
  seed: number;
  /** null: the generator's native size (512 for SD-Turbo) */
  width: number | null;
  height: number | null;
  steps: number;
  optimize: boolean;
  optimizer: 'sgd' | 'adam';
  lr: number;
  momentum: number;
  nesterov: boolean;
  grad_clip: number;
  reg_weight: number;
  save_steps: boolean;
  guidance: 'like' | 'dislike';
  n_ref: number;
  /** the personal model: auto (the VLM when a checkpoint is named or found, else embedding), vlm, embedding */
  personal_model: 'auto' | 'vlm' | 'embedding';
  /** the embedding personal model's image tower */
  personal_tower: EmbeddingTowerName;
  weights: Record<string, number>;
}

type Rule =
  | { type: 'string' }
  | { type: 'int'; min?: number; nullable?: boolean }
  | { type: 'number'; min?: number; max?: number; exclusiveMin?: boolean }
  | { type: 'bool' }
  | { type: 'enum'; options: readonly string[] }
  | { type: 'weights' };

/** The config keys a command takes as flags (all but `weights`, which becomes one flag per reward). */
export type ConfigKey = Exclude<keyof RunConfig, 'weights'>;

export const SCHEMA: Record<keyof RunConfig, Rule> = {
  generator: { type: 'string' },
  prompt: { type: 'string' },
  seed: { type: 'int', min: 0 },
  width: { type: 'int', min: 8, nullable: true },
  height: { type: 'int', min: 8, nullable: true },
  steps: { type: 'int', min: 1 },
  optimize: { type: 'bool' },
  optimizer: { type: 'enum', options: ['sgd', 'adam'] },
  lr: { type: 'number', min: 0, exclusiveMin: true },
  momentum: { type: 'number', min: 0, max: 1 },
  nesterov: { type: 'bool' },
  grad_clip: { type: 'number', min: 0 },
  reg_weight: { type: 'number', min: 0 },
  save_steps: { type: 'bool' },
  guidance: { type: 'enum', options: ['like', 'dislike'] },
  n_ref: { type: 'int', min: 1 },
  personal_model: { type: 'enum', options: ['auto', 'vlm', 'embedding'] },
  personal_tower: { type: 'enum', options: EMBEDDING_TOWERS },
  weights: { type: 'weights' },
};

/** One line per key for `--help` (the CLI's loop options are generated from SCHEMA, these and configs/default.yaml). */
export const KEY_HELP: Record<keyof RunConfig, string> = {
  generator: 'the one-step generator (registered name)',
  prompt: 'the text prompt',
  seed: 'seed of the initial noise',
  width: "image width in pixels; null: the generator's native size",
  height: "image height in pixels; null: the generator's native size",
  steps: 'evaluated images; the last one gets no update',
  optimize: 'optimise the noise (--no-optimize: the one-shot image)',
  optimizer: 'sgd (with momentum) or adam',
  lr: 'learning rate of the noise',
  momentum: 'SGD momentum',
  nesterov: 'Nesterov momentum for sgd',
  grad_clip: 'clip of the global L2 norm of the noise gradient',
  reg_weight: 'weight of the chi-norm regulariser on the noise',
  save_steps: 'write steps/NNN.png for every evaluated image',
  guidance: 'what the personal reward pushes toward (needs --user)',
  n_ref: "reference pairs of the user's history read by the personal reward",
  personal_model: 'the personal model (needs --user): auto (the VLM when a checkpoint is named or found, else embedding), vlm, embedding',
  personal_tower: "the embedding personal model's image tower",
  weights: 'weight of each reward in the loss (0 turns a reward off)',
};

/** Where command-line overrides come from: their errors name the flag (--grad-clip) and quote what was given. */
export const COMMAND_LINE = 'command line';

/** `--grad-clip` for grad_clip, `--weights.clip` for weights.clip. */
export const flagName = (key: string) => `--${key.replace(/_/g, '-')}`;

/** A value as the user gave it: strings quoted, NaN and infinities as such (JSON would print null). */
const shown = (v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? String(v) : JSON.stringify(v));

function coerce(key: string, rule: Rule, v: unknown, src: string): unknown {
  const bad = (want: string): never => {
    if (src === COMMAND_LINE && Array.isArray(v)) throw new UsageError(`${flagName(key)} was given more than once`);
    if (src === COMMAND_LINE)
      throw new UsageError(`${flagName(key)} must be ${want}, found ${typeof v === 'string' ? JSON.stringify(v) : `"${shown(v)}"`}`);
    throw new ConfigError(`${src}: "${key}" must be ${want}, found ${shown(v)}`);
  };
  // command-line values may arrive as strings
  const num = typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v)) ? Number(v) : v;
  switch (rule.type) {
    case 'string':
      return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : bad('a string');
    case 'int':
      if (rule.nullable && (v === null || v === 'auto')) return null;
      if (typeof num !== 'number' || !Number.isInteger(num) || (rule.min !== undefined && num < rule.min))
        return bad(rule.min !== undefined ? `an integer >= ${rule.min}` : 'an integer');
      return num;
    case 'number':
      if (
        typeof num !== 'number' ||
        !Number.isFinite(num) ||
        (rule.min !== undefined && (rule.exclusiveMin ? num <= rule.min : num < rule.min)) ||
        (rule.max !== undefined && num > rule.max)
      )
        return bad(numberWant(rule));
      return num;
    case 'bool':
      if (v === 'true') return true;
      if (v === 'false') return false;
      return typeof v === 'boolean' ? v : bad('true or false');
    case 'enum':
      return typeof v === 'string' && rule.options.includes(v) ? v : bad(`one of ${rule.options.join(', ')}`);
    case 'weights': {
      if (!v || typeof v !== 'object' || Array.isArray(v)) return bad('a mapping of reward name to weight');
      const out: Record<string, number> = {};
      for (const [k, w] of Object.entries(v as Record<string, unknown>))
        out[k] = coerce(`weights.${k}`, { type: 'number', min: 0 }, w, src) as number;
      return out;
    }
  }
}

function numberWant(rule: Extract<Rule, { type: 'number' }>): string {
  const lo = rule.min === undefined ? '' : `${rule.exclusiveMin ? '>' : '>='} ${rule.min}`;
  const hi = rule.max === undefined ? '' : `<= ${rule.max}`;
  return lo && hi ? `a number ${lo} and ${hi}` : `a number${lo || hi ? ' ' + (lo || hi) : ''}`;
}

/** Validate a partial config (from YAML or flags); returns the typed subset. */
export function validatePartial(obj: unknown, src: string): Partial<RunConfig> {
  if (obj === null || obj === undefined) return {};
  if (typeof obj !== 'object' || Array.isArray(obj)) throw new ConfigError(`${src}: expected a mapping of config keys`);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
    const rule = SCHEMA[k as keyof RunConfig];
    if (!rule) {
      if (src === COMMAND_LINE) throw new UsageError(`unknown option ${flagName(k)} (config keys: ${Object.keys(SCHEMA).map(flagName).join(', ')})`);
      throw new ConfigError(`${src}: unknown key "${k}" (known: ${Object.keys(SCHEMA).join(', ')})`);
    }
    if (v === undefined) continue;
    out[k] = coerce(k, rule, v, src);
  }
  return out as Partial<RunConfig>;
}

export function readConfigFile(file: string): Partial<RunConfig> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read config ${file}: ${(e as Error).message}`);
  }
  let obj: unknown;
  try {
    obj = YAML.parse(text);
  } catch (e) {
    throw new ConfigError(`${file}: invalid YAML: ${(e as Error).message}`);
  }
  return validatePartial(obj, file);
}

export function defaultsFile(): string {
  return path.join(packageRoot(), 'configs', 'default.yaml');
}

/**
 * Layer defaults, an image's stored config (--config-from, already validated), a config file and overrides; weights
 * merge key by key. The prompt must be set by then.
 */
export function resolveConfig(layers: {
  file?: string;
  overrides?: Record<string, unknown>;
  defaults?: string;
  from?: Partial<RunConfig>;
}): RunConfig {
  const parts: Partial<RunConfig>[] = [readConfigFile(layers.defaults ?? defaultsFile())];
  if (layers.from) parts.push(layers.from);
  if (layers.file) parts.push(readConfigFile(layers.file));
  if (layers.overrides) parts.push(validatePartial(layers.overrides, COMMAND_LINE));
  const merged: Record<string, unknown> = { prompt: '' };
  for (const p of parts)
    for (const [k, v] of Object.entries(p)) merged[k] = k === 'weights' ? { ...(merged.weights as object), ...(v as object) } : v;
  for (const k of Object.keys(SCHEMA)) if (merged[k] === undefined) throw new ConfigError(`configuration is missing "${k}"`);
  return merged as unknown as RunConfig;
}
