// `reno dev parity <fixtures-root>`: run every case whose folder exists under the root, print one line per checked
// tensor (max |ours - ref| / max |ref| against its tolerance) and report failures. Sizes come from each fixture.
import * as tf from '../runtime/tf.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UsageError } from '../errors.js';
import { PARITY_CASES } from './cases/index.js';
import type { Check, ParityCase, ParityContext } from './types.js';

export interface ParityOptions {
  backend: string;
  /** Only these case names (default: every known case present under the root). */
  only?: string[];
  /** Tolerance override for outputs / gradients. */
  tol?: { output?: number; gradient?: number };
  write?: (line: string) => void;
  cases?: ParityCase[];
}

export interface ParityResult {
  checks: Check[];
  failed: Check[];
  errors: { case: string; message: string }[];
  skipped: string[];
}

export function defaultTolerance(backend: string): { output: number; gradient: number } {
  return backend === 'webgpu' ? { output: 1e-3, gradient: 1e-3 } : { output: 1e-4, gradient: 1e-3 };
}

const fmt = (x: number) => (Number.isFinite(x) ? x.toExponential(2) : String(x));

export async function runParity(root: string, opts: ParityOptions): Promise<ParityResult> {
  if (!fs.existsSync(root) || !fs.statSync(root).isDirectory()) throw new UsageError(`fixture root not found: ${root}`);
  const write = opts.write ?? ((l: string) => process.stdout.write(l + '\n'));
  const cases = opts.cases ?? PARITY_CASES;
  const tol = { ...defaultTolerance(opts.backend), ...opts.tol };
  const ctx: ParityContext = { backend: opts.backend, tol, root: path.resolve(root) };
  const folders = fs
    .readdirSync(root)
    .filter((d) => fs.statSync(path.join(root, d)).isDirectory())
    .sort();
  const known = new Map(cases.map((c) => [c.name, c]));
  if (opts.only)
    for (const n of opts.only) if (!known.has(n)) throw new UsageError(`unknown parity case "${n}" (known: ${[...known.keys()].join(', ')})`);
  const result: ParityResult = { checks: [], failed: [], errors: [], skipped: [] };
  for (const folder of folders) {
    const c = known.get(folder);
    if (!c) {
      // scheduler/ is shared configuration used by pipeline_onestep, not a case of its own
      if (folder !== 'scheduler' && !opts.only) result.skipped.push(folder);
      continue;
    }
    if (opts.only && !opts.only.includes(folder)) continue;
    const before = tf.memory().numTensors;
    try {
      const checks = await c.run(path.join(root, folder), ctx);
      for (const ch of checks) {
        write(
          `${ch.pass ? 'PASS' : 'FAIL'}  ${ch.name.padEnd(52)} ${ch.kind === 'gradient' ? 'grad' : 'out '}  rel ${fmt(ch.relErr).padStart(9)}  tol ${fmt(ch.tol)}${ch.note ? `  (${ch.note})` : ''}`,
        );
        result.checks.push(ch);
        if (!ch.pass) result.failed.push(ch);
      }
      const leaked = tf.memory().numTensors - before;
      if (leaked > 0) write(`note  ${folder}: ${leaked} tensors not disposed`);
    } catch (e) {
      const message = (e as Error).message;
      write(`ERROR ${folder}: ${message}`);
      result.errors.push({ case: folder, message });
    }
  }
  for (const s of result.skipped) write(`skip  ${s} (no case for this folder)`);
  write(
    `${result.checks.length - result.failed.length}/${result.checks.length} checks passed` +
      (result.errors.length ? `, ${result.errors.length} case(s) failed to run` : '') +
      ` on ${opts.backend}`,
  );
  return result;
}
