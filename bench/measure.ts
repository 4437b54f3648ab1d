// Measuring for the reward and ReNO-step benchmarks: timing with asynchronous read-backs (the only kind WebGPU offers
// in Node), the peak of distinct tensor buffers, the wasm heap, and whether a wasm module is still alive after running
// out of memory.
import * as tf from '../src/runtime/tf.js';
import { poolState, resetPoolHigh } from '../src/runtime/webgpu/pool.js';

export interface Measured {
  seconds: number;
  /** highest sum of distinct tensor buffers (weights included) */
  peakMB: number;
  /** WebGPU: the most bytes of GPU buffers the backend held at once (live tensors, its pool of released buffers,
   * buffers waiting for a submit); null on other backends */
  deviceMB: number | null;
  rssMB: number;
  /** the wasm heap's size (its high-water mark: it never shrinks); null on other backends */
  heapMB: number | null;
}

interface TensorInfoEntry {
  backend: unknown;
  bytes: number;
}
type EngineInternals = {
  state: { numBytes: number; tensorInfo: WeakMap<object, TensorInfoEntry> };
  trackTensor: (a: { dataId: object; shape: number[] }, backend: unknown) => unknown;
  removeDataId: (dataId: object, backend: unknown) => unknown;
};

/**
 * fn with the highest bytes of distinct tensor buffers alive at any moment (weights included), counted as tensors
 * are made and freed. tf.profile's peakBytes (engine numBytes, sampled after each kernel) counts every view of a
 * buffer (reshape, clone) again, so it reads higher; it is returned too, as viewBytes, for comparison.
 */
export async function withPeak<T>(
  fn: () => Promise<T>,
  opts: { describe?: (t: { dataId: object; shape: number[] }) => string } = {},
): Promise<{ value: T; peakBytes: number; viewBytes: number; atPeak: AliveBuffer[]; deviceBytes: number | null }> {
  const eng = tf.engine() as unknown as EngineInternals;
  const st = eng.state;
  const { trackTensor, removeDataId } = eng;
  // tensorInfo is a WeakMap: the buffers alive before fn are taken as the engine's byte count then (at rest it
  // holds the weights and a few inputs, hardly any views)
  let live = st.numBytes;
  let peak = live;
  let viewPeak = st.numBytes;
  // with `describe`: each buffer made during fn, described when it is made, and those alive at the peak
  const made = new Map<object, AliveBuffer>();
  let atPeak: AliveBuffer[] = [];
  eng.trackTensor = function (a, backend) {
    const fresh = !st.tensorInfo.has(a.dataId);
    const r = trackTensor.call(this, a, backend);
    if (fresh) {
      const bytes = st.tensorInfo.get(a.dataId)?.bytes ?? 0;
      live += bytes;
      if (opts.describe) made.set(a.dataId, { bytes, shape: a.shape, what: opts.describe(a) });
    }
    if (live > peak) {
      peak = live;
      if (opts.describe) atPeak = [...made.values()];
    }
    if (st.numBytes > viewPeak) viewPeak = st.numBytes;
    return r;
  };
  eng.removeDataId = function (dataId, backend) {
    const info = st.tensorInfo.get(dataId);
    const r = removeDataId.call(this, dataId, backend);
    if (info && !st.tensorInfo.has(dataId)) {
      live -= info.bytes;
      made.delete(dataId);
    }
    return r;
  };
  resetPoolHigh();
  try {
    const value = await fn();
    return { value, peakBytes: peak, viewBytes: viewPeak, atPeak, deviceBytes: poolState()?.highBytes ?? null };
  } finally {
    // the hooks are own properties shadowing the prototype's methods
    delete (eng as Partial<EngineInternals>).trackTensor;
    delete (eng as Partial<EngineInternals>).removeDataId;
  }
}

/** A tensor buffer made during withPeak's fn, as its `describe` option saw it when it was made. */
export interface AliveBuffer {
  bytes: number;
  shape: number[];
  what: string;
}

/**
 * How many times fn makes the engine call `method` (runKernel: kernels asked for; runKernelFunc: those plus
 * custom-gradient ops; makeTensor: tensors made from CPU values), with fn's value. The hook is an own property
 * shadowing the prototype's method, removed afterwards.
 */
export function engineCalls<T>(method: 'runKernel' | 'runKernelFunc' | 'makeTensor', fn: () => T): { value: T; calls: number } {
  const eng = tf.engine() as unknown as Record<string, (...a: unknown[]) => unknown>;
  const orig = eng[method];
  let calls = 0;
  eng[method] = function (this: unknown, ...a: unknown[]) {
    calls++;
    return orig.apply(this, a);
  };
  try {
    return { value: fn(), calls };
  } finally {
    delete eng[method];
  }
}

/** The wasm heap in MB (null on other backends). */
export function wasmHeapMB(): number | null {
  const heap = (tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } }).wasm?.HEAPU8;
  return heap ? heap.length / 2 ** 20 : null;
}

type Out = tf.Tensor | tf.Tensor[] | void;

/** Median seconds over `reps` runs after `warmup` runs; each run waits for its outputs (asynchronous read-back).
 * The peak buffer bytes are those of the first run. */
export async function measureAsync(fn: () => Out | Promise<Out>, reps = 1, warmup = 1): Promise<Measured> {
  const run = async () => {
    const out = await fn();
    if (out)
      for (const t of Array.isArray(out) ? out : [out]) {
        await t.data();
        t.dispose();
      }
  };
  let peak = -1;
  let device: number | null = null;
  const times: number[] = [];
  for (let i = 0; i < warmup + reps; i++) {
    const t0 = performance.now();
    if (peak < 0) ({ peakBytes: peak, deviceBytes: device } = await withPeak(run));
    else await run();
    if (i >= warmup) times.push((performance.now() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return {
    seconds: times[Math.floor(times.length / 2)],
    peakMB: peak / 2 ** 20,
    deviceMB: device === null ? null : device / 2 ** 20,
    rssMB: process.memoryUsage().rss / 2 ** 20,
    heapMB: wasmHeapMB(),
  };
}

/** A line about how the active backend computes (wasm: SIMD and thread count; it is single-threaded in Node). */
export async function backendNote(): Promise<string> {
  const b = tf.getBackend();
  if (b !== 'wasm') return b;
  const w = await import('@tensorflow/tfjs-backend-wasm');
  return `wasm (SIMD ${tf.env().getBool('WASM_HAS_SIMD_SUPPORT') ? 'on' : 'off'}, ${w.getThreadsCount()} thread${w.getThreadsCount() === 1 ? '' : 's'})`;
}

/** Whether the backend still computes (a wasm module that ran out of memory aborts for good). */
export async function backendAlive(): Promise<boolean> {
  try {
    const t = tf.tidy(() => tf.add(tf.scalar(1), tf.scalar(1)));
    await t.data();
    t.dispose();
    return true;
  } catch {
    return false;
  }
}

export function errorText(e: unknown, max = 90): string {
  return String((e as Error)?.message ?? e)
    .replace(/\s+/g, ' ')
    .replace(/\|/g, '/')
    .slice(0, max);
}
