// Winograd F(2x2, 3x3) convolution for tfjs-webgpu (Lavin & Gray, "Fast Algorithms for Convolutional Neural
// Networks", 2016): a 3x3 stride-1 convolution computed as 16 batched products of [tiles, Cin] x [Cin, Cout], 2.25x
// fewer multiplications than the direct convolution, plus three cheap transform programs. Ports nothing upstream:
// it computes what tf.conv2d (cross-correlation, NHWC, HWIO) computes. Each 2x2 output tile reads a 4x4 input
// tile d; with the constant matrices B^T, G, A^T of the paper
//   V = B^T d B (per input channel),  U = G g G^T (per filter), M = sum over Cin of U . V,  Y = A^T M A.
// Meant for the VAE decoder, bound by its 3x3 convolutions on the GPU (bench/RESULTS.md). The transformed input and
// output are 4x their tensors ([16, tiles, C]); a conv whose transform would not fit one binding stays direct.
//
// On by default on WebGPU (with the other fused programs; RENO_WEBGPU_WINOGRAD=off or RENO_WEBGPU_FUSED=off turns it
// off): on lavapipe the full VAE decoder's forward + input gradient at 128 px took 67.9 s against 104.9 s direct,
// within 1.3e-5 of it; on a GPU it is untimed so far (bench/gemm.ts compares it per shape). The 16 products run
// through ./webgpu-gemm.ts's matMulTiled (tfjs' batched matMul, or reno's tiled program with RENO_WEBGPU_MATMUL).
import * as tf from '@tensorflow/tfjs';
import { UsageError } from '../errors.js';
import { fusedKernels } from './fused.js';
import { matMulTiled } from './webgpu-gemm.js';
import { callKernel, int, registerWebgpuKernel, RenoProgram } from './webgpu-program.js';

/** RENO_WEBGPU_WINOGRAD's value: on (or unset) or off; anything else is a usage error naming the variable. */
export function parseWinograd(raw: string | undefined): boolean {
  if (raw === undefined || raw === '' || raw === 'on') return true;
  if (raw === 'off') return false;
  throw new UsageError(`RENO_WEBGPU_WINOGRAD must be "on" or "off" (got "${raw}")`);
}
let enabled = parseWinograd(process.env.RENO_WEBGPU_WINOGRAD);
let maxBindingBytes = 128 * 2 ** 20; // lavapipe's; setupWebgpu sets the adapter's

export function setWinograd(on: boolean): void {
  enabled = on;
}
export function setWinogradBindingLimit(bytes: number): void {
  maxBindingBytes = bytes;
}

const THREADS = 64;
/** WGSL: work item `index` -> (image b, tile row ty, tile column tx, 4-channel group c4) of the 2x2 output tiles. */
const TILE_SNIPPET = `
  struct Tile { b : i32, ty : i32, tx : i32, c4 : i32, t : i32 };
  fn tileOf(index : i32, C4 : i32) -> Tile {
    let t = index / C4;
    return Tile(t / (uniforms.tw * uniforms.th), (t / uniforms.tw) % uniforms.th, t % uniforms.tw, index % C4, t);
  }`;
const tilesOf = (b: number, ho: number, wo: number) => b * Math.ceil(ho / 2) * Math.ceil(wo / 2);

/** Whether a conv takes the Winograd path: on, 3x3, stride 1, channels multiples of 4, transforms within one binding. */
export function winogradFits(xShape: number[], wShape: number[], stride: number, pad: number): boolean {
  if (!enabled || !fusedKernels() || xShape.length !== 4 || wShape[0] !== 3 || wShape[1] !== 3 || stride !== 1) return false;
  const [b, h, w, c] = xShape;
  const k = wShape[3];
  if (c !== wShape[2] || c % 4 !== 0 || k % 4 !== 0 || h + 2 * pad < 3 || w + 2 * pad < 3) return false;
  return 16 * tilesOf(b, h + 2 * pad - 2, w + 2 * pad - 2) * Math.max(c, k) * 4 <= maxBindingBytes;
}

