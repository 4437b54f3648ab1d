// Winograd F(m x m, 3x3) convolution for tfjs-webgpu, m = 2 or 4 (Lavin & Gray, "Fast Algorithms for Convolutional
// Neural Networks", 2016): a 3x3 stride-1 convolution computed as (m+2)^2 batched products of [tiles, Cin] x
// [Cin, Cout] plus three transform programs; 9 m^2 / (m+2)^2 fewer multiplications than the direct convolution
// (2.25x for m = 2, 4x for m = 4). Ports nothing upstream: it computes what tf.conv2d (cross-correlation, NHWC, HWIO)
// computes. Each m x m output tile reads an a x a input tile d (a = m + 2); with the paper's constant matrices
//   V = B^T d B (per input channel),  U = G g G^T (per filter),  M = sum over Cin of U . V,  Y = A^T M A.
// The transform programs are generated from the matrices (zero coefficients skipped). The transformed input is
// a^2 / m^2 times the input's size (4x for m = 2, 2.25x for m = 4); a conv whose transform would not fit one binding
// stays direct. Meant for the VAE decoder, bound by its 3x3 convolutions on the GPU (bench/RESULTS.md).
//
// On by default on WebGPU with the other fused programs (RENO_WEBGPU_WINOGRAD=4, the default, or 2; off, or
// RENO_WEBGPU_FUSED=off, for the direct conv); its timings against the direct conv are in bench/RESULTS.md,
// "Winograd F(m x m, 3x3)" (bench/gemm.ts compares them per shape). The products run through ./webgpu-gemm.ts's matMulTiled (tfjs' batched matMul, or reno's tiled
// program with RENO_WEBGPU_MATMUL).
import * as tf from '../tf.js';
import { UsageError } from '../../errors.js';
import { fusedKernels } from '../fused.js';
import { readSetting, type Env } from '../settings.js';
import { matMulTiled } from './gemm.js';
import { callKernel, int, registerWebgpuKernel, RenoProgram } from './program.js';
import { bindingLimit } from './bindings.js';

type M = 2 | 4;
/** The transform matrices B^T [a][a], G [a][3], A^T [m][a] of F(m x m, 3x3) (interpolation points 0, +-1 (, +-2), inf). */
const MATRICES: Record<M, { BT: number[][]; G: number[][]; AT: number[][] }> = {
  2: {
    BT: [
      [1, 0, -1, 0],
      [0, 1, 1, 0],
      [0, -1, 1, 0],
      [0, 1, 0, -1],
    ],
    G: [
      [1, 0, 0],
      [0.5, 0.5, 0.5],
      [0.5, -0.5, 0.5],
      [0, 0, 1],
    ],
    AT: [
      [1, 1, 1, 0],
      [0, 1, -1, -1],
    ],
  },
  4: {
    BT: [
      [4, 0, -5, 0, 1, 0],
      [0, -4, -4, 1, 1, 0],
      [0, 4, -4, -1, 1, 0],
      [0, -2, -1, 2, 1, 0],
      [0, 2, -1, -2, 1, 0],
      [0, 4, 0, -5, 0, 1],
    ],
    G: [
      [1 / 4, 0, 0],
      [-1 / 6, -1 / 6, -1 / 6],
      [-1 / 6, 1 / 6, -1 / 6],
      [1 / 24, 1 / 12, 1 / 6],
      [1 / 24, -1 / 12, 1 / 6],
      [0, 0, 1],
    ],
    AT: [
      [1, 1, 1, 1, 1, 0],
      [0, 1, -1, 2, -2, 0],
      [0, 1, 1, 4, 4, 0],
      [0, 1, -1, 8, -8, 1],
    ],
  },
};

export { parseWinograd } from '../settings.js';
let tileM: M | null = 4;

/** Sets the tile size from RENO_WEBGPU_WINOGRAD (setupWebgpu calls it: a bad value is a usage error there). */
export function winogradFromEnv(env: Env): void {
  tileM = readSetting('webgpuWinograd', env);
}

/** Output tile size m, or null for the direct convolution (tests and benchmarks switch it). */
export function setWinograd(m: M | null): void {
  tileM = m;
}

