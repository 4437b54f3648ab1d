// WebGPU in Node through Dawn's binding (npm "webgpu", which ships dawn.node): expose navigator.gpu, look at the
// adapter, then let @tensorflow/tfjs-backend-webgpu register itself (it requests the adapter's full
// maxStorageBufferBindingSize and maxBufferSize). A software adapter (lavapipe, SwiftShader) is used only when
// webgpu is asked for by name; `auto` takes hardware adapters only.
import * as tf from '../tf.js';
import { UsageError } from '../../errors.js';
import { patchSmallUploads } from './uploads.js';
import { readSetting, setting, type Env } from '../settings.js';
import { setConvTile, setMatMulTile } from './gemm.js';
import { setWinograd } from './winograd.js';
import { setFlashAttention } from './flash.js';
import { guardBindings, setBindingLimit, setMaxBlockElems } from './bindings.js';
import { boundPending, boundPool } from './pool.js';

export interface AdapterSummary {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  software: boolean;
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
}

let summary: AdapterSummary | null = null;

export function adapterSummary(): AdapterSummary | null {
  return summary;
}

interface GpuLike {
  requestAdapter(o?: object): Promise<null | {
    info?: Record<string, string>;
    isFallbackAdapter?: boolean;
    limits: { maxStorageBufferBindingSize: number; maxBufferSize: number };
  }>;
}

export async function setupWebgpu(opts: { allowSoftware: boolean }): Promise<{ ok: boolean; why?: string }> {
  let mod: { create: (o: string[]) => GpuLike; globals: Record<string, unknown> };
  try {
    mod = (await import('webgpu')) as unknown as typeof mod;
  } catch (e) {
    return { ok: false, why: `the "webgpu" package did not load (${(e as Error).message.split('\n')[0]})` };
  }
  const g = globalThis as unknown as { navigator?: { gpu?: GpuLike } };
  if (!g.navigator?.gpu) {
    Object.assign(globalThis, mod.globals);
    const gpu = mod.create([]);
    if (g.navigator) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
    else g.navigator = { gpu };
  }
  // reno's own programs' settings (usage errors for bad values, before any device work)
  setConvTile(setting('webgpuConv'));
  setMatMulTile(setting('webgpuMatmul'));
  setWinograd(setting('webgpuWinograd'));
  setFlashAttention(setting('webgpuAttention'));
  const poolBudget = setting('webgpuPoolBytes');
  const pendingBound = setting('webgpuPendingBytes');
  const submitBatch = setting('webgpuSubmitBatch');
  const adapter = await g.navigator!.gpu!.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) return { ok: false, why: 'no WebGPU adapter (no Vulkan/Metal/D3D12 device; on Linux without a GPU install Mesa 25 lavapipe)' };
  const info = adapter.info ?? {};
  const software =
    adapter.isFallbackAdapter === true ||
    info.architecture === 'software' ||
    /llvmpipe|lavapipe|swiftshader/i.test(`${info.device} ${info.description}`);
  summary = {
    vendor: info.vendor ?? '',
    architecture: info.architecture ?? '',
    device: info.device ?? '',
    description: info.description ?? '',
    software,
    maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
    maxBufferSize: adapter.limits.maxBufferSize,
  };
  if (software && !opts.allowSoftware)
    return { ok: false, why: `only a software adapter (${describeAdapter()}); ask for --backend webgpu to use it` };
  // keep every attention block well under one binding (4 bytes per float, a 4x margin for the softmax temporaries)
  setMaxBlockElems(Math.max(1 << 16, Math.floor(Math.min(summary.maxStorageBufferBindingSize, summary.maxBufferSize) / 16)));
  setBindingLimit(Math.min(summary.maxStorageBufferBindingSize, summary.maxBufferSize));
  await import('@tensorflow/tfjs-backend-webgpu');
  if (submitBatch !== null) tf.env().set('WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE', submitBatch);
  const ok = await tf.setBackend('webgpu');
  if (ok) {
    patchSmallUploads();
    boundPool(poolBudget);
    boundPending(pendingBound);
    guardBindings();
    chunkAddN();
  }
  return ok ? { ok } : { ok, why: 'tfjs could not initialise the webgpu backend' };
}

interface AddNBackend {
  device: { limits: { maxStorageBuffersPerShaderStage: number } };
  disposeData(id: object): void;
}
type Info = { dataId: object };

/**
 * tfjs-webgpu 4.22's AddN binds every input in one program; past maxStorageBuffersPerShaderStage - 1 inputs (7 under
 * the default limit of 8) Dawn rejects the pipeline and the result reads as zeros, silently (a global gradient norm
 * over a model's tensors read 0). tfjs' Concat splits its inputs; AddN is re-registered here to do the same: sums of
 * at most that many inputs, then a sum of the sums. Idempotent.
 */
export function chunkAddN(): void {
  const kernel = tf.getKernel('AddN', 'webgpu');
  if (!kernel || (kernel.kernelFunc as { renoChunked?: boolean }).renoChunked) return;
  const sum = kernel.kernelFunc;
  const chunked = ((args: { inputs: unknown; backend: unknown; attrs?: unknown }) => {
    const backend = args.backend as AddNBackend;
    const max = Math.max(2, backend.device.limits.maxStorageBuffersPerShaderStage - 1);
    let xs = Array.from(args.inputs as ArrayLike<Info>);
    const temps: Info[] = [];
    while (xs.length > max) {
      const next: Info[] = [];
      for (let i = 0; i < xs.length; i += max) {
        const part = xs.slice(i, i + max);
        if (part.length === 1) next.push(part[0]);
        else {
          const r = sum({ ...args, inputs: part } as never) as unknown as Info;
          temps.push(r);
          next.push(r);
        }
      }
      xs = next;
    }
    const out = sum({ ...args, inputs: xs } as never);
    for (const t of temps) backend.disposeData(t.dataId);
    return out;
  }) as unknown as tf.KernelFunc & { renoChunked?: boolean };
  chunked.renoChunked = true;
  tf.unregisterKernel('AddN', 'webgpu');
  tf.registerKernel({ ...kernel, kernelFunc: chunked });
}

/**
 * tfjs-webgpu settings from the environment: RENO_WEBGPU_SUBMIT_BATCH=N submits the queued dispatches every N
 * kernels (tfjs' WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE, default 15). Larger batches cost fewer submits but hold freed
 * buffers until the submit, so the buffer pool grows (bench/RESULTS.md). A bad value is a usage error.
 */
export function webgpuFlagsFromEnv(env: Env): Record<string, number> {
  const n = readSetting('webgpuSubmitBatch', env);
  return n === null ? {} : { WEBGPU_DEFERRED_SUBMIT_BATCH_SIZE: n };
}

export function describeAdapter(): string {
  if (!summary) return 'no adapter';
  const s = summary;
  const name = [s.vendor, s.architecture, s.device || s.description].filter(Boolean).join(' ');
  return `${name}${s.software ? ' (software)' : ''}, maxStorageBufferBindingSize ${(s.maxStorageBufferBindingSize / 2 ** 20).toFixed(0)} MiB`;
}
