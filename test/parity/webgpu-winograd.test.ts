// reno's Winograd F(2x2, 3x3) and F(4x4, 3x3) convolutions (src/runtime/webgpu/winograd.ts) against tfjs' conv program on the same adapter
// (lavapipe in CI): odd and even output sizes, padding 1 and 0, a bias, batches; values and the input gradient
// (the flipped filter transformed as it is read), alone and with the tiled matMul for its 16 products; no leaks.
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { useBackend } from '../../src/runtime/backend.js';
import { conv2d } from '../../src/nn/ops.js';
import { MIN_TILES, parseTile, setMatMulTile, setMinTiles } from '../../src/runtime/webgpu/gemm.js';
import {
  MIN_WINOGRAD_TILES,
  parseWinograd,
  setWinograd,
  setWinogradMinTiles,
  winogradFits,
  winogradShapeFits,
} from '../../src/runtime/webgpu/winograd.js';
import { adapterSummary, setupWebgpu } from '../../src/runtime/webgpu/setup.js';
import { setBindingLimit } from '../../src/runtime/webgpu/bindings.js';
import { countPrograms, maxRelErr } from '../helpers.js';

const probe = await setupWebgpu({ allowSoftware: true }).catch((e: Error) => ({ ok: false, why: e.message }));
const skip = probe.ok ? false : `WebGPU unavailable: ${probe.why}`;

const CASES: { x: [number, number, number, number]; cout: number; pad: number; bias: boolean }[] = [
  { x: [1, 9, 11, 8], cout: 12, pad: 1, bias: true }, // odd output: the last tile row and column half outside
  { x: [2, 8, 6, 16], cout: 4, pad: 1, bias: false },
  { x: [1, 7, 10, 4], cout: 8, pad: 0, bias: true }, // no padding: 5 x 8 out
  { x: [1, 16, 16, 32], cout: 32, pad: 1, bias: true },
];

test(
  'the Winograd conv matches tfjs on webgpu: values, input gradients, with and without the tiled matMul, no leaks',
  { skip, timeout: 300_000 },
  async () => {
    await useBackend('webgpu', { quiet: true });
    setWinogradMinTiles(1); // the cases are small
    try {
      for (const c of CASES) {
        const x = tf.randomNormal(c.x, 0, 1, 'float32', 1);
        const w = tf.randomNormal([3, 3, c.x[3], c.cout], 0, 0.2, 'float32', 2);
        const b = c.bias ? tf.randomNormal([c.cout], 0, 1, 'float32', 3) : null;
        const [ho, wo] = [c.x[1] + 2 * c.pad - 2, c.x[2] + 2 * c.pad - 2];
        const dy = tf.randomNormal([c.x[0], ho, wo, c.cout], 0, 1, 'float32', 4);
        const run = async () => {
          const before = tf.memory().numTensors;
          const r = countPrograms(() => {
            const y = conv2d(x as tf.Tensor4D, w as tf.Tensor4D, 1, c.pad, b);
            const dx = tf.grad((a: tf.Tensor) => tf.sum(tf.mul(conv2d(a as tf.Tensor4D, w as tf.Tensor4D, 1, c.pad, b), dy)))(x);
            return [y, dx];
          }, 'renoWinograd');
          const out = { y: await r.value[0].data(), dx: await r.value[1].data(), shape: r.value[0].shape, n: r.n };
          tf.dispose(r.value);
          assert.equal(tf.memory().numTensors, before, `${JSON.stringify(c)}: tensors leaked`);
          return out;
        };
        setWinograd(null);
        const ref = await run();
        assert.equal(ref.n, 0);
        for (const m of [2, 4] as const) {
          setWinograd(m);
          assert.ok(winogradFits(c.x, [3, 3, c.x[3], c.cout], 1, c.pad));
          for (const mm of ['tfjs', '64x64x16']) {
            setMatMulTile(parseTile(mm));
            setMinTiles(1);
            const got = await run();
            const name = `F(${m}) ${mm} ${JSON.stringify(c)}`;
            assert.deepEqual(got.shape, ref.shape);
            assert.equal(got.n, 9, `${name}: ${got.n} Winograd programs`); // 3 per conv: value, grad's forward, input gradient
            // F(4x4)'s larger transform coefficients (+-2, +-8, 1/24) cost some float32 accuracy
            const tol = m === 2 ? 1e-5 : 5e-5;
            assert.ok(maxRelErr(got.y, ref.y) < tol, `${name}: value rel err ${maxRelErr(got.y, ref.y)}`);
            assert.ok(maxRelErr(got.dx, ref.dx) < tol, `${name}: gradient rel err ${maxRelErr(got.dx, ref.dx)}`);
          }
        }
        tf.dispose([x, w, dy, ...(b ? [b] : [])]);
      }
    } finally {
      setWinograd(parseWinograd(process.env.RENO_WEBGPU_WINOGRAD));
      setMatMulTile(parseTile(process.env.RENO_WEBGPU_MATMUL, 'RENO_WEBGPU_MATMUL'));
      setMinTiles(MIN_TILES);
      setWinogradMinTiles(MIN_WINOGRAD_TILES);
    }
  },
);

