// Tiled matrix products for tfjs-webgpu: a 2-D convolution as an implicit GEMM (NHWC input, HWIO filter) and a
// (batched) matMul with transpose flags, each plus an optional bias. Ports nothing upstream: they compute what
// tf.conv2d / tf.fused.conv2d and tf.matMul / tf.fused.matMul compute (tfjs-backend-webgpu's Conv2DMMProgram and
// MatMulPackedProgram), with larger tiles. tfjs' programs give each workgroup of 8x8 invocations a 32x32 output
// tile (4x4 per invocation), which left a large GPU's convolutions and batched products well under its fp32 rate
// (figures: bench/RESULTS.md, "Kernel profile on the H200"). Here a workgroup of
// 256 invocations owns a BM x BN output tile, TM x 4 outputs per invocation, and steps through K in slices of BK,
// loading the next slice into registers while the current one is multiplied from shared memory. All loads are vec4:
// A along K (or along M when transposed), B along N (or along K when transposed); a convolution's slice stays inside
// one filter tap (Cin % BK == 0), so it is BK contiguous input channels of one pixel, one bounds check per pixel.
//
// Opt-in and untimed on a GPU so far: RENO_WEBGPU_CONV=BMxBNxBK and RENO_WEBGPU_MATMUL=BMxBNxBK (64x64x16, 64x64x32,
// 128x64x16 or 128x64x32) turn them on for the products that fit (vec4-aligned sizes, at least MIN_TILES tiles);
// unset or "tfjs" (the default) keeps tfjs' programs. bench/gemm.ts times them on the VAE's and the UNet's shapes.
import * as tf from '../tf.js';
import { UsageError } from '../../errors.js';
import { callKernel, int, registerWebgpuKernel, RenoProgram, type TensorInfo, type Uniform } from './program.js';
import { fusedKernels } from '../fused.js';
import { readSetting, type Env, type Tile } from '../settings.js';

export { parseTile, TILES, type Tile } from '../settings.js';
const THREADS = 256;

let convTile: Tile | null = null;
let matMulTile: Tile | null = null;

/** Sets both tiles from RENO_WEBGPU_CONV and RENO_WEBGPU_MATMUL (setupWebgpu calls it: a bad value is a usage error there). */
export function tilesFromEnv(env: Env): void {
  convTile = readSetting('webgpuConv', env);
  matMulTile = readSetting('webgpuMatmul', env);
}

/** The tiles reno's programs use, or null for tfjs' (tests and benchmarks switch them). */
export function setConvTile(t: Tile | null): void {
  convTile = t;
}
export function setMatMulTile(t: Tile | null): void {
  matMulTile = t;
}

/**
 * A large GPU needs a few hundred workgroups in flight (an H100 has 132 SMs); below this many tiles the smaller tiles
 * of tfjs' programs keep more of it busy (the UNet's 16x16 convolutions: 256 pixels, 2 x 20 tiles of 128 x 64).
 */
export const MIN_TILES = 256;
let minTiles = MIN_TILES;

/** Tests set a lower floor to run the programs on small shapes. */
export function setMinTiles(n: number): void {
  minTiles = n;
}

const enoughTiles = (t: Tile, batch: number, m: number, n: number) => batch * Math.ceil(m / t.bm) * Math.ceil(n / t.bn) >= minTiles;

/** Whether reno's program takes this convolution: on, NHWC, Cin a multiple of BK, Cout of 4, enough tiles. */
export function tiledConvFits(xShape: number[], wShape: number[], stride = 1, pad = 0): boolean {
  return fusedKernels() && tiledConvShapeFits(xShape, wShape, stride, pad);
}

