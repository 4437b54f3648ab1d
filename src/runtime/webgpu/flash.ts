// Attention without a score matrix on WebGPU, in the manner of FlashAttention (Dao et al. 2022; its backward pass as
// in FlashAttention-2): q, k and v are read in their [B, L, H*D] layout (no head split or merge programs), scores live
// in registers a key tile at a time with an online softmax, and the backward pass recomputes the probabilities from
// the rows' log-sum-exp. Forward: one program. Backward: stats (log-sum-exp and D_i = dO_i . O_i per row), dq, and
// for attention whose k and v take gradients dk and dv (one program each: dk and dv as two programs keep every
// invocation's registers at 3 x D floats). The chunked path (./attention.ts) takes 7 programs forward and 11 backward
// (head splits and merges, two products, a softmax, and on the way back two more products and the softmax gradient).
//
// Programs over a flat workgroup index, 64 invocations each: R = 16 rows (queries, or keys for dk / dv) per workgroup,
// S = 4 invocations per row, each taking every S-th row of the other side, their partial results combined through
// workgroup memory at the end (so a 4096-token head has 4 x 4096 invocations, not 4096). The other side's rows pass
// through workgroup memory a tile of T rows at a time (T x D floats per tensor; with the combining scratch <= 16 KB:
// WebGPU's default maxComputeWorkgroupStorageSize). D, the head width, is a constant of each shader.
import * as tf from '../tf.js';
import { UsageError } from '../../errors.js';
import { fusedKernels } from '../fused.js';
import { readSetting, type Env } from '../settings.js';
import { callKernel, float, int, registerWebgpuKernel, RenoProgram, type TensorInfo } from './program.js';

const WG = 64;
/** Invocations per row, and rows per workgroup. */
const S = 4;
const R = WG / S;
/** Rows of the other side per tile. */
const T = 16;
/** Widest head the programs take: two T x D tiles, an R x D scratch and 2 x WG floats within 16 KB. */
export const FLASH_MAX_HEAD = 80;

type Kind = 'forward' | 'stats' | 'dq' | 'dk' | 'dv';

const UNIFORMS = 'B : i32, H : i32, Lq : i32, Lk : i32, C : i32, scale : f32,';

/**
 * A workgroup's place: the batch item b, head h, this invocation's row r of the `rows` side (Lq or Lk; rr clamped
 * into it), its local row lr and its part (which S-th of the other side's rows it takes).
 */
const HEAD = (rows: string) => `
    let t = i32(localIndex);
    let part = t % ${S};
    let lr = t / ${S};
    let wg = (index - t) / ${WG};
    let blocks = (${rows} + ${R - 1}) / ${R};
    let bh = wg / blocks;
    let b0 = bh / uniforms.H; // past B in the workgroups a large dispatch is rounded up to
    let b = min(b0, uniforms.B - 1);
    let h = bh % uniforms.H;
    let r = (wg % blocks) * ${R} + lr;
    let valid = r < ${rows} && b0 < uniforms.B;
    let rr = min(r, ${rows} - 1);`;

/** Loads T rows from row r0 of the other side (`len` rows in all) of each tensor in `names` into vec4 tiles. */
const LOAD = (names: string[], len: string, d4: number) => `
      for (var e = t; e < ${T * d4}; e = e + ${WG}) {
        let j = e / ${d4};
        let row = r0 + j;
        let ok = row < ${len};
        let at = (b * ${len} + min(row, ${len} - 1)) * uniforms.C + h * ${4 * d4} + 4 * (e % ${d4});
        ${names.map((n) => `${n}T[e] = select(vec4<f32>(0.0), vec4<f32>(${n}[at], ${n}[at + 1], ${n}[at + 2], ${n}[at + 3]), ok);`).join('\n        ')}
      }`;

/** Sums aR (times f) over the S parts of each row into part 0's aR, through the R x D scratch, one part at a time. */
const COMBINE = (d4: number, f: string) => `
    for (var i = 0; i < ${d4}; i = i + 1) { aR[i] = aR[i] * ${f}; }
    for (var p = 1; p < ${S}; p = p + 1) {
      if (part == p) { for (var i = 0; i < ${d4}; i = i + 1) { xS[lr * ${d4} + i] = aR[i]; } }
      workgroupBarrier();
      if (part == 0) { for (var i = 0; i < ${d4}; i = i + 1) { aR[i] = aR[i] + xS[lr * ${d4} + i]; } }
      workgroupBarrier();
    }`;

