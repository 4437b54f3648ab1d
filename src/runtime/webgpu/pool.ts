// Device memory beyond the live tensors on tfjs-webgpu, bounded. Two things hold it (bench/RESULTS.md):
// - The buffer pool. tfjs-backend-webgpu 4.22's BufferManager (buffer_manager.ts) keeps every released GPUBuffer for
//   reuse under its exact (size, usage) and never gives one back, so the device holds, for each size ever used, as
//   many buffers as were alive at once: the sum over the step's phases (UNet, VAE decoder at 512 px, each reward at
//   224 px, their backward passes) of what each needed, not the largest. Here released buffers stay pooled up to a
//   byte budget; past it the least recently released are destroyed. WebGPU lets a buffer be destroyed while
//   submitted work still reads it (the implementation frees it once that work is done).
// - Releases waiting for a submit. A tensor freed while the command encoder being recorded uses it keeps its buffer
//   until tfjs submits (every WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE = 15 programs): in a 512 px backward pass that is
//   several tensors of 64-128 MiB. Here the queue is submitted early once the bytes waiting pass a bound.
// RENO_WEBGPU_POOL_MB=N sets the pool's budget (0: keep none), `off` keeps every buffer as tfjs does (still counted);
// RENO_WEBGPU_PENDING_MB=N the bound on waiting releases, `off` waits for tfjs' own submits.
import * as tf from '../tf.js';
import { UsageError } from '../../errors.js';
import { readSetting, type Env } from '../settings.js';

export { DEFAULT_PENDING_MB, DEFAULT_POOL_MB } from '../settings.js';

interface Buffer {
  size: number;
  usage: number;
  destroy(): void;
}
/** The fields and methods of tfjs-webgpu 4.22's BufferManager that this replaces (same names, same bookkeeping). */
interface BufferManager {
  device: { createBuffer(d: { size: number; usage: number; mappedAtCreation: boolean }): Buffer };
  freeBuffers: Map<string, Buffer[]>;
  usedBuffers: Map<string, Buffer[]>;
  numFreeBuffers: number;
  numUsedBuffers: number;
  numBytesUsed: number;
  numBytesAllocated: number;
  acquireBuffer(size: number, usage: number, mappedAtCreation?: boolean, reuse?: boolean): Buffer;
  releaseBuffer(buffer: Buffer, reuse?: boolean): void;
  dispose(): void;
  __renoPool?: PoolState;
}

export interface PoolState {
  /** budget of released bytes kept for reuse */
  maxFreeBytes: number;
  /** bytes in the free lists now */
  freeBytes: number;
  /** buffers destroyed to keep within the budget */
  evicted: number;
  /** buffers created (the pool had none of that size and usage) */
  created: number;
  /** highest numBytesAllocated seen: the device memory the pool and the live tensors held at once */
  highBytes: number;
}

/** The budget from RENO_WEBGPU_POOL_MB in bytes (Infinity for `off`: tfjs' unbounded pool). A bad value is a usage error. */
export function poolBudgetFromEnv(env: Env): number {
  return readSetting('webgpuPoolBytes', env);
}

/** The bound from RENO_WEBGPU_PENDING_MB in bytes (Infinity for `off`: tfjs' submits only). A bad value is a usage error. */
export function pendingBoundFromEnv(env: Env): number {
  return readSetting('webgpuPendingBytes', env);
}

const key = (size: number, usage: number) => `${size}_${usage}`;

/** Each bounded manager's free buffers, least recently released first (a Set keeps insertion order). */
const released = new WeakMap<BufferManager, Set<Buffer>>();

/**
 * Bounds the active WebGPU backend's buffer pool to maxFreeBytes of released buffers (least recently released
 * destroyed first), and counts what it creates and destroys. Returns the state (also kept on the manager), or null
 * where the backend has no such manager. Calling it again sets the budget.
 */
