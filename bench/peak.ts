// What is alive at the peak of a part's forward + backward pass: the distinct tensor buffers at the moment their sum
// was highest, grouped by shape, the kernel that made them and where in reno's code (src/, generators/, rewards/)
// they were made, largest groups first. Full architectures, random weights. This is how the backward pass's memory
// was taken apart (bench/RESULTS.md, "Memory of the backward pass").
//   npx tsx bench/peak.ts [--part vae|unet] [--px 128] [--backend wasm] [--min-mb 1] [--frames 6]
import * as tf from '../src/runtime/tf.js';
import { useBackend } from '../src/runtime/backend.js';
import { buildUnet, buildVae, SD_TURBO_SCHEDULER } from './full-models.js';
import { withPeak } from './measure.js';
import { flag } from './util.js';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const part = flag('part', 'vae');
const px = Number(flag('px', '128'));
const minBytes = Number(flag('min-mb', '1')) * 2 ** 20;
const frames = Number(flag('frames', '6'));
await useBackend(flag('backend', 'wasm'), { quiet: true });
Error.stackTraceLimit = 200;

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OWN = ['src', 'generators', 'rewards'].map((d) => `${ROOT}/${d}/`);

/** The calls in reno's own code on the current stack, innermost first, as file:line. */
function whereInReno(): string {
  return (new Error().stack ?? '')
    .split('\n')
    .filter((l) => OWN.some((d) => l.includes(d)))
    .slice(0, frames)
    .map((l) => l.trim().replace(/^.*?\(?(\/[^()]+):(\d+):\d+\)?$/, (_, f: string, n: string) => `${path.relative(ROOT, f)}:${n}`))
    .join(' < ');
}

// the kernel each buffer came from: engineCalls-style hook on runKernel, an own property removed at the end
const eng = tf.engine() as unknown as { runKernel(name: string, ...rest: unknown[]): unknown };
let kernel = '';
const { runKernel } = eng;
eng.runKernel = function (name, ...rest) {
  kernel = name;
  return runKernel.call(this, name, ...rest);
};

let fn: (x: tf.Tensor) => tf.Tensor;
let x: tf.Tensor;
if (part === 'vae') {
  const vae = buildVae('full');
  x = tf.randomNormal([1, px / 8, px / 8, vae.config.latentChannels], 0, 1, 'float32', 6);
  fn = (v) => vae.decode(v as tf.Tensor4D);
} else if (part === 'unet') {
  const unet = buildUnet('full');
  const ctx = tf.randomNormal([1, 77, unet.config.crossAttentionDim[0]], 0, 1, 'float32', 5); // a prompt's context: its values do not matter here
  const t = SD_TURBO_SCHEDULER.num_train_timesteps - 1;
  x = tf.randomNormal([1, px / 8, px / 8, 4], 0, 1, 'float32', 6);
  fn = (v) => unet.forward(v as tf.Tensor4D, [t], ctx, { constantConditioning: true });
} else throw new Error(`--part ${part}: vae or unet`);

const base = tf.memory().numBytes;
const t0 = Date.now();
const { peakBytes: peak, atPeak } = await withPeak(
  async () => {
    const g = tf.grad((v: tf.Tensor) => tf.sum(fn(v)))(x);
    await g.data();
    g.dispose();
  },
  { describe: (t) => (t.shape.reduce((a, b) => a * b, 1) * 4 >= minBytes ? `${kernel} at ${whereInReno()}` : '') },
);
delete (eng as { runKernel?: unknown }).runKernel;
const seconds = (Date.now() - t0) / 1000;
const mb = (b: number) => (b / 2 ** 20).toFixed(1);
const groups = new Map<string, { n: number; bytes: number }>();
for (const l of atPeak) {
  if (l.bytes < minBytes) continue;
  const key = `[${l.shape}] ${l.what}`;
  const e = groups.get(key) ?? { n: 0, bytes: 0 };
  groups.set(key, { n: e.n + 1, bytes: e.bytes + l.bytes });
}
console.log(
  `# ${part}, ${px} px, ${tf.getBackend()}: forward + input gradient ${seconds.toFixed(1)} s; peak ${mb(peak - base)} MB of tensor buffers (${mb(base)} MB before the pass)`,
);
console.log(`# alive at the peak, tensors of ${mb(minBytes)} MB or more: count x [shape] MB, made by kernel at reno's calls (innermost first)`);
for (const [key, e] of [...groups.entries()].sort((a, b) => b[1].bytes - a[1].bytes))
  console.log(`${e.n} x ${key.split(' ')[0]} ${mb(e.bytes)} MB: ${key.slice(key.indexOf(' ') + 1)}`);
