// standardize (src/nn/norm.ts), the core of GroupNorm and LayerNorm with a closed-form gradient: the same values and
// input gradients as tfjs differentiating the composite formula, for the group layout and the last-axis layout; the
// affine weight and bias still get their gradients (trainable LayerNorm); fewer kernels; no leaks.
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GroupNorm, LayerNorm } from '../../src/nn/layers.js';
import { normAffine, standardize, type NormOptions } from '../../src/nn/norm.js';
import { engineCalls, withPeak } from '../../bench/measure.js';
import { backend, maxRelErr, noLeak, testBackends } from '../helpers.js';

/** The composite formula, differentiated by tfjs op by op. */
function composite(x: tf.Tensor, axes: number[], eps: number): tf.Tensor {
  const { mean, variance } = tf.moments(x, axes, true);
  return tf.mul(tf.sub(x, mean), tf.rsqrt(tf.add(variance, eps)));
}

/** Engine runKernel calls made while fn runs. */
const kernels = (fn: () => void): number => engineCalls('runKernel', fn).calls;

for (const be of testBackends()) {
  test(`standardize: values and input gradients of the composite formula, fewer kernels (${be})`, async () => {
    await backend(be);
    const cases: { shape: number[]; axes: number[]; eps: number }[] = [
      { shape: [2, 12, 4, 3], axes: [1, 3], eps: 1e-5 }, // GroupNorm layout [B, HW, G, C/G]
      { shape: [2, 7, 16], axes: [2], eps: 1e-5 }, // LayerNorm over the last axis
      { shape: [3, 5], axes: [1], eps: 1e-6 },
    ];
    for (const c of cases) {
      // an offset and scale far from 0 / 1 so the mean and variance terms matter
      const x = tf.tidy(() => tf.add(tf.mul(tf.randomNormal(c.shape, 0, 1, 'float32', 5), 3), 2));
      const w = tf.randomNormal(c.shape, 0, 1, 'float32', 6); // the outer loss's weights: dy = w
      const loss = (f: typeof standardize) => (t: tf.Tensor) => tf.sum(tf.mul(f(t, c.axes, c.eps), w));
      const ours = tf.tidy(() => standardize(x, c.axes, c.eps));
      const ref = tf.tidy(() => composite(x, c.axes, c.eps));
      assert.ok(maxRelErr(await ours.data(), await ref.data()) < 1e-5, `values ${JSON.stringify(c.shape)}`);
      let gOurs: tf.Tensor | null = null;
      let gRef: tf.Tensor | null = null;
      const kOurs = kernels(() => (gOurs = tf.grad(loss(standardize))(x)));
      const kRef = kernels(() => (gRef = tf.grad(loss(composite))(x)));
      const err = maxRelErr(await gOurs!.data(), await gRef!.data());
      assert.ok(err < 1e-4, `gradient ${JSON.stringify(c.shape)}: ${err}`);
      assert.ok(kOurs < kRef * 0.7, `kernels ${kOurs} vs ${kRef}`);
      tf.dispose([x, w, ours, ref, gOurs!, gRef!]);
    }
    const x = tf.randomNormal([2, 6, 8], 0, 1, 'float32', 9);
    await noLeak(() =>
      tf
        .grad((t: tf.Tensor) => tf.sum(tf.square(standardize(t, [2], 1e-5))))(x)
        .dispose(),
    );
    x.dispose();
  });

  test(`GroupNorm and LayerNorm: affine parameters still get their gradients (${be})`, async () => {
    await backend(be);
    const ln = new LayerNorm(8);
    const wv = tf.variable(tf.randomNormal([8], 1, 0.2, 'float32', 1), true);
    const bv = tf.variable(tf.randomNormal([8], 0, 0.2, 'float32', 2), true);
    ln.weight!.value = wv;
    ln.bias!.value = bv;
    const x = tf.randomNormal([3, 8], 0, 2, 'float32', 3);
    const dy = tf.randomNormal([3, 8], 0, 1, 'float32', 4);
    const { grads } = tf.variableGrads(() => tf.sum(tf.mul(ln.forward(x), dy)) as tf.Scalar, [wv, bv]);
    const xhat = tf.tidy(() => composite(x, [1], 1e-5));
    const wantW = tf.tidy(() => tf.sum(tf.mul(dy, xhat), 0));
    const wantB = tf.tidy(() => tf.sum(dy, 0));
    assert.ok(maxRelErr(await grads[wv.name].data(), await wantW.data()) < 1e-4);
    assert.ok(maxRelErr(await grads[bv.name].data(), await wantB.data()) < 1e-5);
    // GroupNorm (frozen affine): values of the formula by hand
    const gn = new GroupNorm(2, 6);
    gn.weight!.value = tf.randomNormal([6], 1, 0.2, 'float32', 5);
    gn.bias!.value = tf.randomNormal([6], 0, 0.2, 'float32', 6);
    const xi = tf.randomNormal([1, 3, 3, 6], 1, 2, 'float32', 7);
    const want = tf.tidy(() => {
      const g = xi.reshape([1, 9, 2, 3]); // [B, HW, G, C/G]
      return tf.add(tf.mul(composite(g, [1, 3], 1e-5).reshape([1, 3, 3, 6]), gn.weight!.v), gn.bias!.v);
    });
    assert.ok(maxRelErr(await gn.forward(xi).data(), await want.data()) < 1e-5);
    tf.dispose([x, dy, xhat, wantW, wantB, xi, want, ...Object.values(grads)]);
    ln.dispose();
    gn.dispose();
  });

  test(`GroupNorm / LayerNorm with frozen weights as one op: the composite's values and input gradients, less memory (${be})`, async () => {
    await backend(be);
    const silu = (t: tf.Tensor) => tf.mul(t, tf.sigmoid(t));
    /** the formula op by op, differentiated by tfjs */
    const reference = (t: tf.Tensor, o: NormOptions) => {
      const c = t.shape[t.rank - 1];
      let y =
        o.groups === null
          ? composite(t, [t.rank - 1], o.eps)
          : composite(t.reshape([t.shape[0], -1, o.groups, c / o.groups]), [1, 3], o.eps).reshape(t.shape);
      if (o.weight) y = tf.mul(y, o.weight);
      if (o.bias) y = tf.add(y, o.bias);
      return o.act === 'silu' ? silu(y) : y;
    };
    const vec = (n: number, mean: number, seed: number) => tf.randomNormal([n], mean, 0.3, 'float32', seed);
    const cases: { shape: number[]; o: NormOptions }[] = [
      { shape: [2, 5, 3, 6], o: { groups: 3, eps: 1e-5, weight: vec(6, 1, 1), bias: vec(6, 0, 2), act: 'silu' } },
      { shape: [1, 4, 4, 8], o: { groups: 2, eps: 1e-6, weight: null, bias: null, act: 'none' } },
      { shape: [2, 9, 4], o: { groups: 4, eps: 1e-6, weight: vec(4, 1, 3), bias: null, act: 'silu' } },
      { shape: [3, 7, 8], o: { groups: null, eps: 1e-5, weight: vec(8, 1, 4), bias: null } },
      { shape: [4, 8], o: { groups: null, eps: 1e-5, weight: vec(8, 1, 5), bias: vec(8, 0, 6) } },
    ];
    for (const { shape, o } of cases) {
      const x = tf.tidy(() => tf.add(tf.mul(tf.randomNormal(shape, 0, 1, 'float32', 7), 3), 2));
      const dy = tf.randomNormal(shape, 0, 1, 'float32', 8);
      const loss = (f: (t: tf.Tensor, o: NormOptions) => tf.Tensor) => (t: tf.Tensor) => tf.sum(tf.mul(f(t, o), dy));
      const [ours, ref] = [normAffine, reference].map((f) => tf.tidy(() => f(x, o)));
      assert.ok(maxRelErr(await ours.data(), await ref.data()) < 1e-5, `values ${JSON.stringify(shape)}`);
      const [gOurs, gRef] = [normAffine, reference].map((f) => tf.grad(loss(f))(x));
      const err = maxRelErr(await gOurs.data(), await gRef.data());
      assert.ok(err < 1e-4, `gradient ${JSON.stringify(shape)} groups ${o.groups} act ${o.act}: ${err}`);
      await noLeak(() => tf.dispose(tf.grad(loss(normAffine))(x)));
      tf.dispose([x, dy, ours, ref, gOurs, gRef, o.weight, o.bias].filter((t): t is tf.Tensor => t !== null));
    }
    // memory: x, the output, the seed gradient and the backward pass's working set; the composite keeps x-hat, the
    // affine output and the sigmoid besides
    const x = tf.randomNormal([1, 32, 32, 64], 1, 2, 'float32', 9);
    const o: NormOptions = { groups: 8, eps: 1e-5, weight: vec(64, 1, 10), bias: vec(64, 0, 11), act: 'silu' };
    const peak = async (f: (t: tf.Tensor, o: NormOptions) => tf.Tensor) => {
      const base = tf.memory().numBytes;
      const r = await withPeak(async () => tf.dispose(tf.grad((t: tf.Tensor) => tf.sum(f(t, o)))(x)));
      return (r.peakBytes - base) / (x.size * 4);
    };
    const lean = await peak(normAffine);
    const ref = await peak(reference);
    assert.ok(lean <= 4.5, `one op: ${lean.toFixed(2)} x the input alive at the peak`);
    assert.ok(ref >= 8, `the composite: ${ref.toFixed(2)} x`);
    tf.dispose([x, o.weight!, o.bias!]);
  });
}
