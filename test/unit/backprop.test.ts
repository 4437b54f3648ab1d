// The lean backward pass (src/runtime/backprop.ts), shape-only saves (src/runtime/gradients.ts) and wasm's shared Identity
// (src/runtime/backend.ts): the same gradients as tfjs' own Engine.gradients, lower peak memory (counted in distinct tensor
// buffers), no leaks.
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { withGrad } from '../../src/nn/attention.js';
import { setLeanBackprop } from '../../src/runtime/backprop.js';
import { checkpoint, isolatedGrads } from '../../src/nn/recompute.js';
import { setShapeOnlySaves } from '../../src/runtime/gradients.js';
import '../../src/nn/ops.js';
import { withPeak } from '../../bench/measure.js';
import { backend, maxRelErr, noLeak, testBackends } from '../helpers.js';

/** Times a constant, with a custom gradient that saves nothing (so only gradients and shape saves take memory). */
const scale = (k: number) =>
  withGrad<[tf.Tensor]>((x, save) => {
    save([]);
    return { value: tf.mul(x, k), gradFunc: (dy: tf.Tensor) => tf.mul(dy, k) };
  });
/** A custom gradient that hands dy itself to both of its inputs (a pass-through, as a residual add's is). */
const passAdd = withGrad<[tf.Tensor, tf.Tensor]>((a, b, save) => {
  save([]);
  return { value: tf.add(a, b), gradFunc: (dy: tf.Tensor) => [dy, dy] };
});

/** Every kind of node the backward pass meets: broadcasting adds and subs, reshapes, concat, slices, pads, a tensor
 * used twice, pass-through gradients, custom gradients with saved tensors, an x that takes no part. */
function mixed(x: tf.Tensor, bias: tf.Tensor, unused: tf.Tensor): tf.Tensor {
  void unused;
  let h = tf.add(x, bias); // [2, 6, 4] + [4]
  h = tf.mul(h, tf.sin(h)); // h used twice
  h = passAdd(h, tf.sub(scale(0.5)(h), bias));
  const r = h.reshape([2, 24]);
  const c = tf.concat([r, tf.square(r)], 1); // [2, 48]
  const p = tf.pad(tf.slice(c, [0, 3], [2, 40]), [
    [1, 0],
    [0, 2],
  ]);
  return tf.sum(tf.mul(p, tf.mean(p, 1, true)));
}

