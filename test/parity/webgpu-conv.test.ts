// reno's tiled WebGPU convolution (src/nn/webgpu-conv.ts) against tfjs' own conv program on the same adapter
// (lavapipe in CI): every tile, ragged pixel and channel tiles, strides, padding, 1x1 and 3x3 filters, with and
// without a bias; values and the input gradient (which runs the tiled program on the flipped filter), no leaks.
import * as tf from '@tensorflow/tfjs';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { useBackend } from '../../src/backend.js';
import { conv2d } from '../../src/nn/ops.js';
import { CONV_TILES, MIN_TILES, parseConvTile, setConvMinTiles, setConvTile, tiledConvFits } from '../../src/nn/webgpu-conv.js';
import { setupWebgpu } from '../../src/webgpu.js';
import { maxRelErr } from '../helpers.js';

const probe = await setupWebgpu({ allowSoftware: true }).catch((e: Error) => ({ ok: false, why: e.message }));
const skip = probe.ok ? false : `no WebGPU adapter: ${probe.why}`;

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
  setConvMinTiles(1); // the cases are small
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
        const be = tf.backend() as unknown as { runWebGPUProgram: (p: { shaderKey: string }, ...a: unknown[]) => unknown };
        const orig = be.runWebGPUProgram;
        const keys: string[] = [];
        be.runWebGPUProgram = function (p, ...a) {
          keys.push(p.shaderKey);
          return orig.call(this, p, ...a);
        };
        try {
          return await runOnce(before, keys);
        } finally {
          be.runWebGPUProgram = orig;
        }
      };
      const runOnce = async (before: number, keys: string[]) => {
        const y = conv2d(x as tf.Tensor4D, w as tf.Tensor4D, c.stride, c.pad, b);
        const dx = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(conv2d(a as tf.Tensor4D, w as tf.Tensor4D, c.stride, c.pad, b), dy)))(x);
        const out = { y: await y.data(), dx: await dx.data(), shape: y.shape, tiled: keys.filter((k) => k.startsWith('renoConv')).length };
        tf.dispose([y, dx]);
        assert.equal(tf.memory().numTensors, before, `${JSON.stringify(c)}: tensors leaked`);
        return out;
      };
      setConvTile(null);
      const ref = await run();
      for (const name of CONV_TILES) {
        const tile = parseConvTile(name)!;
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
    setConvTile(parseConvTile(process.env.RENO_WEBGPU_CONV));
    setConvMinTiles(MIN_TILES);
  }
});

test('the tiled conv leaves convolutions with too few tiles, or channels it cannot split, to tfjs', () => {
  setConvTile(parseConvTile('128x64x16'));
  try {
    assert.ok(tiledConvFits([1, 64, 64, 512], [3, 3, 512, 512], 1, 1)); // the VAE decoder: 32 x 8 tiles
    assert.ok(!tiledConvFits([1, 16, 16, 1280], [3, 3, 1280, 1280], 1, 1)); // the UNet's innermost: 2 x 20
    assert.ok(!tiledConvFits([1, 64, 64, 4], [3, 3, 4, 320], 1, 1)); // conv_in: 4 input channels
    assert.ok(!tiledConvFits([1, 512, 512, 128], [3, 3, 128, 3], 1, 1)); // conv_out: 3 output channels
    setConvTile(null);
    assert.ok(!tiledConvFits([1, 64, 64, 512], [3, 3, 512, 512], 1, 1)); // off
  } finally {
    setConvTile(parseConvTile(process.env.RENO_WEBGPU_CONV));
  }
});

test('RENO_WEBGPU_CONV takes tfjs or a listed tile and names the variable when it is wrong', () => {
  assert.equal(parseConvTile(undefined), null);
  assert.equal(parseConvTile('tfjs'), null);
  assert.deepEqual(parseConvTile('128x64x16'), { bm: 128, bn: 64, bk: 16 });
  assert.throws(() => parseConvTile('32x32x8'), /RENO_WEBGPU_CONV must be "tfjs" or one of 64x64x16/);
});
