// GroupNorm / LayerNorm with the affine transform and an optional SiLU, forward and input gradient, as a handful of
// WGSL kernels for tfjs-backend-webgpu (4.22: WebGPUBackend.runWebGPUProgram and its program interface, as in its
// reduce_webgpu.ts and unary_op_webgpu.ts). Ports torch.nn.functional.group_norm / layer_norm (biased variance)
// followed by x * weight + bias and F.silu.
//
// Why: tfjs composes a norm from ~10 kernels forward (mean, sub, square, mean, add, rsqrt, mul, the affine mul and
// add, two transposes for a GroupNorm's reduction over non-trailing axes) and ~8 backward; a SiLU adds 2 forward and 5
// backward. A UNet backward pass on a GPU is bound by issuing kernels (bench/RESULTS.md, "GPU"), and a VAE decoder's
// norms at 512 px each read and write 128 MiB tensors that many times. Here: forward 2 kernels (3 for large groups),
// backward 2 (3), and only x and a [B, G, 2] stats tensor are kept for the backward pass (the composite keeps xhat,
// and a SiLU two more tensors of x's size).
//
// Layout: x is viewed as [B, N, G, Cg] (GroupNorm on NHWC: N = H*W, G groups of Cg channels; LayerNorm: B = rows,
// N = 1, G = 1, Cg = C); statistics are per (b, g) over N*Cg elements; weight and bias are per channel g*Cg + j.
// Large groups are split into K chunks of rows, reduced by one workgroup each (Welford per thread, Chan's formula to
// combine), then combined by a small finalize kernel.
import { float, int, registerWebgpuKernel, RenoProgram, type TensorInfo, type Uniform, type WebgpuBackend } from './program.js';

export interface NormGeometry {
  B: number;
  N: number;
  G: number;
  Cg: number;
}

/** Elements one workgroup reduces (about); groups larger than this are split into chunks. */
let chunkElems = 16384;
/** Smaller chunks make the tests exercise the chunked path on small tensors. */
export function setNormChunkElems(n: number): void {
  chunkElems = Math.max(1, Math.floor(n));
}

/** Rows per chunk and the number of chunks K for a geometry. */
export function normChunks(g: NormGeometry): { nPer: number; K: number } {
  const nPer = Math.max(1, Math.min(g.N, Math.ceil(chunkElems / g.Cg)));
  return { nPer, K: Math.ceil(g.N / nPer) };
}

type Act = 'none' | 'silu';

/**
 * The geometry uniforms every program here declares, in this order (sizes go in uniforms: ./webgpu-program.ts).
 */
const GEOMETRY_UNIFORMS = 'B : i32, N : i32, G : i32, Cg : i32, K : i32, nPer : i32, eps : f32,';
const geometryData = (g: NormGeometry, nPer: number, K: number, eps: number): Uniform[] => [
  int(g.B),
  int(g.N),
  int(g.G),
  int(g.Cg),
  int(K),
  int(nPer),
  float(eps),
];

/** The activation applied after the affine transform, and its derivative factor (WGSL, on `a`). */
const ACT_FORWARD: Record<Act, string> = { none: 'a', silu: 'a / (1.0 + exp(-a))' };
const ACT_BACKWARD: Record<Act, string> = {
  none: '1.0',
  silu: 'actGradOf(a)',
};
const ACT_HELPERS = `
  fn actGradOf(a : f32) -> f32 {
    let s = 1.0 / (1.0 + exp(-a));
    return s + a * s * (1.0 - s);
  }`;

/**
 * Common WGSL: the chunk a workgroup owns and element addressing. wg = b*G*K + g*K + k; element e of a chunk is row
 * n0 + e / Cg, channel g*Cg + e % Cg, at ((b*N + n) * G + g) * Cg + j.
 */
