// What reno's own WGSL kernels share: tfjs-backend-webgpu 4.22's program interface (its webgpu_program.ts: the
// fields runWebGPUProgram reads, the shader preamble it writes around getUserCode(): inputs as arrays named by
// variableNames, `result`, `uniforms` with the shapes, `size` and the program's own uniforms, main(index) called with
// the flat invocation index), registering a kernel for the webgpu backend, and calling one.
import * as tf from '../tf.js';

export interface TensorInfo {
  dataId: object;
  shape: number[];
  dtype: string;
}
/** A program's own uniform value, in the order of its `uniforms` declaration. */
export type Uniform = { type: 'int32' | 'float32'; data: number[] };
export interface WebgpuBackend {
  runWebGPUProgram(program: object, inputs: TensorInfo[], dtype: 'float32' | 'int32', uniforms?: Uniform[]): TensorInfo;
  disposeData(dataId: object): boolean;
}

export const int = (x: number): Uniform => ({ type: 'int32', data: [x] });
export const float = (x: number): Uniform => ({ type: 'float32', data: [x] });

/**
 * A program over a flat invocation index: one invocation per output element (element-wise programs), or
 * `workgroups` workgroups of `workgroupSize` invocations (reductions: one workgroup per reduced group). Sizes go in
 * uniforms, never into the shader text: tfjs caches a compiled shader by its shaderKey (plus ranks and dtypes).
 */
export abstract class RenoProgram {
  variableNames: string[];
  uniforms?: string;
  outputShape: number[];
  shaderKey: string;
  dispatchLayout: { x: number[] };
  dispatch: [number, number, number];
  workgroupSize: [number, number, number];
  size = true;
  constructor(o: { key: string; inputs: string[]; outputShape: number[]; uniforms?: string; workgroupSize?: number; workgroups?: number }) {
    const wg = o.workgroupSize ?? 256;
    this.variableNames = o.inputs;
    if (o.uniforms) this.uniforms = o.uniforms;
    this.outputShape = o.outputShape;
    this.shaderKey = o.key;
    this.dispatchLayout = { x: o.outputShape.map((_, i) => i) };
    this.workgroupSize = [wg, 1, 1];
    this.dispatch = [o.workgroups ?? Math.ceil(o.outputShape.reduce((p, d) => p * d, 1) / wg), 1, 1];
  }
  abstract getUserCode(): string;
}

/** Registers `name` for the webgpu backend. */
export function registerWebgpuKernel<A>(
  name: string,
  fn: (inputs: Record<string, TensorInfo>, backend: WebgpuBackend, attrs: A) => TensorInfo | TensorInfo[],
): void {
  tf.registerKernel({
    kernelName: name,
    backendName: 'webgpu',
    kernelFunc: (({ inputs, backend, attrs }: { inputs: Record<string, TensorInfo>; backend: WebgpuBackend; attrs: A }) =>
      fn(inputs, backend, attrs)) as unknown as tf.KernelFunc,
  });
}

/** Runs a registered kernel through the engine, on whichever backend it is registered for (most: webgpu only). */
export function callKernel<T extends tf.Tensor | tf.Tensor[]>(name: string, inputs: Record<string, tf.Tensor>, attrs: object = {}): T {
  return tf.engine().runKernel(name, inputs as unknown as tf.NamedTensorMap, attrs as unknown as tf.NamedAttrMap) as unknown as T;
}
