// Activations and their input gradients as one WGSL program each for tfjs-backend-webgpu (the program interface of its
// unary_op_webgpu.ts). tfjs composes exact GELU from 5 programs forward and its gradient from 7; x sigmoid(a x)
// (SiLU, QuickGELU) from 2-3 and 5. On a GPU, where a backward pass is bound by issuing programs
// (bench/RESULTS.md, "GPU"), each becomes one program each way, and the backward pass needs only x (recomputing the
// cheap terms) instead of x plus saved intermediates.
// Ports torch.nn.functional.gelu (approximate='none'), F.silu and OpenAI CLIP's QuickGELU.
import type * as tf from '../tf.js';
import { callKernel, float, int, registerWebgpuKernel, RenoProgram } from './program.js';

/**
 * erf by Abramowitz & Stegun 7.1.26 (absolute error under 1.5e-7, below float32's resolution of erf near 1; the
 * same formula as tfjs' own WebGPU Erf).
 */
const ERF = `
  fn erfApprox(v : f32) -> f32 {
    let s = sign(v);
    let z = abs(v);
    let t = 1.0 / (1.0 + 0.3275911 * z);
    let poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))));
    return s * (1.0 - poly * exp(-z * z));
  }
  fn sigmoidOf(v : f32) -> f32 {
    return 1.0 / (1.0 + exp(-v));
  }
  fn geluGrad(v : f32) -> f32 {
    return 0.5 * (1.0 + erfApprox(v * 0.7071067811865476)) + v * 0.3989422804014327 * exp(-0.5 * v * v);
  }
  fn xSigmoidGrad(v : f32, a : f32) -> f32 {
    let s = sigmoidOf(a * v);
    return s + a * v * s * (1.0 - s);
  }`;

/** WGSL expressions of the inputs x (and dy), the uniform `uniforms.a`, per element. */
const OPS = {
  /** x Phi(x) */
  geluForward: { inputs: ['x'], expr: 'x[index] * 0.5 * (1.0 + erfApprox(x[index] * 0.7071067811865476))' },
  /** dy (Phi(x) + x phi(x)) */
  geluBackward: {
    inputs: ['x', 'dy'],
    expr: 'dy[index] * geluGrad(x[index])',
  },
  /** x sigmoid(a x) */
  xSigmoidForward: { inputs: ['x'], expr: 'x[index] * sigmoidOf(uniforms.a * x[index])' },
  /** dy (s + a x s (1 - s)), s = sigmoid(a x) */
  xSigmoidBackward: {
    inputs: ['x', 'dy'],
    expr: 'dy[index] * xSigmoidGrad(x[index], uniforms.a)',
  },
} as const;
export type ElementwiseOp = keyof typeof OPS;

class ElementwiseProgram extends RenoProgram {
  constructor(
    shape: number[],
    private readonly op: ElementwiseOp,
  ) {
    super({ key: `renoElementwise_${op}`, inputs: [...OPS[op].inputs], outputShape: shape, uniforms: 'a : f32,' });
  }
  getUserCode(): string {
    return `
  ${ERF}
  fn main(index : i32) {
    if (index >= uniforms.size) { return; }
    result[index] = ${OPS[this.op].expr};
  }`;
  }
}

export const ELEMENTWISE = 'RenoElementwise';
registerWebgpuKernel<{ op: ElementwiseOp; a: number }>(ELEMENTWISE, (inputs, backend, { op, a }) =>
  backend.runWebGPUProgram(
    new ElementwiseProgram(inputs.x.shape, op),
    OPS[op].inputs.map((n) => inputs[n]),
    'float32',
    [float(a)],
  ),
);

/**
 * GEGLU on u = [value | gate] ([N, 2F]): value * gelu(gate) ([N, F]) forward; backward d u = [dy gelu(gate) |
 * dy value gelu'(gate)] ([N, 2F]). tfjs: two slices, GELU's five programs and a product forward; products, GELU's
 * gradient and a concat backward.
 */
