// Child process of wasm-threads.test.ts: a wasm kernel that never returns (it waits on a futex nobody wakes, as a
// deadlocked pthread would), run on the threaded backend; the watchdog (RENO_WASM_WATCHDOG) must end the process.
import * as tf from '../../src/runtime/tf.js';
import { useBackend } from '../../src/runtime/backend.js';

tf.registerKernel({
  kernelName: 'RenoTestStall',
  backendName: 'wasm',
  kernelFunc: ({ inputs }) => {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 120_000);
    return inputs.x as tf.TensorInfo;
  },
});
await useBackend('wasm', { quiet: true });
const x = tf.zeros([2, 3]);
process.stdout.write('stalling\n');
tf.engine().runKernel('RenoTestStall', { x }, {});
process.stdout.write('returned\n');
