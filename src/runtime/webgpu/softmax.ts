// The attention's row-wise steps as one WGSL program each for tfjs-backend-webgpu (the program interface of its
// softmax_webgpu.ts): p = softmax(s * scale + mask) over the last axis, and its backward pass
// dS = p (dP - sum(dP p)) * scale. tfjs needs 2-3 programs for the first (mul, add, softmax) and 5 for the second
// (mul, sum, sub, mul, mul); on a GPU a backward pass is bound by issuing programs (bench/RESULTS.md, "GPU").
// One workgroup per row; s, p and dP are [G, n, Lk] (any leading dims folded into rows), the mask block [G | 1, n | 1, Lk].
import type * as tf from '../tf.js';
import { callKernel, float, int, registerWebgpuKernel, RenoProgram, type TensorInfo, type Uniform } from './program.js';

const WG = 128;

/** Row r of [G, n, Lk] is (g, i) = (r / n, r % n); its mask row is (g * mG, i * mI) of [Gm, Rm, Lk]. */
const ROW_UNIFORMS = 'rows : i32, n : i32, Lk : i32, mG : i32, mR : i32, mI : i32, scale : f32,';

const TREE = (op: (a: string, b: string) => string) => `
    workgroupBarrier();
    for (var s2 = ${WG / 2}; s2 > 0; s2 = s2 / 2) {
      if (t < s2) { red[t] = ${op('red[t]', 'red[t + s2]')}; }
      workgroupBarrier();
    }`;

/** One workgroup per row: t its invocation, row, L the row's length (0 past the last row), base its offset. */
const ROW_HEAD = `var<workgroup> red : array<f32, ${WG}>;
  fn main(index : i32) {
    let t = i32(localIndex);
    let row = (index - t) / ${WG};
    let L = select(0, uniforms.Lk, row < uniforms.rows);
    let base = row * uniforms.Lk;`;

class ScaledSoftmaxProgram extends RenoProgram {
  constructor(
    shape: number[],
    rows: number,
    private readonly masked: boolean,
  ) {
    super({
      key: `renoScaledSoftmax_${masked}`,
      inputs: masked ? ['s', 'm'] : ['s'],
      outputShape: shape,
      uniforms: ROW_UNIFORMS,
      workgroupSize: WG,
      workgroups: rows,
    });
  }
  getUserCode(): string {
    const v = this.masked ? 's[base + j] * uniforms.scale + m[mbase + j]' : 's[base + j] * uniforms.scale';
    return `
  ${ROW_HEAD}
    let mbase = ((row / uniforms.n) * uniforms.mG * uniforms.mR + (row % uniforms.n) * uniforms.mI) * uniforms.Lk;
    var mx = -3.402823e38;
    for (var j = t; j < L; j = j + ${WG}) { mx = max(mx, ${v}); }
    red[t] = mx;
    ${TREE((a, b) => `max(${a}, ${b})`)}
    let rowMax = red[0];
    workgroupBarrier();
    var sum = 0.0;
    for (var j = t; j < L; j = j + ${WG}) { sum = sum + exp(${v} - rowMax); }
    red[t] = sum;
    ${TREE((a, b) => `${a} + ${b}`)}
    let total = red[0];
    for (var j = t; j < L; j = j + ${WG}) { result[base + j] = exp(${v} - rowMax) / total; }
  }`;
  }
}

class SoftmaxGradProgram extends RenoProgram {
  constructor(shape: number[], rows: number) {
    super({ key: 'renoSoftmaxGrad', inputs: ['p', 'dp'], outputShape: shape, uniforms: ROW_UNIFORMS, workgroupSize: WG, workgroups: rows });
  }
  getUserCode(): string {
    return `
  ${ROW_HEAD}
    var sum = 0.0;
    for (var j = t; j < L; j = j + ${WG}) { sum = sum + dp[base + j] * p[base + j]; }
    red[t] = sum;
    ${TREE((a, b) => `${a} + ${b}`)}
    let dot = red[0];
    for (var j = t; j < L; j = j + ${WG}) { result[base + j] = p[base + j] * (dp[base + j] - dot) * uniforms.scale; }
  }`;
  }
}

/** rows, n, Lk of a [..., n, Lk] tensor and the mask's broadcast steps. */
function rowUniforms(s: TensorInfo, m: TensorInfo | undefined, scale: number): { rows: number; u: Uniform[] } {
  const shape = s.shape;
  const lk = shape[shape.length - 1];
  const n = shape.length >= 2 ? shape[shape.length - 2] : 1;
  const rows = shape.reduce((p, d) => p * d, 1) / lk;
  const [gm, rm] = m ? [m.shape[0], m.shape[1]] : [1, 1];
  return { rows, u: [int(rows), int(n), int(lk), int(gm === 1 ? 0 : 1), int(rm), int(rm === 1 ? 0 : 1), float(scale)] };
}

export const SCALED_SOFTMAX = 'RenoScaledSoftmax';
export const SOFTMAX_GRAD = 'RenoSoftmaxGrad';

registerWebgpuKernel<{ scale: number }>(SCALED_SOFTMAX, ({ s, m }, backend, { scale }) => {
  const { rows, u } = rowUniforms(s, m, scale);
  return backend.runWebGPUProgram(new ScaledSoftmaxProgram(s.shape, rows, m !== undefined), m ? [s, m] : [s], 'float32', u);
});

registerWebgpuKernel<{ scale: number }>(SOFTMAX_GRAD, ({ p, dp }, backend, { scale }) => {
  const { rows, u } = rowUniforms(p, undefined, scale);
  return backend.runWebGPUProgram(new SoftmaxGradProgram(p.shape, rows), [p, dp], 'float32', u);
});

/** softmax(s * scale + mask) over the last axis of s [G, n, Lk]; mask [G | 1, n | 1, Lk] or null. WebGPU only. */
export function scaledSoftmax(s: tf.Tensor3D, scale: number, mask: tf.Tensor | null): tf.Tensor3D {
  return callKernel(SCALED_SOFTMAX, mask ? { s, m: mask } : { s }, { scale });
}

/** p (dP - sum(dP p, last axis)) * scale, p and dP [G, n, Lk]. WebGPU only. */
export function softmaxGrad(p: tf.Tensor3D, dP: tf.Tensor3D, scale: number): tf.Tensor3D {
  return callKernel(SOFTMAX_GRAD, { p, dp: dP }, { scale });
}
