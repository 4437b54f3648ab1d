// End-to-end runs of `reno generate` on the tiny preset with test rewards (the real reward models are tested in
// their own files): run folder contents, determinism, improvement, NaN stop, interruption, flat tensor count.
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { generateCommand } from '../../src/commands/generate.js';
import { readPngText } from '../../src/image/png.js';
import { tmpDir } from '../helpers.js';
import { colourTarget, nanAt, register } from './fake-rewards.js';

register(colourTarget('test_red', [1, 0, 0]), nanAt('test_nan', 3));
const base = { prompt: 'a red fox', preset: 'tiny', backend: 'wasm', quiet: true } as const;
// turn off the paper's default rewards so only the test reward drives the run
const OFF = { imagereward: 0, aesthetic: 0, pickscore: 0, clip: 0, hpsv2: 0, personal: 0 };
const only = (w: Record<string, number>) => ({ weights: { ...OFF, ...w } });

const metrics = (dir: string) =>
  fs
    .readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

test('generate writes every file; the best image beats the initial one; same seed reproduces the metrics', async () => {
  const out = tmpDir();
  const r = await generateCommand({ ...base, out, steps: 6, seed: 1, overrides: { ...only({ test_red: 1 }), lr: 50, save_steps: true } });
  for (const f of ['run.yaml', 'init.png', 'best.png', 'metrics.jsonl', 'report.html', 'steps/000.png', 'steps/005.png'])
    assert.ok(fs.existsSync(path.join(r.dir, f)), f);
  const m = metrics(r.dir);
  assert.equal(m.length, 6);
  assert.equal(m[5].grad_norm, null); // no update after the last evaluation
  assert.ok(m[0].grad_norm > 0);
  const best = Math.min(...m.map((x) => x.total));
  assert.ok(best < m[0].total, `best ${best} vs initial ${m[0].total}`);
  const text = JSON.parse(readPngText(fs.readFileSync(path.join(r.dir, 'best.png'))).reno);
  assert.equal(text.prompt, 'a red fox');
  assert.equal(text.seed, 1);
  assert.deepEqual(text.weights, { test_red: 1 });
  assert.ok('test_red' in text.losses);
  assert.equal(text.backend, 'wasm');
  assert.equal(text.smoke_test, true);
  const yaml = fs.readFileSync(path.join(r.dir, 'run.yaml'), 'utf8');
  assert.match(yaml, /smoke_test: true/);
  const again = await generateCommand({ ...base, out, steps: 6, seed: 1, overrides: { ...only({ test_red: 1 }), lr: 50 } });
  assert.deepEqual(
    metrics(again.dir).map((x) => x.total),
    m.map((x) => x.total),
  );
});

test('the best image improves on the initial one for at least 4 of 5 seeds', async () => {
  const out = tmpDir();
  let wins = 0;
  for (let seed = 0; seed < 5; seed++) {
    const r = await generateCommand({ ...base, out, steps: 5, seed, overrides: only({ test_red: 1 }) });
    const m = metrics(r.dir);
    if (Math.min(...m.map((x) => x.total)) < m[0].total) wins++;
  }
  assert.ok(wins >= 4, `${wins}/5`);
});

test('a NaN in a reward stops the run cleanly and keeps the best finite image', async () => {
  const out = tmpDir();
  const r = await generateCommand({ ...base, out, steps: 10, overrides: only({ test_nan: 1 }) });
  assert.equal(r.result.stopped?.reason, 'non-finite');
  assert.match(r.result.stopped!.message, /^stopped at step 3: the loss became NaN \(reward test_nan\); kept the best finite image \(step [0-2]\)$/);
  assert.equal(metrics(r.dir).length, 4);
  assert.ok(fs.existsSync(path.join(r.dir, 'best.png')));
  assert.ok(r.result.best!.record.step < 3);
});

test('an interrupted run leaves a loadable folder with the best image so far', async () => {
  const out = tmpDir();
  let n = 0;
  const r = await generateCommand({ ...base, out, steps: 30, overrides: only({ test_red: 1 }), shouldStop: () => ++n >= 3 });
  assert.equal(r.result.stopped?.reason, 'interrupted');
  assert.equal(metrics(r.dir).length, 3);
  for (const f of ['run.yaml', 'init.png', 'best.png', 'report.html']) assert.ok(fs.existsSync(path.join(r.dir, f)), f);
  assert.deepEqual(
    fs.readdirSync(r.dir).filter((f) => f.includes('.tmp-')),
    [],
  );
});

test('tensor count stays flat across steps and runs', async () => {
  const out = tmpDir();
  await generateCommand({ ...base, out, steps: 2, overrides: only({ test_red: 1 }) });
  const before = tf.memory().numTensors;
  await generateCommand({ ...base, out, steps: 4, overrides: only({ test_red: 1 }) });
  assert.equal(tf.memory().numTensors, before);
});

test('float16 weights (RENO_WEIGHT_DTYPE=fp16): the run completes, says so in run.yaml, and follows the float32 run', async () => {
  const out = tmpDir();
  const o = { ...base, out, steps: 3, seed: 2, overrides: only({ test_red: 1, aesthetic: 1 }) };
  const a = await generateCommand(o);
  process.env.RENO_WEIGHT_DTYPE = 'fp16';
  let b;
  try {
    b = await generateCommand(o);
  } finally {
    delete process.env.RENO_WEIGHT_DTYPE;
  }
  assert.match(fs.readFileSync(path.join(b.dir, 'run.yaml'), 'utf8'), /weight_dtype: fp16/);
  assert.match(fs.readFileSync(path.join(a.dir, 'run.yaml'), 'utf8'), /weight_dtype: fp32/);
  const [ma, mb] = [metrics(a.dir), metrics(b.dir)];
  assert.equal(mb.length, 3);
  for (const [i, r] of ma.entries()) {
    const rel = Math.abs(mb[i].total - r.total) / Math.abs(r.total);
    assert.ok(rel < 1e-2 && rel > 0, `step ${i}: fp16 total ${mb[i].total} against fp32 ${r.total}`);
  }
});
