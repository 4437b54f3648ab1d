// Small CPU -> GPU uploads through GPUQueue.writeBuffer instead of a fresh mapped staging buffer per tensor.
// tfjs-backend-webgpu 4.22 (WebGPUBackend.uploadToGPU) creates a GPUBuffer mapped at creation for every tensor made
// from CPU values, copies through it and destroys it; it also ends the open compute pass. Scalars made from JS numbers
// (eps, scales, the constants inside tfjs' own gradient functions) make hundreds of such uploads per UNet pass, a
// large share of its wall time on a GPU (bench/RESULTS.md, "Where the wall time went: CPU-side uploads").
// writeBuffer stages inside Dawn. It is safe with tfjs' batching: a pooled buffer is back in the pool only once no
// unsubmitted command reads it (tfjs defers releases until submit), and the queue orders the write after work already
// submitted and before the command buffer being recorded, which is submitted later.
import * as tf from '../tf.js';

/** Uploads up to this many bytes go through writeBuffer; larger ones keep tfjs' path. */
export const SMALL_UPLOAD_BYTES = 1 << 20;

interface TensorData {
  values: ArrayLike<number> | null;
  dtype: string;
  shape: number[];
  resource: unknown;
}
interface WebgpuBackendInternals {
  tensorMap: { get(id: object): TensorData };
  bufferManager: { acquireBuffer(size: number, usage: number, mappedAtCreation?: boolean): unknown };
  queue: { writeBuffer(b: unknown, offset: number, data: ArrayBufferView | ArrayBuffer, dataOffset?: number, size?: number): void };
  uploadToGPU(dataId: object): void;
  __renoSmallUploads?: boolean;
}

/** Installs the small-upload path on the active WebGPU backend (idempotent); false where it does not apply. */
export function patchSmallUploads(backend: unknown = tf.backend()): boolean {
  const be = backend as WebgpuBackendInternals;
  if (!be || typeof be.uploadToGPU !== 'function' || !be.tensorMap || !be.bufferManager || !be.queue) return false;
  if (be.__renoSmallUploads) return true;
  const usageFlags = (globalThis as unknown as { GPUBufferUsage?: Record<string, number> }).GPUBufferUsage;
  if (!usageFlags) return false;
  const usage = usageFlags.STORAGE | usageFlags.COPY_SRC | usageFlags.COPY_DST;
  const original = be.uploadToGPU.bind(be);
  be.uploadToGPU = function (this: WebgpuBackendInternals, dataId: object): void {
    const d = this.tensorMap.get(dataId);
    const intLike = d.dtype === 'int32' || d.dtype === 'bool';
    if (d.resource != null || d.values == null || !(intLike || d.dtype === 'float32')) return original(dataId);
    const n = tf.util.sizeFromShape(d.shape);
    const size = 4 * n;
    if (size === 0 || size > SMALL_UPLOAD_BYTES) return original(dataId);
    // values usually have the buffer's element type already (no copy); bool (Uint8Array) widens to int32
    const v = d.values as ArrayLike<number>;
    const data = intLike ? (v instanceof Int32Array ? v : Int32Array.from(v)) : v instanceof Float32Array ? v : Float32Array.from(v);
    const buffer = this.bufferManager.acquireBuffer(size, usage, false);
    this.queue.writeBuffer(buffer, 0, data); // the whole view: 4 * n bytes
    d.values = null; // as tfjs: once uploaded, the values live on the GPU only
    d.resource = buffer;
  };
  be.__renoSmallUploads = true;
  return true;
}
