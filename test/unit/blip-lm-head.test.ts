// BlipTextLMHeadModel: the decoder is tied to the word embeddings (no key of its own, the same tensor, stale
// decoder keys of old .bin files ignored), and the loss is torch's shifted, label-smoothed cross-entropy.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import * as tf from '../../src/runtime/tf.js';
import { blipTextConfig } from '../../src/models/blip/config.js';
import { BlipTextLMHeadModel, shiftedCrossEntropy } from '../../src/models/blip/lm-head.js';
import { ignoredLmKey, loadBlipTextLm } from '../../src/models/blip/load.js';
import { loadModule } from '../../src/weights/load.js';
import { randomStateDict } from '../../src/weights/random.js';
import { writeSafetensors } from '../../src/weights/safetensors.js';
import { MemorySource } from '../../src/weights/source.js';
import { backend, maxRelErr, noLeak, tmpDir } from '../helpers.js';

const CFG = {
  hidden_size: 8,
  encoder_hidden_size: 6,
  intermediate_size: 12,
  num_hidden_layers: 1,
  num_attention_heads: 2,
  max_position_embeddings: 10,
  vocab_size: 11,
  is_decoder: true,
};

test('the LM decoder is the word-embedding matrix: no key of its own, the same tensor, logits = LN(act(dense h)) E^T + bias', async () => {
  await backend('cpu');
  const model = new BlipTextLMHeadModel(blipTextConfig(CFG, 'cfg'));
  const names = model.namedParams().map(([n]) => n);
  assert.ok(names.includes('bert.embeddings.word_embeddings.weight'));
  assert.ok(names.includes('cls.predictions.bias'));
  assert.ok(!names.some((n) => n.startsWith('cls.predictions.decoder')), names.join(', '));
  assert.ok(!names.some((n) => n.startsWith('bert.pooler')));
  const sd = randomStateDict(model, 7);
  loadModule(model, new MemorySource(sd), { ignore: ignoredLmKey });
  const head = model.cls.predictions;
  assert.equal(head.decoderWeight, model.bert.embeddings.word_embeddings.weight.v); // one tensor, not a copy
  await noLeak(() => {
    const h = tf.randomNormal([2, 3, 8], 0, 1, 'float32', 1);
    const logits = head.forward(h);
    const manual = tf.tidy(() =>
      tf.add(tf.einsum('blh,vh->blv', head.transform.forward(h), model.bert.embeddings.word_embeddings.weight.v), head.bias.v),
    );
    assert.deepEqual(logits.shape, [2, 3, 11]);
    assert.ok(maxRelErr(logits.dataSync(), manual.dataSync()) < 1e-6);
    // changing the embedding changes the output layer too
    const w = model.bert.embeddings.word_embeddings.weight;
    const old = w.value!;
    w.value = tf.mul(old, 2);
    const logits2 = head.forward(h);
    const manual2 = tf.tidy(() => tf.add(tf.einsum('blh,vh->blv', head.transform.forward(h), w.v), head.bias.v));
    assert.ok(maxRelErr(logits2.dataSync(), manual2.dataSync()) < 1e-6);
    assert.ok(maxRelErr(logits2.dataSync(), logits.dataSync()) > 1e-2);
    w.value.dispose();
    w.value = old;
    tf.dispose([h, logits, manual, logits2, manual2]);
  });
  model.dispose();
});

test('a checkpoint that repeats the tied decoder (old .bin) or holds a pooler still loads; the shared names win', async () => {
  await backend('cpu');
  const c = blipTextConfig(CFG, 'cfg');
  const sd = randomStateDict(new BlipTextLMHeadModel(c), 8);
  const dir = tmpDir('reno-blip-lm');
  fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(CFG));
  const emb = sd.get('bert.embeddings.word_embeddings.weight')!;
  sd.set('cls.predictions.decoder.weight', { shape: emb.shape, data: new Float32Array(emb.data.length).fill(9) });
  sd.set('cls.predictions.decoder.bias', { shape: [11], data: new Float32Array(11).fill(9) });
  sd.set('bert.pooler.dense.bias', { shape: [8], data: new Float32Array(8) });
  writeSafetensors(path.join(dir, 'model.safetensors'), sd);
  const model = loadBlipTextLm(dir);
  assert.deepEqual(Array.from(model.cls.predictions.decoderWeight.dataSync()), Array.from(emb.data));
  model.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});

test('shiftedCrossEntropy = torch CrossEntropyLoss(label_smoothing) on logits[:, :-1] vs labels[:, 1:], -100 ignored', async () => {
  await backend('cpu');
  const [b, l, v] = [2, 4, 5];
  const logits = tf.randomNormal([b, l, v], 0, 2, 'float32', 3) as tf.Tensor3D;
  const labels = [7, 1, 4, -100, 9, 0, -100, 3]; // first column unused (shift); two ignored
  const x = logits.arraySync();
  let sum = 0;
  let kept = 0;
  for (let i = 0; i < b; i++)
    for (let j = 1; j < l; j++) {
      const y = labels[i * l + j];
      if (y === -100) continue;
      const row = x[i][j - 1];
      const m = Math.max(...row);
      const lse = m + Math.log(row.reduce((s, z) => s + Math.exp(z - m), 0));
      const nll = lse - row[y];
      const smooth = row.reduce((s, z) => s + (lse - z), 0) / v;
      sum += 0.9 * nll + 0.1 * smooth;
      kept++;
    }
  const loss = shiftedCrossEntropy(logits, labels, 0.1);
  assert.ok(Math.abs(loss.dataSync()[0] - sum / kept) < 1e-5, `${loss.dataSync()[0]} vs ${sum / kept}`);
  tf.dispose([logits, loss]);
});
