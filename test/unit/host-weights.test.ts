// Host-memory weights (Param.store with setHostWeights on, the wasm default): frozen conv and Linear weights stay in
// JavaScript typed arrays, none of their bytes on the backend, and the layers give the same values and input
// gradients as device-stored weights (float32 and float16), with no tensor left behind per use.
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { hostWeightsFromEnv } from '../../src/runtime/backend.js';
import { UsageError } from '../../src/errors.js';
import { Conv2d, Linear } from '../../src/nn/layers.js';
import { setHalfWeights, setHostWeights } from '../../src/nn/module.js';
import { backend, noLeak, testBackends } from '../helpers.js';

function layers() {
  const lin = new Linear(24, 10);
  const conv = new Conv2d(6, 5, 3, 1, 1);
  return { lin, conv, params: [lin.weight, lin.bias!, conv.weight, conv.bias!] };
}

function run(m: ReturnType<typeof layers>, xl: tf.Tensor, xc: tf.Tensor4D): tf.Tensor[] {
  const yl = m.lin.forward(xl);
  const yc = m.conv.forward(xc);
  const gl = tf.grad((a: tf.Tensor) => tf.sum(tf.square(m.lin.forward(a))))(xl);
  const gc = tf.grad((a: tf.Tensor) => tf.sum(tf.square(m.conv.forward(a as tf.Tensor4D))))(xc);
  return [yl, yc, gl, gc];
}

for (const be of testBackends()) {
  for (const half of [false, true]) {
    test(`host weights (${half ? 'float16' : 'float32'}, ${be}): off the backend, the same values and input gradients, no leaks`, async () => {
      await backend(be);
      const ref = layers();
      const host = layers();
      try {
        setHalfWeights(half);
        setHostWeights(false);
        for (const [i, p] of ref.params.entries()) p.store(tf.randomNormal(p.tfShape, 0, 0.3, 'float32', 10 + i));
        setHostWeights(true);
        const before = tf.memory().numBytes;
        for (const [i, p] of host.params.entries()) p.store(tf.randomNormal(p.tfShape, 0, 0.3, 'float32', 10 + i));
        assert.equal(tf.memory().numBytes - before, (10 + 5) * 4, 'only the biases are on the backend');
        assert.ok(host.lin.weight.host && host.conv.weight.host && !host.lin.bias!.host, 'weights in host memory, biases not');
        assert.equal(host.conv.weight.host!.half, half);
        assert.ok(host.lin.weight.loaded);
        const xl = tf.randomNormal([3, 24], 0, 1, 'float32', 1);
        const xc = tf.randomNormal([2, 7, 6, 6], 0, 1, 'float32', 2) as tf.Tensor4D;
        const a = run(ref, xl, xc);
        const b = await noLeak(async () => {
          const n0 = tf.memory().numTensors;
          const out = run(host, xl, xc);
          assert.equal(tf.memory().numTensors, n0 + out.length, 'no weight tensor outlives its use');
          tf.dispose(out);
          return null;
        }).then(() => run(host, xl, xc));
        for (const [i, t] of a.entries()) assert.deepEqual([...b[i].dataSync()], [...t.dataSync()], `output ${i}`);
        await host.lin.park();
        assert.ok(host.lin.weight.host && !host.lin.weight.parked, 'a host weight is not parked again');
        host.lin.unpark();
        tf.dispose([...a, ...b, xl, xc]);
      } finally {
        setHalfWeights(false);
        setHostWeights(false);
        for (const m of [ref, host]) {
          m.lin.dispose();
          m.conv.dispose();
        }
      }
      assert.equal(host.conv.weight.host, null, 'dispose drops the host values');
    });
  }
}

test('RENO_HOST_WEIGHTS: auto means wasm only; on, off; anything else is a usage error', () => {
  const old = process.env.RENO_HOST_WEIGHTS;
  try {
    delete process.env.RENO_HOST_WEIGHTS;
    assert.equal(hostWeightsFromEnv('wasm'), true);
    assert.equal(hostWeightsFromEnv('webgpu'), false);
    assert.equal(hostWeightsFromEnv('cpu'), false);
    process.env.RENO_HOST_WEIGHTS = 'on';
    assert.equal(hostWeightsFromEnv('cpu'), true);
    assert.throws(
      () => hostWeightsFromEnv('webgpu'),
      (e: Error) => e instanceof UsageError && /for the CPU backends/.test(e.message),
    );
    process.env.RENO_HOST_WEIGHTS = 'off';
    assert.equal(hostWeightsFromEnv('wasm'), false);
    process.env.RENO_HOST_WEIGHTS = 'yes';
    assert.throws(
      () => hostWeightsFromEnv('wasm'),
      (e: Error) => e instanceof UsageError && /RENO_HOST_WEIGHTS must be auto, on or off, not "yes"/.test(e.message),
    );
  } finally {
    if (old === undefined) delete process.env.RENO_HOST_WEIGHTS;
    else process.env.RENO_HOST_WEIGHTS = old;
  }
});
