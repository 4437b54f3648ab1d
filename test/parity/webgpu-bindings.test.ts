// Buffers over the adapter's binding limit (src/runtime/webgpu/bindings.ts) on WebGPU (lavapipe in CI): a program that would
// bind one throws a DeviceLimitError naming the tensor instead of failing silently, and an Embedding whose table is
// over the limit looks its rows up on the host. The limit is lowered to 1 MiB here so that small tensors cross it.
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { useBackend } from '../../src/runtime/backend.js';
import { DeviceLimitError } from '../../src/errors.js';
import { Embedding } from '../../src/nn/layers.js';
import { adapterSummary, setupWebgpu } from '../../src/runtime/webgpu/setup.js';
import { bindingLimit, hostValues, setBindingLimit } from '../../src/runtime/webgpu/bindings.js';
import { countPrograms, noLeak } from '../helpers.js';

const probe = await setupWebgpu({ allowSoftware: true }).catch((e: Error) => ({ ok: false, why: e.message }));
const skip = probe.ok ? false : `WebGPU unavailable: ${probe.why}`;

async function withLimit<T>(bytes: number, fn: () => Promise<T>): Promise<T> {
  setBindingLimit(bytes);
  try {
    return await fn();
  } finally {
    const a = adapterSummary()!;
    setBindingLimit(Math.min(a.maxStorageBufferBindingSize, a.maxBufferSize));
  }
}

test("setupWebgpu takes the adapter's binding limit", { skip }, () => {
  const a = adapterSummary()!;
  assert.equal(bindingLimit(), Math.min(a.maxStorageBufferBindingSize, a.maxBufferSize));
});

test('a program that would bind a tensor over the limit throws a DeviceLimitError naming it (no silent zeros)', { skip }, async () => {
  await useBackend('webgpu', { quiet: true });
  await withLimit(2 ** 20, async () => {
    const small = tf.fill([1000], 2);
    const big = tf.tensor1d(new Float32Array(300_000).fill(2)); // 1.14 MiB, made on the host
    const ok = tf.add(small, 1);
    assert.equal((await ok.data())[999], 3, 'under the limit: runs');
    assert.throws(
      () => tf.add(big, 1),
      (e: Error) =>
        e instanceof DeviceLimitError &&
        /shape \[300000\]/.test(e.message) &&
        /1\.1 MiB/.test(e.message) &&
        /maxStorageBufferBindingSize of 1\.0 MiB/.test(e.message),
    );
    tf.dispose([small, big, ok]);
  });
});

test('an Embedding whose table is over the limit: the same rows as tf.gather under the limit, from host memory, no leaks', { skip }, async () => {
  await useBackend('webgpu', { quiet: true });
  const [v, d] = [700, 512]; // 1.37 MiB
  const values = Float32Array.from({ length: v * d }, (_, i) => Math.sin(i * 0.37));
  const idsArr = [3, 699, 0, 3, 517, 42];
  const emb = new Embedding(v, d);
  emb.weight.store(tf.tensor2d(values, [v, d]));
  await noLeak(async () => {
    const ids = tf.tensor2d(idsArr, [2, 3], 'int32');
    const { value: far, n } = await withLimit(2 ** 20, async () => countPrograms(() => emb.forward(ids)));
    assert.equal(n, 0, 'looked up on the host: no program');
    assert.deepEqual(far.shape, [2, 3, d]);
    const got = await far.data();
    for (let i = 0; i < idsArr.length; i++)
      assert.deepEqual([...got.subarray(i * d, i * d + d)], [...values.subarray(idsArr[i] * d, idsArr[i] * d + d)], `row ${i}`);
    assert.ok(hostValues(emb.weight.v), 'the table never went to the device');
    const bad = tf.tensor1d([700], 'int32');
    await withLimit(2 ** 20, async () => assert.throws(() => emb.forward(bad), /embedding id 700 outside the table's 700 rows/));
    tf.dispose([ids, far, bad]);
  });
  // under the real limit the table goes to the device (tf.gather): same rows
  const ids = tf.tensor2d(idsArr, [2, 3], 'int32');
  const near = emb.forward(ids);
  assert.deepEqual([...(await near.data())].slice(0, d), [...values.subarray(3 * d, 4 * d)]);
  assert.equal(hostValues(emb.weight.v), null, 'uploaded by the device gather');
  // now on the device and over a (lowered) limit: a clear error, not zeros
  await withLimit(2 ** 20, async () => {
    assert.throws(
      () => emb.forward(ids),
      (e: Error) => e instanceof DeviceLimitError && /\[700,512\]/.test(e.message) && /already on the device/.test(e.message),
    );
  });
  tf.dispose([ids, near]);
  emb.dispose();
});
