// Child process of wasm-threads.test.ts: starts wasm with the thread shim, reports the thread count and checks a conv
// and a matMul against the pure-JS cpu backend; prints one JSON line and exits (the pthread workers would keep it).
import * as tf from '../../src/runtime/tf.js';
import { useBackend } from '../../src/runtime/backend.js';

const x = new Float32Array(1 * 16 * 16 * 32).map((_, i) => Math.sin(i));
const w = new Float32Array(3 * 3 * 32 * 48).map((_, i) => Math.cos(i) * 0.1);
const run = async () => {
  const y = tf.conv2d(tf.tensor4d(x, [1, 16, 16, 32]), tf.tensor4d(w, [3, 3, 32, 48]), 1, 'same');
  const m = tf.matMul(tf.tensor2d(x.subarray(0, 64 * 128), [64, 128]), tf.tensor2d(w.subarray(0, 128 * 96), [128, 96]));
  return [...(await y.data()), ...(await m.data())];
};
await useBackend('wasm', { quiet: true });
const wasm = await import('@tensorflow/tfjs-backend-wasm');
const threads = wasm.getThreadsCount();
const a = await run();
await useBackend('cpu', { quiet: true });
const b = await run();
let err = 0;
for (let i = 0; i < a.length; i++) err = Math.max(err, Math.abs(a[i] - b[i]));
process.stdout.write(JSON.stringify({ threads, err }) + '\n', () => process.exit(0));
