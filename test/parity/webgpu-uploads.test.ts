// Small uploads on WebGPU (src/runtime/webgpu/uploads.ts): tensors made from CPU values (float32, int32, bool; scalars to
// 1 MiB) arrive with their values, interleaved with queued kernels that read and write pooled buffers; no mapped
// staging buffer is created for them once the pool is warm; larger uploads keep tfjs' own path; and the
// RENO_WEBGPU_SUBMIT_BATCH setting is parsed into tfjs' flag or refused.
// Skipped when no WebGPU adapter is available (CI installs Mesa 25 lavapipe).
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { useBackend } from '../../src/runtime/backend.js';
import { SMALL_UPLOAD_BYTES } from '../../src/runtime/webgpu/uploads.js';
import { setupWebgpu } from '../../src/runtime/webgpu/setup.js';

const probe = await setupWebgpu({ allowSoftware: true }).catch((e: Error) => ({ ok: false, why: e.message }));
const skip = probe.ok ? false : `WebGPU unavailable: ${probe.why}`;

/** Counts GPUDevice.createBuffer calls while fn runs. */
async function createdBuffers(fn: () => Promise<void>): Promise<number> {
  const device = (tf.backend() as unknown as { device: { createBuffer: (...a: unknown[]) => unknown } }).device;
  const orig = device.createBuffer;
  let n = 0;
  device.createBuffer = function (...a: unknown[]) {
    n++;
    return orig.apply(this, a);
  };
  try {
    await fn();
  } finally {
    device.createBuffer = orig;
  }
  return n;
}

test('small uploads keep their values among queued kernels and create no staging buffers', { skip, timeout: 120_000 }, async () => {
  await useBackend('webgpu', { quiet: true });
  const x = tf.range(0, 1000, 1, 'float32');
  // a chain where every step adds a freshly uploaded scalar and a freshly uploaded int vector cast to float
  const chain = async (steps: number): Promise<Float32Array> => {
    let y: tf.Tensor = x.clone();
    for (let i = 0; i < steps; i++) {
      const next = tf.tidy(() => tf.add(tf.add(y, tf.scalar(i + 0.5)), tf.cast(tf.tensor1d(new Int32Array(1000).fill(i), 'int32'), 'float32')));
      y.dispose();
      y = next;
    }
    const out = (await y.data()) as Float32Array;
    y.dispose();
    return out;
  };
  const steps = 40;
  await chain(steps); // warms the buffer pool for these sizes (tfjs returns buffers to it at each submit)
  let got: Float32Array = new Float32Array();
  const created = await createdBuffers(async () => {
    got = await chain(steps);
  });
  const add = Array.from({ length: steps }, (_, i) => 2 * i + 0.5).reduce((a, b) => a + b, 0);
  for (let j = 0; j < 1000; j += 111) assert.equal(got[j], j + add, `element ${j}`);
  // tfjs' own path makes one mapped staging buffer per upload (2 per step); the read-back's staging buffer is pooled
  assert.ok(created <= 2, `${created} buffers created for ${2 * steps} uploads`);

  // bool, and an upload at the size limit and just above it (tfjs' path) still arrive intact
  const b = tf.tensor1d([true, false, true], 'bool');
  assert.deepEqual(Array.from(await tf.cast(b, 'int32').data()), [1, 0, 1]);
  for (const n of [SMALL_UPLOAD_BYTES / 4, SMALL_UPLOAD_BYTES / 4 + 1]) {
    const v = new Float32Array(n).map((_, i) => (i % 97) - 48);
    const s = await tf.sum(tf.tensor1d(v)).data();
    assert.equal(
      s[0],
      v.reduce((a, c) => a + c, 0),
      `sum of ${n} uploaded values`,
    );
  }
  x.dispose();
});

test("RENO_WEBGPU_SUBMIT_BATCH: a whole number sets tfjs-webgpu's submit batch; anything else is a usage error naming it", async () => {
  const { webgpuFlagsFromEnv } = await import('../../src/runtime/webgpu/setup.js');
  assert.deepEqual(webgpuFlagsFromEnv({}), {});
  assert.deepEqual(webgpuFlagsFromEnv({ RENO_WEBGPU_SUBMIT_BATCH: '64' }), { WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE: 64 });
  for (const bad of ['0', '-3', '2.5', 'many'])
    assert.throws(() => webgpuFlagsFromEnv({ RENO_WEBGPU_SUBMIT_BATCH: bad }), /RENO_WEBGPU_SUBMIT_BATCH.*"/);
});