const THREADS = 64;
const tilesOf = (m: number, b: number, ho: number, wo: number) => b * Math.ceil(ho / m) * Math.ceil(wo / m);

/**
 * Below this many output tiles the direct conv is kept: the filter transform ((m+2)^2 / 9 times the filter, written
 * and read back) and products of a few rows cost more than they save (the UNet's 16x16 and 8x8 latents with 1280
 * channels: 16 and 4 tiles of 4x4 against a 6.6 MB filter).
 */
export const MIN_WINOGRAD_TILES = 64;
let minTiles = MIN_WINOGRAD_TILES;

/** Tests set a lower floor to run the programs on small images. */
export function setWinogradMinTiles(n: number): void {
  minTiles = n;
}

/** Whether a conv takes the Winograd path: on, 3x3, stride 1, channels multiples of 4, enough tiles, transforms within one binding. */
export function winogradFits(xShape: number[], wShape: number[], stride: number, pad: number): boolean {
  return fusedKernels() && winogradShapeFits(xShape, wShape, stride, pad);
}

/** winogradFits' rule on the shapes, the tile setting and the binding limit alone, whatever the backend. */
export function winogradShapeFits(xShape: number[], wShape: number[], stride: number, pad: number): boolean {
  const m = tileM;
  if (m === null || xShape.length !== 4 || wShape[0] !== 3 || wShape[1] !== 3 || stride !== 1) return false;
  const [b, h, w, c] = xShape;
  const k = wShape[3];
  if (c !== wShape[2] || c % 4 !== 0 || k % 4 !== 0 || h + 2 * pad < 3 || w + 2 * pad < 3) return false;
  const tiles = tilesOf(m, b, h + 2 * pad - 2, w + 2 * pad - 2);
  return tiles >= minTiles && (m + 2) ** 2 * tiles * Math.max(c, k) * 4 <= bindingLimit();
}

/** WGSL for `out_i = sum_s mat[i][s] * in(s)` for every row i of mat, zero terms skipped. */
function apply(mat: number[][], input: (s: number) => string, out: (i: number) => string, zero: string): string {
  return mat
    .map((row, i) => {
      const terms = row.flatMap((c, s) =>
        c === 0 ? [] : [c === 1 ? input(s) : c === -1 ? `-${input(s)}` : `${Number.isInteger(c) ? c.toFixed(1) : c} * ${input(s)}`],
      );
      return `    let ${out(i)} = ${terms.length ? terms.join(' + ').replace(/\+ -/g, '- ') : zero};`;
    })
    .join('\n');
}
const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/**
 * WGSL for out = mat X mat^T with X [k][k] read through get(r, s): first t = mat X column by column (t_i_s), then
 * out_i_j = sum_s t_i_s mat[j][s] row by row. Names the results `${out}${i}_${j}` (temporaries `${out}t${i}_${s}`).
 */
function sandwich(mat: number[][], get: (r: number, s: number) => string, out: string, zero: string): string {
  const [n, k] = [mat.length, mat[0].length];
  return [
    ...range(k).map((s) =>
      apply(
        mat,
        (r) => get(r, s),
        (i) => `${out}t${i}_${s}`,
        zero,
      ),
    ),
    ...range(n).map((i) =>
      apply(
        mat,
        (s) => `${out}t${i}_${s}`,
        (j) => `${out}${i}_${j}`,
        zero,
      ),
    ),
  ].join('\n');
}

/** WGSL: work item `index` -> (image b, tile row ty, tile column tx, 4-channel group c4) of the output tiles. */
const TILE_SNIPPET = `
  struct Tile { b : i32, ty : i32, tx : i32, c4 : i32, t : i32 };
  fn tileOf(index : i32, C4 : i32) -> Tile {
    let t = index / C4;
    return Tile(t / (uniforms.tw * uniforms.th), (t / uniforms.tw) % uniforms.th, t % uniforms.tw, index % C4, t);
  }`;