/** Each row's largest m over its parts (mx), and the sum of l exp(m - mx) (lt), through mS and lS. */
const COMBINE_ML = `
    mS[t] = m;
    lS[t] = l;
    workgroupBarrier();
    var mx = mS[lr * ${S}];
    for (var p = 1; p < ${S}; p = p + 1) { mx = max(mx, mS[lr * ${S} + p]); }
    var lt = 0.0;
    for (var p = 0; p < ${S}; p = p + 1) { lt = lt + lS[lr * ${S} + p] * exp(mS[lr * ${S} + p] - mx); }`;

class FlashProgram extends RenoProgram {
  constructor(
    private readonly kind: Kind,
    private readonly d: number,
    inputs: string[],
    outputShape: number[],
    workgroups: number,
  ) {
    super({ key: `renoFlash_${kind}_${d}`, inputs, outputShape, uniforms: UNIFORMS, workgroupSize: WG, workgroups });
  }

  getUserCode(): string {
    const d4 = this.d / 4;
    // four independent sums (a vec4) and one horizontal sum at the end: a chain of D / 4 dependent adds, not D
    const dot = (a: string, tile: string) =>
      `{ var acc4 = vec4<f32>(0.0); for (var i = 0; i < ${d4}; i = i + 1) { acc4 = acc4 + ${a}[i] * ${tile}[j * ${d4} + i]; } let acc = acc4.x + acc4.y + acc4.z + acc4.w; `;
    const tiles = (names: string[]) => names.map((n) => `var<workgroup> ${n}T : array<vec4<f32>, ${T * d4}>;`).join('\n  ');
    const scratch = `var<workgroup> xS : array<vec4<f32>, ${R * d4}>;`;
    const mlScratch = `var<workgroup> mS : array<f32, ${WG}>;\n  var<workgroup> lS : array<f32, ${WG}>;`;
    const regs = (names: string[]) => names.map((n) => `var ${n}R : array<vec4<f32>, ${d4}>;`).join('\n    ');
    // this invocation's row of a [B, L, C] tensor, head h: its offset; element 4i..4i+3 of it as a vec4
    const rowAt = (len: string) => `(b * ${len} + rr) * uniforms.C + h * ${this.d}`;
    const vec = (n: string) => `vec4<f32>(${n}[at + 4 * i], ${n}[at + 4 * i + 1], ${n}[at + 4 * i + 2], ${n}[at + 4 * i + 3])`;
    const store = (v: string) =>
      `if (valid && part == 0) { for (var i = 0; i < ${d4}; i = i + 1) { let w = ${v}; result[at + 4 * i] = w.x; result[at + 4 * i + 1] = w.y; result[at + 4 * i + 2] = w.z; result[at + 4 * i + 3] = w.w; } }`;
    const stat = `(bh * uniforms.Lq + rr) * 2`; // stats [B, H, Lq, 2]: log-sum-exp, D
    // this part's rows of a tile: j = part, part + S, ... below n
    const rowsOfPart = `for (var j = part; j < n; j = j + ${S})`;
    switch (this.kind) {
      case 'forward':
        // out[b, i, h] = sum_j softmax_j(scale q_i . k_j) v_j; each part an online softmax over its keys, then combined
        return `
  ${tiles(['k', 'v'])}
  ${scratch}
  ${mlScratch}
  fn main(index : i32) {
    ${HEAD('uniforms.Lq')}
    ${regs(['q', 'a'])}
    let at = ${rowAt('uniforms.Lq')};
    for (var i = 0; i < ${d4}; i = i + 1) { qR[i] = ${vec('q')} * uniforms.scale; aR[i] = vec4<f32>(0.0); }
    var m = -3.402823e38;
    var l = 0.0;
    var s : array<f32, ${T / S}>;
    for (var r0 = 0; r0 < uniforms.Lk; r0 = r0 + ${T}) {
      ${LOAD(['k', 'v'], 'uniforms.Lk', d4)}
      workgroupBarrier();
      let n = min(${T}, uniforms.Lk - r0);
      var mx = m;
      for (var jj = 0; jj < ${T / S}; jj = jj + 1) {
        let j = part + jj * ${S};
        ${dot('qR', 'kT')} s[jj] = select(-3.402823e38, acc, j < n); }
        mx = max(mx, s[jj]);
      }
      let alpha = exp(m - mx);
      l = l * alpha;
      for (var i = 0; i < ${d4}; i = i + 1) { aR[i] = aR[i] * alpha; }
      for (var jj = 0; jj < ${T / S}; jj = jj + 1) {
        let j = part + jj * ${S};
        let p = select(0.0, exp(s[jj] - mx), j < n);
        l = l + p;
        for (var i = 0; i < ${d4}; i = i + 1) { aR[i] = aR[i] + p * vT[j * ${d4} + i]; }
      }
      m = mx;
      workgroupBarrier();
    }
    ${COMBINE_ML}
    ${COMBINE(d4, 'exp(m - mx)')}
    ${store('aR[i] / lt')}
  }`;
      case 'stats':
        // per query row: log-sum-exp of scale q_i . k_j over j, and D_i = dO_i . O_i
        return `
  ${tiles(['k'])}
  ${mlScratch}
  fn main(index : i32) {
    ${HEAD('uniforms.Lq')}
    ${regs(['q'])}
    let at = ${rowAt('uniforms.Lq')};
    var dd = 0.0;
    for (var i = 0; i < ${d4}; i = i + 1) { qR[i] = ${vec('q')} * uniforms.scale; }
    if (part == 0) { for (var i = 0; i < ${d4}; i = i + 1) { dd = dd + dot(${vec('dy')}, ${vec('o')}); } }
    var m = -3.402823e38;
    var l = 0.0;
    for (var r0 = 0; r0 < uniforms.Lk; r0 = r0 + ${T}) {
      ${LOAD(['k'], 'uniforms.Lk', d4)}
      workgroupBarrier();
      let n = min(${T}, uniforms.Lk - r0);
      ${rowsOfPart} {
        ${dot('qR', 'kT')}
        let mn = max(m, acc);
        l = l * exp(m - mn) + exp(acc - mn);
        m = mn; }
      }
      workgroupBarrier();
    }
    ${COMBINE_ML}
    if (valid && part == 0) { result[${stat}] = mx + log(lt); result[${stat} + 1] = dd; }
  }`;
      case 'dq':
        // dq_i = scale sum_j p_ij (dO_i . v_j - D_i) k_j
        return `
  ${tiles(['k', 'v'])}
  ${scratch}
  fn main(index : i32) {
    ${HEAD('uniforms.Lq')}
    ${regs(['q', 'g', 'a'])}
    let at = ${rowAt('uniforms.Lq')};
    for (var i = 0; i < ${d4}; i = i + 1) { qR[i] = ${vec('q')} * uniforms.scale; gR[i] = ${vec('dy')}; aR[i] = vec4<f32>(0.0); }
    let lse = st[${stat}];
    let dd = st[${stat} + 1];
    for (var r0 = 0; r0 < uniforms.Lk; r0 = r0 + ${T}) {
      ${LOAD(['k', 'v'], 'uniforms.Lk', d4)}
      workgroupBarrier();
      let n = min(${T}, uniforms.Lk - r0);
      ${rowsOfPart} {
        var p = 0.0;
        ${dot('qR', 'kT')} p = exp(acc - lse); }
        var dp = 0.0;
        ${dot('gR', 'vT')} dp = acc; }
        let ds = p * (dp - dd);
        for (var i = 0; i < ${d4}; i = i + 1) { aR[i] = aR[i] + ds * kT[j * ${d4} + i]; }
      }
      workgroupBarrier();
    }
    ${COMBINE(d4, 'uniforms.scale')}
    ${store('aR[i]')}
  }`;
      case 'dk':
      case 'dv': {
        // per key row j: dv_j = sum_i p_ij dO_i; dk_j = scale sum_i p_ij (dO_i . v_j - D_i) q_i
        const dk = this.kind === 'dk';
        return `
  ${tiles(['q', 'dy'])}
  ${scratch}
  var<workgroup> sT : array<f32, ${2 * T}>;
  fn main(index : i32) {
    ${HEAD('uniforms.Lk')}
    ${regs(dk ? ['k', 'v', 'a'] : ['k', 'a'])}
    let at = ${rowAt('uniforms.Lk')};
    for (var i = 0; i < ${d4}; i = i + 1) { kR[i] = ${vec('k')} * uniforms.scale; ${dk ? `vR[i] = ${vec('v')}; ` : ''}aR[i] = vec4<f32>(0.0); }
    for (var r0 = 0; r0 < uniforms.Lq; r0 = r0 + ${T}) {
      ${LOAD(['q', 'dy'], 'uniforms.Lq', d4)}
      if (t < ${2 * T}) {
        let row = min(r0 + t / 2, uniforms.Lq - 1);
        sT[t] = st[(bh * uniforms.Lq + row) * 2 + t % 2];
      }
      workgroupBarrier();
      let n = min(${T}, uniforms.Lq - r0);
      ${rowsOfPart} {
        var p = 0.0;
        ${dot('kR', 'qT')} p = exp(acc - sT[2 * j]); }
        ${
          dk
            ? `var dp = 0.0;
        ${dot('vR', 'dyT')} dp = acc; }
        let ds = p * (dp - sT[2 * j + 1]);
        for (var i = 0; i < ${d4}; i = i + 1) { aR[i] = aR[i] + ds * qT[j * ${d4} + i]; }`
            : `for (var i = 0; i < ${d4}; i = i + 1) { aR[i] = aR[i] + p * dyT[j * ${d4} + i]; }`
        }
      }
      workgroupBarrier();
    }
    ${COMBINE(d4, dk ? 'uniforms.scale' : '1.0')}
    ${store('aR[i]')}
  }`;
      }
    }
  }
}