class GegluProgram extends RenoProgram {
  constructor(
    shape: number[],
    private readonly backward: boolean,
  ) {
    super({ key: `renoGeglu_${backward}`, inputs: backward ? ['u', 'dy'] : ['u'], outputShape: shape, uniforms: 'F : i32,' });
  }
  getUserCode(): string {
    const body = this.backward
      ? `let row = index / (2 * uniforms.F);
    let col = index % (2 * uniforms.F);
    let f = col % uniforms.F;
    let value = u[row * 2 * uniforms.F + f];
    let gate = u[row * 2 * uniforms.F + uniforms.F + f];
    let d = dy[row * uniforms.F + f];
    result[index] = select(d * value * geluGrad(gate), d * gate * 0.5 * (1.0 + erfApprox(gate * 0.7071067811865476)), col < uniforms.F);`
      : `let row = index / uniforms.F;
    let f = index % uniforms.F;
    let gate = u[row * 2 * uniforms.F + uniforms.F + f];
    result[index] = u[row * 2 * uniforms.F + f] * gate * 0.5 * (1.0 + erfApprox(gate * 0.7071067811865476));`;
    return `
  ${ERF}
  fn main(index : i32) {
    if (index >= uniforms.size) { return; }
    ${body}
  }`;
  }
}

export const GEGLU = 'RenoGeglu';
registerWebgpuKernel(GEGLU, ({ u, dy }, backend) => {
  const f = u.shape[u.shape.length - 1] / 2;
  const shape = dy ? u.shape : [...u.shape.slice(0, -1), f];
  return backend.runWebGPUProgram(new GegluProgram(shape, dy !== undefined), dy ? [u, dy] : [u], 'float32', [int(f)]);
});

/** GEGLU forward (u [..., 2F] -> [..., F]) or, with dy, its input gradient [..., 2F]. WebGPU only. */
export function geglu(u: tf.Tensor, dy?: tf.Tensor): tf.Tensor {
  return callKernel(GEGLU, dy ? { u, dy } : { u });
}

/** A conv filter [kh, kw, in, out] flipped spatially with in and out swapped -> [kh, kw, out, in] (tfjs: Reverse + Transpose). */
class FlipFilterProgram extends RenoProgram {
  constructor(wShape: number[]) {
    const [kh, kw, i, o] = wShape;
    super({ key: 'renoFlipFilter', inputs: ['w'], outputShape: [kh, kw, o, i] });
  }
  getUserCode(): string {
    return `
  fn main(index : i32) {
    if (index >= uniforms.size) { return; }
    let KH = uniforms.wShape[0];
    let KW = uniforms.wShape[1];
    let I = uniforms.wShape[2];
    let O = uniforms.wShape[3];
    let i = index % I;
    let o = (index / I) % O;
    let kw = (index / (I * O)) % KW;
    let kh = index / (I * O * KW);
    result[index] = w[(((KH - 1 - kh) * KW + (KW - 1 - kw)) * I + i) * O + o];
  }`;
  }
}

export const FLIP_FILTER = 'RenoFlipFilter';
registerWebgpuKernel(FLIP_FILTER, ({ w }, backend) => backend.runWebGPUProgram(new FlipFilterProgram(w.shape), [w], 'float32', []));

/** w [kh, kw, in, out] -> w[::-1, ::-1] transposed to [kh, kw, out, in], one program. WebGPU only. */
export function flipFilter(w: tf.Tensor4D): tf.Tensor4D {
  return callKernel(FLIP_FILTER, { w });
}

/** One element-wise program: op on x (and dy, the same shape), with the constant a. WebGPU only. */
export function elementwise(op: ElementwiseOp, x: tf.Tensor, dy?: tf.Tensor, a = 0): tf.Tensor {
  return callKernel(ELEMENTWISE, dy ? { x, dy } : { x }, { op, a });
}
