// Gradients that replace tfjs-core's own for Sum and Mean (tfjs-core src/gradients/Sum_grad.ts, Mean_grad.ts).
// tfjs-core builds d x = reshape(dy) * ones(x.shape): `ones` fills a JavaScript Float32Array of x's size on the CPU
// and uploads it. On WebGPU that was 60 % of the VAE decoder's backward pass at 512 px (a GroupNorm over
// [1, 512, 512, 128] uploads 128 MiB of ones per call; measured with bench/overhead.ts on an H200, bench/RESULTS.md).
// Here d x is the same values broadcast on the device (tf.broadcastTo: one Tile kernel; on wasm a device-side
// onesLike times dy, see spreadBack), with nothing filled on the CPU.
// Registered on import (src/nn/ops.ts, which every model uses, imports this module); gradients only.
import * as tf from '@tensorflow/tfjs';

/** dy reshaped to x's rank with 1 on the reduced axes, divided by `divisor`, then broadcast to x's shape. */
function spreadBack(dy: tf.Tensor, x: tf.Tensor, axis: number | number[] | undefined, divisor: number): tf.Tensor {
  const axes = tf.util.parseAxisParam(axis ?? x.shape.map((_, i) => i), x.shape);
  const expanded = x.shape.slice();
  for (const a of axes) expanded[a] = 1;
  const small = tf.reshape(dy, expanded); // dy [kept dims] -> [x rank, 1 on reduced axes]
  const scaled = divisor === 1 ? small : tf.div(small, tf.scalar(divisor));
  // wasm's Tile kernel is 10-25x slower than a fill and a broadcasting multiply (both XNNPACK-fast there); the other
  // backends tile fastest (measured: a [4096, 1280] spread takes 433 ms by Tile and 30 ms by onesLike * dy on wasm,
  // 141 against 511 ms on cpu)
  if (tf.getBackend() === 'wasm') return tf.mul(scaled, tf.onesLike(x));
  return tf.broadcastTo(scaled, x.shape);
}

/** Number of elements of x reduced by a mean over `axis`. */
function reduceSize(x: tf.Tensor, axis: number | number[] | undefined): number {
  return tf.util.parseAxisParam(axis ?? x.shape.map((_, i) => i), x.shape).reduce((n, a) => n * x.shape[a], 1);
}

// registered when this module is first imported (an ES module runs once): Sum spreads dy as it is, Mean divided by
// the number of elements each output averaged
for (const [kernelName, mean] of [['Sum', false], ['Mean', true]] as const) {
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