/** tiledConvFits' rule on the shapes and the tile setting alone, whatever the backend. */
export function tiledConvShapeFits(xShape: number[], wShape: number[], stride = 1, pad = 0): boolean {
  const t = convTile;
  if (t === null || xShape.length !== 4 || xShape[3] !== wShape[2] || wShape[2] % t.bk !== 0 || wShape[3] % 4 !== 0) return false;
  const [b, h, w] = xShape;
  const pixels = b * (Math.floor((h + 2 * pad - wShape[0]) / stride) + 1) * (Math.floor((w + 2 * pad - wShape[1]) / stride) + 1);
  return enoughTiles(t, 1, pixels, wShape[3]);
}

/** [batch, M, K, N] of op(a) op(b) for 2-D or 3-D a and b (b's batch 1 or a's), or null if the shapes do not match. */
function gemmDims(aShape: number[], bShape: number[], transA: boolean, transB: boolean): [number, number, number, number] | null {
  if (aShape.length < 2 || aShape.length > 3 || bShape.length < 2 || bShape.length > 3) return null;
  const [ar, ac] = aShape.slice(-2);
  const [br, bc] = bShape.slice(-2);
  const [m, k] = transA ? [ac, ar] : [ar, ac];
  const [k2, n] = transB ? [bc, br] : [br, bc];
  const batch = aShape.length === 3 ? aShape[0] : 1;
  const bBatch = bShape.length === 3 ? bShape[0] : 1;
  if (k !== k2 || (bBatch !== batch && bBatch !== 1) || (bShape.length === 3 && aShape.length === 2)) return null;
  return [batch, m, k, n];
}

/** Whether reno's program takes op(a) op(b): on, vec4-aligned along each operand's rows and the output, enough tiles. */
export function tiledMatMulFits(aShape: number[], bShape: number[], transA: boolean, transB: boolean): boolean {
  const t = matMulTile;
  const d = gemmDims(aShape, bShape, transA, transB);
  if (t === null || !fusedKernels() || d === null) return false;
  const [batch, m, k, n] = d;
  return (transA ? m : k) % 4 === 0 && (transB ? k : n) % 4 === 0 && n % 4 === 0 && enoughTiles(t, batch, m, n);
}

type ALoad = 'conv' | 'rows' | 'cols'; // A [M, K] from the image (im2col), stored [M, K], or stored [K, M] (transposed)
type BLoad = 'rows' | 'cols'; // B [K, N] stored [K, N], or stored [N, K] (transposed)

/**
 * Workgroup wg (flat) = (batch, tile row, tile column) owns output rows [m0, m0 + BM) (a convolution's rows are its
 * output pixels b*Ho*Wo + oy*Wo + ox) and vec4 columns [n0, n0 + BN / 4); invocation t computes rows
 * m0 + (t / 16) * TM + i, i < TM, and vec4 columns n0 + t % 16 (+ 16 for each further group when BN > 64).
 * Shared tiles: As [BK][BM] (A transposed: one row of A^T per k), Bs [BK][BN], both as vec4.
 */
class TiledGemmProgram extends RenoProgram {
  variableComponents: number[];
  outputComponent = 4;
  constructor(
    outShape: number[],
    private readonly t: Tile,
    private readonly a: ALoad,
    private readonly b: BLoad,
    private readonly bias: boolean,
    workgroups: number,
  ) {
    super({
      key: `renoGemm_${a}_${b}_${t.bm}x${t.bn}x${t.bk}_${bias}`,
      inputs: bias ? ['A', 'B', 'bias'] : ['A', 'B'],
      outputShape: outShape,
      uniforms:
        'stride : i32, padT : i32, padL : i32, tilesM : i32, tilesN : i32, M : i32, N : i32, K : i32, strideA : i32, strideB : i32, batches : i32,',
      workgroupSize: THREADS,
      workgroups,
    });
    this.variableComponents = bias ? [4, 4, 4] : [4, 4];
  }

