// The wasm thread shim (src/runtime/wasm-threads.ts): with RENO_WASM_THREADS=2 a process gets two XNNPACK threads and the
// same numbers as the cpu backend; the CLI exits on its own although pthread workers are alive.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { test } from 'node:test';
import { ROOT, tmpDir } from '../helpers.js';

const node = (args: string[], env: Record<string, string>) =>
  spawnSync(process.execPath, ['--import', 'tsx', ...args], { cwd: ROOT, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 120_000 });

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