const CHUNK_SNIPPET = `
  struct Chunk { base : i32, n0 : i32, count : i32, C : i32, bg : i32 };
  fn chunkOf(wg : i32) -> Chunk {
    let k = wg % uniforms.K;
    let bg = wg / uniforms.K;
    let g = bg % uniforms.G;
    let bb = bg / uniforms.G;
    let C = uniforms.G * uniforms.Cg;
    let n0 = k * uniforms.nPer;
    let n1 = min(n0 + uniforms.nPer, uniforms.N);
    return Chunk(bb * uniforms.N * C + g * uniforms.Cg, n0, max(n1 - n0, 0) * uniforms.Cg, C, bg);
  }
  fn addressOf(ch : Chunk, e : i32) -> i32 {
    return ch.base + (ch.n0 + e / uniforms.Cg) * ch.C + e % uniforms.Cg;
  }`;

/** One workgroup per (b, g, chunk): Welford count, mean and M2 of the chunk ([B*G*K, 3]), or with K = 1 the final mean and rstd ([B*G, 2]). */
class StatsProgram extends RenoProgram {
  constructor(
    workgroups: number,
    private readonly final: boolean,
    wgSize: number,
  ) {
    super({
      key: `renoNormStats_${final}_${wgSize}`,
      inputs: ['x'],
      outputShape: [workgroups, final ? 2 : 3],
      uniforms: GEOMETRY_UNIFORMS,
      workgroupSize: wgSize,
      workgroups,
    });
  }
  getUserCode(): string {
    const W = this.workgroupSize[0];
    return `
  ${CHUNK_SNIPPET}
  var<workgroup> sCnt : array<f32, ${W}>;
  var<workgroup> sMean : array<f32, ${W}>;
  var<workgroup> sM2 : array<f32, ${W}>;
  fn main(index : i32) {
    let t = i32(localIndex);
    let wg = (index - t) / ${W};
    let valid = wg < uniforms.B * uniforms.G * uniforms.K;
    let ch = chunkOf(wg);
    let count = select(0, ch.count, valid);
    var cnt = 0.0;
    var mean = 0.0;
    var m2 = 0.0;
    for (var e = t; e < count; e = e + ${W}) {
      let v = x[addressOf(ch, e)];
      cnt = cnt + 1.0;
      let d = v - mean;
      mean = mean + d / cnt;
      m2 = m2 + d * (v - mean);
    }
    sCnt[t] = cnt;
    sMean[t] = mean;
    sM2[t] = m2;
    workgroupBarrier();
    for (var s = ${W / 2}; s > 0; s = s / 2) {
      if (t < s) {
        let na = sCnt[t];
        let nb = sCnt[t + s];
        let n = na + nb;
        if (n > 0.0) {
          let delta = sMean[t + s] - sMean[t];
          sMean[t] = sMean[t] + delta * nb / n;
          sM2[t] = sM2[t] + sM2[t + s] + delta * delta * na * nb / n;
          sCnt[t] = n;
        }
      }
      workgroupBarrier();
    }
    if (t == 0 && valid) {
      ${
        this.final
          ? `result[2 * wg] = sMean[0];
      result[2 * wg + 1] = inverseSqrt(sM2[0] / sCnt[0] + uniforms.eps);`
          : `result[3 * wg] = sCnt[0];
      result[3 * wg + 1] = sMean[0];
      result[3 * wg + 2] = sM2[0];`
      }
    }
  }`;
  }
}

/** The finalize loops: Chan's combination of Welford partials, and plain sums. */
const STATS_BODY = `    var cnt = 0.0;
    var mean = 0.0;
    var m2 = 0.0;
    for (var k = 0; k < uniforms.K; k = k + 1) {
      let o = 3 * (index * uniforms.K + k);
      let nb = p[o];
      let n = cnt + nb;
      if (nb > 0.0) {
        let delta = p[o + 1] - mean;
        mean = mean + delta * nb / n;
        m2 = m2 + p[o + 2] + delta * delta * cnt * nb / n;
        cnt = n;
      }
    }
    result[2 * index] = mean;
    result[2 * index + 1] = inverseSqrt(m2 / cnt + uniforms.eps);
`;
const SUMS_BODY = `    var a1 = 0.0;
    var a2 = 0.0;
    for (var k = 0; k < uniforms.K; k = k + 1) {
      let o = 2 * (index * uniforms.K + k);
      a1 = a1 + p[o];
      a2 = a2 + p[o + 1];
    }
    result[2 * index] = a1;
    result[2 * index + 1] = a2;
`;

