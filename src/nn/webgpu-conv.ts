// A tiled implicit-GEMM 2-D convolution for tfjs-webgpu, NHWC with an HWIO filter, plus an optional bias.
// Ports nothing upstream: it computes what tf.conv2d / tf.fused.conv2d compute (tfjs-backend-webgpu's Conv2DMMProgram,
// conv2d_mm_webgpu.ts), with larger tiles. tfjs' program gives each workgroup of 8x8 invocations a 32x32 output tile
// (4x4 per invocation); on the H200 the VAE decoder's convolutions ran at about a quarter of the GPU's fp32 rate
// (bench/RESULTS.md, "Kernel profile"). Here a workgroup of 256 invocations owns a BM (pixels) x BN (output channels)
// tile, TM x 4 outputs per invocation, and steps through K = kh * kw * Cin in slices of BK that stay inside one
// filter tap (Cin % BK == 0), so one slice of the im2col row is BK contiguous input channels of one pixel: vec4 loads
// with one bounds check per pixel. The next slice is loaded into registers while the current one is multiplied.
//
// Opt-in and untimed on a GPU so far: RENO_WEBGPU_CONV=BMxBNxBK (64x64x16, 64x64x32, 128x64x16 or 128x64x32) turns it
// on for every convolution that fits (Cin % BK == 0, Cout % 4 == 0, at least MIN_TILES tiles), tfjs (the default) keeps Conv2DMMProgram;
// bench/conv.ts times both on the shapes of the VAE decoder and the UNet.
import * as tf from '@tensorflow/tfjs';
import { UsageError } from '../errors.js';
import { callKernel, int, registerWebgpuKernel, RenoProgram, type TensorInfo, type Uniform } from './webgpu-program.js';

export interface ConvTile {
  bm: number;
  bn: number;
  bk: number;
}
export const CONV_TILES: readonly string[] = ['64x64x16', '64x64x32', '128x64x16', '128x64x32'];
const THREADS = 256;

/** RENO_WEBGPU_CONV's value: 'tfjs' (or unset) for tfjs' own program, or one of CONV_TILES. A bad value is a usage error. */
export function parseConvTile(raw: string | undefined): ConvTile | null {
  if (raw === undefined || raw === '' || raw === 'tfjs') return null;
  if (!CONV_TILES.includes(raw)) throw new UsageError(`RENO_WEBGPU_CONV must be "tfjs" or one of ${CONV_TILES.join(', ')} (got "${raw}")`);
  const [bm, bn, bk] = raw.split('x').map(Number);
  return { bm, bn, bk };
}

let tile: ConvTile | null = parseConvTile(process.env.RENO_WEBGPU_CONV);

/** The tile reno's conv program uses, or null for tfjs' Conv2DMMProgram (tests and benchmarks switch it). */
export function setConvTile(t: ConvTile | null): void {
  tile = t;
}
export function convTile(): ConvTile | null {
  return tile;
}

/**
 * A large GPU needs a few hundred workgroups in flight (an H100 has 132 SMs); below this many tiles the smaller tiles
 * of tfjs' program keep more of it busy (the UNet's 16x16 convolutions: 256 pixels, 2 x 20 tiles of 128 x 64).
 */
export const MIN_TILES = 256;
let minTiles = MIN_TILES;

/** Tests set a lower floor to run the program on small shapes. */
export function setConvMinTiles(n: number): void {
  minTiles = n;
}

/** Whether reno's program takes this convolution: on, NHWC, Cin a multiple of BK, Cout of 4, enough tiles. */
export function tiledConvFits(xShape: number[], wShape: number[], stride = 1, pad = 0): boolean {
  if (tile === null || xShape.length !== 4 || xShape[3] !== wShape[2] || wShape[2] % tile.bk !== 0 || wShape[3] % 4 !== 0) return false;
  const [b, h, w] = xShape;
  const pixels = b * (Math.floor((h + 2 * pad - wShape[0]) / stride) + 1) * (Math.floor((w + 2 * pad - wShape[1]) / stride) + 1);
  return Math.ceil(pixels / tile.bm) * Math.ceil(wShape[3] / tile.bn) >= minTiles;
}

