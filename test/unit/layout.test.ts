import assert from 'node:assert/strict';
import { test } from 'node:test';
import { conv2dFromTf, conv2dToTf, fromTfLayout, linearToTf, nchwToNhwc, nhwcToNchw, toTfLayout } from '../../src/weights/layout.js';

test('linear [out,in] -> [in,out]', () => {
  // W = [[1,2,3],[4,5,6]] (out=2, in=3) -> W^T = [[1,4],[2,5],[3,6]]
  assert.deepEqual([...linearToTf(Float32Array.from([1, 2, 3, 4, 5, 6]), 2, 3)], [1, 4, 2, 5, 3, 6]);
});

test('conv2d [out,in,kh,kw] -> [kh,kw,in,out] puts each weight where tf.conv2d reads it', () => {
  const out = 3,
    inp = 2,
    kh = 2,
    kw = 3;
  const src = Float32Array.from({ length: out * inp * kh * kw }, (_, i) => i);
  const dst = conv2dToTf(src, out, inp, kh, kw);
  for (let o = 0; o < out; o++)
    for (let i = 0; i < inp; i++)
      for (let y = 0; y < kh; y++)
        for (let x = 0; x < kw; x++) assert.equal(dst[((y * kw + x) * inp + i) * out + o], src[((o * inp + i) * kh + y) * kw + x]);
  assert.deepEqual([...conv2dFromTf(dst, out, inp, kh, kw)], [...src]);
});

test('toTfLayout / fromTfLayout are inverses', () => {
  const w = Float32Array.from({ length: 12 }, (_, i) => i * 1.5);
  assert.deepEqual([...fromTfLayout('linear', [3, 4], toTfLayout('linear', [3, 4], w))], [...w]);
  assert.equal(toTfLayout('none', [12], w), w);
});

test('NCHW <-> NHWC', () => {
  const n = 2,
    c = 3,
    h = 2,
    w = 4;
  const a = Float32Array.from({ length: n * c * h * w }, (_, i) => i);
  const b = nchwToNhwc(a, n, c, h, w);
  assert.equal(b[((1 * h + 1) * w + 2) * c + 2], a[((1 * c + 2) * h + 1) * w + 2]);
  assert.deepEqual([...nhwcToNchw(b, n, h, w, c)], [...a]);
});