/**
 * One thread per (b, g): combines its K chunks' partials into [B*G, 2]: Welford (count, mean, M2) into (mean, rstd)
 * for the forward statistics, or sums of (dyw, dyw * xhat) for the backward pass.
 */
class FinalizeProgram extends RenoProgram {
  constructor(
    groups: number,
    private readonly kind: 'stats' | 'sums',
  ) {
    super({
      key: `renoNormFinalize_${kind}`,
      inputs: ['p'],
      outputShape: [groups, 2],
      uniforms: GEOMETRY_UNIFORMS,
      workgroupSize: 64,
      workgroups: Math.ceil(groups / 64),
    });
  }
  getUserCode(): string {
    return `
  fn main(index : i32) {
    if (index >= uniforms.B * uniforms.G) { return; }
${this.kind === 'stats' ? STATS_BODY : SUMS_BODY}  }`;
  }
}

/** Element-wise: y = act((x - mean) * rstd * w[c] + b[c]). */
class ApplyProgram extends RenoProgram {
  constructor(
    shape: number[],
    private readonly act: Act,
  ) {
    super({ key: `renoNormApply_${act}`, inputs: ['x', 'st', 'w', 'bias'], outputShape: shape, uniforms: GEOMETRY_UNIFORMS });
  }
  getUserCode(): string {
    return `
  fn main(index : i32) {
    if (index >= uniforms.size) { return; }
    let C = uniforms.G * uniforms.Cg;
    let c = index % C;
    let bg = (index / (uniforms.N * C)) * uniforms.G + c / uniforms.Cg;
    let a = (x[index] - st[2 * bg]) * st[2 * bg + 1] * w[c] + bias[c];
    result[index] = ${ACT_FORWARD[this.act]};
  }`;
  }
}

/** dA * w with dA the gradient at the affine output (through the activation), and xhat, for element i. */
const GRAD_TERMS = (act: Act) => `
  ${ACT_HELPERS}
  fn gradTerms(i : i32, c : i32, bg : i32) -> vec2<f32> {
    let xh = (x[i] - st[2 * bg]) * st[2 * bg + 1];
    let a = xh * w[c] + bias[c];
    let dyw = dy[i] * ${ACT_BACKWARD[act]} * w[c];
    return vec2<f32>(dyw, xh);
  }`;

/** One workgroup per (b, g, chunk): sums of dyw and dyw * xhat ([B*G*K, 2]). */
class GradReduceProgram extends RenoProgram {
  constructor(
    workgroups: number,
    private readonly act: Act,
    wgSize: number,
  ) {
    super({
      key: `renoNormGradReduce_${act}_${wgSize}`,
      inputs: ['x', 'st', 'w', 'bias', 'dy'],
      outputShape: [workgroups, 2],
      uniforms: GEOMETRY_UNIFORMS,
      workgroupSize: wgSize,
      workgroups,
    });
  }
  getUserCode(): string {
    const W = this.workgroupSize[0];
    return `
  ${CHUNK_SNIPPET}
  ${GRAD_TERMS(this.act)}
  var<workgroup> s1 : array<f32, ${W}>;
  var<workgroup> s2 : array<f32, ${W}>;
  fn main(index : i32) {
    let t = i32(localIndex);
    let wg = (index - t) / ${W};
    let valid = wg < uniforms.B * uniforms.G * uniforms.K;
    let ch = chunkOf(wg);
    let count = select(0, ch.count, valid);
    var a1 = 0.0;
    var a2 = 0.0;
    for (var e = t; e < count; e = e + ${W}) {
      let i = addressOf(ch, e);
      let g = gradTerms(i, i % ch.C, ch.bg);
      a1 = a1 + g.x;
      a2 = a2 + g.x * g.y;
    }
    s1[t] = a1;
    s2[t] = a2;
    workgroupBarrier();
    for (var s = ${W / 2}; s > 0; s = s / 2) {
      if (t < s) {
        s1[t] = s1[t] + s1[t + s];
        s2[t] = s2[t] + s2[t + s];
      }
      workgroupBarrier();
    }
    if (t == 0 && valid) {
      result[2 * wg] = s1[0];
      result[2 * wg + 1] = s2[0];
    }
  }`;
  }
}

