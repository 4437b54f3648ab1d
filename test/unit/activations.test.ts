// GELU (exact), QuickGELU and SiLU with their own gradients (src/nn/ops.ts): values and input gradients of the
// formulas differentiated op by op by tfjs, fewer kernels in the backward pass, no leaks.
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gelu, quickGelu, silu } from '../../src/nn/ops.js';
import { engineCalls } from '../../bench/measure.js';
import { backend, maxRelErr, noLeak, testBackends } from '../helpers.js';

const REFERENCE: Record<string, [(x: tf.Tensor) => tf.Tensor, (x: tf.Tensor) => tf.Tensor]> = {
  gelu: [gelu, (x) => tf.mul(tf.mul(x, 0.5), tf.add(tf.erf(tf.mul(x, Math.SQRT1_2)), 1))],
  quickGelu: [quickGelu, (x) => tf.mul(x, tf.sigmoid(tf.mul(x, 1.702)))],
  silu: [silu, (x) => tf.mul(x, tf.sigmoid(x))],
};

/** Engine runKernel calls made while fn runs. */
const kernels = (fn: () => void): number => engineCalls('runKernel', fn).calls;

for (const be of testBackends()) {
  test(`activations with their own gradients match the formulas (${be})`, async () => {
    await backend(be);
    // a wide range: both tails and the curved middle
    const x = tf.tidy(() => tf.mul(tf.randomNormal([4, 257], 0, 1, 'float32', 3), 3));
    const w = tf.randomNormal([4, 257], 0, 1, 'float32', 4);
    for (const [name, [ours, ref]] of Object.entries(REFERENCE)) {
      const a = tf.tidy(() => ours(x));
      const b = tf.tidy(() => ref(x));
      assert.ok(maxRelErr(await a.data(), await b.data()) < 1e-5, `${name} values`);
      const loss = (f: (t: tf.Tensor) => tf.Tensor) => (t: tf.Tensor) => tf.sum(tf.mul(f(t), w));
      let ga: tf.Tensor | null = null;
      let gb: tf.Tensor | null = null;
      const ka = kernels(() => (ga = tf.grad(loss(ours))(x)));
      const kb = kernels(() => (gb = tf.grad(loss(ref))(x)));
      const err = maxRelErr(await ga!.data(), await gb!.data());
      assert.ok(err < 1e-4, `${name} gradient: ${err}`);
      assert.ok(ka < kb, `${name} kernels ${ka} vs ${kb}`);
      tf.dispose([a, b, ga!, gb!]);
      await noLeak(() => tf.grad(loss(ours))(x).dispose());
    }
    tf.dispose([x, w]);
  });
}