/** x [B, H, W, C] -> V [a^2, T, C]: V = B^T d B for the a x a input tile d of each output tile; one invocation per (tile, 4 channels). */
class InputTransformProgram extends RenoProgram {
  variableComponents = [4];
  outputComponent = 4;
  constructor(
    outShape: number[],
    private readonly m: M,
    work: number,
  ) {
    super({
      key: `renoWinogradInput_${m}`,
      inputs: ['x'],
      outputShape: outShape,
      uniforms: 'pad : i32, tw : i32, th : i32, work : i32,',
      workgroupSize: THREADS,
      workgroups: Math.ceil(work / THREADS),
    });
  }
  getUserCode(): string {
    const { BT } = MATRICES[this.m];
    const a = this.m + 2;
    const z = 'vec4<f32>(0.0)';
    const loads = range(a)
      .flatMap((r) =>
        range(a).map(
          (s) => `    var d${r}_${s} = ${z};
    if (y0 + ${r} >= 0 && y0 + ${r} < H && x0 + ${s} >= 0 && x0 + ${s} < W) { d${r}_${s} = x[((tile.b * H + y0 + ${r}) * W + x0 + ${s}) * C4 + tile.c4]; }`,
        ),
      )
      .join('\n');
    return `
  ${TILE_SNIPPET}
  fn main(index : i32) {
    if (index >= uniforms.work) { return; }
    let H = uniforms.xShape[1];
    let W = uniforms.xShape[2];
    let C4 = uniforms.xShape[3] / 4;
    let T = uniforms.outShape[1];
    let tile = tileOf(index, C4);
    let y0 = tile.ty * ${this.m} - uniforms.pad;
    let x0 = tile.tx * ${this.m} - uniforms.pad;
${loads}
${sandwich(BT, (r, s) => `d${r}_${s}`, 'v', z)} // B^T d B
${range(a)
  .flatMap((i) => range(a).map((j) => `    result[(${i * a + j} * T + tile.t) * C4 + tile.c4] = v${i}_${j};`))
  .join('\n')}
  }`;
  }
}

/**
 * w [3, 3, C, K] -> U [a^2, C, K] = G g G^T per (c, k). With `flip`, the filter of the input gradient instead:
 * g[ky][kx] = w[2 - ky][2 - kx][k][c] (flipped spatially, in and out swapped) without making it first.
 */
class FilterTransformProgram extends RenoProgram {
  constructor(
    outShape: number[],
    private readonly m: M,
    private readonly flip: boolean,
  ) {
    super({
      key: `renoWinogradFilter_${m}_${flip}`,
      inputs: ['w'],
      outputShape: outShape,
      workgroupSize: THREADS,
      workgroups: Math.ceil((outShape[1] * outShape[2]) / THREADS),
    });
  }
  getUserCode(): string {
    const { G } = MATRICES[this.m];
    const a = this.m + 2;
    const g = (ky: number, kx: number) =>
      this.flip ? `w[((${2 - ky} * 3 + ${2 - kx}) * CI + k) * CO + c]` : `w[((${ky} * 3 + ${kx}) * CI + c) * CO + k]`;
    return `
  fn main(index : i32) {
    if (index >= uniforms.size / ${a * a}) { return; }
    let CI = uniforms.wShape[2];
    let CO = uniforms.wShape[3];
    let K = uniforms.outShape[2];
    let k = index % K;
    let c = index / K;
${sandwich(G, g, 'u', '0.0')} // G g G^T
    let CK = uniforms.outShape[1] * K;
${range(a)
  .flatMap((i) => range(a).map((j) => `    result[${i * a + j} * CK + index] = u${i}_${j};`))
  .join('\n')}
  }`;
  }
}

