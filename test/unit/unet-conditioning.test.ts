// The UNet's constant conditioning (src/models/sd-turbo/conditioning.ts): with constantConditioning the output and
// the gradient with respect to the sample are those of the plain forward pass; the time embedding, the resnets' time
// projections and the cross-attentions' keys and values are made once (a second call runs fewer kernels); a new
// context or timestep replaces them; release() frees them; and a forward pass without the option after one with it
// still differentiates with respect to the context.
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { unetConfig } from '../../src/models/sd-turbo/config.js';
import { UNet2DConditionModel } from '../../src/models/sd-turbo/unet.js';
import { randomInit } from '../../src/weights/load.js';
import { UNET } from '../../scripts/tiny/sd-turbo.js';
import { engineCalls } from '../../bench/measure.js';
import { backend, maxRelErr, testBackends } from '../helpers.js';

for (const be of testBackends()) {
  test(`constant conditioning: same values and sample gradients, made once, replaced, released (${be})`, async () => {
    await backend(be);
    const unet = new UNet2DConditionModel(unetConfig(UNET, 'tiny unet'));
    randomInit(unet, 7, 0.2);
    const x = tf.randomNormal([1, 8, 8, 4], 0, 1, 'float32', 1) as tf.Tensor4D;
    const ctxA = tf.randomNormal([1, 77, unet.config.crossAttentionDim[0]], 0, 1, 'float32', 2);
    const ctxB = tf.randomNormal([1, 77, unet.config.crossAttentionDim[0]], 0, 1, 'float32', 3);
    const before = tf.memory().numTensors;
    const gradOf = (ctx: tf.Tensor, t: number, constant: boolean) =>
      tf.tidy(() => {
        const f = (q: tf.Tensor) => tf.sum(tf.square(unet.forward(q as tf.Tensor4D, [t], ctx, { constantConditioning: constant })));
        const { value, grad } = tf.valueAndGrad(f)(x);
        return [value, grad];
      });
    for (const [ctx, t] of [
      [ctxA, 999],
      [ctxB, 999],
      [ctxB, 500],
      [ctxA, 999],
    ] as const) {
      const [vPlain, gPlain] = gradOf(ctx, t, false);
      const [vConst, gConst] = gradOf(ctx, t, true);
      assert.ok(maxRelErr(await vConst.data(), await vPlain.data()) < 1e-5, `value, t ${t}`);
      assert.ok(maxRelErr(await gConst.data(), await gPlain.data()) < 1e-4, `sample gradient, t ${t}`);
      tf.dispose([vPlain, gPlain, vConst, gConst]);
    }
    // the same timestep and context again: nothing derived from them is computed, so fewer kernels run
    const calls = (constant: boolean) => {
      const r = engineCalls('runKernel', () =>
        tf.tidy(() => tf.grad((q: tf.Tensor) => tf.sum(unet.forward(q as tf.Tensor4D, [999], ctxA, { constantConditioning: constant })))(x)),
      );
      r.value.dispose();
      return r.calls;
    };
    const plain = calls(false);
    const cached = calls(true);
    assert.ok(cached < plain, `kernels with the cache ${cached}, without ${plain}`);
    // a forward pass without the option still has a gradient with respect to the context
    const gCtx = tf.tidy(() => tf.max(tf.abs(tf.grad((c: tf.Tensor) => tf.sum(unet.forward(x, [999], c)))(ctxA))));
    assert.ok((await gCtx.data())[0] > 0, 'context gradient without the option');
    gCtx.dispose();
    unet.conditioning.release();
    assert.equal(tf.memory().numTensors, before, 'every cached value freed by release()');
    unet.dispose();
    tf.dispose([x, ctxA, ctxB]);
  });
}
