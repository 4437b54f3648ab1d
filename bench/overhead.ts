// Where the wall time of a GPU backward pass goes when the summed kernel times do not explain it: per-op dispatch
// overhead (a chain of small and of large element-wise ops), whether the steady state still compiles shaders or creates
// buffers (tfjs-webgpu's pipeline cache and buffer pool, before and after a timed run), how busy the GPU is during the
// run (nvidia-smi sampled every 50 ms, where present) and where the main thread spends its time (a V8 CPU profile of
// the timed run, summarised by self time per function; the raw .cpuprofile of each backward pass goes to --prof-dir if given).
// Each backward pass is timed once per tfjs flag set of --flag-sets (';' between sets, ',' between K=V in a set;
// "default" is tfjs' own settings), so one run compares e.g. WebGPU's command batching.
//   npx tsx bench/overhead.ts [--arch full|tiny] [--px 512] [--backend webgpu] [--parts chain,vae,unet] [--prof-dir DIR]
//                             [--flag-sets "default;WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE=128"]
import * as tf from '../src/runtime/tf.js';
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as inspector from 'node:inspector';
import * as path from 'node:path';
import { useBackend } from '../src/runtime/backend.js';
import { buildUnet, buildVae, type Arch } from './full-models.js';
import { engineCalls } from './measure.js';
import { flag, machine } from './util.js';

const arch: Arch = flag('arch', 'full') === 'full' ? 'full' : 'tiny';
const full = arch === 'full';
const px = Number(flag('px', full ? '512' : '64'));
const parts = flag('parts', 'chain,vae,unet').split(',');
const profDir = flag('prof-dir', '');
const flagSets = flag('flag-sets', 'default')
  .split(';')
  .map((set) => set.trim());
const backend = await useBackend(flag('backend', 'webgpu'));
console.log(`# dispatch overhead, ${full ? 'full' : 'tiny'} architecture, ${px} px, ${backend}; ${machine()}`);

interface WebgpuInternals {
  pipelineCache?: Record<string, unknown>;
  bufferManager?: { numBytesAllocated: number; numBytesUsed: number; getNumFreeBuffers(): number; getNumUsedBuffers(): number };
}
const be = () => tf.backend() as unknown as WebgpuInternals;
const state = () => ({
  pipelines: Object.keys(be().pipelineCache ?? {}).length,
  allocatedMB: (be().bufferManager?.numBytesAllocated ?? 0) / 2 ** 20,
  freeBuffers: be().bufferManager?.getNumFreeBuffers() ?? 0,
});