  getUserCode(): string {
    const { bm, bn, bk } = this.t;
    const TM = bm / 16; // rows per invocation (a multiple of 4)
    const CN = bn / 64; // vec4 column groups per invocation
    const K4 = bk / 4; // vec4 along K in one slice
    const LA = (bm * K4) / THREADS; // A loads (vec4) per invocation per slice
    const LB = (bk * (bn / 4)) / THREADS; // B loads (vec4) per invocation per slice
    // straight-line code per register (no private arrays indexed in loops: every compiler keeps these in registers)
    const each = (n: number, f: (i: number) => string) => Array.from({ length: n }, (_, i) => f(i)).join('\n');
    const each2 = (n: number, m: number, f: (i: number, j: number) => string) => each(n, (i) => each(m, (j) => f(i, j)));
    // element e = t + 256 r of a slice; a vec4 along K lands in 4 rows of the shared tile (transposing it)
    const storeT = (tileVar: string, width4: number, row: string, k: string, reg: string) =>
      each(4, (q) => `        ${tileVar}[(${k} + ${q}) * ${width4} + (${row}) / 4][(${row}) % 4] = ${reg}[${q}];`);
    const aSetup =
      this.a === 'conv'
        ? each(
            LA,
            (r) => `    let m_${r} = m0 + (t + ${r * THREADS}) / ${K4};
    let ab_${r} = select(-1, m_${r} / (Wo * Ho), m_${r} < uniforms.M); // image, or -1 past the last pixel
    let ay_${r} = ((m_${r} / Wo) % Ho) * uniforms.stride - uniforms.padT;
    let ax_${r} = (m_${r} % Wo) * uniforms.stride - uniforms.padL;`,
          )
        : '';
    const aLoad = (r: number) => {
      const e = `t + ${r * THREADS}`;
      if (this.a === 'conv')
        return `        {
          let iy = ay_${r} + ky;
          let ix = ax_${r} + kx;
          ra_${r} = vec4<f32>(0.0);
          if (ab_${r} >= 0 && iy >= 0 && iy < H && ix >= 0 && ix < W) {
            ra_${r} = A[((ab_${r} * H + iy) * W + ix) * (Cin / 4) + ci];
          }
        }`;
      if (this.a === 'rows')
        return `        {
          let m = m0 + (${e}) / ${K4};
          let k = k0 + ((${e}) % ${K4}) * 4;
          ra_${r} = select(vec4<f32>(0.0), A[(offA + min(m, uniforms.M - 1) * uniforms.K + min(k, uniforms.K - 4)) / 4], m < uniforms.M && k < uniforms.K);
        }`;
      return `        {
          let k = k0 + (${e}) / ${bm / 4};
          let m = m0 + ((${e}) % ${bm / 4}) * 4;
          ra_${r} = select(vec4<f32>(0.0), A[(offA + min(k, uniforms.K - 1) * uniforms.M + min(m, uniforms.M - 4)) / 4], m < uniforms.M && k < uniforms.K);
        }`;
    };
    const aStore = (r: number) =>
      this.a === 'cols'
        ? `        As[t + ${r * THREADS}] = ra_${r};`
        : storeT('As', bm / 4, `(t + ${r * THREADS}) / ${K4}`, `((t + ${r * THREADS}) % ${K4}) * 4`, `ra_${r}`);
    const bLoad = (r: number) => {
      const e = `t + ${r * THREADS}`;
      if (this.b === 'rows')
        return `        {
          let k = k0 + (${e}) / ${bn / 4};
          let n = n0 * 4 + ((${e}) % ${bn / 4}) * 4;
          rb_${r} = select(vec4<f32>(0.0), B[(offB + min(k, uniforms.K - 1) * uniforms.N + min(n, uniforms.N - 4)) / 4], n < uniforms.N && k < uniforms.K);
        }`;
      return `        {
          let n = n0 * 4 + (${e}) / ${K4};
          let k = k0 + ((${e}) % ${K4}) * 4;
          rb_${r} = select(vec4<f32>(0.0), B[(offB + min(n, uniforms.N - 1) * uniforms.K + min(k, uniforms.K - 4)) / 4], n < uniforms.N && k < uniforms.K);
        }`;
    };
    const bStore = (r: number) =>
      this.b === 'rows'
        ? `        Bs[t + ${r * THREADS}] = rb_${r};`
        : storeT('Bs', bn / 4, `(t + ${r * THREADS}) / ${K4}`, `((t + ${r * THREADS}) % ${K4}) * 4`, `rb_${r}`);
    return `
  var<workgroup> As : array<vec4<f32>, ${(bk * bm) / 4}>; // [BK][BM / 4]
  var<workgroup> Bs : array<vec4<f32>, ${(bk * bn) / 4}>; // [BK][BN / 4]
  fn main(index : i32) {
    let t = i32(localIndex);
    let wg = (index - t) / ${THREADS};
    let tiles = uniforms.tilesM * uniforms.tilesN;
    // a dispatch folded into two dimensions (over 65535 workgroups) may have spare workgroups: they store nothing
    let valid = wg < tiles * uniforms.batches;
    let batch = min(wg / tiles, uniforms.batches - 1);
    let m0 = ((wg % tiles) / uniforms.tilesN) * ${bm};
    let n0 = (wg % uniforms.tilesN) * ${bn / 4}; // in vec4 columns
    let offA = batch * uniforms.strideA;
    let offB = batch * uniforms.strideB;
    let N4 = uniforms.N / 4;
    let col = t % 16;
    let row = (t / 16) * ${TM / 4}; // in vec4 rows of As
    let nK = (uniforms.K + ${bk - 1}) / ${bk};
    ${this.a === 'conv' ? 'let H = uniforms.aShape[1];\n    let W = uniforms.aShape[2];\n    let Cin = uniforms.aShape[3];\n    let KW = uniforms.bShape[1];\n    let Ho = uniforms.outShape[1];\n    let Wo = uniforms.outShape[2];' : ''}
${aSetup}
${each(LA, (r) => `    var ra_${r} = vec4<f32>(0.0);`)}
${each(LB, (r) => `    var rb_${r} = vec4<f32>(0.0);`)}
${each2(TM, CN, (i, j) => `    var acc_${i}_${j} = vec4<f32>(0.0);`)}

    // slice kt of K is loaded into registers in iteration kt, stored to shared memory and multiplied in kt + 1
    for (var kt = 0; kt <= nK; kt++) {
      if (kt > 0) {
        workgroupBarrier();
${each(LA, aStore)}
${each(LB, bStore)}
        workgroupBarrier();
      }
      if (kt < nK) {
        let k0 = kt * ${bk};
        ${
          this.a === 'conv'
            ? `let tap = k0 / Cin; // filter tap (ky, kx) and input channels [ci0, ci0 + BK) of the slice
        let ky = tap / KW;
        let kx = tap % KW;
        let ci = (k0 % Cin) / 4 + t % ${K4};`
            : ''
        }
${each(LA, aLoad)}
${each(LB, bLoad)}
      }
      if (kt > 0) {
        for (var k = 0; k < ${bk}; k++) {
${each(CN, (j) => `          let b_${j} = Bs[k * ${bn / 4} + ${j * 16} + col];`)}
${each(
  TM / 4,
  (i4) => `          let a_${i4} = As[k * ${bm / 4} + row + ${i4}];
${each2(4, CN, (q, j) => `          acc_${i4 * 4 + q}_${j} = fma(vec4<f32>(a_${i4}[${q}]), b_${j}, acc_${i4 * 4 + q}_${j});`)}`,
)}
        }
      }
    }
${each2(
  TM,
  CN,
  (i, j) => `    {
      let m = m0 + row * 4 + ${i};
      let n = n0 + ${j * 16} + col;
      if (valid && m < uniforms.M && n < N4) {
        result[(batch * uniforms.M + m) * N4 + n] = acc_${i}_${j}${this.bias ? ' + bias[n]' : ''};
      }
    }`,
)}
  }`;
  }
}

