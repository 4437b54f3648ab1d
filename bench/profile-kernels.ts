// Where a backward pass spends its time: tf.profile's kernel times (GPU timestamp queries on WebGPU where the adapter
// has them) summed by kernel name for the UNet and the VAE decoder, forward + input gradient, against the wall time
// (the difference is dispatch, allocation and synchronisation).
//   npx tsx bench/profile-kernels.ts [--arch full|tiny] [--px 512] [--backend webgpu] [--parts unet,vae] [--top 12]
import * as tf from '../src/runtime/tf.js';
import { useBackend } from '../src/runtime/backend.js';
import { buildUnet, buildVae, type Arch } from './full-models.js';
import { flag, machine } from './util.js';

const arch: Arch = flag('arch', 'full') === 'full' ? 'full' : 'tiny';
const full = arch === 'full';
const px = Number(flag('px', full ? '512' : '64'));
const top = Number(flag('top', '12'));
const parts = flag('parts', 'unet,vae').split(',');
const backend = await useBackend(flag('backend', 'webgpu'));
console.log(`# kernel profile, ${full ? 'full' : 'tiny'} architecture, ${px} px, ${backend}; ${machine()}`);

async function profile(name: string, f: () => tf.Tensor, pass = 'forward + input grad'): Promise<void> {
  await f().data(); // warm-up: shader compilation, buffer pools
  {
    const t0 = performance.now();
    const info = await tf.profile(async () => {
      const g = f();
      await g.data();
      return g;
    });
    const wall = performance.now() - t0;
    const kernels = [...info.kernels];
    const byName = new Map<string, { ms: number; n: number; mb: number }>();
    let total = 0;
    for (const k of kernels) {
      const ms = Number(await k.kernelTimeMs) || 0;
      total += ms;
      const e = byName.get(k.name) ?? { ms: 0, n: 0, mb: 0 };
      e.ms += ms;
      e.n++;
      e.mb += k.totalBytesSnapshot / 2 ** 20 / kernels.length;
      byName.set(k.name, e);
    }
    console.log(
      `\n## ${name} ${pass}: wall ${(wall / 1000).toFixed(3)} s, summed kernel time ${(total / 1000).toFixed(3)} s, ${kernels.length} kernels`,
    );
    console.log('| kernel | calls | ms | share |');
    console.log('| --- | --- | --- | --- |');
    for (const [k, e] of [...byName.entries()].sort((a, b) => b[1].ms - a[1].ms).slice(0, top))
      console.log(`| ${k} | ${e.n} | ${e.ms.toFixed(1)} | ${((100 * e.ms) / (total || 1)).toFixed(1)}% |`);
  }
}

const lat = px / 8;
if (parts.includes('vae')) {
  const vae = buildVae(arch);
  const z = tf.randomNormal([1, lat, lat, 4]) as tf.Tensor4D;
  await profile('vae decoder', () => tf.grad((q: tf.Tensor) => tf.sum(vae.decode(q as tf.Tensor4D)))(z));
  await profile('vae decoder', () => vae.decode(z), 'forward');
  vae.dispose();
  z.dispose();
}
if (parts.includes('unet')) {
  const unet = buildUnet(arch);
  const x = tf.randomNormal([1, lat, lat, 4]) as tf.Tensor4D;
  const ctx = tf.randomNormal([1, 77, unet.config.crossAttentionDim[0]]);
  await profile('unet', () => tf.grad((q: tf.Tensor) => tf.sum(unet.forward(q as tf.Tensor4D, [999], ctx)))(x));
  await profile('unet', () => unet.forward(x, [999], ctx), 'forward');
  unet.dispose();
}