/**
 * Workgroup wg (flat) owns output rows [m0, m0 + BM) (pixels b*Ho*Wo + oy*Wo + ox) and columns [n0, n0 + BN)
 * (output channels); invocation t computes rows m0 + (t / 16) * TM + i, i < TM, and the 4 columns n0 + (t % 16) * 4 ..
 * (+ 64 for each further group of 64 columns when BN > 64). Shared tiles: As [BK][BM] (A transposed: a column of
 * the im2col slice per k), Bs [BK][BN / 4] vec4.
 */
class TiledConvProgram extends RenoProgram {
  variableComponents: number[];
  outputComponent = 4;
  constructor(
    outShape: number[],
    private readonly t: ConvTile,
    private readonly bias: boolean,
    workgroups: number,
  ) {
    super({
      key: `renoConv_${t.bm}x${t.bn}x${t.bk}_${bias}`,
      inputs: bias ? ['x', 'w', 'bias'] : ['x', 'w'],
      outputShape: outShape,
      uniforms: 'stride : i32, padT : i32, padL : i32, tilesN : i32, M : i32,',
      workgroupSize: THREADS,
      workgroups,
    });
    this.variableComponents = bias ? [4, 4, 4] : [4, 4];
  }
  getUserCode(): string {
    const { bm, bn, bk } = this.t;
    const TM = bm / 16; // rows per invocation (a multiple of 4)
    const CN = bn / 64; // vec4 column groups per invocation
    const K4 = bk / 4; // vec4 per pixel in one K slice
    const LA = (bm * K4) / THREADS; // A loads (vec4) per invocation per slice
    const LB = (bk * (bn / 4)) / THREADS; // B loads (vec4) per invocation per slice
    // straight-line code per register (no private arrays indexed in loops: every compiler keeps these in registers)
    const each = (n: number, f: (i: number) => string) => Array.from({ length: n }, (_, i) => f(i)).join('\n');
    const each2 = (n: number, m: number, f: (i: number, j: number) => string) => each(n, (i) => each(m, (j) => f(i, j)));
    return `
  var<workgroup> As : array<vec4<f32>, ${(bk * bm) / 4}>; // [BK][BM / 4]
  var<workgroup> Bs : array<vec4<f32>, ${bk * (bn / 4)}>; // [BK][BN / 4]
  fn main(index : i32) {
    let t = i32(localIndex);
    let wg = (index - t) / ${THREADS};
    let H = uniforms.xShape[1];
    let W = uniforms.xShape[2];
    let Cin = uniforms.xShape[3];
    let KW = uniforms.wShape[1];
    let Ho = uniforms.outShape[1];
    let Wo = uniforms.outShape[2];
    let Cout4 = uniforms.outShape[3] / 4;
    let m0 = (wg / uniforms.tilesN) * ${bm};
    let n0 = (wg % uniforms.tilesN) * ${bn / 4}; // in vec4 columns
    let nK = uniforms.wShape[0] * KW * Cin / ${bk};
    let c4 = t % ${K4}; // which vec4 of a pixel's slice this invocation loads
    let col = t % 16;
    let row = (t / 16) * ${TM / 4}; // in vec4 rows of As

    // the pixels this invocation loads for A (m = m0 + e / K4, e = t + r * 256): top-left input position, b < 0 past M
${each(LA, (r) => `    let m_${r} = m0 + (t + ${r * THREADS}) / ${K4};
    let ab_${r} = select(-1, m_${r} / (Wo * Ho), m_${r} < uniforms.M);
    let ay_${r} = ((m_${r} / Wo) % Ho) * uniforms.stride - uniforms.padT;
    let ax_${r} = (m_${r} % Wo) * uniforms.stride - uniforms.padL;
    var ra_${r} = vec4<f32>(0.0);`)}
${each(LB, (r) => `    var rb_${r} = vec4<f32>(0.0);`)}
${each2(TM, CN, (i, j) => `    var acc_${i}_${j} = vec4<f32>(0.0);`)}

    // slice kt of K: tap (ky, kx) and input channels [ci0, ci0 + BK); filter rows [k0, k0 + BK) of [K, Cout]. Slice kt
    // is loaded into registers in iteration kt, stored to shared memory and multiplied in iteration kt + 1.
    for (var kt = 0; kt <= nK; kt++) {
      if (kt > 0) {
        workgroupBarrier();
${each(LA, (r) => {
  const m = `(t + ${r * THREADS}) / ${K4}`;
  return each(4, (q) => `        As[(c4 * 4 + ${q}) * ${bm / 4} + (${m}) / 4][(${m}) % 4] = ra_${r}[${q}];`);
})}
${each(LB, (r) => `        Bs[t + ${r * THREADS}] = rb_${r};`)}
        workgroupBarrier();
      }
      if (kt < nK) {
        let k0 = kt * ${bk};
        let tap = k0 / Cin;
        let ci = (k0 % Cin) / 4 + c4;
        let ky = tap / KW;
        let kx = tap % KW;
${each(LA, (r) => `        {
          let iy = ay_${r} + ky;
          let ix = ax_${r} + kx;
          ra_${r} = vec4<f32>(0.0);
          if (ab_${r} >= 0 && iy >= 0 && iy < H && ix >= 0 && ix < W) {
            ra_${r} = x[((ab_${r} * H + iy) * W + ix) * (Cin / 4) + ci];
          }
        }`)}
${each(LB, (r) => `        {
          let e = t + ${r * THREADS};
          let n = n0 + e % ${bn / 4};
          rb_${r} = select(vec4<f32>(0.0), w[(k0 + e / ${bn / 4}) * Cout4 + min(n, Cout4 - 1)], n < Cout4);
        }`)}
      }
      if (kt > 0) {
        for (var k = 0; k < ${bk}; k++) {
${each(CN, (j) => `          let b_${j} = Bs[k * ${bn / 4} + ${j * 16} + col];`)}
${each(TM / 4, (i4) => `          let a_${i4} = As[k * ${bm / 4} + row + ${i4}];
${each2(4, CN, (q, j) => `          acc_${i4 * 4 + q}_${j} = fma(vec4<f32>(a_${i4}[${q}]), b_${j}, acc_${i4 * 4 + q}_${j});`)}`)}
        }
      }
    }
${each2(TM, CN, (i, j) => `    {
      let m = m0 + row * 4 + ${i};
      let n = n0 + ${j * 16} + col;
      if (m < uniforms.M && n < Cout4) {
        result[m * Cout4 + n] = acc_${i}_${j}${this.bias ? ' + bias[n]' : ''};
      }
    }`)}
  }`;
  }
}

