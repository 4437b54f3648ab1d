// Backend choice: --backend auto|tensorflow|webgpu|wasm|cpu (or RENO_BACKEND). auto takes tfjs-node-gpu / tfjs-node
// when one imports (they need libtensorflow, which offline installs lack), else WebGPU on a hardware adapter, else
// wasm. The choice is printed once (with the adapter for WebGPU).
import * as tf from './tf.js';
import { checkTfjsVersions } from './tf.js';
import * as fs from 'node:fs';
import { createRequire } from 'node:module';
import { UsageError } from '../errors.js';
import { BACKENDS, setting, type BackendName } from './settings.js';
import { setHalfWeights, setHostWeights } from './weight-storage.js';
import { installWasmThreadShim, unrefWasmWorkers, wasmThreads } from './wasm-threads.js';
import { startKernelWatchdog } from './watchdog.js';
import { describeAdapter, setupWebgpu } from './webgpu/setup.js';

export { BACKENDS, type BackendName } from './settings.js';

const require = createRequire(import.meta.url);
let announced = false;
let active: string | null = null;

async function tryTensorflow(): Promise<boolean> {
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      require(pkg);
      if (await tf.setBackend('tensorflow')) return true;
    } catch {
      // not installed, or libtensorflow missing: try the next one
    }
  }
  return false;
}

/**
 * wasm's Identity kernel copies its input into fresh heap memory, and tfjs makes every tensor a gradient saves for
 * the backward pass (and every tf.clone) through it: on wasm each saved activation existed twice, in the 4 GiB heap
 * (a VAE decoder's backward pass: about a third of its peak). Tensors are immutable and wasm's own Reshape already
 * shares its input's buffer by reference count, so Identity does the same here, as the cpu and WebGPU backends' do.
 */
function shareWasmIdentity(): void {
  const original = tf.getKernel('Identity', 'wasm');
  if (!original || (original as { shared?: boolean }).shared) return;
  tf.unregisterKernel('Identity', 'wasm');
  tf.registerKernel({
    ...original,
    shared: true,
    kernelFunc: ((args: { inputs: { x: tf.TensorInfo }; backend: { incRef(d: object): void } }) => {
      const { x } = args.inputs;
      if (x.dtype === 'string') return (original.kernelFunc as unknown as (a: unknown) => tf.TensorInfo)(args);
      args.backend.incRef(x.dataId);
      return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
    }) as unknown as tf.KernelFunc,
  } as tf.KernelConfig);
}

let wasmThreadCount = 1;
async function tryWasm(): Promise<boolean> {
  const wasm = await import('@tensorflow/tfjs-backend-wasm');
  shareWasmIdentity();
  const n = wasmThreads();
  if (n <= 1) {
    const ok = await tf.setBackend('wasm');
    if (ok) startKernelWatchdog('wasm');
    return ok;
  }
  wasm.setThreadsCount(n);
  const restore = installWasmThreadShim(n);
  try {
    const ok = await tf.setBackend('wasm');
    if (ok) {
      wasmThreadCount = wasm.getThreadsCount();
      unrefWasmWorkers();
      startKernelWatchdog('wasm');
    }
    return ok;
  } finally {
    restore();
  }
}

let webgpuWhy = '';

/** On Linux a hardware adapter needs a DRM render node or an NVIDIA device; skip the Dawn probe (and its stderr
 * chatter about lavapipe) on machines without either. Elsewhere (Metal, D3D12) always probe. */
function mayHaveGpu(): boolean {
  if (process.platform !== 'linux') return true;
  try {
    return fs.readdirSync('/dev/dri').some((n) => n.startsWith('renderD')) || fs.existsSync('/dev/nvidia0') || fs.existsSync('/dev/nvidiactl');
  } catch {
    return fs.existsSync('/dev/nvidia0') || fs.existsSync('/dev/nvidiactl');
  }
}
async function tryWebgpu(allowSoftware: boolean): Promise<boolean> {
  const r = await setupWebgpu({ allowSoftware });
  webgpuWhy = r.why ?? '';
  return r.ok;
}

/** RENO_WEIGHT_DTYPE: fp32 (the default) or fp16, the storage of frozen conv and Linear weights (src/runtime/half.ts). */
export function weightsFromEnv(): boolean {
  return setting('weightDtype') === 'fp16';
}

/**
 * RENO_HOST_WEIGHTS: on, off or auto (the default: on for wasm only). Frozen conv and Linear weights then stay in host
 * memory and are copied to the backend where an op uses them (src/nn/module.ts setHostWeights), so models larger than
 * wasm's 4 GiB heap run there.
 */
export function hostWeightsFromEnv(backend: string): boolean {
  const h = setting('hostWeights');
  if (h === 'on' && backend === 'webgpu')
    throw new UsageError('RENO_HOST_WEIGHTS=on is for the CPU backends: WebGPU in Node has no synchronous read-back to take weights off the device');
  return h === 'auto' ? backend === 'wasm' : h === 'on';
}

/** Select and initialise a backend; returns its tfjs name. */
export async function useBackend(requested?: string, opts: { quiet?: boolean } = {}): Promise<string> {
  checkTfjsVersions();
  setHalfWeights(weightsFromEnv());
  const name = requested === undefined ? setting('backend') : (requested as BackendName);
  if (!BACKENDS.includes(name)) throw new UsageError(`unknown backend "${name}" (choose one of ${BACKENDS.join(', ')})`);
  if (active && (name === 'auto' || name === active || (name === 'tensorflow' && active === 'tensorflow'))) {
    setHostWeights(hostWeightsFromEnv(active));
    return active;
  }
  // PROD silences tfjs's console advice ("install tfjs-node") and skips debug-only checks.
  tf.env().set('PROD', true);
  let ok = false;
  switch (name) {
    case 'tensorflow':
      ok = await tryTensorflow();
      if (!ok) throw new UsageError('backend "tensorflow" needs @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node with libtensorflow installed');
      break;
    case 'webgpu':
      ok = await tryWebgpu(true);
      if (!ok) throw new UsageError(`backend "webgpu" is not available: ${webgpuWhy}`);
      break;
    case 'wasm':
      ok = await tryWasm();
      break;
    case 'cpu':
      ok = await tf.setBackend('cpu');
      break;
    case 'auto':
      ok = (await tryTensorflow()) || (mayHaveGpu() && (await tryWebgpu(false))) || (await tryWasm()) || (await tf.setBackend('cpu'));
      break;
  }
  if (!ok) throw new UsageError(`backend "${name}" could not be initialised`);
  await tf.ready();
  active = tf.getBackend();
  setHostWeights(hostWeightsFromEnv(active));
  if (!announced && !opts.quiet) {
    const extra =
      active === 'webgpu' ? `, adapter ${describeAdapter()}` : active === 'wasm' && wasmThreadCount > 1 ? `, ${wasmThreadCount} threads` : '';
    process.stderr.write(`reno: backend ${active}${name === 'auto' ? ' (auto)' : ''}${extra}\n`);
    announced = true;
  }
  return active;
}

export function activeBackend(): string {
  return active ?? tf.getBackend();
}
