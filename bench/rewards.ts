// Reward benchmark: for each reward, the loss (forward) and the loss with its gradient to the image
// (forward + input gradient, d loss / d image) of one [1, px, px, 3] image in [0, 1] through the shared 224
// preprocessing, as the ReNO loop computes them: seconds, peak tensor memory (weights included) and RSS, per backend,
// at the tiny preset size or the full published architecture with random weights (one model resident at a time).
//   npx tsx bench/rewards.ts [--arch tiny|full] [--backends cpu,wasm,webgpu] [--rewards imagereward,aesthetic,...]
//                            [--px 512] [--reps N] [--warmup 1] [--passes forward,grad] [--depth-scale 0.125,0.25]
// --depth-scale (full only): keep that fraction of every tower's transformer layers, at full width; with two
// fractions the full-depth figures are extrapolated linearly (a ViT's cost and memory are linear in its depth), for
// passes that do not fit the 4 GB wasm heap at full depth.
import * as tf from '../src/runtime/tf.js';
import { RewardInput } from '../rewards/input.js';
import { useBackend } from '../src/runtime/backend.js';
import { BENCH_PROMPT as PROMPT, buildReward, REWARD_NAMES, type Arch, type RewardName } from './full-models.js';
import { backendAlive, backendNote, errorText, measureAsync, wasmHeapMB, type Measured } from './measure.js';
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
const scales = flag('depth-scale', '1').split(',').map(Number);
if (scales.some((f) => !(f > 0 && f <= 1)) || (!full && scales.some((f) => f !== 1)))
  throw new Error('--depth-scale takes fractions in (0, 1], with --arch full');
const scaled = scales.length > 1 || scales[0] !== 1;

console.log(
  `# reward benchmark, ${arch} architecture${full ? ' (random weights)' : ' (tiny preset)'}, image ${px}x${px} -> shared 224 view, ${new Date().toISOString().slice(0, 10)}`,
);
console.log(`# ${machine()}; median of ${reps} run(s) after ${warmup} warm-up`);
console.log(`# peak buffers MB: distinct tensor buffers alive at once, weights included; wasm heap MB: the heap's high-water mark so far`);
if (scaled)
  console.log(
    `# depth: the fraction of every tower's transformer layers kept (full width)${scales.length === 2 ? '; "extrapolated" rows: linear in depth to 1' : ''}`,
  );
const list = await backends(flag('backends', full ? 'wasm' : 'cpu,wasm'));
for (const b of list) {
  await useBackend(b, { quiet: true });
  console.log(`# backend ${await backendNote()}`);
}
console.log(row(['backend', 'reward', ...(scaled ? ['depth'] : []), 'weights MB', 'pass', 'seconds', 'peak buffers MB', 'wasm heap MB', 'RSS MB']));
console.log(row(['---', '---', ...(scaled ? ['---'] : []), '---', '---', '---', '---', '---', '---']));
for (const b of list) {
  await useBackend(b, { quiet: true });
  const image = tf.randomUniform([1, px, px, 3], 0, 1, 'float32', 7) as tf.Tensor4D;
  for (const name of names) {
    const got = new Map<string, { f: number; weightsMB: number; m: Measured }[]>();
    for (const f of scales) {
      const out = (cells: (string | number)[]) => console.log(row([b, name, ...(scaled ? [String(f)] : []), ...cells]));
      const fail = (pass: string, why: string) => out(['', pass, `failed: ${why}`, '', heap(), '']);
      if (!(await backendAlive())) {
        fail('all', `the ${b} backend aborted earlier (out of memory?)`);
        continue;
      }
      const before = tf.memory().numBytes;
      const t0 = performance.now();
      let reward;
      try {
        reward = await buildReward(name, arch, { prompt: PROMPT, depthScale: f });
      } catch (e) {
        fail('build', errorText(e));
        continue;
      }
      const prepared = reward.prepare(PROMPT);
      const weightsMB = (tf.memory().numBytes - before) / 2 ** 20;
      out([
        weightsMB.toFixed(0),
        'build + prepare text',
        (performance.now() - t0) / 1000,
        '',
        heap(),
        (process.memoryUsage().rss / 2 ** 20).toFixed(0),
      ]);
      const passes: [string, () => tf.Tensor][] = [
        ['forward (loss)', () => tf.tidy(() => prepared.loss(new RewardInput(image)))],
        ['forward + image grad', () => tf.tidy(() => tf.grad((x: tf.Tensor) => prepared.loss(new RewardInput(x as tf.Tensor4D)))(image))],
      ];
      for (const [pass, fn] of passes.filter(([p]) => passNames.includes(p.includes('grad') ? 'grad' : 'forward'))) {
        try {
          const m = await measureAsync(fn, reps, warmup);
          out([weightsMB.toFixed(0), pass, m.seconds, m.peakMB.toFixed(0), heap(), m.rssMB.toFixed(0)]);
          got.set(pass, [...(got.get(pass) ?? []), { f, weightsMB, m }]);
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
    // linear in depth through the two measured fractions, evaluated at 1
    for (const [pass, pts] of got) {
      if (pts.length !== 2) continue;
      const [p, q] = pts;
      const at1 = (a: number, c: number) => a + ((c - a) * (1 - p.f)) / (q.f - p.f);
      console.log(
        row([
          b,
          name,
          '1 (extrapolated)',
          at1(p.weightsMB, q.weightsMB).toFixed(0),
          pass,
          at1(p.m.seconds, q.m.seconds),
          at1(p.m.peakMB, q.m.peakMB).toFixed(0),
          '',
          '',
        ]),
      );
    }
  }
  image.dispose();
}
