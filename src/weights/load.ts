// Strict loading of a Module from a TensorSource by key name. Every expected key is checked before any tensor is
// created: missing, unexpected and mis-shaped keys are all reported together, with both shapes.
import * as tf from '../runtime/tf.js';
import { WeightsError } from '../errors.js';
import type { Module, Param } from '../nn/module.js';
import { toTfLayout } from './layout.js';
import type { TensorSource } from './source.js';

export interface LoadOptions {
  /** Prefix of this module's keys inside the source (e.g. "text_model." or "blip.visual_encoder."). */
  prefix?: string;
  /** Map a key as stored in the file to the module's name for it (legacy names); return null to drop the key. */
  rename?: (fileKey: string) => string | null;
  /** Keys in the file (after rename) that may be present without a parameter (buffers, unused heads). */
  ignore?: (key: string) => boolean;
  /** Only consider file keys under `prefix` (the file holds other models too). Default true when prefix is set. */
  scoped?: boolean;
  /** Module parameter names that share storage with another file key (tied weights): module name -> file key. */
  tied?: Record<string, string>;
}

export interface LoadReport {
  loaded: number;
  ignored: string[];
}

const MAX_LISTED = 40;

function list(title: string, items: string[]): string {
  if (items.length === 0) return '';
  const shown = items.slice(0, MAX_LISTED).map((s) => `  ${s}`);
  if (items.length > MAX_LISTED) shown.push(`  ... and ${items.length - MAX_LISTED} more`);
  return `${title} (${items.length}):\n${shown.join('\n')}\n`;
}

/** Check the source against the module; returns the key in the file for each parameter. Throws on any problem. */
export function planLoad(module: Module, source: TensorSource, opts: LoadOptions = {}): { plan: Map<Param, string>; ignored: string[] } {
  const prefix = opts.prefix ?? '';
  const scoped = opts.scoped ?? prefix.length > 0;
  const fileKeyOf = new Map<string, string>(); // module-name -> file key
  for (const fk of source.keys()) {
    if (scoped && !fk.startsWith(prefix)) continue;
    const local = fk.startsWith(prefix) ? fk.slice(prefix.length) : fk;
    const name = opts.rename ? opts.rename(local) : local;
    if (name === null) continue;
    fileKeyOf.set(name, fk);
  }
  const missing: string[] = [];
  const misShaped: string[] = [];
  const plan = new Map<Param, string>();
  const used = new Set<string>();
  for (const [name, p] of module.namedParams()) {
    const fk = opts.tied?.[name] ?? fileKeyOf.get(name);
    const info = fk === undefined ? undefined : source.info(fk);
    if (!info || fk === undefined) {
      if (!p.opts.optional) missing.push(`${prefix}${name} [${p.torchShape.join(', ')}]`);
      continue;
    }
    used.add(name);
    const same = info.shape.length === p.torchShape.length && info.shape.every((d, i) => d === p.torchShape[i]);
    // A 1x1 conv stored where a Linear is expected (legacy VAE attention) has the same numbers.
    const squeezable =
      p.layout === 'linear' &&
      info.shape.length === 4 &&
      info.shape[2] === 1 &&
      info.shape[3] === 1 &&
      info.shape[0] === p.torchShape[0] &&
      info.shape[1] === p.torchShape[1];
    if (!same && !squeezable) {
      misShaped.push(`${fk}: expected [${p.torchShape.join(', ')}], found [${info.shape.join(', ')}]`);
      continue;
    }
    plan.set(p, fk);
  }
  const unexpected: string[] = [];
  const ignored: string[] = [];
  for (const [name, fk] of fileKeyOf) {
    if (used.has(name)) continue;
    if (opts.ignore?.(name)) ignored.push(fk);
    else unexpected.push(`${fk} [${source.info(fk)?.shape.join(', ')}]`);
  }
  if (missing.length || misShaped.length || unexpected.length) {
    throw new WeightsError(
      `${source.path} does not match the model:\n` +
        list('missing keys', missing) +
        list('unexpected keys', unexpected) +
        list('wrong shapes', misShaped),
    );
  }
  return { plan, ignored };
}

/** Load every parameter of `module` from `source` (strict). Tensors are created one at a time. */
export function loadModule(module: Module, source: TensorSource, opts: LoadOptions = {}): LoadReport {
  const { plan, ignored } = planLoad(module, source, opts);
  for (const [p, fk] of plan) {
    const raw = source.read(fk);
    const data = toTfLayout(p.layout, p.torchShape, raw);
    p.store(tf.tensor(data, p.tfShape, 'float32'));
  }
  return { loaded: plan.size, ignored };
}

/** Initialise every parameter with seeded random values (for benchmarks of full architectures without weights). */
export function randomInit(module: Module, seed = 0, scale = 0.02): void {
  let s = seed;
  for (const [name, p] of module.namedParams()) {
    const isNormWeight = /norm.*\.weight$|ln.*\.weight$|layer_norm.*weight$|\.gamma$/.test(name);
    p.store(isNormWeight ? tf.ones(p.tfShape) : tf.randomNormal(p.tfShape, 0, scale, 'float32', s++));
  }
}
