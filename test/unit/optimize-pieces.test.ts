import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { adamStep, bestIndex, chiRegulariser, clipGradNorm, newOptimizerState, sgdStep } from '../../src/optimize/pieces.js';
import { backend } from '../helpers.js';

const close = (a: ArrayLike<number>, b: number[], tol = 1e-5) =>
  b.forEach((v, i) => assert.ok(Math.abs(a[i] - v) <= tol * Math.max(1, Math.abs(v)), `${a[i]} vs ${v}`));

test('Nesterov SGD: two steps by hand (buf = g; z -= lr (g + m buf))', async () => {
  await backend();
  const s = newOptimizerState();
  const z1 = sgdStep(tf.tensor1d([1, 2]), tf.tensor1d([0.5, -1]), s, 5, 0.9, true);
  close(z1.dataSync(), [-3.75, 11.5]); // z - 5 * 1.9 * g
  const z2 = sgdStep(z1, tf.tensor1d([1, 1]), s, 5, 0.9, true);
  close(z2.dataSync(), [-15.275, 6.05]); // buf = [1.45, 0.1]; z1 - 5 * ([1,1] + 0.9 buf)
  const p = newOptimizerState();
  const plain = sgdStep(tf.tensor1d([1]), tf.tensor1d([2]), p, 0.5, 0.9, false);
  close(plain.dataSync(), [0]); // first step buf = g: z - lr g
});

test('Adam with eps 1e-2 (bias-corrected, torch form)', async () => {
  await backend();
  const z = adamStep(tf.tensor1d([1]), tf.tensor1d([2]), newOptimizerState(), 1);
  close(z.dataSync(), [1 - 2 / 2.01]);
});

test('global gradient-norm clip: g * min(1, max / (||g|| + 1e-6))', async () => {
  await backend();
  const { grad, norm } = await clipGradNorm(tf.tensor1d([3, 4]), 0.1);
  assert.equal(norm, 5);
  close(grad.dataSync(), [0.06, 0.08], 1e-6);
  const small = await clipGradNorm(tf.tensor1d([0.01, 0]), 0.1);
  close(small.grad.dataSync(), [0.01, 0]);
});

test('chi regulariser value and gradient: w (r^2/2 - (d-1) ln r), grad w (1 - (d-1)/r^2) z', async () => {
  await backend();
  const z = tf.tensor1d([3, 4]);
  close(chiRegulariser(z, 0.01).dataSync(), [0.01 * (12.5 - Math.log(5))]);
  const g = tf.grad((x: tf.Tensor) => chiRegulariser(x, 0.01))(z);
  close(g.dataSync(), [0.01 * 0.96 * 3, 0.01 * 0.96 * 4]);
  // its minimum is at r = sqrt(d - 1): the gradient vanishes there
  const d = 16384;
  const zz = tf.fill([d], Math.sqrt(d - 1) / Math.sqrt(d));
  assert.ok(tf.norm(tf.grad((x: tf.Tensor) => chiRegulariser(x, 0.01))(zz)).dataSync()[0] < 1e-5);
});

test('best-image selection: lowest finite total, earliest on ties, initial included', () => {
  assert.equal(bestIndex([3, 2, NaN, 2, 1.5]), 4);
  assert.equal(bestIndex([1, 2, 3]), 0);
  assert.equal(bestIndex([2, 2]), 0);
  assert.equal(bestIndex([NaN, Infinity]), -1);
});
