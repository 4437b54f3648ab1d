// Non-finite values anywhere in the loop (the noise, the generated image, the gradient, the loss) stop the run: the
// best FINITE image is kept (never a non-finite step), the reason is printed, and the command fails.
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { buildGenerator } from '../../bench/full-models.js';
import { RewardInput, rewardSpec } from '../../rewards/index.js';
import { generateCommand } from '../../src/commands/generate.js';
import { RunStopped } from '../../src/errors.js';
import { readImage, readPngText } from '../../src/image/png.js';
import { runReno } from '../../src/optimize/loop.js';
import { seededNoise } from '../../src/optimize/noise.js';
import { backend, cli, ROOT, tmpDir } from '../helpers.js';
import { colourTarget, nanGradAt, register } from './fake-rewards.js';

register(colourTarget('test_red', [1, 0, 0]), nanGradAt('test_nangrad', 2));
const OFF = { imagereward: 0, aesthetic: 0, pickscore: 0, clip: 0, hpsv2: 0, personal: 0 };
const only = (w: Record<string, number>) => ({ weights: { ...OFF, ...w } });
const metrics = (dir: string) =>
  fs
    .readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
const runDir = (out: string) => {
  const dirs = fs.readdirSync(out);
  assert.equal(dirs.length, 1, `one run folder in ${out}: ${dirs.join(', ')}`);
  return path.join(out, dirs[0]);
};
async function assertFinitePng(file: string): Promise<void> {
  const img = await readImage(file);
  const v = await img.data();
  img.dispose();
  assert.ok(
    v.some((x) => x > 0.02),
    `${file} is all black`,
  );
}

test('reno generate --lr 1e38: the noise overflows, the run stops with the reason, keeps the finite step 0 and exits 1', async () => {
  const out = tmpDir();
  const r = await cli([
    'generate',
    '--preset',
    'tiny',
    '--backend',
    'wasm',
    '--prompt',
    'a red fox',
    '--size',
    '64',
    '--steps',
    '4',
    '--lr',
    '1e38',
    '--out',
    out,
    '--weights.imagereward',
    '0',
    '--weights.pickscore',
    '0',
    '--weights.aesthetic',
    '0',
  ]);
  assert.equal(r.code, 1, r.stderr);
  assert.match(
    r.stderr,
    /reno: stopped at step 1: the noise became non-finite \(\|\|z\|\| = (Infinity|NaN); lr 1e\+38 too large\?\); kept the best finite image \(step 0\)/,
  );
  const dir = runDir(out);
  const m = metrics(dir);
  assert.ok(m.length >= 1);
  for (const rec of m) assert.equal(typeof rec.norm, 'number', `metrics step ${rec.step}: norm ${rec.norm}`);
  assert.equal(JSON.parse(readPngText(fs.readFileSync(path.join(dir, 'best.png'))).reno).step, 0);
  await assertFinitePng(path.join(dir, 'best.png'));
});

/** A copy of the tiny preset's SD-Turbo folder with one NaN in a VAE weight (post_quant_conv.bias[0], float16). */
function nanGenerator(): string {
  const dst = path.join(tmpDir('reno-nan-gen'), 'sd-turbo');
  fs.cpSync(path.join(ROOT, 'presets/tiny/stabilityai/sd-turbo'), dst, { recursive: true });
  const file = path.join(dst, 'vae/diffusion_pytorch_model.safetensors');
  const buf = fs.readFileSync(file);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const t = header['post_quant_conv.bias'];
  assert.equal(t.dtype, 'F16');
  buf.writeUInt16LE(0x7e00, 8 + n + t.data_offsets[0]); // float16 NaN
  fs.writeFileSync(file, buf);
  return dst;
}

