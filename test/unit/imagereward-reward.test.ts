// The ImageReward reward end to end on the tiny preset's files (torch zip ImageReward.pt, med_config.json, a small
// WordPiece vocab.txt): loading through the registry names, tokenization, loss = 2 - score, the gradient against a
// central finite difference, and no tensor growth over repeated calls.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import * as tf from '../../src/runtime/tf.js';
import { IMAGE_REWARD_OFFSET, ImageReward, imageRewardSpec } from '../../rewards/imagereward.js';
import { RewardInput } from '../../rewards/input.js';
import { TINY_VIT, tinyBertVocab, writeTinyImageReward } from '../../scripts/tiny/imagereward.js';
import { IMAGE_REWARD_MEAN, IMAGE_REWARD_STD } from '../../src/models/blip/image-reward.js';
import { backend, noLeak, tmpDir } from '../helpers.js';

let root = '';
let reward: ImageReward;
const PROMPT = 'A beautiful painting of a cat, sitting on a wooden chair';

before(async () => {
  await backend('cpu');
  root = tmpDir('reno-imagereward');
  writeTinyImageReward(root);
  const dirs: Record<string, string> = {
    imagereward: path.join(root, 'THUDM', 'ImageReward'),
    'bert-base-uncased': path.join(root, 'google-bert', 'bert-base-uncased'),
  };
  reward = (await imageRewardSpec.load({ locate: (m) => dirs[m], smokeTest: true })) as ImageReward;
});

after(() => {
  reward?.dispose();
  fs.rmSync(root, { recursive: true, force: true });
});

/** A smooth test image [1, H, W, 3] in [0, 1]. */
function image(h: number, w: number, seed: number): tf.Tensor4D {
  return tf.tidy(() => tf.sigmoid(tf.randomNormal([1, h, w, 3], 0, 1, 'float32', seed)) as tf.Tensor4D);
}

test('the tiny preset: registry files, vision config read off the checkpoint, vocab + [DEC]/[ENC] = vocab_size', () => {
  assert.deepEqual(imageRewardSpec.models, ['imagereward', 'bert-base-uncased']);
  assert.equal(imageRewardSpec.offset, 2);
  for (const f of ['THUDM/ImageReward/ImageReward.pt', 'THUDM/ImageReward/med_config.json', 'google-bert/bert-base-uncased/vocab.txt'])
    assert.ok(fs.statSync(path.join(root, f)).isFile(), f);
  // a torch.save zip, not safetensors
  assert.equal(fs.readFileSync(path.join(root, 'THUDM/ImageReward/ImageReward.pt')).readUInt32LE(0), 0x04034b50);
  assert.deepEqual(reward.model.config.vision, TINY_VIT);
  const vocab = tinyBertVocab();
  assert.equal(reward.model.config.text.vocabSize, vocab.length + 2);
  assert.deepEqual([vocab[0], vocab[100], vocab[101], vocab[102], vocab[103]], ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]']);
  assert.equal(reward.model.config.text.encoderWidth, TINY_VIT.embedDim); // blip_pretrain.py: encoder_width = vision width
});

test('tokens: [CLS] ... [SEP] then [PAD] to 35 (no [ENC] substitution), mask on real tokens', () => {
  const { ids, mask } = reward.tokens('A cat, Sitting!');
  const v = tinyBertVocab();
  const idOf = (t: string) => v.indexOf(t);
  assert.deepEqual(ids.shape, [1, 35]);
  const got = Array.from(ids.dataSync());
  assert.deepEqual(got.slice(0, 7), [101, idOf('a'), idOf('cat'), idOf(','), idOf('sitting'), idOf('!'), 102]);
  assert.ok(got.slice(7).every((x) => x === 0));
  assert.deepEqual(
    Array.from(mask.dataSync()),
    got.map((_, i) => (i < 7 ? 1 : 0)),
  );
  tf.dispose([ids, mask]);
});