test('Winograd takes only 3x3 stride-1 convs with channels in fours whose transforms fit one binding (the rule on shapes: any backend)', () => {
  setWinograd(2);
  try {
    if (tf.getBackend() !== 'webgpu') assert.ok(!winogradFits([1, 64, 64, 512], [3, 3, 512, 512], 1, 1), 'off WebGPU nothing takes the WGSL path');
    assert.ok(winogradShapeFits([1, 64, 64, 512], [3, 3, 512, 512], 1, 1));
    assert.ok(!winogradShapeFits([1, 64, 64, 512], [3, 3, 512, 512], 2, 1), 'stride 2');
    assert.ok(!winogradShapeFits([1, 64, 64, 512], [1, 1, 512, 512], 1, 0), '1x1');
    assert.ok(!winogradShapeFits([1, 64, 64, 4], [3, 3, 4, 3], 1, 1), '3 output channels');
    setBindingLimit(128 * 2 ** 20);
    assert.ok(!winogradShapeFits([1, 512, 512, 128], [3, 3, 128, 128], 1, 1), 'F(2): 512 MiB of transformed input against a 128 MiB binding');
    setWinograd(4);
    assert.ok(!winogradShapeFits([1, 512, 512, 128], [3, 3, 128, 128], 1, 1), 'F(4): 288 MiB');
    assert.ok(winogradShapeFits([1, 256, 256, 128], [3, 3, 128, 128], 1, 1), 'F(4): 72 MiB');
    assert.ok(winogradShapeFits([1, 32, 32, 640], [3, 3, 640, 640], 1, 1), 'the UNet at 32x32: 64 tiles');
    assert.ok(!winogradShapeFits([1, 16, 16, 1280], [3, 3, 1280, 1280], 1, 1), 'the UNet at 16x16: 16 tiles');
    setWinograd(null);
    assert.ok(!winogradShapeFits([1, 64, 64, 512], [3, 3, 512, 512], 1, 1), 'off');
    assert.equal(parseWinograd(undefined), 4);
    assert.equal(parseWinograd('2'), 2);
    assert.equal(parseWinograd('off'), null);
    assert.throws(() => parseWinograd('yes'), /RENO_WEBGPU_WINOGRAD must be 4, 2 or off/);
  } finally {
    setWinograd(parseWinograd(process.env.RENO_WEBGPU_WINOGRAD));
    const a = adapterSummary(); // the adapter's limit again, as setupWebgpu set it
    if (a) setBindingLimit(Math.min(a.maxStorageBufferBindingSize, a.maxBufferSize));
  }
});