/** nvidia-smi sampling GPU utilisation every 50 ms; stop() gives the mean and the share of samples above 50 %. */
function sampleGpu(): { stop: () => Promise<string> } {
  let child: ChildProcess | null = null;
  const samples: number[] = [];
  try {
    child = spawn('nvidia-smi', ['--query-gpu=utilization.gpu', '--format=csv,noheader,nounits', '-lms', '50'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    child.on('error', () => (child = null));
    child.stdout?.on('data', (b: Buffer) => {
      for (const l of b.toString().split('\n')) if (l.trim() !== '' && Number.isFinite(Number(l))) samples.push(Number(l));
    });
  } catch {
    child = null;
  }
  return {
    stop: async () => {
      if (child?.pid !== undefined) child.kill(); // a failed spawn (no nvidia-smi) has no pid: kill() would signal our own process group
      await new Promise((r) => setTimeout(r, 50));
      if (samples.length === 0) return 'no nvidia-smi samples';
      const mean = samples.reduce((a, b) => a + b, 0) / samples.length;
      const busy = samples.filter((s) => s > 50).length / samples.length;
      return `GPU utilisation mean ${mean.toFixed(0)} % over ${samples.length} samples, ${(100 * busy).toFixed(0)} % of samples above 50 %`;
    },
  };
}

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
function post<T>(s: inspector.Session, method: string, params?: object): Promise<T> {
  return new Promise((res, rej) => s.post(method, params ?? {}, (e, r) => (e ? rej(e) : res(r as T))));
}

/** Self time by function (top n) of a V8 CPU profile. */
function summarise(profile: { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }, n = 18): string[] {
  const self = new Map<string, number>();
  const byId = new Map(profile.nodes.map((x) => [x.id, x]));
  let total = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    const node = byId.get(profile.samples[i]);
    const dt = (profile.timeDeltas[i] ?? 0) / 1000;
    total += dt;
    if (!node) continue;
    const f = node.callFrame;
    const key = `${f.functionName || '(anonymous)'} ${path.basename(f.url || '')}:${f.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + dt);
  }
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, n);
  return [
    `| function (self time) | ms | share |`,
    '| --- | ---: | ---: |',
    ...rows.map(([k, ms]) => `| ${k} | ${ms.toFixed(0)} | ${((100 * ms) / (total || 1)).toFixed(1)}% |`),
  ];
}

/** Times f once per flag set (tfjs' own values restored after each). */
async function timedSets(name: string, f: () => tf.Tensor): Promise<void> {
  for (const set of flagSets) {
    const pairs = set === 'default' || set === '' ? [] : set.split(',').map((kv) => kv.split('=') as [string, string]);
    const saved = pairs.map(([k]) => [k, tf.env().get(k)] as const);
    for (const [k, v] of pairs) tf.env().set(k, v === 'true' ? true : v === 'false' ? false : Number(v));
    try {
      await timed(pairs.length ? `${name} [${set}]` : name, f);
    } finally {
      for (const [k, v] of saved) tf.env().set(k, v);
    }
  }
}

async function timed(name: string, f: () => tf.Tensor): Promise<void> {
  const w = f(); // warm-up: shaders, buffer pool
  await w.data();
  w.dispose();
  const before = state();
  const session = new inspector.Session();
  session.connect();
  await post(session, 'Profiler.enable');
  await post(session, 'Profiler.setSamplingInterval', { interval: 200 });
  await post(session, 'Profiler.start');
  const gpu = sampleGpu();
  const t0 = performance.now();
  const { value: out, calls: kernels } = engineCalls('runKernelFunc', f); // kernels, without tf.profile's timers
  const tIssued = performance.now();
  await out.data();
  const wall = performance.now() - t0;
  const util = await gpu.stop();
  const { profile } = await post<{ profile: { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] } }>(session, 'Profiler.stop');
  session.disconnect();
  out.dispose();
  const after = state();
  console.log(
    `\n## ${name}: wall ${(wall / 1000).toFixed(3)} s (ops issued in ${((tIssued - t0) / 1000).toFixed(3)} s, then ${((wall - (tIssued - t0)) / 1000).toFixed(3)} s waiting), ${kernels} kernels, ${((1000 * (tIssued - t0)) / kernels).toFixed(0)} us issue time per kernel`,
  );
  console.log(`- ${util}`);
  console.log(
    `- steady state: pipelines ${before.pipelines} -> ${after.pipelines}, buffers allocated ${before.allocatedMB.toFixed(0)} -> ${after.allocatedMB.toFixed(0)} MB, free buffers ${before.freeBuffers} -> ${after.freeBuffers}`,
  );
  for (const l of summarise(profile)) console.log(l);
  if (profDir && name.includes('grad') && !name.includes('[')) {
    fs.mkdirSync(profDir, { recursive: true });
    fs.writeFileSync(path.join(profDir, `${name.replace(/[^a-z0-9]+/gi, '-').replace(/-+$/, '')}.cpuprofile`), JSON.stringify(profile));
  }
}

async function chain(label: string, n: number, size: number): Promise<void> {
  const x = tf.randomNormal([size]);
  const run = () => {
    let y = x.clone();
    for (let i = 0; i < n; i++) {
      const z = tf.add(y, x);
      y.dispose();
      y = z;
    }
    return y;
  };
  const w = run();
  await w.data();
  w.dispose();
  const t0 = performance.now();
  const y = run();
  const issued = performance.now() - t0;
  await y.data();
  const wall = performance.now() - t0;
  y.dispose();
  x.dispose();
  console.log(`| ${label} | ${n} | ${((1000 * issued) / n).toFixed(1)} | ${((1000 * wall) / n).toFixed(1)} |`);
}

if (parts.includes('chain')) {
  console.log('\n## chains of element-wise adds (y = y + x)');
  console.log('| tensor | ops | issue us / op | wall us / op |');
  console.log('| --- | ---: | ---: | ---: |');
  await chain('256 floats', 3000, 256);
  await chain('4 Mi floats (16 MiB)', 1000, 4 * 2 ** 20);
  await chain('32 Mi floats (128 MiB)', 200, 32 * 2 ** 20);
}
const lat = px / 8;
if (parts.includes('vae')) {
  const vae = buildVae(arch);
  const z = tf.randomNormal([1, lat, lat, 4]) as tf.Tensor4D;
  await timed('vae decoder forward', () => vae.decode(z));
  await timedSets('vae decoder forward + input grad', () => tf.grad((q: tf.Tensor) => tf.sum(vae.decode(q as tf.Tensor4D)))(z));
  vae.dispose();
  z.dispose();
}
if (parts.includes('unet')) {
  const unet = buildUnet(arch);
  const x = tf.randomNormal([1, lat, lat, 4]) as tf.Tensor4D;
  const ctx = tf.randomNormal([1, 77, unet.config.crossAttentionDim[0]]);
  await timed('unet forward', () => unet.forward(x, [999], ctx));
  await timedSets('unet forward + input grad', () => tf.grad((q: tf.Tensor) => tf.sum(unet.forward(q as tf.Tensor4D, [999], ctx)))(x));
  unet.dispose();
}
process.exit(0);
