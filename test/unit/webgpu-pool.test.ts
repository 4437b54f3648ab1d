// The bounded buffer pool (src/runtime/webgpu/pool.ts) on tfjs-webgpu's own BufferManager class with a fake device (runs
// anywhere): the released bytes kept never exceed the budget, the least recently released go first, reuse by exact
// size and usage still works, and the manager's counters (which tf.memory() reports) stay true.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BufferManager } from '@tensorflow/tfjs-backend-webgpu/dist/buffer_manager.js';
import { UsageError } from '../../src/errors.js';
import {
  boundPending,
  boundPool,
  DEFAULT_PENDING_MB,
  DEFAULT_POOL_MB,
  pendingBoundFromEnv,
  poolBudgetFromEnv,
} from '../../src/runtime/webgpu/pool.js';

interface FakeBuffer {
  id: number;
  size: number;
  usage: number;
  destroyed: boolean;
  destroy(): void;
}

function fakeManager() {
  const made: FakeBuffer[] = [];
  const device = {
    createBuffer({ size, usage }: { size: number; usage: number }): FakeBuffer {
      const b: FakeBuffer = {
        id: made.length,
        size,
        usage,
        destroyed: false,
        destroy() {
          this.destroyed = true;
        },
      };
      made.push(b);
      return b;
    },
  };
  const bm = new BufferManager(device as unknown as GPUDevice) as unknown as {
    acquireBuffer(size: number, usage: number, mapped?: boolean, reuse?: boolean): FakeBuffer;
    releaseBuffer(b: FakeBuffer, reuse?: boolean): void;
    numBytesAllocated: number;
    numBytesUsed: number;
    getNumFreeBuffers(): number;
    getNumUsedBuffers(): number;
    dispose(): void;
  };
  return { bm, made, backend: { bufferManager: bm } };
}

/** The manager's counters against the buffers themselves. */
function checkCounters(bm: ReturnType<typeof fakeManager>['bm'], made: FakeBuffer[], held: FakeBuffer[]) {
  const alive = made.filter((b) => !b.destroyed);
  assert.equal(
    bm.numBytesAllocated,
    alive.reduce((s, b) => s + b.size, 0),
    'numBytesAllocated = bytes of buffers not destroyed',
  );
  assert.equal(
    bm.numBytesUsed,
    held.reduce((s, b) => s + b.size, 0),
    'numBytesUsed = bytes handed out',
  );
  assert.equal(bm.getNumUsedBuffers(), held.length);
  assert.equal(bm.getNumFreeBuffers(), alive.length - held.length);
}

test('released buffers stay within the budget, least recently released destroyed first; counters stay true', () => {
  const { bm, made, backend } = fakeManager();
  const st = boundPool(1000, backend)!;
  assert.ok(st);
  const held = [100, 200, 300, 400, 500].map((n) => bm.acquireBuffer(n, 1));
  checkCounters(bm, made, held);
  // release 100, 200, 300, 400 (1000 bytes: fits), then 500 (1500): the oldest go until it fits (100, 200, 300)
  for (const b of held.splice(0, 4)) bm.releaseBuffer(b);
  assert.equal(st.freeBytes, 1000);
  assert.equal(made.filter((b) => b.destroyed).length, 0);
  bm.releaseBuffer(held.pop()!);
  assert.deepEqual(
    made.filter((b) => b.destroyed).map((b) => b.size),
    [100, 200, 300],
  );
  assert.equal(st.freeBytes, 400 + 500);
  assert.equal(st.evicted, 3);
  checkCounters(bm, made, held);
  // a pooled size and usage is reused, others are created
  const again = bm.acquireBuffer(400, 1);
  assert.equal(again, made[3], 'the pooled 400-byte buffer');
  assert.equal(st.freeBytes, 500);
  const other = bm.acquireBuffer(400, 2);
  assert.notEqual(other, made[3], 'another usage is another buffer');
  assert.equal(st.created, 6);
  checkCounters(bm, made, [again, other]);
  // a buffer larger than the whole budget is destroyed at once; reuse=false always destroys (tfjs' staging buffers)
  const huge = bm.acquireBuffer(5000, 1);
  bm.releaseBuffer(huge);
  assert.ok(huge.destroyed);
  const staging = bm.acquireBuffer(10, 4, true, false);
  bm.releaseBuffer(staging, false);
  assert.ok(staging.destroyed);
  checkCounters(bm, made, [again, other]);
  assert.ok(st.highBytes >= 1500, 'the high-water mark of allocated bytes');
});

