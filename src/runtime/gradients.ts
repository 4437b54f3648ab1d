// Gradients that replace tfjs-core's own for Sum and Mean (tfjs-core src/gradients/Sum_grad.ts, Mean_grad.ts).
// tfjs-core builds d x = reshape(dy) * ones(x.shape): `ones` fills a JavaScript Float32Array of x's size on the CPU
// and uploads it (a GroupNorm over [1, 512, 512, 128] uploads 128 MiB of ones per call): on WebGPU a large part of
// the VAE decoder's backward pass (bench/RESULTS.md, "Where the wall time went: CPU-side uploads").
// Here d x is the same values broadcast on the device (tf.broadcastTo: one Tile kernel; on wasm a device-side
// fill of ones times dy, see spreadBack), with nothing filled on the CPU.
// Also: kernels whose gradient reads only the shapes of what it saves keep no tensor for the backward pass (below).
// Registered on import (src/nn/ops.ts, which every model uses, imports this module); gradients only.
import * as tf from './tf.js';
import { setting } from './settings.js';

/**
 * dy reshaped to x's rank with 1 on the reduced axes, divided by `divisor`, then broadcast to x's shape (only x's
 * shape is read: x may be a shape-only stand-in, see below).
 */
function spreadBack(dy: tf.Tensor, x: tf.Tensor, axis: number | number[] | undefined, divisor: number): tf.Tensor {
  const axes = tf.util.parseAxisParam(axis ?? x.shape.map((_, i) => i), x.shape);
  const expanded = x.shape.slice();
  for (const a of axes) expanded[a] = 1;
  const small = tf.reshape(dy, expanded); // dy [kept dims] -> [x rank, 1 on reduced axes]
  const scaled = divisor === 1 ? small : tf.div(small, tf.scalar(divisor));
  // wasm's Tile kernel is much slower than a fill and a broadcasting multiply (both XNNPACK-fast there); the other
  // backends tile fastest (bench/RESULTS.md, "CPU kernels")
  if (tf.getBackend() === 'wasm') return tf.mul(scaled, tf.fill(x.shape, 1));
  return tf.broadcastTo(scaled, x.shape);
}

/** Number of elements of x reduced by a mean over `axis`. */
function reduceSize(x: tf.Tensor, axis: number | number[] | undefined): number {
  return tf.util.parseAxisParam(axis ?? x.shape.map((_, i) => i), x.shape).reduce((n, a) => n * x.shape[a], 1);
}

// registered when this module is first imported (an ES module runs once): Sum spreads dy as it is, Mean divided by
// the number of elements each output averaged
for (const [kernelName, mean] of [
  ['Sum', false],
  ['Mean', true],
] as const) {
  tf.registerGradient({
    kernelName,
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const [x] = saved;
      const { axis } = attrs as unknown as { axis?: number | number[] };
      return { x: () => spreadBack(dy as tf.Tensor, x, axis, mean ? reduceSize(x, axis) : 1) };
    },
  });
}

/**
 * Kernels whose gradient reads nothing of the tensors it saves but their shapes (tfjs-core gradients/Add_grad.ts,
 * Sub_grad.ts, Reshape_grad.ts, ExpandDims_grad.ts, Concat_grad.ts, PadV2_grad.ts, Slice_grad.ts, and Sum and Mean
 * above). tfjs keeps a clone of every saved tensor until the backward pass ends, so each `a + b` on a tape kept a and
 * b alive (a conv's raw output under its bias add, both sides of every residual add, the input of every reshape): in
 * a checkpointed VAE decoder at 512 px that is several 128-268 MB tensors per unit, on every backend. Such kernels
 * save a stand-in that carries the shape and dtype only.
 */
export const SHAPE_ONLY_KERNELS: ReadonlySet<string> = new Set(['Add', 'Sub', 'Reshape', 'ExpandDims', 'Concat', 'PadV2', 'Slice', 'Sum', 'Mean']);

let shapeOnlySaves = setting('shapeOnlySaves');

/** Switches shape-only saves (on by default; off: tfjs' own clones, for comparison in tests and benchmarks). */
export function setShapeOnlySaves(on: boolean): void {
  shapeOnlySaves = on;
}

/** What a shape-only kernel saves: its shape, rank, size and dtype, and nothing to free. */
function standIn(t: tf.Tensor): tf.Tensor {
  return { shape: t.shape.slice(), rank: t.rank, size: t.size, dtype: t.dtype, isDisposed: false, dispose() {} } as unknown as tf.Tensor;
}

interface EngineSaves {
  getTensorsForGradient(kernelName: string, inputs: unknown, outputs: tf.Tensor[]): tf.Tensor[];
  saveTensorsForBackwardMode(tensors: tf.Tensor[]): tf.Tensor[];
}

// tfjs-core engine.ts runKernelFunc: `saved = this.saveTensorsForBackwardMode(this.getTensorsForGradient(kernelName,
// inputs, outTensors))`, one right after the other; the list the first returns is marked for the second
const engineProto = Object.getPrototypeOf(tf.engine()) as EngineSaves;
if (typeof engineProto.getTensorsForGradient !== 'function' || typeof engineProto.saveTensorsForBackwardMode !== 'function') {
  throw new Error('this tfjs-core has no Engine.getTensorsForGradient / saveTensorsForBackwardMode (reno is built on tfjs 4.22)');
}
const marked = new WeakSet<tf.Tensor[]>();
const getTensors = engineProto.getTensorsForGradient;
const saveTensors = engineProto.saveTensorsForBackwardMode;
engineProto.getTensorsForGradient = function (this: EngineSaves, kernelName, inputs, outputs) {
  const tensors = getTensors.call(this, kernelName, inputs, outputs);
  if (shapeOnlySaves && SHAPE_ONLY_KERNELS.has(kernelName)) marked.add(tensors);
  return tensors;
};
engineProto.saveTensorsForBackwardMode = function (this: EngineSaves, tensors) {
  return marked.has(tensors) ? tensors.map(standIn) : saveTensors.call(this, tensors);
};
