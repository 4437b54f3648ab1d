// The one settings module (src/runtime/settings.ts): every RENO_* variable parsed there and nowhere else, each bad
// value a usage error naming the variable and the value, flags over variables, the README's table complete, and
// --weight-dtype passed in instead of written into the environment.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import { UsageError } from '../../src/errors.js';
import { readSettings, readSetting, SETTINGS, installSettings, setting } from '../../src/runtime/settings.js';
import { main } from '../../src/cli/main.js';
import { ROOT, tmpDir } from '../helpers.js';

function sources(dir: string, out: string[] = []): string[] {
  for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) sources(rel, out);
    else if (e.name.endsWith('.ts')) out.push(rel);
  }
  return out;
}

test('no module of src, rewards or generators reads a RENO_* variable but src/runtime/settings.ts', () => {
  const readers = ['src', 'rewards', 'generators']
    .flatMap((d) => sources(d))
    .filter((f) => f !== 'src/runtime/settings.ts')
    .filter((f) => /process\.env\.RENO_|process\.env\[['"]RENO_|\benv\.RENO_/.test(fs.readFileSync(path.join(ROOT, f), 'utf8')));
  assert.deepEqual(readers, []);
});

test('the defaults, and each bad value a usage error naming the variable and the value', () => {
  const s = readSettings({});
  assert.equal(s.backend, 'auto');
  assert.equal(s.weightDtype, 'fp32');
  assert.equal(s.hostWeights, 'auto');
  assert.equal(s.wasmThreads, null);
  assert.equal(s.checkpoint, true);
  assert.equal(s.webgpuWinograd, 4);
  assert.equal(s.webgpuPoolBytes, 1024 * 2 ** 20);
  assert.equal(s.root, null);
  const bad: Record<string, string> = {
    RENO_BACKEND: 'gpu',
    RENO_WEIGHT_DTYPE: 'bf16',
    RENO_HOST_WEIGHTS: 'yes',
    RENO_WASM_THREADS: 'many',
    RENO_WASM_WATCHDOG: '0',
    RENO_CHECKPOINT: 'no',
    RENO_LEAN_BACKPROP: 'false',
    RENO_SHAPE_ONLY_SAVES: '0',
    RENO_WEBGPU_FUSED: 'offf',
    RENO_WEBGPU_ATTENTION: 'fast',
    RENO_WEBGPU_CONV: '32x32x8',
    RENO_WEBGPU_MATMUL: '1x1x1',
    RENO_WEBGPU_WINOGRAD: '3',
    RENO_WEBGPU_POOL_MB: '-1',
    RENO_WEBGPU_PENDING_MB: 'lots',
    RENO_WEBGPU_SUBMIT_BATCH: '2.5',
  };
  for (const [variable, value] of Object.entries(bad)) {
    const name = variable === 'RENO_BACKEND' ? /backend/ : new RegExp(variable);
    assert.throws(
      () => readSettings({ [variable]: value }),
      (e: unknown) => e instanceof UsageError && name.test(e.message) && e.message.includes(`"${value}"`),
      `${variable}=${value}`,
    );
  }
  assert.equal(readSettings({ RENO_CHECKPOINT: 'off', RENO_WEBGPU_POOL_MB: 'off', RENO_WASM_THREADS: '3' }).checkpoint, false);
  assert.equal(readSetting('webgpuPoolBytes', { RENO_WEBGPU_POOL_MB: 'off' }), Infinity);
  assert.equal(readSetting('wasmThreads', { RENO_WASM_THREADS: '3' }), 3);
  assert.equal(readSetting('wasmWatchdog', {}), 300);
  assert.equal(readSetting('wasmWatchdog', { RENO_WASM_WATCHDOG: 'off' }), null);
  assert.equal(readSetting('wasmWatchdog', { RENO_WASM_WATCHDOG: '2.5' }), 2.5);
});

test('flags override their variable; installed settings are what setting() gives, and uninstalling reads the environment again', () => {
  const s = readSettings({ RENO_WEIGHT_DTYPE: 'fp32', RENO_BACKEND: 'wasm' }, { weightDtype: 'fp16' });
  assert.equal(s.weightDtype, 'fp16');
  assert.equal(s.backend, 'wasm');
  assert.throws(() => readSettings({}, { weightDtype: 'fp8' }), /--weight-dtype must be fp32 or fp16, not "fp8"/);
  try {
    installSettings(s);
    assert.equal(setting('weightDtype'), 'fp16');
  } finally {
    installSettings(null);
  }
  assert.equal(setting('weightDtype'), process.env.RENO_WEIGHT_DTYPE ?? 'fp32');
});

test("the README's settings table lists every variable with its values and default", () => {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const rows = readme.split('\n').filter((l) => /^\| `RENO_/.test(l));
  for (const spec of Object.values(SETTINGS)) {
    const row = rows.find((r) => r.startsWith(`| \`${spec.variable}\``));
    assert.ok(row, `README has no row for ${spec.variable}`);
    const cells = row.split('|').map((c) => c.trim());
    assert.equal(cells[2], spec.values, `${spec.variable}: values`);
    assert.equal(cells[3], spec.default, `${spec.variable}: default`);
  }
  assert.equal(rows.length, Object.keys(SETTINGS).length, 'one row per setting');
});

test('--weight-dtype fp16 reaches the run without being written into the environment', async () => {
  const before = process.env.RENO_WEIGHT_DTYPE;
  delete process.env.RENO_WEIGHT_DTYPE;
  const out = tmpDir('reno-settings');
  let code: number;
  try {
    // (stdout is the test runner's channel here: the run folder's path it prints passes through as a diagnostic)
    code = await main([
      'generate',
      '--preset',
      'tiny',
      '--backend',
      'cpu',
      '--weight-dtype',
      'fp16',
      '--prompt',
      'x',
      '--steps',
      '1',
      '--quiet',
      '--out',
      out,
    ]);
  } finally {
    installSettings(null);
  }
  assert.equal(code, 0);
  assert.equal(process.env.RENO_WEIGHT_DTYPE, undefined, 'the flag was written into process.env');
  const [dir] = fs.readdirSync(out);
  const runYaml = YAML.parse(fs.readFileSync(path.join(out, dir, 'run.yaml'), 'utf8'));
  assert.equal(runYaml.run.weight_dtype, 'fp16');
  if (before !== undefined) process.env.RENO_WEIGHT_DTYPE = before;
});