test('loss = 2 - score; score = (mlp(cls) - mean) / std of the model forward on the shared clip224 view', () => {
  const p = reward.prepare(PROMPT);
  const img = image(40, 56, 1);
  const input = new RewardInput(img);
  const loss = p.loss(input).dataSync()[0];
  const score = p.score(input).dataSync()[0];
  assert.ok(Number.isFinite(score));
  assert.ok(Math.abs(loss - (IMAGE_REWARD_OFFSET - score)) < 1e-6, `${loss} vs 2 - ${score}`);
  // the same numbers from the model's parts
  const { ids, mask } = reward.tokens(PROMPT);
  const text = reward.model.text(ids, mask);
  const o = reward.model.forward(
    input.view('clip224', () => assert.fail('the view must be cached')),
    text,
  );
  assert.deepEqual(o.imageEmbeds.shape, [1, 197, TINY_VIT.embedDim]);
  const raw = o.mlpRaw.dataSync()[0];
  assert.ok(Math.abs(score - (raw - IMAGE_REWARD_MEAN) / IMAGE_REWARD_STD) < 1e-6);
  tf.dispose([ids, mask, img, o.imageEmbeds, o.lastHiddenState, o.clsFeature, o.mlpRaw, o.score]);
  reward.model.disposeText(text);
  p.dispose();
});

test('the reward gradient matches a central finite difference along random directions', () => {
  const p = reward.prepare(PROMPT);
  const img = image(32, 32, 2);
  const loss = (x: tf.Tensor4D) => p.loss(new RewardInput(x));
  const g = tf.grad((x) => loss(x as tf.Tensor4D))(img);
  const gAbs = tf.max(tf.abs(g)).dataSync()[0];
  assert.ok(gAbs > 0 && Number.isFinite(gAbs));
  for (const seed of [11, 12, 13]) {
    const v = tf.randomNormal(img.shape, 0, 1, 'float32', seed);
    const eps = 3e-3; // O(eps^2) truncation; float32 rounding of the loss is ~1e-4 of the slope here
    const [lp, lm] = tf.tidy(() =>
      [loss(tf.add(img, tf.mul(v, eps)) as tf.Tensor4D), loss(tf.sub(img, tf.mul(v, eps)) as tf.Tensor4D)].map((t) => t.dataSync()[0]),
    );
    const fd = (lp - lm) / (2 * eps);
    const an = tf.tidy(() => tf.sum(tf.mul(g, v)).dataSync()[0]);
    assert.ok(Math.abs(fd - an) <= 1e-2 * Math.abs(an) + 1e-4, `direction ${seed}: finite difference ${fd}, gradient ${an}`);
    v.dispose();
  }
  tf.dispose([img, g]);
  p.dispose();
});

test('no tensor growth over repeated loss() / score() calls, prepare + dispose leaves nothing', async () => {
  await noLeak(() => {
    const p = reward.prepare(PROMPT);
    p.dispose();
  });
  const p = reward.prepare(PROMPT);
  const img = image(24, 24, 3);
  const input = new RewardInput(img);
  p.loss(input).dispose(); // makes the shared view (owned by the input)
  await noLeak(() => {
    for (let i = 0; i < 2; i++) {
      p.loss(input).dispose();
      p.score(input).dispose();
      tf.grad((x) => p.loss(new RewardInput(x as tf.Tensor4D)))(img).dispose();
    }
  });
  p.dispose();
  img.dispose();
});

test('a med_config.json that does not fit the checkpoint is refused with the sizes named, nothing left allocated', async () => {
  const dir = tmpDir('reno-imagereward-bad');
  const src = path.join(root, 'THUDM', 'ImageReward');
  fs.copyFileSync(path.join(src, 'ImageReward.pt'), path.join(dir, 'ImageReward.pt'));
  const med = JSON.parse(fs.readFileSync(path.join(src, 'med_config.json'), 'utf8'));
  const tokDir = path.join(root, 'google-bert', 'bert-base-uncased');
  const tryLoad = () => imageRewardSpec.load({ locate: (m) => (m === 'imagereward' ? dir : tokDir), smokeTest: true });
  fs.writeFileSync(path.join(dir, 'med_config.json'), JSON.stringify({ ...med, hidden_size: 48 }));
  await noLeak(() => assert.rejects(tryLoad, /MLP takes 32 features, the text encoder gives 48/));
  fs.writeFileSync(path.join(dir, 'med_config.json'), JSON.stringify({ ...med, num_hidden_layers: 3 }));
  await noLeak(() => assert.rejects(tryLoad, /missing keys \(\d+\):\n {2}blip\.text_encoder\.encoder\.layer\.2\./));
  fs.writeFileSync(path.join(dir, 'med_config.json'), JSON.stringify({ ...med, vocab_size: 100 }));
  await noLeak(() => assert.rejects(tryLoad, /word_embeddings\.weight: expected \[100, 32\]/));
  fs.rmSync(dir, { recursive: true, force: true });
});
