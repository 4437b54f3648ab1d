// Gradient checkpointing: same gradients as the plain tape, lower peak memory, no leaks, and the outer tape keeps
// working around a checkpointed unit (the nested tf.grads of the recompute must not clear it).
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { vaeConfig } from '../../src/models/sd-turbo/config.js';
import { AutoencoderKL } from '../../src/models/sd-turbo/vae.js';
import { checkpoint, setCheckpointing } from '../../src/nn/recompute.js';
import { setLeanBackprop } from '../../src/runtime/backprop.js';
import { randomInit } from '../../src/weights/load.js';
import { withPeak } from '../../bench/measure.js';
import { VAE } from '../../scripts/tiny/sd-turbo.js';
import { backend, maxRelErr, noLeak, testBackends } from '../helpers.js';

for (const be of testBackends()) {
  test(`checkpointed units give the same gradients with less memory (${be})`, async () => {
    await backend(be);
    const w = tf.randomNormal([6, 6], 0, 0.5, 'float32', 1);
    const unit = (x: tf.Tensor, s: tf.Tensor) => tf.tanh(tf.add(tf.matMul(x as tf.Tensor2D, w as tf.Tensor2D), s));
    const x0 = tf.randomNormal([4, 6], 0, 1, 'float32', 2);
    const shift = tf.randomNormal([6], 0, 1, 'float32', 3);
    // ops before and after the checkpointed units must still be differentiated through (outer tape intact)
    const f = (use: boolean) => (x: tf.Tensor) => {
      let h = tf.mul(x, 2);
      for (let i = 0; i < 3; i++) h = use ? checkpoint((a, b) => unit(a, b), [h, tf.mul(shift, i + 1)]) : unit(h, tf.mul(shift, i + 1));
      return tf.sum(tf.square(h));
    };
    const ga = tf.grad(f(true))(x0);
    const gb = tf.grad(f(false))(x0);
    assert.ok(maxRelErr(ga.dataSync(), gb.dataSync()) < 1e-5);
    await noLeak(() => tf.grad(f(true))(x0).dispose());

    const vae = new AutoencoderKL(vaeConfig(VAE, 'tiny vae'), false);
    randomInit(vae, 4, 0.2);
    const side = be === 'cpu' ? 12 : 24; // 96 / 192 px: activations dominate the peak
    const z = tf.randomNormal([1, side, side, 4], 0, 1, 'float32', 5) as tf.Tensor4D;
    // the peak of distinct tensor buffers during the backward pass, by tfjs' own backward pass or by reno's lean one
    // (src/runtime/backprop.ts: that one frees each gradient once used, so it leaves checkpointing less to win)
    const run = async (on: boolean, lean: boolean) => {
      setCheckpointing(on);
      setLeanBackprop(lean);
      try {
        const base = tf.memory().numBytes;
        const r = await withPeak(async () => tf.dispose(tf.grad((q: tf.Tensor) => tf.sum(tf.square(vae.decode(q as tf.Tensor4D))))(z)));
        return r.peakBytes - base;
      } finally {
        setLeanBackprop(true);
      }
    };
    const gOn = tf.grad((q: tf.Tensor) => tf.sum(tf.square(vae.decode(q as tf.Tensor4D))))(z);
    setCheckpointing(false);
    const gOff = tf.grad((q: tf.Tensor) => tf.sum(tf.square(vae.decode(q as tf.Tensor4D))))(z);
    setCheckpointing(true);
    assert.ok(maxRelErr(gOn.dataSync(), gOff.dataSync()) < 1e-4);
    const on = await run(true, false);
    const off = await run(false, false);
    const leanOn = await run(true, true);
    const leanOff = await run(false, true);
    setCheckpointing(true);
    assert.ok(on < off * 0.8, `tfjs' backward pass: peak ${on} checkpointed vs ${off}`);
    assert.ok(leanOn <= leanOff, `lean backward pass: peak ${leanOn} checkpointed vs ${leanOff}`);
    assert.ok(leanOn < on * 0.9, `checkpointed: peak ${leanOn} with the lean backward pass vs ${on}`);
    vae.dispose();
  });
}
