// CPU kernel benchmark: tfjs's own gradients against reno's replacements, in the same run on the same machine
// (bench/RESULTS.md, "CPU kernels", lists the slow paths): a 3x3 conv's input gradient (Conv2DBackpropInput vs a forward
// conv with the flipped filter), a frozen Linear's input gradient (matMul with transposeB vs an explicit transpose),
// and self-attention (batched, transposed matMuls vs query-chunked 2-D products with their own gradient).
//   npx tsx bench/kernels.ts [--backends wasm] [--reps 3] [--tokens 4096]
import * as tf from '../src/runtime/tf.js';
import { useBackend } from '../src/runtime/backend.js';
import { chunkedAttention, plainAttention } from '../src/nn/attention.js';
import { conv2d, matMulWeight } from '../src/nn/ops.js';
import { backends, flag, machine, measure, row } from './util.js';

const reps = Number(flag('reps', '3'));
const tokens = Number(flag('tokens', '4096'));
console.log(`# CPU kernels, tfjs default vs reno, ${new Date().toISOString().slice(0, 10)}`);
console.log(`# ${machine()}`);
console.log(row(['backend', 'case', 'GFLOP', 'tfjs s', 'tfjs GFLOP/s', 'reno s', 'reno GFLOP/s', 'speed-up']));
console.log(row(['---', '---', '---', '---', '---', '---', '---', '---']));
for (const b of await backends(flag('backends', 'wasm'))) {
  await useBackend(b, { quiet: true });
  const compare = async (name: string, gflop: number, base: () => tf.Tensor, ours: () => tf.Tensor) => {
    // interleave so that load from other processes hits both alike
    const a = await measure(base, reps);
    const c = await measure(ours, reps);
    console.log(
      row([
        b,
        name,
        gflop.toFixed(1),
        a.seconds,
        (gflop / a.seconds).toFixed(1),
        c.seconds,
        (gflop / c.seconds).toFixed(1),
        `${(a.seconds / c.seconds).toFixed(1)}x`,
      ]),
    );
  };
  // conv 3x3, [1,64,64,320] -> 320: forward + gradient with respect to the input
  const x = tf.randomNormal([1, 64, 64, 320]) as tf.Tensor4D;
  const w = tf.randomNormal([3, 3, 320, 320], 0, 0.05) as tf.Tensor4D;
  const convFlop = (2 * 64 * 64 * 320 * 320 * 9 * 2) / 1e9;
  await compare(
    'conv3x3 64x64x320 fwd+dx',
    convFlop,
    () => tf.tidy(() => tf.grad((t: tf.Tensor) => tf.sum(tf.conv2d(t as tf.Tensor4D, w, 1, 'same')))(x)),
    () => tf.tidy(() => tf.grad((t: tf.Tensor) => tf.sum(conv2d(t as tf.Tensor4D, w, 1, 1)))(x)),
  );
  // Linear 320 -> 1280 over 4096 tokens: forward + input gradient
  const xl = tf.randomNormal([4096, 320]) as tf.Tensor2D;
  const wl = tf.randomNormal([320, 1280], 0, 0.05) as tf.Tensor2D;
  const linFlop = (2 * 4096 * 320 * 1280 * 2) / 1e9;
  await compare(
    'linear 4096x320->1280 fwd+dx',
    linFlop,
    () => tf.tidy(() => tf.grad((t: tf.Tensor) => tf.sum(tf.matMul(t as tf.Tensor2D, wl)))(xl)),
    () => tf.tidy(() => tf.grad((t: tf.Tensor) => tf.sum(matMulWeight(t as tf.Tensor2D, wl)))(xl)),
  );
  // self-attention, 5 heads x 64: forward, then forward + gradient with respect to q, k, v
  const q = tf.randomNormal([1, tokens, 320]);
  const k = tf.randomNormal([1, tokens, 320]);
  const v = tf.randomNormal([1, tokens, 320]);
  const attFlop = (4 * tokens * tokens * 320) / 1e9;
  await compare(
    `self-attention ${tokens} tok fwd`,
    attFlop,
    () => plainAttention(q, k, v, 5),
    () => chunkedAttention(q, k, v, 5),
  );
  const gAll = (f: typeof plainAttention) => () =>
    tf.tidy(() =>
      tf.addN(
        tf
          .grads((a: tf.Tensor, bb: tf.Tensor, c: tf.Tensor) => tf.sum(f(a, bb, c, 5)))([q, k, v])
          .map((g) => tf.sum(g)),
      ),
    );
  await compare(`self-attention ${tokens} tok fwd+grad`, attFlop * 3, gAll(plainAttention), gAll(chunkedAttention));
  tf.dispose([x, w, xl, wl, q, k, v]);
}
// pthread workers (RENO_WASM_THREADS > 1) would keep the process alive
process.exit(0);