interface FlashAttrs {
  kind: Kind;
  heads: number;
  scale: number;
}

const FLASH = 'RenoFlashAttention';
const INPUTS: Record<Kind, string[]> = {
  forward: ['q', 'k', 'v'],
  stats: ['q', 'k', 'o', 'dy'],
  dq: ['q', 'k', 'v', 'dy', 'st'],
  dk: ['q', 'k', 'v', 'dy', 'st'],
  dv: ['q', 'k', 'dy', 'st'],
};

registerWebgpuKernel<FlashAttrs>(FLASH, (inputs, backend, { kind, heads, scale }) => {
  const [b, lq, c] = inputs.q.shape;
  const lk = inputs.k.shape[1];
  const d = c / heads;
  const rows = kind === 'dk' || kind === 'dv' ? lk : lq;
  const out = kind === 'stats' ? [b, heads, lq, 2] : kind === 'dk' || kind === 'dv' ? [b, lk, c] : [b, lq, c];
  const names = INPUTS[kind];
  const program = new FlashProgram(kind, d, names, out, b * heads * Math.ceil(rows / R));
  return backend.runWebGPUProgram(
    program,
    names.map((n) => inputs[n] as TensorInfo),
    'float32',
    [int(b), int(heads), int(lq), int(lk), int(c), float(scale)],
  );
});

