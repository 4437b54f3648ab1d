// The fast paths of src/nn: chunked attention with its own gradient, the frozen-weight matMul and the stride-1 conv
// whose input gradient is a flipped forward conv, against tfjs's own formulas.
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chunkedAttention, plainAttention, setHeadGrouping } from '../../src/nn/attention.js';
import { causalMask, conv2d, keyPaddingMask, matMulWeight } from '../../src/nn/ops.js';
import { backend, maxRelErr, noLeak, testBackends } from '../helpers.js';

const rnd = (shape: number[], seed: number) => tf.randomNormal(shape, 0, 1, 'float32', seed);

for (const [be, grouping] of [...testBackends().map((b) => [b, 'auto'] as const), ['cpu', 'all'] as const]) {
  test(`chunked attention equals the plain formula, values and gradients (${be}, heads grouped: ${grouping})`, async () => {
    await backend(be);
    setHeadGrouping(grouping); // 'all': every head in one batched product, as on GPU backends
    const q = rnd([2, 37, 12], 1);
    const k = rnd([2, 37, 12], 2);
    const v = rnd([2, 37, 12], 3);
    const pad = keyPaddingMask(tf.tensor2d([[...Array(37).fill(1)], [...Array(30).fill(1), ...Array(7).fill(0)]]));
    const masks: (tf.Tensor | undefined)[] = [undefined, causalMask(37), tf.add(causalMask(37), pad)];
    for (const mask of masks) {
      for (const chunk of [5, 16, 37]) {
        const a = chunkedAttention(q, k, v, 3, { mask, chunk });
        const b = plainAttention(q, k, v, 3, { mask });
        assert.ok(maxRelErr(a.dataSync(), b.dataSync()) < 1e-5);
        const w = rnd([2, 37, 12], 4);
        const loss = (f: typeof plainAttention) => (x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) => tf.sum(tf.mul(f(x, y, z, 3, { mask, chunk }), w));
        const ga = tf.grads(loss(chunkedAttention))([q, k, v]);
        const gb = tf.grads(loss(plainAttention))([q, k, v]);
        for (let i = 0; i < 3; i++) assert.ok(maxRelErr(ga[i].dataSync(), gb[i].dataSync()) < 1e-4, `grad ${i} chunk ${chunk}`);
        tf.dispose([a, b, w, ...ga, ...gb]);
      }
    }
    // cross-attention (Lk != Lq)
    const kc = rnd([2, 9, 12], 5);
    const vc = rnd([2, 9, 12], 6);
    assert.ok(maxRelErr(chunkedAttention(q, kc, vc, 2, { chunk: 8 }).dataSync(), plainAttention(q, kc, vc, 2).dataSync()) < 1e-5);
    // a mask made inside the differentiated function must survive until the backward pass
    const gm = tf.grad((x: tf.Tensor) => tf.sum(chunkedAttention(x, k, v, 3, { chunk: 7, mask: causalMask(37) })))(q);
    assert.ok(
      maxRelErr(
        gm.dataSync(),
        tf
          .grad((x: tf.Tensor) => tf.sum(plainAttention(x, k, v, 3, { mask: causalMask(37) })))(q)
          .dataSync(),
      ) < 1e-4,
    );
    await noLeak(() =>
      tf
        .grads((x: tf.Tensor) => tf.sum(chunkedAttention(x, k, v, 3, { chunk: 7 })))([q])
        .forEach((t) => t.dispose()),
    );
    // batch 1, one chunk: the slices that would take the whole tensor are skipped; same values, no leaks
    const [q1, k1, v1] = [q, k, v].map((t) => t.slice([1, 0, 0], [1, -1, -1]));
    const m1 = tf.add(causalMask(37), pad.slice([1, 0, 0, 0], [1, -1, -1, -1]));
    const g1 = tf.grads((x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) => tf.sum(tf.square(chunkedAttention(x, y, z, 3, { mask: m1 }))))([q1, k1, v1]);
    const p1 = tf.grads((x: tf.Tensor, y: tf.Tensor, z: tf.Tensor) => tf.sum(tf.square(plainAttention(x, y, z, 3, { mask: m1 }))))([q1, k1, v1]);
    for (let i = 0; i < 3; i++) assert.ok(maxRelErr(g1[i].dataSync(), p1[i].dataSync()) < 1e-4, `batch 1 grad ${i}`);
    await noLeak(() =>
      tf
        .grads((x: tf.Tensor) => tf.sum(chunkedAttention(x, k1, v1, 3, { mask: m1 })))([q1])
        .forEach((t) => t.dispose()),
    );
    tf.dispose([q1, k1, v1, m1, ...g1, ...p1]);
    setHeadGrouping('auto');
  });
}

for (const be of testBackends()) {
  test(`frozen-weight matMul and stride-1 conv: same values and input gradients as tfjs (${be})`, async () => {
    await backend(be);
    const x = rnd([7, 5], 1);
    const w = rnd([5, 3], 2);
    const dy = rnd([7, 3], 3);
    const g1 = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(matMulWeight(t as tf.Tensor2D, w as tf.Tensor2D), dy)))(x);
    const g2 = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.matMul(t as tf.Tensor2D, w as tf.Tensor2D), dy)))(x);
    assert.ok(maxRelErr(g1.dataSync(), g2.dataSync()) < 1e-6);
    for (const [k, pad] of [
      [3, 1],
      [1, 0],
      [3, 0],
      [5, 2],
    ]) {
      const xi = rnd([1, 6, 9, 4], 4) as tf.Tensor4D;
      const wi = rnd([k, k, 4, 5], 5) as tf.Tensor4D;
      const oa = conv2d(xi, wi, 1, pad);
      const ob = tf.conv2d(
        xi,
        wi,
        1,
        pad === 0
          ? 'valid'
          : [
              [0, 0],
              [pad, pad],
              [pad, pad],
              [0, 0],
            ],
      );
      assert.ok(maxRelErr(oa.dataSync(), ob.dataSync()) < 1e-6);
      const wo = rnd(oa.shape, 6);
      const ga = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(conv2d(t as tf.Tensor4D, wi, 1, pad), wo)))(xi);
      const gb = tf.grad((t: tf.Tensor) =>
        tf.sum(
          tf.mul(
            tf.conv2d(
              t as tf.Tensor4D,
              wi,
              1,
              pad === 0
                ? 'valid'
                : [
                    [0, 0],
                    [pad, pad],
                    [pad, pad],
                    [0, 0],
                  ],
            ),
            wo,
          ),
        ),
      )(xi);
      assert.ok(maxRelErr(ga.dataSync(), gb.dataSync()) < 1e-5, `conv k=${k} pad=${pad}`);
    }
    // a trainable filter still gets its own gradient (plain tf.conv2d path)
    if (be !== 'wasm') {
      const wv = tf.variable(rnd([3, 3, 4, 5], 7));
      const xi = rnd([1, 6, 9, 4], 8) as tf.Tensor4D;
      const { grads } = tf.variableGrads(() => tf.sum(conv2d(xi, wv as unknown as tf.Tensor4D, 1, 1)) as tf.Scalar, [wv]);
      assert.deepEqual(grads[wv.name].shape, [3, 3, 4, 5]);
      wv.dispose();
    }
  });
}
