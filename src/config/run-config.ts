// The resolved configuration of one run: configs/default.yaml, then --config FILE, then command-line overrides
// (dotted keys like weights.pickscore). Unknown keys, wrong types and out-of-range values fail naming the key.
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { ConfigError } from '../errors.js';
import { packageRoot } from '../paths.js';

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
  personal_tower: 'pickscore' | 'clip' | 'aesthetic';
  weights: Record<string, number>;
}

type Rule =
  | { type: 'string' }
  | { type: 'int'; min?: number; nullable?: boolean }
  | { type: 'number'; min?: number; max?: number; exclusiveMin?: boolean }
  | { type: 'bool' }
  | { type: 'enum'; options: readonly string[] }
  | { type: 'weights' };

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
  personal_tower: { type: 'enum', options: ['pickscore', 'clip', 'aesthetic'] },
  weights: { type: 'weights' },
};

function coerce(key: string, rule: Rule, v: unknown, src: string): unknown {
  const bad = (want: string): never => {
    throw new ConfigError(`${src}: "${key}" must be ${want}, found ${JSON.stringify(v)}`);
  };
  // command-line values may arrive as strings
  const num = typeof v === 'string' && v.trim() !== '' && !Number.isNaN(Number(v)) ? Number(v) : v;
  switch (rule.type) {
    case 'string':
      return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : bad('a string');
    case 'int':
      if (rule.nullable && (v === null || v === 'auto')) return null;
      if (typeof num !== 'number' || !Number.isInteger(num)) return bad('an integer');
      if (rule.min !== undefined && num < rule.min) return bad(`an integer >= ${rule.min}`);
      return num;
    case 'number':
      if (typeof num !== 'number' || !Number.isFinite(num)) return bad('a number');
      if (rule.min !== undefined && (rule.exclusiveMin ? num <= rule.min : num < rule.min)) return bad(`a number ${rule.exclusiveMin ? '>' : '>='} ${rule.min}`);
      if (rule.max !== undefined && num > rule.max) return bad(`a number <= ${rule.max}`);
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

/** Validate a partial config (from YAML or flags); returns the typed subset. */
export function validatePartial(obj: unknown, src: string): Partial<RunConfig> {
  if (obj === null || obj === undefined) return {};
  if (typeof obj !== 'object' || Array.isArray(obj)) throw new ConfigError(`${src}: expected a mapping of config keys`);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(obj as Record<string, unknown>)) {
    const rule = SCHEMA[k as keyof RunConfig];
    if (!rule) throw new ConfigError(`${src}: unknown key "${k}" (known: ${Object.keys(SCHEMA).join(', ')})`);
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

/** Layer defaults, a config file and overrides; weights merge key by key. The prompt must be set by then. */
export function resolveConfig(layers: { file?: string; overrides?: Record<string, unknown>; defaults?: string }): RunConfig {
  const parts: Partial<RunConfig>[] = [readConfigFile(layers.defaults ?? defaultsFile())];
  if (layers.file) parts.push(readConfigFile(layers.file));
  if (layers.overrides) parts.push(validatePartial(layers.overrides, 'command line'));
  const merged: Record<string, unknown> = { prompt: '' };
  for (const p of parts)
    for (const [k, v] of Object.entries(p)) merged[k] = k === 'weights' ? { ...(merged.weights as object), ...(v as object) } : v;
  for (const k of Object.keys(SCHEMA)) if (merged[k] === undefined) throw new ConfigError(`configuration is missing "${k}"`);
  return merged as unknown as RunConfig;
}
