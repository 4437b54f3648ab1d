// Parking a part used once per prompt (Module.park / unpark): the text encoders' weights leave the device after the
// prompt is encoded and come back unchanged for the next prompt; the generator and the CLIP-family rewards do it
// through parkPromptModels (src/run/session.ts calls it after prepare).
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BENCH_PROMPT, buildGenerator, buildReward } from '../../bench/full-models.js';
import { RewardInput } from '../../rewards/input.js';
import { Linear } from '../../src/nn/layers.js';
import { Module, Param } from '../../src/nn/module.js';
import { backend, maxRelErr, noLeak } from '../helpers.js';

class Two extends Module {
  a = new Linear(3, 4);
  b = new Param([2], 'none', { trainable: true });
}

test('park moves parameters to host memory and unpark brings them back unchanged', async () => {
  await backend('cpu');
  const m = new Two();
  m.a.weight.value = tf.tensor2d([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12], [3, 4]);
  m.a.bias!.value = tf.tensor1d([0.5, -1, 2, 3]);
  m.b.value = tf.variable(tf.tensor1d([7, 8]), true);
  const ones = tf.ones([1, 3]);
  const before = tf.memory().numBytes;
  await m.park((name) => name.startsWith('a.'));
  assert.equal(before - tf.memory().numBytes, (12 + 4) * 4, 'the parked tensors are freed');
  assert.equal(m.b.value.dataSync()[1], 8, 'parameters not picked stay');
  assert.throws(() => m.a.weight.v, /parked in host memory/);
  assert.throws(() => m.a.forward(ones), /parked/);
  m.unpark();
  assert.equal(tf.memory().numBytes, before);
  const y = m.a.forward(ones);
  assert.deepEqual([...y.dataSync()], [15.5, 17, 23, 27]);
  tf.dispose([y, ones]);
  await m.park();
  m.unpark();
  assert.ok(m.b.value instanceof tf.Variable && m.b.value.trainable, 'a variable comes back a trainable variable');
  m.dispose();
});

test('the generator and the CLIP-family rewards park their text towers and give the same features after', async () => {
  await backend('wasm');
  const gen = buildGenerator('tiny');
  const rewards = await Promise.all((['pickscore', 'clip', 'hpsv2'] as const).map((n) => buildReward(n, 'tiny')));
  try {
    const ctxOf = async () => {
      const c = gen.prepare(BENCH_PROMPT);
      const v = await c.tensors[0].data();
      c.dispose();
      return v;
    };
    const first = await ctxOf();
    // on wasm conv and Linear weights are in host memory already (setHostWeights): the rest leaves the device
    const teBytes = gen.textEncoder.namedParams().reduce((a, [, p]) => a + (p.host ? 0 : p.tfShape.reduce((x, y) => x * y, 1) * 4), 0);
    assert.ok(teBytes > 0);
    const before = tf.memory().numBytes;
    await gen.parkPromptModels();
    assert.equal(before - tf.memory().numBytes, teBytes, 'the text encoder left the device');
    assert.ok(maxRelErr(await ctxOf(), first) === 0, 'the same context after parking');
    await gen.parkPromptModels();
    for (const r of rewards) {
      const p0 = r.prepare(BENCH_PROMPT);
      const at = tf.memory().numBytes;
      await r.parkPromptModels!();
      assert.ok(tf.memory().numBytes < at, `${r.name}: the text tower left the device`);
      // the image side still scores, and a new prompt brings the text tower back
      const img = tf.randomUniform([1, 64, 64, 3], 0, 1, 'float32', 4) as tf.Tensor4D;
      const input = new RewardInput(img);
      const s0 = p0.score(input).dataSync()[0];
      const p1 = r.prepare(BENCH_PROMPT);
      const s1 = p1.score(input).dataSync()[0];
      assert.equal(s1, s0, `${r.name}: same score with the text features made after parking`);
      input.dispose();
      tf.dispose(img);
      p0.dispose();
      p1.dispose();
      await r.parkPromptModels!();
    }
    await noLeak(async () => {
      await ctxOf(); // unparks
      await gen.parkPromptModels();
    });
  } finally {
    gen.dispose();
    for (const r of rewards) r.dispose();
  }
});
