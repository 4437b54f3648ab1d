// Reward benchmark: for each reward, the loss (forward) and the loss with its gradient to the image
// (forward + input gradient, d loss / d image) of one [1, px, px, 3] image in [0, 1] through the shared 224
// preprocessing, as the ReNO loop computes them: seconds, peak tensor memory (weights included) and RSS, per backend,
// at the tiny preset size or the full published architecture with random weights (one model resident at a time).
//   npx tsx bench/rewards.ts [--arch tiny|full] [--backends cpu,wasm,webgpu] [--rewards imagereward,aesthetic,...]
//                            [--px 512] [--reps N] [--warmup 1] [--passes forward,grad]
import * as tf from '@tensorflow/tfjs';
import { RewardInput } from '../rewards/input.js';
import { useBackend } from '../src/backend.js';
import { BENCH_PROMPT as PROMPT, backendAlive, buildReward, errorText, measureAsync, REWARD_NAMES, wasmHeapMB, type Arch, type RewardName } from './full-models.js';
import { backends, flag, machine, row } from './util.js';

const arch = flag('arch', 'tiny') as Arch;
if (arch !== 'tiny' && arch !== 'full') throw new Error(`--arch must be tiny or full, found "${arch}"`);
const full = arch === 'full';
const names = flag('rewards', REWARD_NAMES.join(',')).split(',') as RewardName[];
for (const n of names) if (!REWARD_NAMES.includes(n)) throw new Error(`unknown reward "${n}" (known: ${REWARD_NAMES.join(', ')})`);
const px = Number(flag('px', '512'));
const reps = Number(flag('reps', full ? '1' : '3'));
const warmup = Number(flag('warmup', '1'));
const passNames = flag('passes', 'forward,grad').split(',');
const heap = () => wasmHeapMB()?.toFixed(0) ?? '';

console.log(`# reward benchmark, ${arch} architecture${full ? ' (random weights)' : ' (tiny preset)'}, image ${px}x${px} -> shared 224 view, ${new Date().toISOString().slice(0, 10)}`);
console.log(`# ${machine()}; median of ${reps} run(s) after ${warmup} warm-up`);
console.log(`# peak buffers MB: distinct tensor buffers alive at once, weights included; wasm heap MB: the heap's high-water mark so far`);
console.log(row(['backend', 'reward', 'weights MB', 'pass', 'seconds', 'peak buffers MB', 'wasm heap MB', 'RSS MB']));
console.log(row(['---', '---', '---', '---', '---', '---', '---', '---']));
for (const b of await backends(flag('backends', full ? 'wasm' : 'cpu,wasm'))) {
  await useBackend(b, { quiet: true });
  const image = tf.randomUniform([1, px, px, 3], 0, 1, 'float32', 7) as tf.Tensor4D;
  for (const name of names) {
    const fail = (pass: string, why: string) => console.log(row([b, name, '', pass, `failed: ${why}`, '', heap(), '']));
    if (!(await backendAlive())) {
      fail('all', `the ${b} backend aborted earlier (out of memory?)`);
      continue;
    }
    const before = tf.memory().numBytes;
    const t0 = performance.now();
    let reward;
    try {
      reward = await buildReward(name, arch, { prompt: PROMPT });
    } catch (e) {
      fail('build', errorText(e));
      continue;
    }
    const prepared = reward.prepare(PROMPT);
    const weightsMB = ((tf.memory().numBytes - before) / 2 ** 20).toFixed(0);
    console.log(row([b, name, weightsMB, 'build + prepare text', (performance.now() - t0) / 1000, '', heap(), (process.memoryUsage().rss / 2 ** 20).toFixed(0)]));
    const passes: [string, () => tf.Tensor][] = [
      ['forward (loss)', () => tf.tidy(() => prepared.loss(new RewardInput(image)))],
      ['forward + image grad', () => tf.tidy(() => tf.grad((x: tf.Tensor) => prepared.loss(new RewardInput(x as tf.Tensor4D)))(image))],
    ];
    for (const [pass, fn] of passes.filter(([p]) => passNames.includes(p.includes('grad') ? 'grad' : 'forward'))) {
      try {
        const m = await measureAsync(fn, reps, warmup);
        console.log(row([b, name, weightsMB, pass, m.seconds, m.peakMB.toFixed(0), heap(), m.rssMB.toFixed(0)]));
      } catch (e) {
        fail(pass, errorText(e));
        if (!(await backendAlive())) break;
      }
    }
    try {
      prepared.dispose();
      reward.dispose();
    } catch {
      // a dead wasm module cannot free anything
    }
  }
  image.dispose();
}
