// The wasm thread shim (src/runtime/wasm-threads.ts): with RENO_WASM_THREADS=2 a process gets two XNNPACK threads and the
// same numbers as the cpu backend; the CLI, and a script without process.exit, end on their own although pthread
// workers are alive; a wasm kernel that never returns is stopped by the watchdog (src/runtime/watchdog.ts).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';
import { ROOT, tmpDir } from '../helpers.js';

const node = (args: string[], env: Record<string, string>, timeout = 120_000) =>
  spawnSync(process.execPath, ['--import', 'tsx', ...args], { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8', timeout });

test(
  'two wasm threads start in Node and compute what the cpu backend computes',
  { skip: process.platform !== 'linux' && 'shim tested on Linux' },
  () => {
    for (const n of ['2', '1']) {
      const r = node([path.join(ROOT, 'test/unit/wasm-threads-child.ts')], { RENO_WASM_THREADS: n });
      assert.equal(r.status, 0, r.stderr);
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
      assert.equal(out.threads, Number(n));
      assert.ok(out.err < 1e-4, `max abs diff ${out.err}`);
    }
  },
);

test('the CLI ends by itself with wasm threads running', () => {
  const r = node(
    [path.join(ROOT, 'src/cli/run.ts'), 'generate', '--preset', 'tiny', '--backend', 'wasm', '--prompt', 'x', '--steps', '2', '--out', tmpDir()],
    { RENO_WASM_THREADS: '2' },
  );
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stderr, /backend wasm, 2 threads/);
});

test(
  'a script that used wasm threads ends by itself when its work is done (the ReNO step benchmark, each model in a child process)',
  { skip: process.platform !== 'linux' && 'shim tested on Linux' },
  () => {
    // the tiny preset's UNet and VAE decoder at 128 px, forward and backward: every convolution is split over the
    // pthreads. The parent and each child use the threaded backend and end without process.exit; before, the
    // first child printed its rows and then slept forever (so did the parent, waiting for it).
    const r = node(
      [
        path.join(ROOT, 'bench/reno-step.ts'),
        ...['--arch', 'tiny', '--px', '128', '--parts', 'unet,vae', '--backends', 'wasm', '--isolate'],
        ...['--warmup', '0', '--reps', '1', '--checkpoint', 'off'],
      ],
      { RENO_WASM_THREADS: '2' },
      90_000,
    );
    assert.equal(r.signal, null, `still running after 90 s (killed); stdout so far:\n${r.stdout}`);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /backend wasm \(SIMD on, 2 threads\)/);
    for (const part of ['unet', 'vae decoder']) assert.match(r.stdout, new RegExp(`\\| wasm \\| ${part} \\| forward \\+ input grad \\| off \\| \\d`));
  },
);

test(
  'a wasm kernel that never returns is reported by the watchdog, which ends the process',
  { skip: process.platform !== 'linux' && 'shim tested on Linux' },
  () => {
    const t0 = Date.now();
    const r = node([path.join(ROOT, 'test/unit/wasm-stall-child.ts')], { RENO_WASM_THREADS: '2', RENO_WASM_WATCHDOG: '2' }, 60_000);
    assert.match(r.stdout, /stalling/);
    assert.doesNotMatch(r.stdout, /returned/);
    assert.equal(r.signal, 'SIGKILL', `status ${r.status}, stderr: ${r.stderr}`);
    assert.ok(Date.now() - t0 < 45_000, 'the watchdog took too long');
    assert.match(
      r.stderr,
      /reno: the wasm kernel RenoTestStall on an input of shape \[2, 3\] made no progress for [23] s, after \d+ kernels had finished: stopped by the watchdog \(RENO_WASM_WATCHDOG=2;/,
    );
  },
);