/** x [B, H, W, C] -> V [16, T, C]: V = B^T d B for the 4x4 input tile d of each 2x2 output tile; one invocation per (tile, 4 channels). */
class InputTransformProgram extends RenoProgram {
  variableComponents = [4];
  outputComponent = 4;
  constructor(outShape: number[], work: number) {
    super({ key: 'renoWinogradInput', inputs: ['x'], outputShape: outShape, uniforms: 'pad : i32, tw : i32, th : i32, work : i32,', workgroupSize: THREADS, workgroups: Math.ceil(work / THREADS) });
  }
  getUserCode(): string {
    const d = (r: number, s: number) => `d${r}${s}`;
    const rows = [0, 1, 2, 3];
    // B^T applied to the rows of a 4x4 block (r: the block's row index) -> the named results
    const bt = (get: (r: number) => string, out: (i: number) => string) => `
      let ${out(0)} = ${get(0)} - ${get(2)};
      let ${out(1)} = ${get(1)} + ${get(2)};
      let ${out(2)} = ${get(2)} - ${get(1)};
      let ${out(3)} = ${get(1)} - ${get(3)};`;
    return `
  ${TILE_SNIPPET}
  fn main(index : i32) {
    if (index >= uniforms.work) { return; }
    let H = uniforms.xShape[1];
    let W = uniforms.xShape[2];
    let C4 = uniforms.xShape[3] / 4;
    let T = uniforms.outShape[1];
    let tile = tileOf(index, C4);
    let b = tile.b;
    let c4 = tile.c4;
    let t = tile.t;
    let y0 = tile.ty * 2 - uniforms.pad;
    let x0 = tile.tx * 2 - uniforms.pad;
    ${rows
      .map((r) =>
        rows
          .map(
            (s) => `var ${d(r, s)} = vec4<f32>(0.0);
    if (y0 + ${r} >= 0 && y0 + ${r} < H && x0 + ${s} >= 0 && x0 + ${s} < W) { ${d(r, s)} = x[((b * H + y0 + ${r}) * W + x0 + ${s}) * C4 + c4]; }`,
          )
          .join('\n    '),
      )
      .join('\n    ')}
    ${rows.map((s) => bt((r) => d(r, s), (i) => `u${i}${s}`)).join('')}
    ${rows.map((i) => bt((s) => `u${i}${s}`, (j) => `v${i}${j}`)).join('')}
    ${rows.map((i) => rows.map((j) => `result[(${i * 4 + j} * T + t) * C4 + c4] = v${i}${j};`).join('\n    ')).join('\n    ')}
  }`;
  }
}

/**
 * w [3, 3, C, K] -> U [16, C, K] = G g G^T per (c, k). With `flip`, the filter of the input gradient instead:
 * g[ky][kx] = w[2 - ky][2 - kx][k][c] (flipped spatially, in and out swapped) without making it first.
 */
class FilterTransformProgram extends RenoProgram {
  constructor(
    outShape: number[],
    private readonly flip: boolean,
  ) {
    super({ key: `renoWinogradFilter_${flip}`, inputs: ['w'], outputShape: outShape, workgroupSize: THREADS, workgroups: Math.ceil((outShape[1] * outShape[2]) / THREADS) });
  }
  getUserCode(): string {
    const idx = [0, 1, 2];
    const g = (ky: number, kx: number) =>
      this.flip ? `w[((${2 - ky} * 3 + ${2 - kx}) * CI + k) * CO + c]` : `w[((${ky} * 3 + ${kx}) * CI + c) * CO + k]`;
    // G applied along one axis of a block with 3 entries -> 4
    const gm = (get: (r: number) => string, out: (i: number) => string) => `
    let ${out(0)} = ${get(0)};
    let ${out(1)} = 0.5 * (${get(0)} + ${get(1)} + ${get(2)});
    let ${out(2)} = 0.5 * (${get(0)} - ${get(1)} + ${get(2)});
    let ${out(3)} = ${get(2)};`;
    return `
  fn main(index : i32) {
    if (index >= uniforms.size / 16) { return; }
    let CI = uniforms.wShape[2];
    let CO = uniforms.wShape[3];
    let K = uniforms.outShape[2];
    let k = index % K;
    let c = index / K;
    ${idx.map((kx) => gm((ky) => g(ky, kx), (i) => `a${i}${kx}`)).join('')}
    ${[0, 1, 2, 3].map((i) => gm((kx) => `a${i}${kx}`, (j) => `u${i}${j}`)).join('')}
    let CK = uniforms.outShape[1] * K;
    ${[0, 1, 2, 3].map((i) => [0, 1, 2, 3].map((j) => `result[${i * 4 + j} * CK + index] = u${i}${j};`).join('\n    ')).join('\n    ')}
  }`;
  }
}

