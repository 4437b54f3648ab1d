// reno's tiled WebGPU products (src/runtime/webgpu/gemm.ts) against tfjs' own programs on the same adapter (lavapipe in
// CI), every tile: the convolution (ragged pixel and channel tiles, strides, padding, 1x1 and 3x3 filters, with and
// without a bias; values and the input gradient, which runs the tiled program on the flipped filter), the matMul
// (2-D and batched, each transpose flag, a broadcast weight, K not a multiple of the slice, bias), and the Linear
// layer and the attention built on it (values and input gradients); no leaks.
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { useBackend } from '../../src/runtime/backend.js';
import { attention, conv2d, matMulWeight } from '../../src/nn/ops.js';
import { setFlashAttention } from '../../src/runtime/webgpu/flash.js';
import {
  matMulTiled,
  MIN_TILES,
  parseTile,
  tilesFromEnv,
  setConvTile,
  setMatMulTile,
  setMinTiles,
  tiledConvFits,
  tiledConvShapeFits,
  tiledMatMulFits,
  TILES,
} from '../../src/runtime/webgpu/gemm.js';
import { parseWinograd, setWinograd } from '../../src/runtime/webgpu/winograd.js';
import { setupWebgpu } from '../../src/runtime/webgpu/setup.js';
import { countPrograms, maxRelErr } from '../helpers.js';

const probe = await setupWebgpu({ allowSoftware: true }).catch((e: Error) => ({ ok: false, why: e.message }));
const skip = probe.ok ? false : `WebGPU unavailable: ${probe.why}`;

interface Case {
  x: [number, number, number, number];
  k: number;
  cout: number;
  stride: number;
  pad: number;
  bias: boolean;
}
const CASES: Case[] = [
  { x: [1, 9, 11, 32], k: 3, cout: 68, stride: 1, pad: 1, bias: true }, // ragged rows (99 px) and columns (68 of 64 + 4)
  { x: [2, 8, 8, 64], k: 3, cout: 32, stride: 1, pad: 1, bias: false },
  { x: [1, 13, 10, 32], k: 3, cout: 64, stride: 2, pad: 1, bias: true }, // a UNet downsampler's shape
  { x: [2, 5, 7, 96], k: 1, cout: 132, stride: 1, pad: 0, bias: true }, // a 1x1 shortcut
  { x: [1, 6, 6, 32], k: 3, cout: 36, stride: 1, pad: 0, bias: true }, // no padding: a smaller output
];

test('the tiled conv program matches tfjs on webgpu: values, input gradients, every tile, no leaks', { skip, timeout: 300_000 }, async () => {
  await useBackend('webgpu', { quiet: true });
  setMinTiles(1); // the cases are small
  setWinograd(null); // it would take the 3x3 stride-1 convs first (test/parity/webgpu-winograd.test.ts)
  try {
    for (const c of CASES) {
      const x = tf.randomNormal(c.x, 0, 1, 'float32', 1);
      const w = tf.randomNormal([c.k, c.k, c.x[3], c.cout], 0, 0.2, 'float32', 2);
      const b = c.bias ? tf.randomNormal([c.cout], 0, 1, 'float32', 3) : null;
      const ho = Math.floor((c.x[1] + 2 * c.pad - c.k) / c.stride) + 1;
      const wo = Math.floor((c.x[2] + 2 * c.pad - c.k) / c.stride) + 1;
      const dy = tf.randomNormal([c.x[0], ho, wo, c.cout], 0, 1, 'float32', 4);
      const run = async () => {
        const before = tf.memory().numTensors;
        const r = countPrograms(() => {
          const y = conv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.stride, c.pad, b);
          const dx = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(conv2d(a as tf.Tensor4D, w as tf.Tensor4D, c.stride, c.pad, b), dy)))(x);
          return [y, dx];
        }, 'renoGemm_conv');
        const out = { y: await r.value[0].data(), dx: await r.value[1].data(), shape: r.value[0].shape, tiled: r.n };
        tf.dispose(r.value);
        assert.equal(tf.memory().numTensors, before, `${JSON.stringify(c)}: tensors leaked`);
        return out;
      };
      setConvTile(null);
      const ref = await run();
      for (const name of TILES) {
        const tile = parseTile(name)!;
        setConvTile(tile);
        if (!tiledConvFits(c.x, [c.k, c.k, c.x[3], c.cout], c.stride, c.pad)) continue;
        const got = await run();
        assert.deepEqual(got.shape, ref.shape);
        // the forward conv, and the input gradient's where it is a stride-1 conv whose flipped filter fits too
        const gradTiled = c.stride === 1 && c.cout % tile.bk === 0 && c.x[3] % 4 === 0;
        assert.equal(got.tiled, gradTiled ? 3 : 2, `${name} ${JSON.stringify(c)}: ${got.tiled} tiled programs`); // forward twice (value, then under tf.grad)
        assert.equal(ref.tiled, 0);
        assert.ok(maxRelErr(got.y, ref.y) < 1e-5, `${name} ${JSON.stringify(c)}: value rel err ${maxRelErr(got.y, ref.y)}`);
        assert.ok(maxRelErr(got.dx, ref.dx) < 1e-5, `${name} ${JSON.stringify(c)}: gradient rel err ${maxRelErr(got.dx, ref.dx)}`);
      }
      tf.dispose([x, w, dy, ...(b ? [b] : [])]);
    }
  } finally {
    setConvTile(parseTile(process.env.RENO_WEBGPU_CONV));
    setMinTiles(MIN_TILES);
    setWinograd(parseWinograd(process.env.RENO_WEBGPU_WINOGRAD));
  }
});

