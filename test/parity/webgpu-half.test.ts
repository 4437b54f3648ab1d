// Float16 weight storage on WebGPU (src/runtime/half.ts: WGSL pack2x16float / unpack2x16float) against the JavaScript
// conversion, and a Winograd-sized conv and a Linear layer with half weights against float32 weights rounded to
// float16 on the same adapter (lavapipe in CI), forward and input gradient, no unpacked weight left behind.
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { useBackend } from '../../src/runtime/backend.js';
import { fromHalfBits, packHalf, packHalfValues, unpackHalf, unpackHalfValues } from '../../src/runtime/half.js';
import { Conv2d, Linear } from '../../src/nn/layers.js';
import { setHalfWeights } from '../../src/nn/module.js';
import { MIN_WINOGRAD_TILES, setWinogradMinTiles } from '../../src/runtime/webgpu/winograd.js';
import { describeAdapter, setupWebgpu } from '../../src/runtime/webgpu/setup.js';
import { countPrograms, maxRelErr } from '../helpers.js';

const probe = await setupWebgpu({ allowSoftware: true }).catch((e: Error) => ({ ok: false, why: e.message }));
const skip = probe.ok ? false : `WebGPU unavailable: ${probe.why}`;

test('float16 packing on webgpu: the same bits as the JavaScript conversion (or the next half), exact unpacking', { skip }, async () => {
  await useBackend('webgpu', { quiet: true });
  const vals = Array.from({ length: 4097 }, (_, i) => Math.sin(i * 1.7) * 10 ** ((i % 7) - 4));
  const x = tf.tensor1d(vals);
  const p = packHalf(x);
  const gpu = new Int32Array(await p.data());
  const js = packHalfValues(vals);
  // WGSL leaves pack2x16float's rounding to the implementation: allow the neighbouring half, nothing further
  let off = 0;
  for (let i = 0; i < vals.length; i++) {
    const [g, j] = [(gpu[i >> 1] >>> ((i & 1) * 16)) & 0xffff, (js[i >> 1] >>> ((i & 1) * 16)) & 0xffff];
    if (g !== j) {
      off++;
      assert.ok(
        Math.abs(g - j) === 1 && (g & 0x8000) === (j & 0x8000),
        `${vals[i]}: 0x${g.toString(16)} vs 0x${j.toString(16)} (${fromHalfBits(g)} vs ${fromHalfBits(j)})`,
      );
    }
  }
  const back = unpackHalf(tf.tensor1d(js, 'int32'), [vals.length]);
  assert.deepEqual([...(await back.data())], [...unpackHalfValues(js, vals.length)]);
  console.log(`${describeAdapter()}: ${off} of ${vals.length} values rounded to the other neighbouring half`);
  tf.dispose([x, p, back]);
});

test('a Winograd conv and a Linear layer with float16 weights on webgpu: float16-rounded float32 results', { skip, timeout: 300_000 }, async () => {
  await useBackend('webgpu', { quiet: true });
  setWinogradMinTiles(1);
  const make = () => ({ lin: new Linear(64, 48), conv: new Conv2d(16, 24, 3, 1, 1) });
  const ref = make();
  const half = make();
  try {
    const params = (m: ReturnType<typeof make>) => [m.lin.weight, m.lin.bias!, m.conv.weight, m.conv.bias!];
    for (const [i, p] of params(ref).entries()) {
      const t = tf.randomNormal(p.tfShape, 0, 0.2, 'float32', 20 + i);
      const v = await t.data();
      t.dispose();
      p.store(tf.tensor(p.layout === 'none' ? v : unpackHalfValues(packHalfValues(v), v.length), p.tfShape));
    }
    setHalfWeights(true);
    for (const [i, p] of params(half).entries()) p.store(tf.randomNormal(p.tfShape, 0, 0.2, 'float32', 20 + i));
    const xl = tf.randomNormal([40, 64], 0, 1, 'float32', 1);
    const xc = tf.randomNormal([1, 24, 20, 16], 0, 1, 'float32', 2) as tf.Tensor4D;
    const run = (m: ReturnType<typeof make>) => [
      m.lin.forward(xl),
      m.conv.forward(xc),
      tf.grad((a: tf.Tensor) => tf.sum(tf.square(m.lin.forward(a))))(xl),
      tf.grad((a: tf.Tensor) => tf.sum(tf.square(m.conv.forward(a as tf.Tensor4D))))(xc),
    ];
    const a = run(ref);
    const n0 = tf.memory().numTensors;
    const { value: b, n } = countPrograms(() => run(half), 'renoWinograd');
    assert.equal(tf.memory().numTensors, n0 + b.length, 'no unpacked weight outlives the layers');
    assert.ok(n > 0, 'the conv ran by Winograd');
    for (const [i, t] of a.entries()) {
      const err = maxRelErr(await b[i].data(), await t.data());
      assert.ok(err < 1e-4, `output ${i}: ${err}`);
    }
    tf.dispose([...a, ...b, xl, xc]);
  } finally {
    setHalfWeights(false);
    setWinogradMinTiles(MIN_WINOGRAD_TILES);
    for (const m of [ref, half]) {
      m.lin.dispose();
      m.conv.dispose();
    }
  }
});