/** M [16, T, K] -> y [B, Ho, Wo, K] = A^T m A (+ bias) per (tile, 4 channels). */
class OutputTransformProgram extends RenoProgram {
  variableComponents: number[];
  outputComponent = 4;
  constructor(
    outShape: number[],
    private readonly bias: boolean,
    work: number,
  ) {
    super({ key: `renoWinogradOutput_${bias}`, inputs: bias ? ['m', 'bias'] : ['m'], outputShape: outShape, uniforms: 'tw : i32, th : i32, work : i32,', workgroupSize: THREADS, workgroups: Math.ceil(work / THREADS) });
    this.variableComponents = bias ? [4, 4] : [4];
  }
  getUserCode(): string {
    const r4 = [0, 1, 2, 3];
    const at = (get: (r: number) => string, out: (i: number) => string) => `
    let ${out(0)} = ${get(0)} + ${get(1)} + ${get(2)};
    let ${out(1)} = ${get(1)} - ${get(2)} - ${get(3)};`;
    return `
  ${TILE_SNIPPET}
  fn main(index : i32) {
    if (index >= uniforms.work) { return; }
    let Ho = uniforms.outShape[1];
    let Wo = uniforms.outShape[2];
    let K4 = uniforms.outShape[3] / 4;
    let T = uniforms.mShape[1];
    let tile = tileOf(index, K4);
    let b = tile.b;
    let k4 = tile.c4;
    let t = tile.t;
    let ty = tile.ty;
    let tx = tile.tx;
    ${r4.map((i) => r4.map((j) => `let m${i}${j} = m[(${i * 4 + j} * T + t) * K4 + k4];`).join('\n    ')).join('\n    ')}
    ${r4.map((s) => at((r) => `m${r}${s}`, (i) => `p${i}${s}`)).join('')}
    ${[0, 1].map((i) => at((s) => `p${i}${s}`, (j) => `y${i}${j}`)).join('')}
    let bv = ${this.bias ? 'bias[k4]' : 'vec4<f32>(0.0)'};
    ${[0, 1]
      .map((i) =>
        [0, 1]
          .map(
            (j) => `if (ty * 2 + ${i} < Ho && tx * 2 + ${j} < Wo) { result[((b * Ho + ty * 2 + ${i}) * Wo + tx * 2 + ${j}) * K4 + k4] = y${i}${j} + bv; }`,
          )
          .join('\n    '),
      )
      .join('\n    ')}
  }`;
  }
}

const INPUT = 'RenoWinogradInput';
const FILTER = 'RenoWinogradFilter';
const OUTPUT = 'RenoWinogradOutput';

registerWebgpuKernel<{ pad: number }>(INPUT, ({ x }, backend, { pad }) => {
  const [b, h, w, c] = x.shape;
  const [th, tw] = [Math.ceil((h + 2 * pad - 2) / 2), Math.ceil((w + 2 * pad - 2) / 2)];
  const t = b * th * tw;
  return backend.runWebGPUProgram(new InputTransformProgram([16, t, c], (t * c) / 4), [x], 'float32', [int(pad), int(tw), int(th), int((t * c) / 4)]);
});
registerWebgpuKernel<{ flip: boolean }>(FILTER, ({ w }, backend, { flip }) => {
  const [, , ci, co] = w.shape;
  return backend.runWebGPUProgram(new FilterTransformProgram(flip ? [16, co, ci] : [16, ci, co], flip), [w], 'float32', []);
});
registerWebgpuKernel<{ outShape: number[] }>(OUTPUT, ({ m, bias }, backend, { outShape }) => {
  const [b, ho, wo, k] = outShape;
  const [th, tw] = [Math.ceil(ho / 2), Math.ceil(wo / 2)];
  const work = (b * th * tw * k) / 4;
  return backend.runWebGPUProgram(new OutputTransformProgram(outShape, !!bias, work), bias ? [m, bias] : [m], 'float32', [int(tw), int(th), int(work)]);
});

/**
 * conv2d(x [B, H, W, C], w [3, 3, C, K], stride 1, symmetric zero padding `pad`) + bias [K] by Winograd F(2x2, 3x3);
 * with `flip`, the conv with w flipped spatially and in/out swapped (a stride-1 conv's input gradient; w is then
 * [3, 3, K, C]). WebGPU only, winogradFits must hold; no gradient of its own (ops.ts conv2d supplies it).
 */
export function winogradConv2d(x: tf.Tensor4D, w: tf.Tensor4D, pad: number, bias: tf.Tensor | null, flip = false): tf.Tensor4D {
  return tf.tidy(() => {
    const [b, h, wd] = x.shape;
    const k = flip ? w.shape[2] : w.shape[3];
    const v = callKernel<tf.Tensor3D>(INPUT, { x }, { pad }); // [16, T, C]
    const u = callKernel<tf.Tensor3D>(FILTER, { w }, { flip }); // [16, C, K]
    const m = matMulTiled(v, u); // [16, T, K]
    const outShape = [b, h + 2 * pad - 2, wd + 2 * pad - 2, k];
    return callKernel<tf.Tensor4D>(OUTPUT, bias ? { m, bias } : { m }, { outShape });
  });
}