const run = (kind: Kind, inputs: Record<string, tf.Tensor>, heads: number, scale: number) =>
  callKernel<tf.Tensor>(FLASH, inputs, { kind, heads, scale });

let flashOn = true;

export { parseAttention } from '../settings.js';

/** Sets the attention programs from RENO_WEBGPU_ATTENTION (setupWebgpu calls it: a bad value is a usage error there). */
export function attentionFromEnv(env: Env): void {
  flashOn = readSetting('webgpuAttention', env);
}

/** Flash programs on or off (tests and benchmarks compare both). */
export function setFlashAttention(on: boolean): void {
  flashOn = on;
}

/** Whether the flash programs take this attention: fused WebGPU programs on, no mask, a head width in fours up to FLASH_MAX_HEAD. */
export function flashFits(c: number, heads: number, masked: boolean): boolean {
  return flashOn && fusedKernels() && !masked && c % heads === 0 && (c / heads) % 4 === 0 && c / heads <= FLASH_MAX_HEAD;
}

/**
 * softmax(q k^T * scale) v per head, q [B, Lq, H*D], k and v [B, Lk, H*D] -> [B, Lq, H*D], with its gradient (for q,
 * and for k and v unless `constantKV`). Saves q, k, v and the output: no [Lq, Lk] tensor in either pass. WebGPU only.
 */
export function flashAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, heads: number, scale: number, constantKV: boolean): tf.Tensor {
  const grads = (dy: tf.Tensor, qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor, o: tf.Tensor): tf.Tensor[] => {
    const st = run('stats', { q: qq, k: kk, o, dy }, heads, scale);
    const dq = run('dq', { q: qq, k: kk, v: vv, dy, st }, heads, scale);
    if (constantKV) {
      st.dispose();
      return [dq];
    }
    const dk = run('dk', { q: qq, k: kk, v: vv, dy, st }, heads, scale);
    const dv = run('dv', { q: qq, k: kk, dy, st }, heads, scale);
    st.dispose();
    return [dq, dk, dv];
  };
  if (constantKV) {
    const f = tf.customGrad(((qq: tf.Tensor, save: tf.GradSaveFunc) => {
      const o = run('forward', { q: qq, k, v }, heads, scale);
      save([qq, o]);
      return { value: o, gradFunc: (dy: tf.Tensor, [qs, os]: tf.Tensor[]) => grads(dy, qs, k, v, os)[0] };
    }) as unknown as Parameters<typeof tf.customGrad>[0]);
    return f(q);
  }
  const f = tf.customGrad(((qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor, save: tf.GradSaveFunc) => {
    const o = run('forward', { q: qq, k: kk, v: vv }, heads, scale);
    save([qq, kk, vv, o]);
    return { value: o, gradFunc: (dy: tf.Tensor, [qs, ks, vs, os]: tf.Tensor[]) => grads(dy, qs, ks, vs, os) };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return f(q, k, v);
}