test('the tiled conv leaves convolutions with too few tiles, or channels it cannot split, to tfjs (the rule on shapes: any backend)', () => {
  setConvTile(parseTile('128x64x16'));
  try {
    if (tf.getBackend() !== 'webgpu') assert.ok(!tiledConvFits([1, 64, 64, 512], [3, 3, 512, 512], 1, 1), 'off WebGPU nothing takes the WGSL path');
    assert.ok(tiledConvShapeFits([1, 64, 64, 512], [3, 3, 512, 512], 1, 1)); // the VAE decoder: 32 x 8 tiles
    assert.ok(!tiledConvShapeFits([1, 16, 16, 1280], [3, 3, 1280, 1280], 1, 1)); // the UNet's innermost: 2 x 20
    assert.ok(!tiledConvShapeFits([1, 64, 64, 4], [3, 3, 4, 320], 1, 1)); // conv_in: 4 input channels
    assert.ok(!tiledConvShapeFits([1, 512, 512, 128], [3, 3, 128, 3], 1, 1)); // conv_out: 3 output channels
    setConvTile(null);
    assert.ok(!tiledConvShapeFits([1, 64, 64, 512], [3, 3, 512, 512], 1, 1)); // off
  } finally {
    setConvTile(parseTile(process.env.RENO_WEBGPU_CONV));
  }
});

test('RENO_WEBGPU_CONV takes tfjs or a listed tile and names the variable when it is wrong', () => {
  assert.equal(parseTile(undefined), null);
  assert.equal(parseTile('tfjs'), null);
  assert.deepEqual(parseTile('128x64x16'), { bm: 128, bn: 64, bk: 16 });
  assert.throws(() => parseTile('32x32x8'), /RENO_WEBGPU_CONV must be "tfjs" or one of 64x64x16/);
  // setupWebgpu reads both variables through tilesFromEnv, inside the command (its error handler prints the message)
  assert.throws(() => tilesFromEnv({ RENO_WEBGPU_MATMUL: '128x128x8' }), /RENO_WEBGPU_MATMUL must be "tfjs" or one of/);
  try {
    tilesFromEnv({ RENO_WEBGPU_CONV: '64x64x32' });
    setMinTiles(1);
    assert.ok(!probe.ok || tf.getBackend() !== 'webgpu' || tiledConvFits([1, 8, 8, 32], [3, 3, 32, 32], 1, 1));
  } finally {
    tilesFromEnv(process.env);
    setMinTiles(MIN_TILES);
  }
});

const MATMULS: { a: number[]; b: number[]; tA: boolean; tB: boolean; bias: boolean }[] = [
  { a: [70, 36], b: [36, 68], tA: false, tB: false, bias: true }, // ragged M, N; K = 36: two slices of 32, the second partly zero
  { a: [3, 40, 20], b: [3, 44, 20], tA: false, tB: true, bias: false }, // q k^T
  { a: [2, 24, 52], b: [2, 24, 16], tA: true, tB: false, bias: false }, // p^T dO
  { a: [2, 24, 36], b: [2, 16, 24], tA: true, tB: true, bias: false },
  { a: [4, 33, 48], b: [48, 20], tA: false, tB: false, bias: true }, // a 2-D weight broadcast over the batch
  { a: [130, 64], b: [72, 64], tA: false, tB: true, bias: false }, // a Linear layer's input gradient: dy W^T
];

