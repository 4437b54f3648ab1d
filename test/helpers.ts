// Shared test helpers: fixture paths, temporary folders, backend selection and tensor-leak checks.
import * as tf from '../src/runtime/tf.js';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { useBackend } from '../src/runtime/backend.js';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const FIXTURES = path.join(ROOT, 'test', 'fixtures');
export const PARITY = path.join(FIXTURES, 'parity');
export const ASSETS = path.join(FIXTURES, 'assets');

export function tmpDir(tag = 'reno-test'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `${tag}-`));
}

/** Backends the test suite runs numeric checks on (RENO_TEST_BACKENDS=cpu,wasm by default). */
export function testBackends(): string[] {
  return (process.env.RENO_TEST_BACKENDS ?? 'cpu,wasm').split(',').filter(Boolean);
}

export async function backend(name = process.env.RENO_TEST_BACKEND ?? 'cpu'): Promise<string> {
  return useBackend(name, { quiet: true });
}

/** Run fn and fail if it leaves tensors behind. */
export async function noLeak<T>(fn: () => Promise<T> | T): Promise<T> {
  const before = tf.memory().numTensors;
  const out = await fn();
  const after = tf.memory().numTensors;
  if (after !== before) throw new Error(`tensor leak: ${after - before} tensors left behind`);
  return out;
}

/**
 * Runs fn on the webgpu backend, counting the GPU programs it runs (WebGPUBackend.runWebGPUProgram calls, tfjs' own
 * kernels included), or only those whose shader key starts with `keyPrefix`.
 */
export function countPrograms<T>(fn: () => T, keyPrefix = ''): { value: T; n: number } {
  const be = tf.backend() as unknown as { runWebGPUProgram: (p: { shaderKey: string }, ...a: unknown[]) => unknown };
  const orig = be.runWebGPUProgram;
  let n = 0;
  be.runWebGPUProgram = function (p, ...a) {
    if (p.shaderKey.startsWith(keyPrefix)) n++;
    return orig.call(this, p, ...a);
  };
  try {
    return { value: fn(), n };
  } finally {
    be.runWebGPUProgram = orig;
  }
}

export function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < b.length; i++) {
    num = Math.max(num, Math.abs(a[i] - b[i]));
    den = Math.max(den, Math.abs(b[i]));
  }
  return num / (den || 1);
}