test('a NaN weight in the generator: the first image is non-finite, so the run fails, says so and writes no best.png', async () => {
  const out = tmpDir();
  await assert.rejects(
    generateCommand({
      prompt: 'a red fox',
      preset: 'tiny',
      modelDir: nanGenerator(),
      backend: 'wasm',
      quiet: true,
      out,
      steps: 3,
      overrides: only({ clip: 1 }),
    }),
    (e: Error) => {
      assert.ok(e instanceof RunStopped, String(e));
      assert.match(e.message, /stopped at step 0: the image is non-finite/);
      assert.match(e.message, /no finite image/);
      return true;
    },
  );
  const dir = runDir(out);
  assert.ok(!fs.existsSync(path.join(dir, 'best.png')), 'best.png written for a non-finite image');
  assert.ok(!fs.existsSync(path.join(dir, 'init.png')), 'init.png written for a non-finite image');
  assert.deepEqual(
    fs.readdirSync(dir).filter((f) => f.includes('.tmp-')),
    [],
  );
});

test('an image that turns non-finite mid-run (the real loop, a generator seam) stops it and keeps the best finite step', async () => {
  await backend('wasm');
  const gen = buildGenerator('tiny');
  const reward = await rewardSpec('test_red').load({ locate: () => '', smokeTest: true });
  const prepared = reward.prepare('a red fox');
  const cond = gen.prepare('a red fox');
  let calls = 0;
  // from the third evaluation on, one pixel of the image is NaN; the colour reward never reads it (a real reward's
  // preprocessing can likewise hide a non-finite pixel), so the loss stays finite
  const seam = Object.create(gen) as typeof gen;
  seam.generate = (z, c) => {
    const img = gen.generate(z, c);
    if (calls++ < 2) return img;
    return tf.tidy(() => {
      const mask = tf.buffer([1, img.shape[1], img.shape[2], 3]);
      mask.set(NaN, 0, 0, 0, 0);
      return tf.add(img, mask.toTensor()) as tf.Tensor4D;
    });
  };
  const picky = {
    ...prepared,
    loss: (input: RewardInput) => tf.tidy(() => prepared.loss(new RewardInput(tf.slice(input.image, [0, 1, 0, 0], [-1, -1, -1, -1])))),
  };
  const z0 = seededNoise(gen.latentShape({ width: 64, height: 64 }), 0);
  const res = await runReno(seam, cond, z0, [{ name: 'test_red', weight: 1, prepared: picky }], {
    steps: 6,
    optimize: true,
    optimizer: 'sgd',
    lr: 50,
    momentum: 0.9,
    nesterov: true,
    gradClip: 0.1,
    regWeight: 0.01,
  });
  try {
    assert.equal(res.stopped?.reason, 'non-finite');
    assert.match(res.stopped!.message, /^stopped at step 2: the image is non-finite/);
    assert.equal(res.records.length, 3);
    assert.ok(
      res.records.every((r) => Number.isFinite(r.total)),
      'the losses stayed finite: only the image check can catch this',
    );
    assert.ok(res.best && res.best.record.step < 2, `best step ${res.best?.record.step}`);
    assert.equal(res.records[2].best, false);
    const v = await res.best!.image.data();
    assert.ok(v.every(Number.isFinite));
  } finally {
    if (res.init) res.init.image.dispose();
    if (res.best) tf.dispose([res.best.image, res.best.z]);
    tf.dispose([z0]);
    cond.dispose();
    prepared.dispose();
    reward.dispose();
    gen.dispose();
  }
});

test('a non-finite gradient stops the run at that step with the reason; the step itself (finite image) may be the best', async () => {
  const out = tmpDir();
  const r = await generateCommand({
    prompt: 'a red fox',
    preset: 'tiny',
    backend: 'wasm',
    quiet: true,
    out,
    steps: 6,
    overrides: only({ test_nangrad: 1 }),
  });
  assert.equal(r.result.stopped?.reason, 'non-finite');
  assert.match(r.result.stopped!.message, /^stopped at step 2: the gradient became non-finite/);
  const m = metrics(r.dir);
  assert.equal(m.length, 3);
  for (const rec of m) assert.equal(typeof rec.norm, 'number');
  assert.ok(r.result.best && r.result.best.record.step <= 2);
  await assertFinitePng(path.join(r.dir, 'best.png'));
});