test(
  'the tiled matMul matches tfjs on webgpu: batches, transpose flags, a broadcast weight, bias, every tile',
  { skip, timeout: 300_000 },
  async () => {
    await useBackend('webgpu', { quiet: true });
    setMinTiles(1);
    try {
      for (const c of MATMULS) {
        const a = tf.randomNormal(c.a, 0, 1, 'float32', 1);
        const b = tf.randomNormal(c.b, 0, 1, 'float32', 2);
        const n = c.tB ? c.b[c.b.length - 2] : c.b[c.b.length - 1];
        const bias = c.bias ? tf.randomNormal([n], 0, 1, 'float32', 3) : null;
        setMatMulTile(null);
        const ref = matMulTiled(a, b, c.tA, c.tB, bias);
        const want = await ref.data();
        for (const name of TILES) {
          setMatMulTile(parseTile(name));
          assert.ok(tiledMatMulFits(c.a, c.b, c.tA, c.tB), `${name} ${JSON.stringify(c)} should fit`);
          const before = tf.memory().numTensors;
          const got = countPrograms(() => matMulTiled(a, b, c.tA, c.tB, bias), 'renoGemm');
          assert.equal(got.n, 1);
          assert.deepEqual(got.value.shape, ref.shape);
          const err = maxRelErr(await got.value.data(), want);
          assert.ok(err < 1e-5, `${name} ${JSON.stringify(c)}: rel err ${err}`);
          got.value.dispose();
          assert.equal(tf.memory().numTensors, before);
        }
        tf.dispose([a, b, ref, ...(bias ? [bias] : [])]);
      }
      // more workgroups than one dispatch dimension allows (65535): tfjs folds the dispatch, spare workgroups store nothing
      setMatMulTile(parseTile('64x64x16'));
      const a = tf.randomNormal([70000, 4, 8], 0, 1, 'float32', 4);
      const b = tf.randomNormal([70000, 8, 4], 0, 1, 'float32', 5);
      const got = countPrograms(() => matMulTiled(a, b), 'renoGemm');
      assert.equal(got.n, 1);
      // tfjs' batched matMul puts the batch in dispatch dimension z and refuses 70000: products and a sum instead
      const want = tf.tidy(() => tf.sum(tf.mul(a.expandDims(3), b.expandDims(1)), 2)); // [B, 4, 8, 1] x [B, 1, 8, 4]
      assert.ok(maxRelErr(await got.value.data(), await want.data()) < 1e-5, '70000 batches');
      tf.dispose([a, b, got.value, want]);
      setMatMulTile(parseTile('64x64x16'));
      assert.ok(!tiledMatMulFits([70, 35], [35, 68], false, false), 'K = 35 is not vec4-aligned');
      assert.ok(!tiledMatMulFits([70, 36], [36, 66], false, false), 'N = 66 is not vec4-aligned');
      assert.ok(!tiledMatMulFits([3, 70, 36], [2, 36, 68], false, false), 'batches 3 and 2');
    } finally {
      setMatMulTile(parseTile(process.env.RENO_WEBGPU_MATMUL, 'RENO_WEBGPU_MATMUL'));
      setMinTiles(MIN_TILES);
    }
  },
);

test(
  'a Linear layer and the attention on the tiled matMul match tfjs on webgpu: values and input gradients',
  { skip, timeout: 300_000 },
  async () => {
    await useBackend('webgpu', { quiet: true });
    setMinTiles(1);
    setFlashAttention(false); // the chunked attention's products (flash attention has programs of its own)
    try {
      const x = tf.randomNormal([40, 64], 0, 1, 'float32', 1) as tf.Tensor2D;
      const w = tf.randomNormal([64, 96], 0, 0.2, 'float32', 2) as tf.Tensor2D;
      const bias = tf.randomNormal([96], 0, 1, 'float32', 3);
      const q = tf.randomNormal([2, 48, 64], 0, 1, 'float32', 4);
      const k = tf.randomNormal([2, 52, 64], 0, 1, 'float32', 5);
      const v = tf.randomNormal([2, 52, 64], 0, 1, 'float32', 6);
      const dyL = tf.randomNormal([40, 96], 0, 1, 'float32', 7);
      const dyA = tf.randomNormal([2, 48, 64], 0, 1, 'float32', 8);
      const run = async () => {
        const lin = countPrograms(() => tf.grad((t: tf.Tensor) => tf.sum(tf.mul(matMulWeight(t as tf.Tensor2D, w, bias), dyL)))(x), 'renoGemm');
        const att = countPrograms(
          () => tf.grads((a: tf.Tensor, b: tf.Tensor, c: tf.Tensor) => tf.sum(tf.mul(attention(a, b, c, 2), dyA)))([q, k, v]),
          'renoGemm',
        );
        const y = tf.tidy(() => tf.concat([matMulWeight(x, w, bias).flatten(), attention(q, k, v, 2).flatten()]));
        const out = { y: await y.data(), g: await Promise.all([lin.value, ...att.value].map((t) => t.data())), tiled: lin.n + att.n };
        tf.dispose([y, lin.value, ...att.value]);
        return out;
      };
      setMatMulTile(null);
      const ref = await run();
      assert.equal(ref.tiled, 0);
      setMatMulTile(parseTile('64x64x16'));
      const before = tf.memory().numTensors;
      const got = await run();
      assert.equal(tf.memory().numTensors, before);
      // Linear: forward + input gradient; attention (64-wide heads split in 2 of 32): q k^T, p v forward and again in
      // the recompute, dO v^T, dS k, dS^T q, p^T dO backward
      assert.ok(got.tiled >= 8, `${got.tiled} tiled programs`);
      assert.ok(maxRelErr(got.y, ref.y) < 1e-5, `values: ${maxRelErr(got.y, ref.y)}`);
      got.g.forEach((g, i) => assert.ok(maxRelErr(g, ref.g[i]) < 1e-4, `gradient ${i}: ${maxRelErr(g, ref.g[i])}`));
      tf.dispose([x, w, bias, q, k, v, dyL, dyA]);
    } finally {
      setMatMulTile(parseTile(process.env.RENO_WEBGPU_MATMUL, 'RENO_WEBGPU_MATMUL'));
      setMinTiles(MIN_TILES);
      setFlashAttention(true);
    }
  },
);