const TILED_CONV = 'RenoTiledConv2D';
const TILED_MATMUL = 'RenoTiledMatMul';

registerWebgpuKernel<{ stride: number; pad: number }>(TILED_CONV, (inputs, backend, { stride, pad }) => {
  const { x, w, bias } = inputs;
  const t = convTile!;
  const [b, h, wd] = x.shape;
  const [kh, kw, cin, cout] = w.shape;
  const ho = Math.floor((h + 2 * pad - kh) / stride) + 1;
  const wo = Math.floor((wd + 2 * pad - kw) / stride) + 1;
  const m = b * ho * wo;
  const [tilesM, tilesN] = [Math.ceil(m / t.bm), Math.ceil(cout / t.bn)];
  const u: Uniform[] = [stride, pad, pad, tilesM, tilesN, m, cout, kh * kw * cin, 0, 0, 1].map(int);
  const ins: TensorInfo[] = bias ? [x, w, bias] : [x, w];
  return backend.runWebGPUProgram(new TiledGemmProgram([b, ho, wo, cout], t, 'conv', 'rows', !!bias, tilesM * tilesN), ins, 'float32', u);
});

registerWebgpuKernel<{ transA: boolean; transB: boolean }>(TILED_MATMUL, (inputs, backend, { transA, transB }) => {
  const { a, b, bias } = inputs;
  const t = matMulTile!;
  const [batch, m, k, n] = gemmDims(a.shape, b.shape, transA, transB)!;
  const [tilesM, tilesN] = [Math.ceil(m / t.bm), Math.ceil(n / t.bn)];
  const strideB = b.shape.length === 3 && b.shape[0] > 1 ? k * n : 0;
  const u: Uniform[] = [1, 0, 0, tilesM, tilesN, m, n, k, m * k, strideB, batch].map(int);
  const outShape = a.shape.length === 3 ? [batch, m, n] : [m, n];
  const ins: TensorInfo[] = bias ? [a, b, bias] : [a, b];
  return backend.runWebGPUProgram(
    new TiledGemmProgram(outShape, t, transA ? 'cols' : 'rows', transB ? 'cols' : 'rows', !!bias, batch * tilesM * tilesN),
    ins,
    'float32',
    u,
  );
});

