// Unit tests of the Idefics3 (SmolVLM) backbone pieces: config forms, vision position buckets, the patchify
// convolution, pixel-shuffle order, rotary embeddings, GQA head repetition, the image-token merge, the KV cache and
// prefix embeddings (cached == uncached, values and gradients), tied lm_head loading, and no tensor leaks.
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { readJsonFile } from '../../src/config/json.js';
import { ConfigError, DataError, WeightsError } from '../../src/errors.js';
import { idefics3Config, readIdefics3Config } from '../../src/models/idefics3/config.js';
import { mergeImageFeatures, pixelShuffle } from '../../src/models/idefics3/connector.js';
import { applyRotary, repeatKv, rotaryTables } from '../../src/models/idefics3/llama.js';
import { EMBED_KEY, Idefics3ForConditionalGeneration, loadIdefics3Weights } from '../../src/models/idefics3/model.js';
import { PatchEmbedding, visionPositionIds } from '../../src/models/idefics3/vision.js';
import { randomStateDict } from '../../src/weights/random.js';
import { MemorySource } from '../../src/weights/source.js';
import { tinySmolVlmConfig } from '../../scripts/tiny/smolvlm.js';
import { PARITY, backend, maxRelErr, noLeak, testBackends } from '../helpers.js';

const FIX = path.join(PARITY, 'idefics3');
const close = (a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string) =>
  assert.ok(maxRelErr(a, b) <= tol, `${what}: rel ${maxRelErr(a, b)} > ${tol}`);

function tinyModel(tie = false): Idefics3ForConditionalGeneration {
  const json = tinySmolVlmConfig(300, 299);
  json.tie_word_embeddings = tie;
  const m = new Idefics3ForConditionalGeneration(idefics3Config(json, 'tiny'));
  const sd = randomStateDict(m, 5);
  if (tie) sd.delete('lm_head.weight');
  loadIdefics3Weights(m, new MemorySource(sd));
  return m;
}

test('config: the 5.x rope_parameters and 4.x rope_theta forms give the same config; rope_scaling form; errors', () => {
  const v5 = readIdefics3Config(path.join(FIX, 'model'));
  const v4 = readIdefics3Config(path.join(FIX, 'config_v4_style.json'));
  assert.deepEqual(v5, v4);
  assert.equal(v5.text.ropeTheta, 273768);
  assert.equal(v5.text.numKvHeads, 2);
  assert.equal(v5.text.headDim, 8);
  assert.equal(v5.vision.hiddenAct, 'gelu_pytorch_tanh');
  assert.equal(v5.imageSeqLen, 4);
  assert.equal(v5.tieWordEmbeddings, false);
  const json = readJsonFile(path.join(FIX, 'model', 'config.json'));
  const text = json.text_config as Record<string, unknown>;
  const alt = { ...json, text_config: { ...text, rope_parameters: undefined, rope_scaling: { rope_type: 'default', rope_theta: 1234 } } };
  assert.equal(idefics3Config(alt, 'alt').text.ropeTheta, 1234);
  const llama3 = { ...json, text_config: { ...text, rope_parameters: { rope_type: 'llama3', rope_theta: 5 } } };
  assert.throws(() => idefics3Config(llama3, 'x'), ConfigError);
  const badKv = { ...json, text_config: { ...text, num_key_value_heads: 3 } };
  assert.throws(() => idefics3Config(badKv, 'x'), /num_key_value_heads/);
  const tiedInText = { ...json, tie_word_embeddings: undefined, text_config: { ...text, tie_word_embeddings: true } };
  assert.equal(idefics3Config(tiedInText, 'x').tieWordEmbeddings, true);
});