const TILED_CONV = 'RenoTiledConv2D';
interface ConvAttrs {
  stride: number;
  pad: number;
}

registerWebgpuKernel<ConvAttrs>(TILED_CONV, (inputs, backend, { stride, pad }) => {
  const { x, w, bias } = inputs;
  const t = tile!;
  const [b, h, wd] = x.shape;
  const [kh, kw, , cout] = w.shape;
  const ho = Math.floor((h + 2 * pad - kh) / stride) + 1;
  const wo = Math.floor((wd + 2 * pad - kw) / stride) + 1;
  const m = b * ho * wo;
  const tilesN = Math.ceil(cout / t.bn);
  const workgroups = Math.ceil(m / t.bm) * tilesN;
  const u: Uniform[] = [int(stride), int(pad), int(pad), int(tilesN), int(m)];
  const ins: TensorInfo[] = bias ? [x, w, bias] : [x, w];
  return backend.runWebGPUProgram(new TiledConvProgram([b, ho, wo, cout], t, !!bias, workgroups), ins, 'float32', u);
});

/**
 * conv2d(x [B, H, W, Cin], w [kh, kw, Cin, Cout]) with symmetric zero padding `pad`, plus bias [Cout], by reno's
 * tiled program (WebGPU only; tiledConvFits must hold). No gradient of its own: ops.ts conv2d supplies it.
 */
export function tiledConv2d(x: tf.Tensor4D, w: tf.Tensor4D, stride: number, pad: number, bias: tf.Tensor | null): tf.Tensor4D {
  return callKernel(TILED_CONV, bias ? { x, w, bias } : { x, w }, { stride, pad });
}
