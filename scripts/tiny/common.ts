// Shared pieces of the tiny preset writer: JSON, safetensors of seeded random weights, tokenizer file copies.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Module } from '../../src/nn/module.js';
import { randomStateDict } from '../../src/weights/random.js';
import { writeSafetensors } from '../../src/weights/safetensors.js';

export const SEED = 20261126;

export function writeJson(file: string, obj: unknown): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(obj, null, 2) + '\n');
}

/** Seeded random weights for `module`, saved in PyTorch layout under its key names (F16 keeps the preset small). */
export function writeRandomWeights(
  file: string,
  module: Module,
  seed: number,
  opts: { prefix?: string; gain?: number; extra?: Record<string, { shape: number[]; data: Float32Array }> } = {},
): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const sd = randomStateDict(module, seed, opts);
  for (const [k, v] of Object.entries(opts.extra ?? {})) sd.set(k, v);
  writeSafetensors(file, sd, { format: 'pt', note: 'reno tiny smoke-test preset: random weights' }, 'F16');
}

export function copyFiles(fromDir: string, toDir: string, names: string[]): void {
  fs.mkdirSync(toDir, { recursive: true });
  for (const n of names) fs.copyFileSync(path.join(fromDir, n), path.join(toDir, n));
}
