// The hpsv2 and aesthetic rewards end to end on tiny random models in the real folder layouts (the tiny preset
// writer for xswu/HPSv2 and the aesthetic head; a tiny HF CLIP ViT-L image encoder and the real CLIP vocabulary
// written here): loading through RewardSpec.load, loss = offset - score, the score against a direct computation,
// input gradients against central finite differences along random pixel directions, the shared 224 view, no tensor
// growth over repeated loss() / gradient calls, and the load-time errors.
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import { writeTinyHpsv2Aesthetic } from '../../scripts/tiny/hpsv2-aesthetic.js';
import { aestheticReward, AestheticReward, ClipImageEncoder } from '../../rewards/aesthetic.js';
import { hpsv2Reward, Hpsv2Reward } from '../../rewards/hpsv2.js';
import { RewardInput } from '../../rewards/input.js';
import { clipPreprocess } from '../../src/image/preprocess.js';
import type { RewardLoadContext } from '../../rewards/types.js';
import { ConfigError, WeightsError } from '../../src/errors.js';
import { clipConfig } from '../../src/models/clip/config.js';
import { l2Normalize } from '../../src/models/openclip/model.js';
import { CLIP_MODES } from '../../src/tokenizers/clip-bpe.js';
import { gaussian } from '../../src/optimize/noise.js';
import { randomStateDict } from '../../src/weights/random.js';
import { writeSafetensors } from '../../src/weights/safetensors.js';
import { ASSETS, backend, noLeak, testBackends, tmpDir } from '../helpers.js';

const PROMPT = 'a red fox in the snow, &amp; a tiny house';
const VIT_L = {
  projection_dim: 24,
  text_config: { hidden_size: 16, intermediate_size: 32, num_attention_heads: 2, num_hidden_layers: 1, hidden_act: 'quick_gelu', vocab_size: 49408 },
  vision_config: {
    hidden_size: 16,
    intermediate_size: 32,
    num_attention_heads: 2,
    num_hidden_layers: 2,
    hidden_act: 'quick_gelu',
    image_size: 224,
    patch_size: 32,
  },
};

let root = '';
const dirs: Record<string, string> = {};
const ctx = (over: Record<string, string> = {}): RewardLoadContext => ({
  locate: (m) => {
    const d = over[m] ?? dirs[m];
    if (!d) throw new Error(`no model ${m}`);
    return d;
  },
  smokeTest: true,
});

before(() => {
  root = tmpDir('reno-hps-rewards');
  dirs['clip-h-tokenizer'] = path.join(root, 'laion', 'CLIP-ViT-H-14-laion2B-s32B-b79K');
  fs.mkdirSync(dirs['clip-h-tokenizer'], { recursive: true });
  for (const f of ['vocab.json', 'merges.txt', 'special_tokens_map.json'])
    fs.copyFileSync(path.join(ASSETS, 'clip_tokenizer_hf', f), path.join(dirs['clip-h-tokenizer'], f));
  // a tiny openai/clip-vit-large-patch14: image side only in the weights, plus text keys that must be skipped
  dirs.aesthetic = path.join(root, 'openai', 'clip-vit-large-patch14');
  fs.mkdirSync(dirs.aesthetic, { recursive: true });
  fs.writeFileSync(path.join(dirs.aesthetic, 'config.json'), JSON.stringify(VIT_L));
  const sd = randomStateDict(new ClipImageEncoder(clipConfig(VIT_L, 'vit-l').vision), 7);
  sd.set('text_projection.weight', { shape: [24, 16], data: new Float32Array(24 * 16) });
  sd.set('logit_scale', { shape: [], data: Float32Array.of(4.6) });
  writeSafetensors(path.join(dirs.aesthetic, 'model.safetensors'), sd);
  writeTinyHpsv2Aesthetic(root, ASSETS);
  dirs.hpsv2 = path.join(root, 'xswu', 'HPSv2');
  dirs['aesthetic-head'] = path.join(root, 'camenduru', 'improved-aesthetic-predictor');
});

after(() => fs.rmSync(root, { recursive: true, force: true }));

