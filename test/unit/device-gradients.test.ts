// The Sum and Mean gradients of src/runtime/gradients.ts: the values tfjs-core's own give (dy spread over the reduced
// axes, divided by the count for Mean) for every axis form, and no tensor made from CPU values on the way (tfjs-core's
// version uploads a ones tensor of x's size), without leaks.
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import '../../src/runtime/gradients.js';
import { engineCalls } from '../../bench/measure.js';
import { backend, noLeak, testBackends } from '../helpers.js';

/** The expected input gradient by hand: weight w (the outer loss's dy) spread back over the reduced axes. */
function expected(x: tf.Tensor, axes: number[], mean: boolean, w: Float32Array): Float32Array {
  const shape = x.shape;
  const n = axes.reduce((p, a) => p * shape[a], 1);
  const strides = shape.map((_, i) => shape.slice(i + 1).reduce((p, d) => p * d, 1));
  const kept = shape.map((d, i) => (axes.includes(i) ? 1 : d));
  const keptStrides = kept.map((_, i) => kept.slice(i + 1).reduce((p, d) => p * d, 1));
  const out = new Float32Array(x.size);
  for (let i = 0; i < x.size; i++) {
    let j = 0;
    for (let d = 0; d < shape.length; d++) {
      const c = Math.floor(i / strides[d]) % shape[d];
      if (!axes.includes(d)) j += c * keptStrides[d];
    }
    out[i] = mean ? w[j] / n : w[j];
  }
  return out;
}

/** Engine makeTensor calls made while fn runs. */
const cpuMadeTensors = (fn: () => void): number => engineCalls('makeTensor', fn).calls;

for (const be of testBackends()) {
  test(`Sum and Mean gradients: dy spread over the reduced axes, on the device (${be})`, async () => {
    await backend(be);
    const x = tf.randomNormal([2, 3, 4, 5], 0, 1, 'float32', 7);
    const cases: { axis?: number | number[]; keepDims: boolean }[] = [
      { axis: undefined, keepDims: false },
      { axis: 1, keepDims: false },
      { axis: -1, keepDims: true },
      { axis: [1, 3], keepDims: true },
      { axis: [0, 2], keepDims: false },
    ];
    for (const mean of [false, true]) {
      for (const c of cases) {
        const axes = tf.util.parseAxisParam(c.axis ?? [0, 1, 2, 3], x.shape);
        const red = (t: tf.Tensor) => (mean ? tf.mean(t, c.axis, c.keepDims) : tf.sum(t, c.axis, c.keepDims));
        const outShape = red(x).shape;
        // a non-uniform outer weight, so each output's dy is distinct
        const w = tf.tidy(() =>
          tf
            .add(
              tf.range(
                0,
                outShape.reduce((p, d) => p * d, 1),
                1,
                'float32',
              ),
              1,
            )
            .reshape(outShape),
        );
        const loss = (t: tf.Tensor) => tf.sum(tf.mul(red(t), w));
        let g: tf.Tensor | null = null;
        const made = cpuMadeTensors(() => {
          g = tf.grad(loss)(x);
        });
        const got = await (g as unknown as tf.Tensor).data();
        const want = expected(x, axes, mean, (await w.data()) as Float32Array);
        const label = `${mean ? 'mean' : 'sum'} axis ${JSON.stringify(c.axis)} keepDims ${c.keepDims}`;
        assert.equal(got.length, want.length, label);
        for (let i = 0; i < want.length; i++)
          assert.ok(Math.abs(got[i] - want[i]) <= 1e-6 * Math.max(1, Math.abs(want[i])), `${label}: [${i}] ${got[i]} vs ${want[i]}`);
        // only tf.grad's scalar seed dy = 1 and the Mean's divisor come from CPU values (tfjs-core's gradients add a
        // ones tensor of the input's size for each of the two reductions)
        assert.equal(made, mean ? 2 : 1, `${label}: tensors made from CPU values`);
        (g as unknown as tf.Tensor).dispose();
        w.dispose();
      }
    }
    await noLeak(() =>
      tf
        .grad((t: tf.Tensor) => tf.add(tf.sum(t), tf.sum(tf.mean(t, [1, 2], true))))(x)
        .dispose(),
    );
    x.dispose();
  });
}
