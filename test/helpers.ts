// Shared test helpers: fixture paths, temporary folders, backend selection, tensor-leak checks, the CLI as a child
// process and headless Chromium for the browser tests.
import * as tf from '../src/runtime/tf.js';
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Browser } from 'playwright-core';
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

/** `reno ARGS` as a child process (`node --import tsx src/cli/run.ts`, in the repository root), stdout and stderr piped. */
export function spawnCli(args: string[]): ChildProcessByStdio<null, Readable, Readable> {
  return spawn(process.execPath, ['--import', 'tsx', path.join(ROOT, 'src/cli/run.ts'), ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/** `reno ARGS` run to its exit: the exit code and what it printed. */
export function cli(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnCli(args);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => (stdout += d));
  child.stderr.on('data', (d) => (stderr += d));
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })));
}

/** The browser tests' Chromium (Debian's, through playwright-core; RENO_CHROMIUM for another). */
export const CHROMIUM = process.env.RENO_CHROMIUM ?? '/usr/bin/chromium';
/** The skip reason of a browser test where there is no Chromium (false where there is one). */
export const NO_CHROMIUM: string | false = !fs.existsSync(CHROMIUM) && `no Chromium at ${CHROMIUM}`;
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Headless Chromium with no network chatter of its own. */
export async function launchChromium(): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}