/** An image [1, H, W, 3] in [0.1, 0.9], non-square so the crop matters. */
const image = (h = 48, w = 64) =>
  tf.tensor4d(
    gaussian(h * w * 3, 'img').map((v) => 0.5 + 0.4 * Math.tanh(v)),
    [1, h, w, 3],
  );

/** Central differences of f along `n` random pixel directions vs <grad f, d>; returns the worst relative error. */
function finiteDifferences(f: (x: tf.Tensor4D) => tf.Scalar, x: tf.Tensor4D, n: number, eps: number): number {
  const grad = tf.grad((xx: tf.Tensor) => f(xx as tf.Tensor4D))(x);
  let worst = 0;
  for (let k = 0; k < n; k++) {
    const [fd, an] = tf.tidy(() => {
      const d = tf.tensor(gaussian(x.size, `dir${k}`), x.shape);
      const plus = f(tf.add(x, tf.mul(d, eps)) as tf.Tensor4D).dataSync()[0];
      const minus = f(tf.sub(x, tf.mul(d, eps)) as tf.Tensor4D).dataSync()[0];
      return [(plus - minus) / (2 * eps), tf.sum(tf.mul(grad, d)).dataSync()[0]];
    });
    worst = Math.max(worst, Math.abs(fd - an) / Math.max(Math.abs(an), 1e-3));
  }
  grad.dispose();
  return worst;
}

for (const be of testBackends()) {
  test(`hpsv2 on ${be}: loss = 1 - cos(img, txt) with open_clip tokens; gradient matches finite differences; no leaks`, async () => {
    await backend(be);
    const reward = (await hpsv2Reward.load(ctx())) as Hpsv2Reward;
    assert.equal(hpsv2Reward.offset, 1);
    assert.deepEqual(hpsv2Reward.models, ['hpsv2', 'clip-h-tokenizer']);
    const prepared = reward.prepare(PROMPT);
    const x = image();
    // the score by hand: open_clip tokens (html unescaped, padded with 0), encode_text / encode_image, cosine
    const tok = reward.tokenizer.tokenize([PROMPT], { ...CLIP_MODES.openClip, length: 77 });
    assert.equal(tok.ids[76], 0);
    const byHand = tf.tidy(() => {
      const t = reward.model.encodeText(tf.tensor2d(tok.ids, [1, 77], 'int32'));
      const txt = l2Normalize(t.features);
      const img = l2Normalize(reward.model.encodeImage(clipPreprocess(x)));
      return tf.sum(tf.mul(img, txt)).dataSync()[0];
    });
    const [score, loss] = tf.tidy(() => {
      const input = new RewardInput(x);
      return [prepared.score(input).dataSync()[0], prepared.loss(input).dataSync()[0]];
    });
    assert.ok(Math.abs(score - byHand) < 1e-5, `${score} vs ${byHand}`);
    assert.ok(Math.abs(loss - (1 - score)) < 1e-6);
    const lossOf = (im: tf.Tensor4D) => prepared.loss(new RewardInput(im));
    const err = finiteDifferences(lossOf, x, 3, Number(process.env.RENO_FD_EPS ?? 3e-3));
    assert.ok(err < 5e-3, `finite differences: ${err}`);
    if (process.env.RENO_TEST_VERBOSE) console.log(`${be} finite-difference worst relative error ${err}`);
    await noLeak(() => {
      for (let i = 0; i < 3; i++) {
        tf.tidy(() => lossOf(x)).dispose();
        tf.tidy(() => tf.grad((im: tf.Tensor) => lossOf(im as tf.Tensor4D))(x)).dispose();
      }
    });
    prepared.dispose();
    reward.dispose();
    x.dispose();
  });

  test(`aesthetic on ${be}: loss = 10 - head(normalised CLIP embedding); gradient matches finite differences; no leaks`, async () => {
    await backend(be);
    const reward = (await aestheticReward.load(ctx())) as AestheticReward;
    assert.equal(aestheticReward.offset, 10);
    assert.deepEqual(aestheticReward.models, ['aesthetic', 'aesthetic-head']);
    assert.equal(reward.head.inFeatures, 24);
    const prepared = reward.prepare('ignored');
    const x = image();
    const byHand = tf.tidy(() => {
      const e = l2Normalize(reward.encoder.getImageFeatures(clipPreprocess(x)));
      return reward.head.forward(e).dataSync()[0];
    });
    const [score, loss] = tf.tidy(() => {
      const input = new RewardInput(x);
      return [prepared.score(input).dataSync()[0], prepared.loss(input).dataSync()[0]];
    });
    assert.ok(Math.abs(score - byHand) < 1e-5, `${score} vs ${byHand}`);
    assert.ok(Math.abs(loss - (10 - score)) < 1e-5);
    const lossOf = (im: tf.Tensor4D) => prepared.loss(new RewardInput(im));
    const err = finiteDifferences(lossOf, x, 3, Number(process.env.RENO_FD_EPS ?? 3e-3));
    assert.ok(err < 5e-3, `finite differences: ${err}`);
    if (process.env.RENO_TEST_VERBOSE) console.log(`${be} finite-difference worst relative error ${err}`);
    await noLeak(() => {
      for (let i = 0; i < 3; i++) {
        tf.tidy(() => lossOf(x)).dispose();
        tf.tidy(() => tf.grad((im: tf.Tensor) => lossOf(im as tf.Tensor4D))(x)).dispose();
      }
    });
    prepared.dispose();
    reward.dispose();
    x.dispose();
  });
}

