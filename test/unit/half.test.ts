// Float16 weight storage (src/runtime/half.ts, Param.store with half weights on): the binary16 conversion (round to nearest
// even, subnormals, overflow, NaN), the pack / unpack kernels on cpu and wasm, and Linear / Conv2d layers with half
// weights: the same values and input gradients as float32 weights rounded to float16, half the bytes, no leaks.
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fromHalfBits, packHalf, packHalfValues, toHalfBits, unpackHalf, unpackHalfValues } from '../../src/runtime/half.js';
import { Conv2d, Linear } from '../../src/nn/layers.js';
import { setHalfWeights, setHostWeights } from '../../src/nn/module.js';
import { backend, maxRelErr, noLeak, testBackends } from '../helpers.js';

test('float32 -> binary16 bits: exact values, rounding to nearest even, subnormals, overflow, NaN', () => {
  const cases: [number, number][] = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff],
    [65519, 0x7bff],
    [65520, 0x7c00],
    [1e6, 0x7c00],
    [-Infinity, 0xfc00],
    [1 / 3, 0x3555],
    [1 + 2 ** -11, 0x3c00],
    [1 + 3 * 2 ** -11, 0x3c02],
    [1 + 2 ** -11 + 2 ** -20, 0x3c01], // ties to even, above a tie
    [2 ** -24, 0x0001],
    [2 ** -25, 0x0000],
    [3 * 2 ** -26, 0x0001],
    [2 ** -14, 0x0400],
    [2 ** -14 - 2 ** -25, 0x0400], // subnormals
  ];
  for (const [x, h] of cases) assert.equal(toHalfBits(x), h, `${x} -> 0x${toHalfBits(x).toString(16)}, expected 0x${h.toString(16)}`);
  assert.ok(Number.isNaN(fromHalfBits(toHalfBits(NaN))));
  // every finite half survives the round trip, and each lies within half a step of its neighbours' midpoints
  for (let h = 0; h < 0x10000; h++) {
    const v = fromHalfBits(h);
    if (Number.isNaN(v)) continue;
    assert.equal(toHalfBits(v), h, `0x${h.toString(16)}`);
  }
});

test('packed pairs: odd lengths, element 2i in the low bits', () => {
  const x = [1, -2, 0.5, 3];
  const p = packHalfValues(x.concat(7));
  assert.equal(p.length, 3);
  assert.equal(p[0] & 0xffff, 0x3c00);
  assert.equal((p[0] >>> 16) & 0xffff, 0xc000);
  assert.equal(p[2] >>> 16, 0, 'the pad is zero');
  assert.deepEqual([...unpackHalfValues(p, 5)], [1, -2, 0.5, 3, 7]);
});

for (const be of testBackends()) {
  test(`pack / unpack kernels round like the JavaScript conversion (${be})`, async () => {
    await backend(be);
    const vals = Array.from({ length: 1001 }, (_, i) => Math.sin(i * 1.7) * 10 ** ((i % 9) - 5));
    const x = tf.tensor1d(vals);
    await noLeak(async () => {
      const p = packHalf(x);
      assert.equal(p.dtype, 'int32');
      assert.deepEqual([...(await p.data())], [...packHalfValues(vals)]);
      const back = unpackHalf(p, [7, 11, 13]);
      assert.deepEqual(back.shape, [7, 11, 13]);
      assert.deepEqual([...(await back.data())], [...unpackHalfValues(packHalfValues(vals), 1001)]);
      tf.dispose([p, back]);
    });
    x.dispose();
  });

  test(`Linear and Conv2d with float16 weights: half the bytes, the float16-rounded float32 results (${be})`, async () => {
    await backend(be);
    const rounded = (t: tf.Tensor) => tf.tensor(unpackHalfValues(packHalfValues(t.dataSync()), t.size), t.shape);
    const layers = () => {
      const lin = new Linear(24, 10);
      const conv = new Conv2d(6, 5, 3, 1, 1);
      return { lin, conv, params: [lin.weight, lin.bias!, conv.weight, conv.bias!] };
    };
    const ref = layers();
    const half = layers();
    try {
      for (const [i, p] of ref.params.entries()) p.store(tf.randomNormal(p.tfShape, 0, 0.3, 'float32', 10 + i));
      setHalfWeights(true);
      setHostWeights(false); // the float16 tensors on the backend (wasm's default keeps them in host memory)
      const before = tf.memory().numBytes;
      for (const [i, p] of half.params.entries()) p.store(tf.randomNormal(p.tfShape, 0, 0.3, 'float32', 10 + i));
      const bytes = tf.memory().numBytes - before;
      assert.ok(half.lin.weight.half && half.conv.weight.half && !half.lin.bias!.half, 'weights packed, biases not');
      assert.equal(bytes, (240 + 10 + 270 + 5) * 4 - (240 + 270) * 2, 'the weights take 2 bytes a value');
      // the reference uses the same weights rounded to float16
      for (const p of [ref.lin.weight, ref.conv.weight]) p.store(rounded(p.v));
      const xl = tf.randomNormal([3, 24], 0, 1, 'float32', 1);
      const xc = tf.randomNormal([2, 7, 6, 6], 0, 1, 'float32', 2) as tf.Tensor4D;
      const run = (m: ReturnType<typeof layers>) => {
        const yl = m.lin.forward(xl);
        const yc = m.conv.forward(xc);
        const gl = tf.grad((a: tf.Tensor) => tf.sum(tf.square(m.lin.forward(a))))(xl);
        const gc = tf.grad((a: tf.Tensor) => tf.sum(tf.square(m.conv.forward(a as tf.Tensor4D))))(xc);
        return [yl, yc, gl, gc];
      };
      const a = run(ref);
      const n0 = tf.memory().numTensors;
      const b = run(half);
      assert.equal(tf.memory().numTensors, n0 + b.length, 'no unpacked weight outlives the layers');
      for (const [i, t] of a.entries()) {
        const err = maxRelErr(b[i].dataSync(), t.dataSync());
        assert.ok(err < 1e-5, `output ${i}: ${err}`);
      }
      tf.dispose([...a, ...b, xl, xc]);
    } finally {
      setHalfWeights(false);
      for (const m of [ref, half]) {
        m.lin.dispose();
        m.conv.dispose();
      }
    }
  });
}