/**
 * conv2d(x [B, H, W, Cin], w [kh, kw, Cin, Cout]) with symmetric zero padding `pad`, plus bias [Cout], by reno's
 * tiled program (WebGPU only; tiledConvFits must hold). No gradient of its own: ops.ts conv2d supplies it.
 */
export function tiledConv2d(x: tf.Tensor4D, w: tf.Tensor4D, stride: number, pad: number, bias: tf.Tensor | null): tf.Tensor4D {
  return callKernel(TILED_CONV, bias ? { x, w, bias } : { x, w }, { stride, pad });
}

/**
 * op(a) op(b) (+ bias [N]) for a [M, K] or [G, M, K] (transposed: [.., K, M]) and b [K, N], [1, K, N] or [G, K, N]
 * (transposed: [.., N, K]): reno's tiled program where it is on and fits, else tf.matMul / tf.fused.matMul. No
 * gradient of its own (the callers supply it).
 */
export function matMulTiled<T extends tf.Tensor>(a: T, b: tf.Tensor, transA = false, transB = false, bias: tf.Tensor | null = null): T {
  if (tiledMatMulFits(a.shape, b.shape, transA, transB)) return callKernel(TILED_MATMUL, bias ? { a, b, bias } : { a, b }, { transA, transB });
  if (bias) return tf.fused.matMul({ a, b, transposeA: transA, transposeB: transB, bias }) as unknown as T;
  return tf.matMul(a, b, transA, transB) as unknown as T;
}