export function boundPool(maxFreeBytes: number, backend: unknown = tf.backend()): PoolState | null {
  const bm = (backend as { bufferManager?: BufferManager } | null)?.bufferManager;
  if (!bm || typeof bm.acquireBuffer !== 'function' || !(bm.freeBuffers instanceof Map)) return null;
  if (bm.__renoPool) {
    bm.__renoPool.maxFreeBytes = maxFreeBytes;
    evict(bm, bm.__renoPool);
    return bm.__renoPool;
  }
  // buffers already pooled count in the order they are listed
  const lru = new Set<Buffer>();
  let freeBytes = 0;
  for (const list of bm.freeBuffers.values()) for (const b of list) (lru.add(b), (freeBytes += b.size));
  const st: PoolState = { maxFreeBytes, freeBytes, evicted: 0, created: 0, highBytes: bm.numBytesAllocated };
  bm.__renoPool = st;
  released.set(bm, lru);

  bm.acquireBuffer = function (size, usage, mappedAtCreation = false, reuse = true) {
    const k = key(size, usage);
    let buffer: Buffer | undefined;
    if (reuse) {
      let free = this.freeBuffers.get(k);
      if (!free) this.freeBuffers.set(k, (free = []));
      buffer = free.pop();
      if (buffer) {
        this.numFreeBuffers--;
        lru.delete(buffer);
        st.freeBytes -= size;
      }
    }
    if (!buffer) {
      buffer = this.device.createBuffer({ size, usage, mappedAtCreation });
      this.numBytesAllocated += size;
      st.created++;
      if (this.numBytesAllocated > st.highBytes) st.highBytes = this.numBytesAllocated;
    }
    let used = this.usedBuffers.get(k);
    if (!used) this.usedBuffers.set(k, (used = []));
    used.push(buffer);
    this.numUsedBuffers++;
    this.numBytesUsed += size;
    return buffer;
  };

  bm.releaseBuffer = function (buffer, reuse = true) {
    if (this.freeBuffers.size === 0) return; // as tfjs: after dispose()
    const { size, usage } = buffer;
    const k = key(size, usage);
    const used = this.usedBuffers.get(k);
    const i = used ? used.indexOf(buffer) : -1;
    if (i < 0) throw new Error('Cannot find the buffer in buffer manager');
    used![i] = used![used!.length - 1];
    used!.pop();
    this.numUsedBuffers--;
    this.numBytesUsed -= size;
    if (!reuse || size > st.maxFreeBytes) {
      buffer.destroy();
      this.numBytesAllocated -= size;
      if (reuse) st.evicted++;
      return;
    }
    let free = this.freeBuffers.get(k);
    if (!free) this.freeBuffers.set(k, (free = []));
    free.push(buffer);
    this.numFreeBuffers++;
    lru.add(buffer);
    st.freeBytes += size;
    evict(this, st);
  };

  const dispose = bm.dispose.bind(bm);
  bm.dispose = function () {
    dispose();
    lru.clear();
    st.freeBytes = 0;
  };
  return st;
}

/** Destroys the least recently released buffers until the free ones fit the budget. */
function evict(bm: BufferManager, st: PoolState): void {
  const lru = released.get(bm)!;
  for (const b of lru) {
    if (st.freeBytes <= st.maxFreeBytes) break;
    lru.delete(b);
    const free = bm.freeBuffers.get(key(b.size, b.usage))!;
    free.splice(free.indexOf(b), 1);
    bm.numFreeBuffers--;
    bm.numBytesAllocated -= b.size;
    st.freeBytes -= b.size;
    st.evicted++;
    b.destroy();
  }
}

/** Starts the high-water mark of allocated bytes again from what is allocated now (for a measurement). */
export function resetPoolHigh(backend: unknown = tf.backend()): void {
  const bm = (backend as { bufferManager?: BufferManager } | null)?.bufferManager;
  if (bm?.__renoPool) bm.__renoPool.highBytes = bm.numBytesAllocated;
}

/** The pool's state on the active backend, or null where there is none (another backend). */
export function poolState(backend: unknown = tf.backend()): PoolState | null {
  return (backend as { bufferManager?: BufferManager } | null)?.bufferManager?.__renoPool ?? null;
}

/** The parts of tfjs-webgpu 4.22's WebGPUBackend that boundPending wraps. */
interface PendingBackend {
  tensorMap: { get(id: object): { resource?: unknown } | undefined };
  tensorDataPendingDisposal: object[];
  commandEncoder: unknown;
  activeTimers: unknown;
  disposeData(dataId: object, force?: boolean): boolean;
  submitQueue(): void;
  endComputePassEncoder(): void;
  __renoPending?: PendingState;
}

export interface PendingState {
  /** submit once this many bytes of released buffers wait for a submit */
  maxPendingBytes: number;
  /** bytes waiting now */
  pendingBytes: number;
  /** submits made early for it */
  flushes: number;
}

/**
 * Submits the active WebGPU backend's queued programs early whenever more than maxPendingBytes of freed tensors'
 * buffers wait for a submit (tfjs returns such a buffer to the pool only at the submit). Not while tf.profile or
 * tf.time measures programs (their timers span the queued passes). Returns the state, or null where the backend is
 * not tfjs-webgpu's. Calling it again sets the bound.
 */
export function boundPending(maxPendingBytes: number, backend: unknown = tf.backend()): PendingState | null {
  const be = backend as PendingBackend | null;
  if (!be || !Array.isArray(be.tensorDataPendingDisposal) || typeof be.submitQueue !== 'function' || typeof be.disposeData !== 'function')
    return null;
  if (be.__renoPending) {
    be.__renoPending.maxPendingBytes = maxPendingBytes;
    return be.__renoPending;
  }
  const st: PendingState = { maxPendingBytes, pendingBytes: 0, flushes: 0 };
  be.__renoPending = st;
  const submit = be.submitQueue.bind(be);
  be.submitQueue = function () {
    submit();
    st.pendingBytes = 0;
  };
  const dispose = be.disposeData.bind(be);
  be.disposeData = function (dataId, force) {
    const waiting = this.tensorDataPendingDisposal.length;
    const r = dispose(dataId, force);
    if (this.tensorDataPendingDisposal.length > waiting) {
      const res = this.tensorMap.get(dataId)?.resource as { size?: number } | null | undefined;
      st.pendingBytes += res?.size ?? 0;
      if (st.pendingBytes > st.maxPendingBytes && this.commandEncoder && this.activeTimers == null) {
        this.endComputePassEncoder();
        this.submitQueue();
        st.flushes++;
      }
    }
    return r;
  };
  return st;
}

/** The early-submit state on the active backend, or null where there is none. */
export function pendingState(backend: unknown = tf.backend()): PendingState | null {
  return (backend as PendingBackend | null)?.__renoPending ?? null;
}
