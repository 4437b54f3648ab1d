// GPU programs (compute dispatches) per pass on WebGPU, with the fused kernels on and off. On a GPU a backward pass is
// bound by issuing kernels (bench/RESULTS.md, "GPU"), so the dispatch count is the figure a kernel fusion must lower;
// it does not depend on the adapter or the image size, so a software adapter (lavapipe) measures it too. Also the
// tfjs engine calls, the GPU programs by name (the largest groups) and the peak of live tensor buffers (weights
// included; at larger --px the activations, which the fused programs keep fewer of, dominate it).
//   npx tsx bench/dispatches.ts [--arch tiny|full] [--px 64] [--parts unet,vae,imagereward,aesthetic,pickscore,clip]
import * as tf from '../src/runtime/tf.js';
import { useBackend } from '../src/runtime/backend.js';
import { setFusedKernels } from '../src/runtime/fused.js';
import { RewardInput } from '../rewards/input.js';
import { buildReward, buildUnet, buildVae, REWARD_NAMES, type Arch } from './full-models.js';
import { withPeak } from './measure.js';
import { flag, machine } from './util.js';

const arch: Arch = flag('arch', 'tiny') === 'full' ? 'full' : 'tiny';
const px = Number(flag('px', '64'));
const parts = flag('parts', ['unet', 'vae', ...REWARD_NAMES.filter((n) => n !== 'hpsv2')].join(',')).split(',');
const backend = await useBackend(flag('backend', 'webgpu'));
console.log(`# GPU programs per pass, ${arch} architecture, ${px} px, ${backend}; ${machine()}`);

interface Counted {
  programs: number;
  engineCalls: number;
  byName: Map<string, number>;
  /** highest bytes of distinct live tensor buffers during the pass (weights included) */
  peakBytes: number;
}

/** Runs fn, counting WebGPUBackend.runWebGPUProgram calls (by program class) and engine kernel calls. */
async function count(fn: () => tf.Tensor): Promise<Counted> {
  const be = tf.backend() as unknown as { runWebGPUProgram: (p: object, ...a: unknown[]) => unknown };
  const eng = tf.engine() as unknown as { runKernelFunc: (...a: unknown[]) => unknown };
  const origProgram = be.runWebGPUProgram;
  const origKernel = eng.runKernelFunc;
  const byName = new Map<string, number>();
  let programs = 0;
  let engineCalls = 0;
  be.runWebGPUProgram = function (p: object, ...a: unknown[]) {
    programs++;
    const n = p.constructor.name;
    byName.set(n, (byName.get(n) ?? 0) + 1);
    return origProgram.call(this, p, ...a);
  };
  eng.runKernelFunc = function (...a: unknown[]) {
    engineCalls++;
    return origKernel.apply(this, a);
  };
  let peakBytes = 0;
  try {
    peakBytes = (
      await withPeak(async () => {
        const out = fn();
        await out.data();
        out.dispose();
      })
    ).peakBytes;
  } finally {
    be.runWebGPUProgram = origProgram;
    delete (eng as Partial<typeof eng>).runKernelFunc;
  }
  return { programs, engineCalls, byName, peakBytes };
}

const top = (m: Map<string, number>, n = 8) =>
  [...m.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, n)
    .map(([k, v]) => `${k.replace(/Program$/, '')} ${v}`)
    .join(', ');

const rows: string[] = [];
async function row(part: string, pass: string, fn: () => tf.Tensor): Promise<void> {
  const res: Counted[] = [];
  for (const fused of [false, true]) {
    setFusedKernels(fused);
    tf.dispose(fn()); // warm-up (shaders, kept constants)
    res.push(await count(fn));
  }
  setFusedKernels(true);
  const [off, on] = res;
  const mb = (b: number) => (b / 2 ** 20).toFixed(0);
  rows.push(
    `| ${part} | ${pass} | ${off.programs} | ${on.programs} | ${(off.programs / on.programs).toFixed(2)}x | ${mb(off.peakBytes)} | ${mb(on.peakBytes)} | ${on.engineCalls} | ${top(on.byName)} |`,
  );
  console.log(rows[rows.length - 1]);
}

console.log(
  '| part | pass | programs, fused off | programs, fused on | fewer | peak MB, off | peak MB, on | engine calls (on) | largest groups (on) |',
);
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |');
const lat = px / 8;
if (parts.includes('unet')) {
  const unet = buildUnet(arch);
  const x = tf.randomNormal([1, lat, lat, 4]) as tf.Tensor4D;
  const ctx = tf.randomNormal([1, 77, unet.config.crossAttentionDim[0]]);
  // plain, then as the ReNO loop calls it (pipeline.trace): the timestep and the context are constants
  for (const constantConditioning of [false, true]) {
    const opts = { constantConditioning };
    const name = constantConditioning ? 'unet, constant conditioning' : 'unet';
    await row(name, 'forward', () => unet.forward(x, [999], ctx, opts));
    await row(name, 'forward + input grad', () => tf.grad((q: tf.Tensor) => tf.sum(unet.forward(q as tf.Tensor4D, [999], ctx, opts)))(x));
  }
  unet.conditioning.release();
  unet.dispose();
  tf.dispose([x, ctx]);
}
if (parts.includes('vae')) {
  const vae = buildVae(arch);
  const z = tf.randomNormal([1, lat, lat, 4]) as tf.Tensor4D;
  await row('vae decoder', 'forward', () => vae.decode(z));
  await row('vae decoder', 'forward + input grad', () => tf.grad((q: tf.Tensor) => tf.sum(vae.decode(q as tf.Tensor4D)))(z));
  vae.dispose();
  z.dispose();
}
// the registry's rewards (bench/full-models.ts REWARD_NAMES) that --parts names; the default leaves hpsv2 out
for (const name of REWARD_NAMES) {
  if (!parts.includes(name)) continue;
  const reward = await buildReward(name, arch);
  const prepared = reward.prepare('a photo of an astronaut riding a horse on the moon');
  const image = tf.randomUniform([1, px, px, 3]) as tf.Tensor4D;
  await row(name, 'forward + image grad', () => tf.tidy(() => tf.grad((x: tf.Tensor) => prepared.loss(new RewardInput(x as tf.Tensor4D)))(image)));
  prepared.dispose();
  reward.dispose();
  image.dispose();
}
process.exit(0);