/** M [a^2, T, K] -> y [B, Ho, Wo, K] = A^T m A (+ bias) per (tile, 4 channels). */
class OutputTransformProgram extends RenoProgram {
  variableComponents: number[];
  outputComponent = 4;
  constructor(
    outShape: number[],
    private readonly m: M,
    private readonly bias: boolean,
    work: number,
  ) {
    super({
      key: `renoWinogradOutput_${m}_${bias}`,
      inputs: bias ? ['m', 'bias'] : ['m'],
      outputShape: outShape,
      uniforms: 'tw : i32, th : i32, work : i32,',
      workgroupSize: THREADS,
      workgroups: Math.ceil(work / THREADS),
    });
    this.variableComponents = bias ? [4, 4] : [4];
  }
  getUserCode(): string {
    const { AT } = MATRICES[this.m];
    const [m, a] = [this.m, this.m + 2];
    const z = 'vec4<f32>(0.0)';
    return `
  ${TILE_SNIPPET}
  fn main(index : i32) {
    if (index >= uniforms.work) { return; }
    let Ho = uniforms.outShape[1];
    let Wo = uniforms.outShape[2];
    let K4 = uniforms.outShape[3] / 4;
    let T = uniforms.mShape[1];
    let tile = tileOf(index, K4);
${range(a)
  .flatMap((i) => range(a).map((j) => `    let m${i}_${j} = m[(${i * a + j} * T + tile.t) * K4 + tile.c4];`))
  .join('\n')}
${sandwich(AT, (r, s) => `m${r}_${s}`, 'y', z)} // A^T m A
    let bv = ${this.bias ? 'bias[tile.c4]' : z};
${range(m)
  .flatMap((i) =>
    range(m).map(
      (j) =>
        `    if (tile.ty * ${m} + ${i} < Ho && tile.tx * ${m} + ${j} < Wo) { result[((tile.b * Ho + tile.ty * ${m} + ${i}) * Wo + tile.tx * ${m} + ${j}) * K4 + tile.c4] = y${i}_${j} + bv; }`,
    ),
  )
  .join('\n')}
  }`;
  }
}

const INPUT = 'RenoWinogradInput';
const FILTER = 'RenoWinogradFilter';
const OUTPUT = 'RenoWinogradOutput';

registerWebgpuKernel<{ pad: number; m: M }>(INPUT, ({ x }, backend, { pad, m }) => {
  const [b, h, w, c] = x.shape;
  const [th, tw] = [Math.ceil((h + 2 * pad - 2) / m), Math.ceil((w + 2 * pad - 2) / m)];
  const t = b * th * tw;
  return backend.runWebGPUProgram(new InputTransformProgram([(m + 2) ** 2, t, c], m, (t * c) / 4), [x], 'float32', [
    int(pad),
    int(tw),
    int(th),
    int((t * c) / 4),
  ]);
});
registerWebgpuKernel<{ flip: boolean; m: M }>(FILTER, ({ w }, backend, { flip, m }) => {
  const [, , ci, co] = w.shape;
  return backend.runWebGPUProgram(new FilterTransformProgram([(m + 2) ** 2, flip ? co : ci, flip ? ci : co], m, flip), [w], 'float32', []);
});
registerWebgpuKernel<{ outShape: number[]; m: M }>(OUTPUT, ({ m: mm, bias }, backend, { outShape, m }) => {
  const [b, ho, wo, k] = outShape;
  const [th, tw] = [Math.ceil(ho / m), Math.ceil(wo / m)];
  const work = (b * th * tw * k) / 4;
  return backend.runWebGPUProgram(new OutputTransformProgram(outShape, m, !!bias, work), bias ? [mm, bias] : [mm], 'float32', [
    int(tw),
    int(th),
    int(work),
  ]);
});

/**
 * conv2d(x [B, H, W, C], w [3, 3, C, K], stride 1, symmetric zero padding `pad`) + bias [K] by Winograd F(m x m, 3x3);
 * with `flip`, the conv with w flipped spatially and in/out swapped (a stride-1 conv's input gradient; w is then
 * [3, 3, K, C]). WebGPU only, winogradFits must hold; no gradient of its own (ops.ts conv2d supplies it).
 */
export function winogradConv2d(x: tf.Tensor4D, w: tf.Tensor4D, pad: number, bias: tf.Tensor | null, flip = false): tf.Tensor4D {
  const m = tileM!;
  return tf.tidy(() => {
    const [b, h, wd] = x.shape;
    const k = flip ? w.shape[2] : w.shape[3];
    const v = callKernel<tf.Tensor3D>(INPUT, { x }, { pad, m }); // [a^2, T, C]
    const u = callKernel<tf.Tensor3D>(FILTER, { w }, { flip, m }); // [a^2, C, K]
    const prod = matMulTiled(v, u); // [a^2, T, K]
    const outShape = [b, h + 2 * pad - 2, wd + 2 * pad - 2, k];
    return callKernel<tf.Tensor4D>(OUTPUT, bias ? { m: prod, bias } : { m: prod }, { outShape, m });
  });
}