test('a reused buffer leaves the eviction order: it is not destroyed while handed out', () => {
  const { bm, made, backend } = fakeManager();
  const st = boundPool(300, backend)!;
  const a = bm.acquireBuffer(100, 1);
  const b = bm.acquireBuffer(100, 1);
  bm.releaseBuffer(a);
  bm.releaseBuffer(b);
  const a2 = bm.acquireBuffer(100, 1); // the last released (b) comes back: tfjs' pop()
  assert.equal(a2, b);
  const c = bm.acquireBuffer(150, 1);
  bm.releaseBuffer(c); // 100 (a) + 150 = 250: fits
  const d = bm.acquireBuffer(120, 1);
  bm.releaseBuffer(d); // 370 > 300: a, the oldest, goes
  assert.ok(a.destroyed && !b.destroyed && !c.destroyed && !d.destroyed);
  assert.equal(st.freeBytes, 270);
  checkCounters(bm, made, [a2]);
  bm.releaseBuffer(a2);
  assert.ok(st.freeBytes <= 300);
  checkCounters(bm, made, []);
  // the oldest released buffer handed out again, then a release that needs room: the handed-out one stays
  const { bm: bm2, made: made2, backend: be2 } = fakeManager();
  boundPool(300, be2);
  const x = bm2.acquireBuffer(100, 1);
  const y = bm2.acquireBuffer(150, 1);
  bm2.releaseBuffer(x);
  bm2.releaseBuffer(y);
  assert.equal(bm2.acquireBuffer(100, 1), x);
  const z = bm2.acquireBuffer(200, 1);
  bm2.releaseBuffer(z); // 150 + 200 > 300: y goes, x is in use
  assert.ok(!x.destroyed && y.destroyed && !z.destroyed);
  checkCounters(bm2, made2, [x]);
});

test("a new budget applies at once; budget 0 keeps nothing; Infinity keeps everything (tfjs' pool); dispose clears it", () => {
  const { bm, made, backend } = fakeManager();
  const st = boundPool(Infinity, backend)!;
  const bufs = Array.from({ length: 10 }, (_, i) => bm.acquireBuffer(100 + i, 1));
  for (const b of bufs) bm.releaseBuffer(b);
  assert.equal(made.filter((b) => b.destroyed).length, 0);
  assert.equal(
    st.freeBytes,
    bufs.reduce((s, b) => s + b.size, 0),
  );
  assert.equal(boundPool(250, backend), st, 'the same state, a new budget');
  assert.ok(st.freeBytes <= 250);
  assert.deepEqual(
    made.filter((b) => !b.destroyed).map((b) => b.size),
    [108, 109],
    'the two most recent kept',
  );
  boundPool(0, backend);
  assert.equal(st.freeBytes, 0);
  const x = bm.acquireBuffer(7, 1);
  bm.releaseBuffer(x);
  assert.ok(x.destroyed);
  checkCounters(bm, made, []);
  bm.dispose();
  assert.equal(st.freeBytes, 0);
  assert.equal(bm.numBytesAllocated, 0);
});

test('boundPool does nothing where the backend has no buffer manager', () => {
  assert.equal(boundPool(100, {}), null);
  assert.equal(boundPool(100, null), null);
});

