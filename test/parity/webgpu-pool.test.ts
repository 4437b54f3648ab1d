// Device memory beyond the live tensors (src/runtime/webgpu/pool.ts) on the real WebGPU backend (lavapipe in CI):
// setupWebgpu bounds the buffer pool and the releases waiting for a submit; a chain of ops over many tensor sizes
// computes the same values under any budget (buffers destroyed and made again), after a read-back the released bytes
// the device still holds are within the budget (tfjs' unbounded pool keeps them all), and an early submit keeps the
// buffers of freed tensors from piling up within one submit batch.
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { useBackend } from '../../src/runtime/backend.js';
import { setupWebgpu } from '../../src/runtime/webgpu/setup.js';
import {
  boundPending,
  boundPool,
  DEFAULT_PENDING_MB,
  DEFAULT_POOL_MB,
  pendingState,
  poolState,
  resetPoolHigh,
} from '../../src/runtime/webgpu/pool.js';
import { noLeak } from '../helpers.js';

const probe = await setupWebgpu({ allowSoftware: true }).catch((e: Error) => ({ ok: false, why: e.message }));
const skip = probe.ok ? false : `WebGPU unavailable: ${probe.why}`;

/** Tensors of 40 sizes (4 KiB to 160 KiB), each through a few ops; the sums. */
async function churn(): Promise<number[]> {
  const sums: number[] = [];
  for (let i = 1; i <= 40; i++) {
    const s = tf.tidy(() => {
      const x = tf.range(0, 1024 * i, 1, 'float32').div(1000);
      return tf.sum(tf.sin(x).mul(x).add(1).square());
    });
    sums.push((await s.data())[0]);
    s.dispose();
  }
  return sums;
}

/** Released bytes the device holds: allocated minus handed out. */
function pooledBytes(): number {
  const m = tf.memory() as tf.MemoryInfo & { numBytesInGPU: number; numBytesAllocatedInGPU: number };
  return m.numBytesAllocatedInGPU - m.numBytesInGPU;
}

test('setupWebgpu bounds the pool (default budget); the same values under any budget; released bytes within it', { skip }, async () => {
  await useBackend('webgpu', { quiet: true });
  const st = poolState();
  assert.ok(st, 'installed by setupWebgpu');
  const budget = st!.maxFreeBytes;
  assert.ok(budget === DEFAULT_POOL_MB * 2 ** 20 || process.env.RENO_WEBGPU_POOL_MB, 'the default budget');
  try {
    boundPool(Infinity);
    const ref = await noLeak(churn);
    const unbounded = pooledBytes();
    assert.ok(unbounded > 2 ** 20, `tfjs' pool keeps every size: ${unbounded} bytes`);
    boundPool(256 * 1024);
    assert.ok(pooledBytes() <= 256 * 1024, 'a new budget applies at once');
    const evictedBefore = st!.evicted;
    const got = await noLeak(churn);
    assert.deepEqual(got, ref, 'the same sums with buffers destroyed and made again');
    assert.ok(st!.evicted > evictedBefore, 'buffers were destroyed to keep the budget');
    assert.ok(pooledBytes() <= 256 * 1024, `released bytes held: ${pooledBytes()}`);
    assert.equal(st!.freeBytes, pooledBytes(), "the pool's count matches tfjs' memory()");
    boundPool(0);
    assert.deepEqual(await noLeak(churn), ref, 'and with nothing kept');
    assert.equal(pooledBytes(), 0);
  } finally {
    boundPool(budget);
  }
});

/** A chain of 12 ops on a 1 MiB tensor, each intermediate freed as soon as the next op has used it; the values and
 * the most bytes of GPU buffers held at once (pool budget 0: only live and waiting buffers count). */
async function chain(): Promise<{ values: Float32Array; high: number }> {
  const x = tf.tidy(() => tf.range(0, 1 << 18, 1, 'float32').div(1 << 18));
  await x.data();
  resetPoolHigh();
  let y = x;
  for (let i = 0; i < 12; i++) {
    const next = tf.tidy(() => y.mul(1.01).add(0.5 / (i + 1)));
    if (y !== x) y.dispose();
    y = next;
  }
  const values = (await y.data()) as Float32Array;
  tf.dispose([x, y]);
  return { values, high: poolState()!.highBytes };
}

test('releases waiting for a submit: bounded by an early submit (same values, fewer bytes held); default bound set', { skip }, async () => {
  await useBackend('webgpu', { quiet: true });
  const pend = pendingState();
  assert.ok(pend, 'installed by setupWebgpu');
  const bound = pend!.maxPendingBytes;
  assert.ok(bound === DEFAULT_PENDING_MB * 2 ** 20 || process.env.RENO_WEBGPU_PENDING_MB, 'the default bound');
  const budget = poolState()!.maxFreeBytes;
  try {
    boundPool(0);
    boundPending(Infinity);
    const waits = await noLeak(chain);
    boundPending(1.5 * 2 ** 20);
    const flushes = pend!.flushes;
    const early = await noLeak(chain);
    assert.ok(pend!.flushes > flushes, 'submitted early');
    assert.deepEqual(early.values, waits.values);
    const MiB = 2 ** 20;
    // live at once: x, y and the op's temporaries (a few MiB); waiting: up to a batch of 15 programs' freed tensors
    assert.ok(
      waits.high >= early.high + 4 * MiB,
      `held at once: ${(waits.high / MiB).toFixed(1)} MiB waiting for tfjs' submits, ${(early.high / MiB).toFixed(1)} MiB with early submits`,
    );
  } finally {
    boundPending(bound);
    boundPool(budget);
  }
});