/** Element-wise: dx = rstd * (dyw - mean(dyw) - xhat * mean(dyw * xhat)), the means from the per-group sums. */
class GradApplyProgram extends RenoProgram {
  constructor(
    shape: number[],
    private readonly act: Act,
  ) {
    super({ key: `renoNormGradApply_${act}`, inputs: ['x', 'st', 'w', 'bias', 'dy', 'sums'], outputShape: shape, uniforms: GEOMETRY_UNIFORMS });
  }
  getUserCode(): string {
    return `
  ${GRAD_TERMS(this.act)}
  fn main(index : i32) {
    if (index >= uniforms.size) { return; }
    let C = uniforms.G * uniforms.Cg;
    let c = index % C;
    let bg = (index / (uniforms.N * C)) * uniforms.G + c / uniforms.Cg;
    let inv = 1.0 / f32(uniforms.N * uniforms.Cg);
    let g = gradTerms(index, c, bg);
    result[index] = st[2 * bg + 1] * (g.x - sums[2 * bg] * inv - g.y * sums[2 * bg + 1] * inv);
  }`;
  }
}

const reduceWorkgroupSize = (g: NormGeometry, nPer: number) => (nPer * g.Cg >= 4096 ? 256 : 64);

interface NormAttrs {
  N: number;
  G: number;
  Cg: number;
  eps: number;
  act: Act;
}

function geometryOf(x: TensorInfo, a: NormAttrs): NormGeometry {
  const size = x.shape.reduce((p, d) => p * d, 1);
  return { B: size / (a.N * a.G * a.Cg), N: a.N, G: a.G, Cg: a.Cg };
}

/** [stats [B*G, 2] = (mean, rstd)] of x; the finalize kernel runs only for chunked groups. */
function stats(be: WebgpuBackend, x: TensorInfo, a: NormAttrs): TensorInfo {
  const g = geometryOf(x, a);
  const { nPer, K } = normChunks(g);
  const u = geometryData(g, nPer, K, a.eps);
  const groups = g.B * g.G;
  const wgSize = reduceWorkgroupSize(g, nPer);
  if (K === 1) return be.runWebGPUProgram(new StatsProgram(groups, true, wgSize), [x], 'float32', u);
  const partial = be.runWebGPUProgram(new StatsProgram(groups * K, false, wgSize), [x], 'float32', u);
  const out = be.runWebGPUProgram(new FinalizeProgram(groups, 'stats'), [partial], 'float32', u);
  be.disposeData(partial.dataId);
  return out;
}

export const NORM_FORWARD = 'RenoNormAffineForward';
export const NORM_BACKWARD = 'RenoNormAffineBackward';

registerWebgpuKernel<NormAttrs>(NORM_FORWARD, (inputs, be, attrs) => {
  const { x, w, bias } = inputs;
  const g = geometryOf(x, attrs);
  const st = stats(be, x, attrs);
  const { nPer, K } = normChunks(g);
  const y = be.runWebGPUProgram(new ApplyProgram(x.shape, attrs.act), [x, st, w, bias], 'float32', geometryData(g, nPer, K, attrs.eps));
  return [y, st];
});

registerWebgpuKernel<NormAttrs>(NORM_BACKWARD, (inputs, be, attrs) => {
  const { x, st, w, bias, dy } = inputs;
  const g = geometryOf(x, attrs);
  const { nPer, K } = normChunks(g);
  const u = geometryData(g, nPer, K, attrs.eps);
  const groups = g.B * g.G;
  const wgSize = reduceWorkgroupSize(g, nPer);
  let sums = be.runWebGPUProgram(new GradReduceProgram(groups * K, attrs.act, wgSize), [x, st, w, bias, dy], 'float32', u);
  if (K > 1) {
    const partial = sums;
    sums = be.runWebGPUProgram(new FinalizeProgram(groups, 'sums'), [partial], 'float32', u);
    be.disposeData(partial.dataId);
  }
  const dx = be.runWebGPUProgram(new GradApplyProgram(x.shape, attrs.act), [x, st, w, bias, dy, sums], 'float32', u);
  be.disposeData(sums.dataId);
  return dx;
});