/** The parts of tfjs-webgpu's backend that boundPending wraps: a tensor freed while the encoder uses it waits. */
function fakeBackend() {
  const log: string[] = [];
  const be = {
    tensorMap: new Map<object, { resource: { size: number } | null; inUse: boolean }>(),
    tensorDataPendingDisposal: [] as object[],
    commandEncoder: {} as unknown,
    activeTimers: null as unknown,
    disposeData(id: object): boolean {
      const d = this.tensorMap.get(id)!;
      if (d.inUse) this.tensorDataPendingDisposal.push(id);
      else this.tensorMap.delete(id);
      return true;
    },
    endComputePassEncoder() {
      log.push('end');
    },
    submitQueue() {
      log.push(`submit ${this.tensorDataPendingDisposal.length}`);
      for (const id of this.tensorDataPendingDisposal) this.tensorMap.delete(id);
      this.tensorDataPendingDisposal = [];
    },
    make(size: number, inUse = true): object {
      const id = {};
      this.tensorMap.set(id, { resource: { size }, inUse });
      return id;
    },
  };
  return { be, log };
}

test('releases waiting for a submit: an early submit past the bound, none for tensors not in use, while timing or without an encoder', () => {
  const { be, log } = fakeBackend();
  const st = boundPending(250, be)!;
  be.disposeData(be.make(100));
  be.disposeData(be.make(100));
  be.disposeData(be.make(500, false)); // not used by the encoder: released at once, nothing waits
  assert.deepEqual(log, []);
  assert.equal(st.pendingBytes, 200);
  be.disposeData(be.make(100)); // 300 > 250
  assert.deepEqual(log, ['end', 'submit 3']);
  assert.equal(st.pendingBytes, 0);
  assert.equal(st.flushes, 1);
  be.activeTimers = [];
  for (let i = 0; i < 4; i++) be.disposeData(be.make(100));
  assert.equal(st.flushes, 1, 'not while tf.profile / tf.time measure programs');
  be.activeTimers = null;
  be.commandEncoder = null;
  be.disposeData(be.make(100));
  assert.equal(st.flushes, 1, 'no encoder, nothing to submit');
  be.commandEncoder = {};
  be.submitQueue(); // tfjs' own submit resets the count
  assert.equal(st.pendingBytes, 0);
  assert.equal(boundPending(Infinity, be), st, 'the same state, a new bound');
  for (let i = 0; i < 50; i++) be.disposeData(be.make(100));
  assert.equal(st.flushes, 1);
  assert.equal(boundPending(100, {}), null, 'not a tfjs-webgpu backend');
});

test('RENO_WEBGPU_PENDING_MB: default, a number of MiB, off, bad values', () => {
  assert.equal(pendingBoundFromEnv({}), DEFAULT_PENDING_MB * 2 ** 20);
  assert.equal(pendingBoundFromEnv({ RENO_WEBGPU_PENDING_MB: '32' }), 32 * 2 ** 20);
  assert.equal(pendingBoundFromEnv({ RENO_WEBGPU_PENDING_MB: 'off' }), Infinity);
  assert.throws(
    () => pendingBoundFromEnv({ RENO_WEBGPU_PENDING_MB: 'x' }),
    (e: Error) => e instanceof UsageError && e.message.includes('RENO_WEBGPU_PENDING_MB'),
  );
});

test('RENO_WEBGPU_POOL_MB: default, a number of MiB, off, and bad values as usage errors', () => {
  assert.equal(poolBudgetFromEnv({}), DEFAULT_POOL_MB * 2 ** 20);
  assert.equal(poolBudgetFromEnv({ RENO_WEBGPU_POOL_MB: '' }), DEFAULT_POOL_MB * 2 ** 20);
  assert.equal(poolBudgetFromEnv({ RENO_WEBGPU_POOL_MB: '256' }), 256 * 2 ** 20);
  assert.equal(poolBudgetFromEnv({ RENO_WEBGPU_POOL_MB: '0' }), 0);
  assert.equal(poolBudgetFromEnv({ RENO_WEBGPU_POOL_MB: 'off' }), Infinity);
  for (const bad of ['-1', 'lots', '1e999x']) {
    assert.throws(
      () => poolBudgetFromEnv({ RENO_WEBGPU_POOL_MB: bad }),
      (e: Error) => e instanceof UsageError && e.message.includes('RENO_WEBGPU_POOL_MB') && e.message.includes(bad),
    );
  }
});