for (const be of testBackends()) {
  test(`lean backward pass: tfjs' gradients, fewer buffers alive, no leaks (${be})`, async () => {
    await backend(be);
    const x = tf.randomNormal([2, 6, 4], 0, 1, 'float32', 1);
    const bias = tf.randomNormal([4], 0, 1, 'float32', 2);
    const unused = tf.randomNormal([3], 0, 1, 'float32', 3);
    const run = (lean: boolean, shapeOnly: boolean) => {
      setLeanBackprop(lean);
      setShapeOnlySaves(shapeOnly);
      try {
        return tf.engine().gradients(() => mixed(x, bias, unused), [x, bias, unused], undefined, true);
      } finally {
        setLeanBackprop(true);
        setShapeOnlySaves(true);
      }
    };
    const ref = run(false, false);
    for (const [lean, shapeOnly] of [
      [true, true],
      [true, false],
      [false, true],
    ]) {
      const got = await noLeak(async () => {
        const r = run(lean, shapeOnly);
        const out = { value: await r.value.data(), grads: await Promise.all(r.grads.slice(0, 2).map((g) => g.data())), third: r.grads[2] };
        tf.dispose([r.value, ...r.grads.filter(Boolean)]);
        return out;
      });
      assert.ok(maxRelErr(got.value, await ref.value.data()) < 1e-6, 'value');
      for (let i = 0; i < 2; i++)
        assert.ok(maxRelErr(got.grads[i], await ref.grads[i].data()) < 1e-5, `gradient ${i} (lean ${lean}, shape-only ${shapeOnly})`);
      assert.equal(got.third, undefined, 'no gradient for an x the value does not depend on');
    }
    tf.dispose([ref.value, ...ref.grads.filter(Boolean)]);

    // tf.grad and tf.variableGrads go through it too
    const v = tf.variable(tf.randomNormal([4], 0, 1, 'float32', 4));
    const f = () => tf.sum(tf.square(tf.add(tf.mul(x, v), v))) as tf.Scalar;
    setLeanBackprop(false);
    const want = tf.variableGrads(f, [v]);
    setLeanBackprop(true);
    const got = await noLeak(async () => {
      const r = tf.variableGrads(f, [v]);
      const d = await r.grads[v.name].data();
      tf.dispose([r.value, r.grads[v.name]]);
      return d;
    });
    assert.ok(maxRelErr(got, await want.grads[v.name].data()) < 1e-6);
    tf.dispose([want.value, want.grads[v.name], v]);

    // memory: a chain of 12 custom ops and pass-through adds; tfjs holds every intermediate gradient to the end
    const big = tf.randomNormal([64, 1024], 0, 1, 'float32', 5); // 256 KiB
    const chain = (t: tf.Tensor) => {
      let h = t;
      for (let i = 0; i < 12; i++) {
        const next = tf.tidy(() => (i % 3 === 2 ? passAdd(h, scale(0.9)(h)) : scale(1.01)(h)));
        if (h !== t) h.dispose(); // nothing saved it: freed as the forward pass goes
        h = next;
      }
      return tf.sum(h);
    };
    const peak = async (lean: boolean) => {
      setLeanBackprop(lean);
      try {
        return (await withPeak(async () => tf.dispose(tf.grad(chain)(big)))).peakBytes;
      } finally {
        setLeanBackprop(true);
      }
    };
    const before = tf.memory().numBytes;
    const leanPeak = (await peak(true)) - before;
    const tfjsPeak = (await peak(false)) - before;
    assert.ok(tfjsPeak >= 12 * big.size * 4, `tfjs' peak ${tfjsPeak}`);
    assert.ok(leanPeak <= 5 * big.size * 4, `lean peak ${leanPeak} bytes, ${(leanPeak / (big.size * 4)).toFixed(1)} x the input`);
    await noLeak(() => tf.dispose(tf.grad(chain)(big)));

    // what a node saved is freed once its gradient has run: eight checkpointed units, the first one's recomputation
    // the largest (six tanh outputs saved); when the backward pass reaches it, the other units' saved inputs are gone
    const units = (t: tf.Tensor) => {
      let h = t;
      for (let i = 0; i < 8; i++) {
        const next = checkpoint(
          (a) => {
            let u = a;
            for (let j = 0; j < (i === 0 ? 6 : 1); j++) u = tf.tanh(u);
            return u;
          },
          [h],
        );
        if (h !== t) h.dispose();
        h = next;
      }
      return tf.sum(h);
    };
    const unitPeak = async (lean: boolean) => {
      setLeanBackprop(lean);
      try {
        return (await withPeak(async () => tf.dispose(tf.grad(units)(big)))).peakBytes - before;
      } finally {
        setLeanBackprop(true);
      }
    };
    const [leanUnits, tfjsUnits] = [await unitPeak(true), await unitPeak(false)];
    // measured: 12 x the input (18 x when saved tensors wait for the end of the pass; tfjs' own pass: 29 x)
    const ratio = (b: number) => (b / (big.size * 4)).toFixed(1);
    assert.ok(
      leanUnits <= 14 * big.size * 4 && leanUnits < tfjsUnits,
      `checkpointed units: lean ${ratio(leanUnits)} x vs tfjs ${ratio(tfjsUnits)} x the input`,
    );

    // isolatedGrads without the value: freed at once, the same gradient
    const a = isolatedGrads(chain, [big]);
    const b = await noLeak(async () => {
      const r = isolatedGrads(chain, [big], undefined, false);
      assert.ok(r.value.isDisposed, 'the value is returned disposed');
      const d = await r.grads[0].data();
      r.grads[0].dispose();
      return d;
    });
    assert.ok(maxRelErr(b, await a.grads[0].data()) === 0);
    tf.dispose([a.value, a.grads[0], big, x, bias, unused]);
  });

  test(`shape-only saves: adds, reshapes and concats keep no tensor for the backward pass (${be})`, async () => {
    await backend(be);
    const x = tf.randomNormal([32, 1024], 0, 1, 'float32', 6); // 128 KiB
    const one = tf.scalar(1);
    // each add's inputs would be saved by tfjs: the chain's every intermediate stays alive until the backward pass
    const f = (t: tf.Tensor) => {
      let h = t;
      for (let i = 0; i < 10; i++) {
        const next = tf.tidy(() => tf.add(h.reshape([1024, 32]), one).reshape([32, 1024]));
        if (h !== t) h.dispose(); // freed unless a gradient saved it
        h = next;
      }
      return tf.sum(scale(2)(h));
    };
    const measure = async (on: boolean) => {
      setShapeOnlySaves(on);
      try {
        const r = await withPeak(async () => {
          const g = tf.grad(f)(x);
          const d = await g.data();
          g.dispose();
          return d;
        });
        return { peak: r.peakBytes - tf.memory().numBytes, grad: r.value };
      } finally {
        setShapeOnlySaves(true);
      }
    };
    const off = await measure(false);
    const on = await measure(true);
    assert.ok(maxRelErr(on.grad, off.grad) === 0);
    assert.ok(on.grad.every((g) => g === 2));
    assert.ok(off.peak >= 10 * x.size * 4, `tfjs' saves: peak ${off.peak}`);
    assert.ok(on.peak <= 4 * x.size * 4, `shape-only saves: peak ${on.peak} bytes`);
    tf.dispose([x, one]);
  });
}

test('wasm: a clone shares its buffer (tfjs saves every gradient input by cloning it)', async () => {
  await backend('wasm');
  const x = tf.tensor([1, 2, 3]);
  const bytes = tf.memory().numBytes;
  const eng = tf.engine() as unknown as { backend: { numDataIds(): number } };
  const ids = eng.backend.numDataIds();
  const y = tf.clone(x);
  assert.equal(eng.backend.numDataIds(), ids, 'no new buffer');
  assert.ok(tf.memory().numBytes >= bytes);
  x.dispose();
  assert.deepEqual(Array.from(await y.data()), [1, 2, 3], 'the clone outlives the original');
  y.dispose();
});
