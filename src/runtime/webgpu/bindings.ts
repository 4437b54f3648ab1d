// The adapter's binding limit (maxStorageBufferBindingSize): no program may bind a buffer larger than it. Dawn rejects
// such a bind group without an exception; the program, and with it the whole command buffer it was recorded in (tfjs
// submits 15 dispatches at a time), never runs, so its output and up to 14 neighbouring programs' outputs read as
// zeros or stale values. On lavapipe (128 MiB) the CLIP text towers' 202 MB token embeddings did this and the loop
// stopped on NaN losses (bench/RESULTS.md, "Memory of the full-size step"). Here: the limit for reno's own decisions
// (Winograd transforms, embedding lookups), a guard that turns such a binding into a DeviceLimitError naming the
// tensor, and a check of whether a tensor's values are still in host memory (never uploaded).
import * as tf from '../tf.js';
import { DeviceLimitError } from '../../errors.js';

let limit = 128 * 2 ** 20; // WebGPU's default (and lavapipe's); setupWebgpu sets the adapter's

/** Sets the binding limit in bytes (setupWebgpu: the adapter's; tests lower it to exercise the paths over it). */
export function setBindingLimit(bytes: number): void {
  limit = bytes;
}

/** The largest buffer one WebGPU program may bind, in bytes. */
export function bindingLimit(): number {
  return limit;
}

/** True on the WebGPU backend when t's buffer would exceed one binding. */
export function overBindingLimit(t: { shape: number[] }): boolean {
  return tf.getBackend() === 'webgpu' && 4 * tf.util.sizeFromShape(t.shape) > limit;
}

interface TensorData {
  values: ArrayLike<number> | null;
  resource: unknown;
}
interface BackendInternals {
  tensorMap?: { get(id: object): TensorData | undefined };
  tensorToBinding?: (t: { dataId: object; shape: number[] } | null) => unknown;
  __renoBindingGuard?: boolean;
}

/**
 * t's values when they are still in host memory (a tensor made from JS values that no GPU program has used yet: tfjs'
 * webgpu backend uploads lazily), else null. On the cpu and wasm backends every tensor's values are readable.
 */
export function hostValues(t: tf.Tensor): tf.TypedArray | null {
  const be = tf.backend() as unknown as BackendInternals;
  if (tf.getBackend() !== 'webgpu') return t.dataSync();
  const d = be.tensorMap?.get(t.dataId);
  return d && d.resource == null && d.values != null ? (d.values as tf.TypedArray) : null;
}

/**
 * Wraps the WebGPU backend's tensorToBinding (tfjs-backend-webgpu 4.22: every program input and output goes through
 * it when the bind group is made) so that a buffer over the limit throws instead of failing silently. Idempotent.
 */
export function guardBindings(backend: unknown = tf.backend()): boolean {
  const be = backend as BackendInternals;
  if (!be || typeof be.tensorToBinding !== 'function') return false;
  if (be.__renoBindingGuard) return true;
  const original = be.tensorToBinding.bind(be);
  be.tensorToBinding = (t) => {
    const b = original(t) as { buffer?: { size: number } } | null;
    if (t && b?.buffer && b.buffer.size > limit) {
      const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
      throw new DeviceLimitError(
        `a WebGPU program would bind a tensor of shape [${t.shape}] (${mib(b.buffer.size)}), over this adapter's maxStorageBufferBindingSize of ${mib(limit)}; ` +
          `the adapter cannot run this model at this size (on lavapipe: use a hardware GPU, or --backend wasm)`,
      );
    }
    return b;
  };
  be.__renoBindingGuard = true;
  return true;
}

/**
 * Largest [rows, Lk] float32 block (elements) per step of the chunked attention (nn/attention.ts): 8M elements = 32 MiB,
 * far under WebGPU's 128 MiB bindings; setupWebgpu sizes it to the adapter's binding limit.
 */
export let maxBlockElems = 8 * 1024 * 1024;
export function setMaxBlockElems(n: number): void {
  maxBlockElems = n;
}
