// yargs option builders shared by the commands: the run configuration's keys as flags, generated from the typed
// SCHEMA (src/config/run-config.ts) with their defaults read from configs/default.yaml and one --weights.NAME per
// registered reward; and number flags whose errors quote what the user typed. Wiring only: values are checked by the
// config's own validation (validatePartial) or by the number flag's coerce, both as UsageErrors.
import type { Argv, Options } from 'yargs';
import { REWARDS } from '../../rewards/index.js';
import { defaultsFile, flagName, KEY_HELP, readConfigFile, SCHEMA, type ConfigKey, type RunConfig } from '../config/run-config.js';
import { UsageError } from '../errors.js';

/**
 * A number flag: yargs would turn "abc" into NaN (and the error could only say "found NaN"), so the flag has no yargs
 * type (the parser keeps numbers as text: parserConfiguration 'parse-numbers' false in main.ts) and is converted here.
 */
export function numberFlag(
  name: string,
  describe: string,
  o: { integer?: boolean; min?: number; exclusiveMin?: boolean; default?: number } = {},
): Options & { coerce: (v: unknown) => number } {
  const want = `${o.integer ? 'an integer' : 'a number'}${o.min === undefined ? '' : ` ${o.exclusiveMin ? '>' : '>='} ${o.min}`}`;
  return {
    describe,
    requiresArg: true,
    ...(o.default !== undefined ? { default: o.default } : {}),
    coerce: (v: unknown) => {
      if (Array.isArray(v)) throw new UsageError(`--${name} was given more than once`);
      const text = String(v).trim();
      const n = Number(text);
      const ok =
        text !== '' &&
        Number.isFinite(n) &&
        (!o.integer || Number.isInteger(n)) &&
        (o.min === undefined || (o.exclusiveMin ? n > o.min : n >= o.min));
      if (!ok) throw new UsageError(`--${name} must be ${want}, found ${JSON.stringify(String(v))}`);
      return n;
    },
  };
}

/** "(integer >= 1)", "(number > 0)": what a config key takes, for its help line. */
function kind(key: keyof RunConfig): string {
  const r = SCHEMA[key];
  switch (r.type) {
    case 'int':
      return `integer${r.min !== undefined ? ` >= ${r.min}` : ''}${r.nullable ? ', null or auto' : ''}`;
    case 'number':
      return `number${r.min !== undefined ? ` ${r.exclusiveMin ? '>' : '>='} ${r.min}` : ''}${r.max !== undefined ? `, <= ${r.max}` : ''}`;
    default:
      return '';
  }
}

export type { ConfigKey } from '../config/run-config.js';

/** Shorter flag names for some keys: --personal for personal_model. */
const SHORT: Partial<Record<ConfigKey, string>> = { personal_model: 'personal' };

/**
 * Adds every config key (or the given ones) as a flag: grad_clip as --grad-clip (and --grad_clip), each reward's
 * weight as --weights.NAME, with its description and its default from configs/default.yaml. Values stay as given;
 * configOverrides() collects them for resolveConfig, which checks them.
 */
export function configOptions<T>(y: Argv<T>, o: { keys?: ConfigKey[]; weights?: boolean; required?: ConfigKey[] } = {}): Argv<T> {
  const defaults = readConfigFile(defaultsFile());
  const keys = o.keys ?? (Object.keys(SCHEMA).filter((k) => k !== 'weights') as ConfigKey[]);
  let out = y;
  for (const key of keys) {
    const rule = SCHEMA[key];
    const flag = flagName(key).slice(2);
    const k = kind(key);
    const opt: Options = { describe: KEY_HELP[key] + (k ? ` (${k})` : '') };
    // a short name replaces the snake_case spelling (--personal for --personal-model), else --grad_clip too
    const aliases = SHORT[key] ? [SHORT[key]!] : flag !== key ? [key] : [];
    if (aliases.length) opt.alias = aliases;
    if (o.required?.includes(key)) opt.demandOption = true;
    else if (defaults[key] !== undefined) opt.defaultDescription = String(defaults[key]);
    if (rule.type === 'bool') opt.type = 'boolean';
    else if (rule.type === 'enum') Object.assign(opt, { type: 'string', choices: [...rule.options] });
    else if (rule.type === 'string') opt.type = 'string';
    else opt.requiresArg = true; // numbers: kept as text, checked (and quoted) by validatePartial
    out = out.option(flag, opt);
  }
  if (o.weights !== false) {
    // --weights.NAME parses into { weights: { NAME } }; "weights" itself is declared (hidden) so that strict mode
    // accepts the parent key, and the check names a reward that is not registered
    out = out.option('weights', { hidden: true });
    for (const r of REWARDS)
      out = out.option(`weights.${r.name}`, {
        describe: `weight of the ${r.name} reward${r.name === 'personal' ? ' (applies with --user)' : ''} (number >= 0)`,
        defaultDescription: String(defaults.weights?.[r.name] ?? 0),
        requiresArg: true,
      });
    out = out.check((a) => {
      const w = (a as { weights?: unknown }).weights;
      if (w === undefined) return true;
      if (!w || typeof w !== 'object' || Array.isArray(w)) throw new UsageError('--weights takes a reward name: --weights.NAME VALUE');
      const known = REWARDS.map((r) => r.name);
      for (const name of Object.keys(w))
        if (!known.includes(name)) throw new UsageError(`--weights.${name}: unknown reward "${name}" (known: ${known.join(', ')})`);
      return true;
    });
  }
  return out;
}

/** The config keys given on the command line, as resolveConfig's overrides (grad_clip, weights: { clip }). */
export function configOverrides(a: Record<string, unknown>, keys?: ConfigKey[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of keys ?? (Object.keys(SCHEMA) as (keyof RunConfig)[])) {
    const v = a[flagName(key).slice(2)];
    if (v !== undefined) out[key] = v;
  }
  return out;
}