test('hpsv2 and aesthetic share one 224 view of the image and both keep it alive', async () => {
  await backend('cpu');
  const hps = await hpsv2Reward.load(ctx());
  const aes = await aestheticReward.load(ctx());
  const ph = hps.prepare(PROMPT);
  const pa = aes.prepare(PROMPT);
  const x = image();
  await noLeak(() =>
    tf.tidy(() => {
      const input = new RewardInput(x);
      let calls = 0;
      const view = input.view.bind(input);
      input.view = (key, fn) => view(key, (im) => (calls++, fn(im)));
      const total = tf.add(tf.mul(5, ph.loss(input)), aes.prepare('').loss(input));
      assert.ok(Number.isFinite(total.dataSync()[0]));
      assert.ok(Number.isFinite(pa.loss(input).dataSync()[0]));
      assert.equal(calls, 1);
    }),
  );
  ph.dispose();
  pa.dispose();
  hps.dispose();
  aes.dispose();
  x.dispose();
});

test('load errors: missing checkpoint, the ViT-H-14 fallback on a tiny checkpoint, a head of the wrong width', async () => {
  await backend('cpu');
  const empty = tmpDir('reno-hps-empty');
  await assert.rejects(
    hpsv2Reward.load(ctx({ hpsv2: empty })),
    (e: Error) => e instanceof WeightsError && /HPS_v2\.1_compressed\.pt not found/.test(e.message),
  );
  // without its open_clip_config.json the folder is read as ViT-H-14: the strict loader names the mismatches
  fs.copyFileSync(path.join(dirs.hpsv2, 'HPS_v2.1_compressed.pt'), path.join(empty, 'HPS_v2.1_compressed.pt'));
  await assert.rejects(
    hpsv2Reward.load(ctx({ hpsv2: empty })),
    (e: Error) => e instanceof WeightsError && /visual\.conv1\.weight: expected \[1280, 3, 14, 14\]/.test(e.message),
  );
  fs.rmSync(empty, { recursive: true, force: true });
  const wide = tmpDir('reno-aes-wide');
  const { writeTinyAestheticHead } = await import('../../scripts/tiny/hpsv2-aesthetic.js');
  writeTinyAestheticHead(path.join(wide, 'sac+logos+ava1-l14-linearMSE.pth'), 768, 1);
  const before = tf.memory().numTensors;
  await assert.rejects(
    aestheticReward.load(ctx({ 'aesthetic-head': wide })),
    (e: Error) => e instanceof ConfigError && /768-d embeddings but the CLIP model projects to 24/.test(e.message),
  );
  assert.equal(tf.memory().numTensors, before);
  fs.rmSync(wide, { recursive: true, force: true });
});
