// src/image/preprocess.ts: the antialiased resampling matrices (Pillow / ATen weights), constant images, the centre
// crop's Python rounding, and tensor hygiene.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '../../src/runtime/tf.js';
import {
  CLIP_MEAN,
  CLIP_STD,
  centerCropOffsets,
  clipPreprocess,
  pyRound,
  resampleMatrix,
  resizeBicubicAA,
  resizeBilinearAA,
  resizedSize,
} from '../../src/image/preprocess.js';
import { backend, noLeak } from '../helpers.js';

const SIZES: [number, number][] = [
  [512, 224],
  [64, 224],
  [96, 336],
  [7, 3],
  [3, 7],
  [224, 224],
  [512, 448],
  [1, 5],
];

test('every row of every resampling matrix sums to 1 and is non-zero only near its centre', () => {
  for (const f of ['bicubic', 'bilinear'] as const)
    for (const [i, o] of SIZES) {
      const m = resampleMatrix(f, i, o);
      const support = (f === 'bicubic' ? 2 : 1) * Math.max(i / o, 1);
      for (let r = 0; r < o; r++) {
        let s = 0;
        for (let j = 0; j < i; j++) {
          const v = m[r * i + j];
          s += v;
          if (v !== 0) assert.ok(Math.abs(j + 0.5 - (r + 0.5) * (i / o)) <= support + 0.5, `${f} ${i}->${o} row ${r} tap ${j}`);
        }
        assert.ok(Math.abs(s - 1) < 1e-6, `${f} ${i}->${o} row ${r} sums to ${s}`);
      }
    }
});

test('bicubic uses Keys a = -0.5 with edge taps dropped and renormalised (hand-computed 4 -> 2)', () => {
  // scale 2, support 4, centre 1: taps j = 0..3 at (j - 0.5) / 2 = -0.25, 0.25, 0.75, 1.25
  const w = [0.8671875, 0.8671875, 0.2265625, -0.0703125];
  const sum = w.reduce((a, b) => a + b, 0);
  const m = resampleMatrix('bicubic', 4, 2);
  w.forEach((v, j) => assert.ok(Math.abs(m[j] - v / sum) < 1e-7, `tap ${j}: ${m[j]} vs ${v / sum}`));
  // the second row is the mirror image
  w.forEach((v, j) => assert.ok(Math.abs(m[4 + 3 - j] - v / sum) < 1e-7));
  // same size: the identity
  const id = resampleMatrix('bicubic', 5, 5);
  for (let r = 0; r < 5; r++) for (let j = 0; j < 5; j++) assert.ok(id[r * 5 + j] === (r === j ? 1 : 0)); // -0 counts as 0
  // bilinear 2x downscale: triangle widened to support 2 -> taps (1/8, 3/8, 3/8, 1/8) inside
  const b = resampleMatrix('bilinear', 8, 4);
  assert.deepEqual(Array.from(b.subarray(8 + 1, 8 + 5)), [0.125, 0.375, 0.375, 0.125]);
});

test('Python rounding and torchvision sizes for the centre crop', () => {
  assert.equal(pyRound(36.5), 36);
  assert.equal(pyRound(37.5), 38);
  assert.equal(pyRound(0.5), 0);
  assert.equal(pyRound(1.5), 2);
  assert.equal(pyRound(2.4999), 2);
  assert.equal(pyRound(56), 56);
  assert.deepEqual(resizedSize(64, 96, 224), [224, 336]);
  assert.deepEqual(resizedSize(97, 64, 224), [339, 224]); // int(339.5)
  assert.deepEqual(resizedSize(512, 512, 224), [224, 224]);
  assert.deepEqual(centerCropOffsets(224, 336, 224), [0, 56]);
  assert.deepEqual(centerCropOffsets(297, 224, 224), [36, 0]); // round(36.5) = 36
  assert.deepEqual(centerCropOffsets(224, 299, 224), [0, 38]); // round(37.5) = 38
});

test('a crop with a half offset keeps columns 36..259 (224x297 needs no resize)', async () => {
  await backend('cpu');
  tf.tidy(() => {
    const x = tf.randomUniform([1, 224, 297, 3], 0, 1, 'float32', 7) as tf.Tensor4D;
    const y = clipPreprocess(x);
    const want = tf.div(tf.sub(tf.slice(x, [0, 0, 36, 0], [1, 224, 224, 3]), tf.tensor1d([...CLIP_MEAN])), tf.tensor1d([...CLIP_STD]));
    assert.deepEqual(y.shape, [1, 224, 224, 3]);
    assert.ok(tf.max(tf.abs(tf.sub(y, want))).dataSync()[0] < 1e-6);
  });
});

test('a constant image stays constant (up and down, square and not), then is CLIP-normalised', async () => {
  await backend('cpu');
  tf.tidy(() => {
    const c = [0.2, 0.5, 0.9];
    for (const [h, w] of [
      [64, 64],
      [64, 96],
      [300, 250],
    ]) {
      const x = tf.mul(tf.ones([1, h, w, 3]), tf.tensor1d(c)) as tf.Tensor4D;
      const y = clipPreprocess(x).dataSync();
      for (let i = 0; i < y.length; i++) assert.ok(Math.abs(y[i] - (c[i % 3] - CLIP_MEAN[i % 3]) / CLIP_STD[i % 3]) < 1e-5);
      for (const r of [resizeBicubicAA(x, 37, 200), resizeBilinearAA(x, 448, 17)]) {
        const v = r.dataSync();
        for (let i = 0; i < v.length; i++) assert.ok(Math.abs(v[i] - c[i % 3]) < 1e-6);
      }
    }
  });
});

test('the VJP is the transposed resize: <R x, y> = <x, R^T y>, batch > 1 works, and nothing leaks', async () => {
  await backend('cpu');
  const x = tf.randomUniform([2, 40, 30, 3], 0, 1, 'float32', 1) as tf.Tensor4D;
  const dy = tf.randomNormal([2, 224, 224, 3], 0, 1, 'float32', 2) as tf.Tensor4D;
  await noLeak(() => {
    tf.tidy(() => {
      const f = (t: tf.Tensor) => resizeBicubicAA(t as tf.Tensor4D, 224, 224);
      const g = tf.grad(f)(x, dy);
      const lhs = tf.sum(tf.mul(f(x), dy)).dataSync()[0];
      const rhs = tf.sum(tf.mul(x, g)).dataSync()[0];
      assert.ok(Math.abs(lhs - rhs) < 1e-3 * Math.abs(lhs) + 1e-3, `${lhs} vs ${rhs}`);
      // batch items are independent
      const one = f(tf.slice(x, [1, 0, 0, 0], [1, 40, 30, 3]));
      const both = f(x);
      assert.ok(tf.max(tf.abs(tf.sub(one, tf.slice(both, [1, 0, 0, 0], [1, 224, 224, 3])))).dataSync()[0] < 1e-6);
    });
    tf.dispose(clipPreprocess(x));
  });
  tf.dispose([x, dy]);
});
