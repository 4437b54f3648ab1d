// Seeded random weights for a module, in PyTorch layout under the module's own key names: used to write the tiny
// smoke-test preset (scripts/make-tiny-preset.ts) and full-size benchmark models. Each tensor's stream is seeded
// by its name, so adding a parameter elsewhere never changes the others.
import type { Module } from '../nn/module.js';
import { gaussian } from '../util/random.js';
import { numel } from './source.js';

export type StateDict = Map<string, { shape: number[]; data: Float32Array }>;

/** Norm scales 1 (+ small noise), biases small, matrices N(0, gain / sqrt(fan_in)). */
export function randomStateDict(module: Module, seed: number, opts: { prefix?: string; gain?: number } = {}): StateDict {
  const out: StateDict = new Map();
  const gain = opts.gain ?? 1;
  for (const [name, p] of module.namedParams()) {
    const shape = [...p.torchShape];
    const n = numel(shape);
    const g = gaussian(n, `${seed}:${name}`);
    // any norm's scale (norm1, conv_norm_out, input_layernorm, ln_final, pre_layrnorm, LayerNorm, ...) starts at 1
    const isNorm = /(^|\.)(\w*norm\w*|ln\w*)\.weight$/i.test(name);
    let std: number;
    if (shape.length === 1) std = isNorm ? 0.05 : 0.02;
    else if (p.layout === 'conv2d') std = gain / Math.sqrt(shape[1] * shape[2] * shape[3]);
    else if (p.layout === 'linear') std = gain / Math.sqrt(shape[1]);
    else std = 0.5; // embeddings
    for (let i = 0; i < n; i++) g[i] = (isNorm ? 1 : 0) + g[i] * std;
    out.set((opts.prefix ?? '') + name, { shape, data: g });
  }
  return out;
}