test('vision position ids: a full grid is row-major 0..n^2-1; a partial grid is bucketised like transformers 5.x', () => {
  // full grids of the real and test models: 32 (SmolVLM-256M/500M), 27 (SmolVLM-2.2B / Idefics3), 4, 6, 8 (fixtures)
  for (const n of [1, 2, 3, 4, 5, 6, 7, 8, 12, 16, 24, 27, 32, 64])
    assert.deepEqual(
      Array.from(visionPositionIds(n, n, n)),
      Array.from({ length: n * n }, (_, i) => i),
      `n=${n}`,
    );
  // upstream computes i * fl32(1/n) in float32: for n = 25, 5 * fl32(1/25) = 0.19999999 < fl32(0.2), bucket 4
  assert.equal(visionPositionIds(25, 1, 25)[5], 4 * 25);
  // 2 x 3 patches in a 4 x 4 table: rows at fractions 0, .5 -> buckets 0, 2; columns 0, 1/3, 2/3 -> 0, 1, 2
  assert.deepEqual(Array.from(visionPositionIds(2, 3, 4)), [0, 1, 2, 8, 9, 10]);
});

test('patch embedding (patchify + matMul) equals a stride-p convolution', async () => {
  await backend('cpu');
  const pe = new PatchEmbedding(3, 5, 4);
  const sd = randomStateDict(pe, 3);
  const { loadModule } = await import('../../src/weights/load.js');
  loadModule(pe, new MemorySource(sd));
  const x = tf.randomNormal([2, 8, 12, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
  const ours = pe.forward(x); // [2, 6, 5]
  const ref = tf.add(tf.conv2d(x, pe.weight.v as tf.Tensor4D, 4, 'valid'), pe.bias.v).reshape([2, 6, 5]);
  close(ours.dataSync(), ref.dataSync(), 1e-6, 'patch embedding');
  tf.dispose([x, ours, ref]);
  pe.dispose();
});

test('pixel shuffle follows transformers order on a hand-made 4x4 grid (scale 2)', async () => {
  await backend('cpu');
  // token (r, c) of the 4x4 grid carries the 2 channels [10 (4r + c), 10 (4r + c) + 1]
  const x = tf.tensor3d(
    Array.from({ length: 32 }, (_, i) => 10 * Math.floor(i / 2) + (i % 2)),
    [1, 16, 2],
  );
  const y = pixelShuffle(x, 2);
  assert.deepEqual(y.shape, [1, 4, 8]);
  const v = Array.from(y.dataSync());
  // output token (hb, wb) = [t(2hb, 2wb), t(2hb, 2wb+1), t(2hb+1, 2wb), t(2hb+1, 2wb+1)]
  assert.deepEqual(v.slice(0, 8), [0, 1, 10, 11, 40, 41, 50, 51]);
  assert.deepEqual(v.slice(8, 16), [20, 21, 30, 31, 60, 61, 70, 71]);
  assert.deepEqual(v.slice(16, 24), [80, 81, 90, 91, 120, 121, 130, 131]);
  assert.deepEqual(v.slice(24, 32), [100, 101, 110, 111, 140, 141, 150, 151]);
  tf.dispose([x, y]);
});

test('rotary embedding matches hand-computed values (rotate_half convention)', async () => {
  await backend('cpu');
  // head_dim 4, base 100: inverse frequencies 1 and 100^(-1/2) = 0.1
  const { cos, sin } = rotaryTables(4, 100, 2, 2); // positions 2 and 3
  close(cos, [Math.cos(2), Math.cos(0.2), Math.cos(2), Math.cos(0.2), Math.cos(3), Math.cos(0.3), Math.cos(3), Math.cos(0.3)], 1e-6, 'cos');
  close(sin, [Math.sin(2), Math.sin(0.2), Math.sin(2), Math.sin(0.2), Math.sin(3), Math.sin(0.3), Math.sin(3), Math.sin(0.3)], 1e-6, 'sin');
  const x = tf.tensor4d([1, 2, 3, 4], [1, 1, 1, 4]); // one token at position 3
  const y = applyRotary(x, tf.tensor4d(cos.slice(4), [1, 1, 1, 4]), tf.tensor4d(sin.slice(4), [1, 1, 1, 4]));
  const [c1, c2, s1, s2] = [Math.cos(3), Math.cos(0.3), Math.sin(3), Math.sin(0.3)];
  // x cos + rotate_half(x) sin, rotate_half([1, 2, 3, 4]) = [-3, -4, 1, 2]
  close(y.dataSync(), [1 * c1 - 3 * s1, 2 * c2 - 4 * s2, 3 * c1 + 1 * s1, 4 * c2 + 2 * s2], 1e-6, 'rotated');
  tf.dispose([x, y]);
});

test('GQA: repeat_kv gives query head h the key/value head floor(h / nRep)', async () => {
  await backend('cpu');
  const x = tf.tensor3d([1, 2, 3, 4, 5, 6, 7, 8], [1, 2, 4]); // 2 tokens, 2 kv heads of 2
  const y = repeatKv(x, 2, 3);
  assert.deepEqual(y.shape, [1, 2, 12]);
  assert.deepEqual(Array.from(y.dataSync()), [1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4, 5, 6, 5, 6, 5, 6, 7, 8, 7, 8, 7, 8]);
  tf.dispose([x, y]);
});

test('image-token merge fills image tokens in row-major order; a count mismatch is a DataError', async () => {
  await backend('cpu');
  const emb = tf.zeros([2, 4, 1]) as tf.Tensor3D;
  const feats = tf.tensor3d([1, 2, 3, 4], [2, 2, 1]); // 2 images of 2 tokens
  const ids = [9, 7, 7, 9, 7, 9, 9, 7];
  const y = mergeImageFeatures(emb, ids, feats, 7);
  assert.deepEqual(Array.from(y.dataSync()), [0, 1, 2, 0, 3, 0, 0, 4]);
  assert.throws(() => mergeImageFeatures(emb, [7, 7, 7, 0, 0, 0, 0, 0], feats, 7), DataError);
  tf.dispose([emb, feats, y]);
});

test('padding images (all zeros) are dropped; with no real image the first one is kept', async () => {
  await backend('cpu');
  const m = tinyModel();
  const px = tf.concat([tf.ones([1, 1, 64, 64, 3]), tf.zeros([1, 1, 64, 64, 3]), tf.ones([1, 1, 64, 64, 3])], 1) as tf.Tensor5D;
  assert.deepEqual(m.realImages(px), [0, 2]);
  const zeros = tf.zeros([1, 2, 64, 64, 3]) as tf.Tensor5D;
  assert.deepEqual(m.realImages(zeros), [0]);
  tf.dispose([px, zeros]);
  m.dispose();
});

for (const be of testBackends()) {
  test(`KV cache: prefix once + suffix equals one pass, values and gradients (${be})`, async () => {
    await backend(be);
    const m = tinyModel();
    const d = m.config.text.hiddenSize;
    const l = 11;
    const embeds = tf.randomNormal([2, l, d], 0, 1, 'float32', 7) as tf.Tensor3D;
    const mask = [new Array(l).fill(1), [...new Array(l - 3).fill(1), 0, 0, 0]]; // row 1 right padded
    const last = [l - 1, l - 4];
    const full = m.forwardEmbeds(embeds, { attentionMask: mask });
    const fullScore = m.logitDiffAt(full.hidden, last, 5, 6);
    for (const cut of [1, 4, 7]) {
      const head = tf.slice(embeds, [0, 0, 0], [2, cut, d]) as tf.Tensor3D;
      const tail = tf.slice(embeds, [0, cut, 0], [2, l - cut, d]) as tf.Tensor3D;
      const pre = m.forwardEmbeds(head, { attentionMask: mask.map((r) => r.slice(0, cut)), returnCache: true });
      assert.equal(pre.cache!.length, cut);
      const post = m.forwardEmbeds(tail, { attentionMask: mask.map((r) => r.slice(cut)), past: pre.cache });
      const ref = tf.slice(full.hidden, [0, cut, 0], [2, l - cut, d]);
      close(post.hidden.dataSync(), ref.dataSync(), 1e-5, `hidden after cut ${cut}`);
      // gradient of the score with respect to the suffix embeddings, cached vs uncached
      const gCached = tf.grad((t: tf.Tensor) =>
        tf.sum(
          m.logitDiffAt(
            m.forwardEmbeds(t as tf.Tensor3D, { attentionMask: mask.map((r) => r.slice(cut)), past: pre.cache }).hidden,
            last.map((p) => p - cut),
            5,
            6,
          ),
        ),
      )(tail);
      const gFull = tf.grad((t: tf.Tensor) =>
        tf.sum(m.logitDiffAt(m.forwardEmbeds(tf.concat([head, t], 1) as tf.Tensor3D, { attentionMask: mask }).hidden, last, 5, 6)),
      )(tail);
      close(gCached.dataSync(), gFull.dataSync(), 1e-5, `suffix gradient after cut ${cut}`);
      tf.dispose([head, tail, pre.hidden, post.hidden, ref, gCached, gFull]);
      pre.cache!.dispose();
    }
    // chained caches (3 pieces) and a batch-1 cache serving 2 suffix rows
    const p1 = m.forwardEmbeds(tf.slice(embeds, [0, 0, 0], [2, 3, d]) as tf.Tensor3D, {
      attentionMask: mask.map((r) => r.slice(0, 3)),
      returnCache: true,
    });
    const p2 = m.forwardEmbeds(tf.slice(embeds, [0, 3, 0], [2, 3, d]) as tf.Tensor3D, {
      attentionMask: mask.map((r) => r.slice(3, 6)),
      past: p1.cache,
      returnCache: true,
    });
    assert.equal(p2.cache!.length, 6);
    const p3 = m.forwardEmbeds(tf.slice(embeds, [0, 6, 0], [2, l - 6, d]) as tf.Tensor3D, {
      attentionMask: mask.map((r) => r.slice(6)),
      past: p2.cache,
    });
    close(
      m
        .logitDiffAt(
          p3.hidden,
          last.map((p) => p - 6),
          5,
          6,
        )
        .dataSync(),
      fullScore.dataSync(),
      1e-5,
      'chained score',
    );
    const one = m.forwardEmbeds(tf.slice(embeds, [0, 0, 0], [1, 5, d]) as tf.Tensor3D, { returnCache: true });
    const row0 = tf.slice(embeds, [0, 5, 0], [1, l - 5, d]);
    const both = m.forwardEmbeds(tf.concat([row0, row0], 0) as tf.Tensor3D, { past: one.cache });
    const ref0 = tf.slice(full.hidden, [0, 5, 0], [1, l - 5, d]);
    close(tf.slice(both.hidden, [1, 0, 0], [1, l - 5, d]).dataSync(), ref0.dataSync(), 1e-5, 'batch-1 cache broadcast');
    for (const c of [p1.cache, p2.cache, one.cache]) c!.dispose();
    m.dispose();
  });
}

test('prefix embeddings take positions 0..Lp-1 before the tokens, with or without a cache', async () => {
  await backend('cpu');
  const m = tinyModel();
  const d = m.config.text.hiddenSize;
  const protos = tf.randomNormal([3, d], 0, 1, 'float32', 8);
  const embeds = tf.randomNormal([2, 6, d], 0, 1, 'float32', 9) as tf.Tensor3D;
  const withPre = m.forwardEmbeds(embeds, { prefixEmbeds: protos });
  assert.deepEqual(withPre.hidden.shape, [2, 6, d]);
  const manual = m.forwardEmbeds(tf.concat([tf.stack([protos, protos]), embeds], 1) as tf.Tensor3D);
  close(withPre.hidden.dataSync(), tf.slice(manual.hidden, [0, 3, 0], [2, 6, d]).dataSync(), 1e-6, 'prefix rows');
  // prototypes + history cached, then a query suffix
  const hist = tf.slice(embeds, [0, 0, 0], [2, 4, d]) as tf.Tensor3D;
  const pre = m.forwardEmbeds(hist, { prefixEmbeds: protos, returnCache: true });
  assert.equal(pre.cache!.length, 7);
  const post = m.forwardEmbeds(tf.slice(embeds, [0, 4, 0], [2, 2, d]) as tf.Tensor3D, { past: pre.cache });
  close(post.hidden.dataSync(), tf.slice(withPre.hidden, [0, 4, 0], [2, 2, d]).dataSync(), 1e-5, 'prefix + cache');
  // gradient reaches the prototypes
  const g = tf.grad((p: tf.Tensor) => tf.sum(m.logitDiffAt(m.forwardEmbeds(embeds, { prefixEmbeds: p }).hidden, [5, 5], 1, 2)))(protos);
  assert.ok(Math.max(...Array.from(g.dataSync()).map(Math.abs)) > 0);
  assert.throws(() => m.forwardEmbeds(embeds, { prefixEmbeds: protos, past: pre.cache }), /cannot follow a cache/);
  pre.cache!.dispose();
  m.dispose();
});

test('tied lm_head loads from embed_tokens when lm_head.weight is absent; untied requires it', async () => {
  await backend('cpu');
  const m = tinyModel(true);
  assert.deepEqual(Array.from(tf.transpose(m.lm_head.weight.v).dataSync()), Array.from(m.model.text_model.embed_tokens.weight.v.dataSync()));
  const untied = new Idefics3ForConditionalGeneration(idefics3Config(tinySmolVlmConfig(300, 299), 'tiny'));
  const sd = randomStateDict(untied, 5);
  sd.delete('lm_head.weight');
  assert.ok(sd.has(EMBED_KEY));
  assert.throws(() => loadIdefics3Weights(untied, new MemorySource(sd)), WeightsError);
  m.dispose();
  untied.dispose();
});

test('no tensors leak across calls (features, merge, forward, cache, score, gradient)', async () => {
  await backend('cpu');
  const m = tinyModel();
  const s = m.config.imageSeqLen;
  const ids = tf.tensor2d([[1, 2, ...new Array(s).fill(299), 3, ...new Array(s).fill(299), 4]], [1, 2 * s + 4], 'int32');
  const px = tf.randomUniform([1, 2, 64, 64, 3], -1, 1, 'float32', 3) as tf.Tensor5D;
  const step = () => {
    const e = m.inputsEmbeds(ids, px);
    const head = tf.slice(e, [0, 0, 0], [1, 5, -1]) as tf.Tensor3D;
    const tail = tf.slice(e, [0, 5, 0], [1, 2 * s - 1, -1]) as tf.Tensor3D;
    const pre = m.forwardEmbeds(head, { returnCache: true });
    const out = m.forwardEmbeds(tail, { past: pre.cache });
    const sc = m.logitDiffAt(out.hidden, [2 * s - 2], 5, 6);
    const g = tf.grad((x: tf.Tensor) => tf.sum(m.logitDiffAt(m.forwardEmbeds(m.inputsEmbeds(ids, x as tf.Tensor5D)).hidden, [2 * s + 3], 5, 6)))(px);
    const v = sc.dataSync()[0] + g.dataSync()[0];
    pre.cache!.dispose();
    tf.dispose([e, head, tail, pre.hidden, out.hidden, sc, g]);
    return v;
  };
  tf.tidy(() => void step()); // warm-up (backend-internal tensors)
  const a = await noLeak(() => tf.tidy(() => step()));
  const b = await noLeak(step);
  assert.ok(Number.isFinite(a) && Math.abs(a - b) < 1e-5);
  tf.dispose([ids, px]);
  m.dispose();
});
