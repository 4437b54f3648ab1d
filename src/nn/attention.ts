// Memory-bounded multi-head attention with its own gradient (tf.customGrad), in the style of FlashAttention's
// recompute: queries are processed in chunks, so no tensor larger than [chunk, Lk] exists per head, in the forward
// or the backward pass, and the backward pass recomputes the probabilities instead of storing them. Every product
// is a plain 2-D matMul without transpose flags (operands are transposed explicitly first), which is the only fast
// matMul on the wasm backend (bench/RESULTS.md, "CPU kernels"); it also keeps each WebGPU binding under the device limit.
import * as tf from '../runtime/tf.js';
import { fusedKernels } from '../runtime/fused.js';
import { maxBlockElems } from '../runtime/webgpu/bindings.js';
import { scaledSoftmax, softmaxGrad } from '../runtime/webgpu/softmax.js';
import { matMulTiled } from '../runtime/webgpu/gemm.js';

export interface GradResult {
  value: tf.Tensor;
  gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor | tf.Tensor[];
}

/** tf.customGrad with tensor arguments typed as such (tfjs types the arguments as a union with the save function). */
export function withGrad<A extends tf.Tensor[]>(f: (...args: [...A, tf.GradSaveFunc]) => GradResult): (...x: A) => tf.Tensor {
  return tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (...x: A) => tf.Tensor;
}

export interface AttentionOptions {
  scale?: number;
  /** additive mask, broadcastable to [B, H, Lq, Lk] (0 keep, large negative drop) */
  mask?: tf.Tensor;
  /** query rows per chunk (default: as many as keep a [chunk, Lk] block under `maxBlockElems`) */
  chunk?: number;
  /**
   * k and v are constants of the differentiated function (a UNet's keys and values of the text context, computed
   * once per prompt): only q gets a gradient, and the backward pass skips the products for k and v.
   */
  constantKV?: boolean;
}

export { maxBlockElems, setMaxBlockElems } from '../runtime/webgpu/bindings.js';

function chunkRows(lq: number, lk: number, group: number, chunk?: number): number {
  return Math.max(1, Math.min(lq, chunk ?? Math.floor(maxBlockElems / Math.max(1, lk * group))));
}

/**
 * Heads per group: one at a time on the CPU backends (wasm's matMul is fast only for a batch of 1), all at once on
 * the GPU backends (a batched matMul is one kernel there, and kernel launches dominate: bench/RESULTS.md, "GPU").
 */
let grouping: 'auto' | 'one' | 'all' = 'auto';
/** Force the head grouping (tests compare both on one backend). */
export function setHeadGrouping(mode: 'auto' | 'one' | 'all'): void {
  grouping = mode;
}

function headGroup(heads: number): number {
  if (grouping !== 'auto') return grouping === 'one' ? 1 : heads;
  const b = tf.getBackend();
  return b === 'wasm' || b === 'cpu' || b === 'tensorflow' ? 1 : heads;
}

/**
 * tf.slice, or t itself when the slice is all of it (tfjs-webgpu runs a copy kernel for every Slice; on a GPU with
 * all heads in one group and one query chunk most slices here are whole).
 */
function part<T extends tf.Tensor>(t: T, begin: number[], size: number[]): T {
  const whole = begin.every((b0) => b0 === 0) && size.every((n, i) => n === -1 || n === t.shape[i]);
  return whole ? t : (tf.slice(t, begin, size) as T);
}

/** The [G, rows, Lk] (or [1, rows, Lk]) block of the mask for batch b, heads [h0, h0 + G), query rows [r0, r0 + n). */
function maskBlock(mask: tf.Tensor | undefined, b: number, h0: number, g: number, r0: number, n: number): tf.Tensor | null {
  if (!mask) return null;
  const m = mask.rank === 4 ? mask : mask.reshape([1, 1, ...mask.shape.slice(-2)]); // -> [Bm, Hm, Rm, Lk]
  const [bm, hm, rm, lk] = m.shape as [number, number, number, number];
  const rows = rm === 1 ? [0, 1] : [r0, n];
  const heads = hm === 1 ? [0, 1] : [h0, g];
  return part(m, [bm === 1 ? 0 : b, heads[0], rows[0], 0], [1, heads[1], rows[1], lk]).reshape([heads[1], rows[1], lk]); // [G|1, rows, Lk]
}

/**
 * Softmax probabilities of one block: p = softmax(q k^T * scale + mask), q [G, n, D] -> [G, n, Lk]. `k` is kT
 * [G, D, Lk], or k [G, Lk, D] itself when `flags` (WebGPU: a transpose flag costs nothing there, a transpose is a
 * program of its own).
 */
function probs(q: tf.Tensor3D, k: tf.Tensor3D, scale: number, m: tf.Tensor | null, flags: boolean): tf.Tensor3D {
  const scores = (flags ? matMulTiled(q, k, false, true) : tf.matMul(q, k)) as tf.Tensor3D; // [G, n, Lk]
  if (flags) return scaledSoftmax(scores, scale, m); // one program for the scaling, the mask and the softmax
  let s: tf.Tensor = tf.mul(scores, scale);
  if (m) s = tf.add(s, m);
  return tf.softmax(s, -1) as tf.Tensor3D;
}

/** [L, H*D] -> [H, L, D], heads first (one transpose for every head). */
const splitHeads = (t: tf.Tensor2D, heads: number) => t.reshape([t.shape[0], heads, -1]).transpose([1, 0, 2]) as tf.Tensor3D; // [L, H, D] -> [H, L, D]
/** [H, L, D] -> [L, H*D]. */
const mergeHeads = (t: tf.Tensor3D) => t.transpose([1, 0, 2]).reshape([t.shape[1], -1]) as tf.Tensor2D; // [L, H, D] -> [L, H*D]
/** Heads [h0, h0 + g) of [H, L, D]. */
const group = (t: tf.Tensor3D, h0: number, g: number) => part(t, [h0, 0, 0], [g, -1, -1]);
const t12 = (t: tf.Tensor3D) => tf.transpose(t, [0, 2, 1]) as tf.Tensor3D; // [G, A, B] -> [G, B, A]
/**
 * a^T b with a [G, A, B] and b [G, A, C] -> [G, B, C]: a transpose flag on WebGPU (`flags`), an explicit transpose
 * and a plain product elsewhere (wasm's matMul is slow with flags).
 */
const matMulAT = (a: tf.Tensor3D, b: tf.Tensor3D, flags: boolean) => (flags ? matMulTiled(a, b, true, false) : tf.matMul(t12(a), b));
/** a b: reno's tiled program on WebGPU where it is on and fits (./webgpu-gemm.ts), else tf.matMul. */
const mm = (a: tf.Tensor3D, b: tf.Tensor3D, flags: boolean) => (flags ? matMulTiled(a, b) : tf.matMul(a, b)) as tf.Tensor3D;

/** One batch item, heads first: qh [H, Lq, D], kh and vh [H, Lk, D] -> [Lq, H*D]. */
function forwardOne(
  qh: tf.Tensor3D,
  kh: tf.Tensor3D,
  vh: tf.Tensor3D,
  b: number,
  scale: number,
  mask: tf.Tensor | undefined,
  chunk?: number,
): tf.Tensor2D {
  return tf.tidy(() => {
    const [heads, lq] = qh.shape;
    const lk = kh.shape[1];
    const g = headGroup(heads);
    const rows = chunkRows(lq, lk, g, chunk);
    const flags = fusedKernels();
    const outs: tf.Tensor3D[] = [];
    for (let h0 = 0; h0 < heads; h0 += g) {
      outs.push(
        tf.tidy(() => {
          const qg = group(qh, h0, g);
          const kg = group(kh, h0, g); // [G, Lk, D]
          const kk = flags ? kg : t12(kg); // k [G, Lk, D] with the flag, else kT [G, D, Lk]
          const vg = group(vh, h0, g); // [G, Lk, D]
          const parts: tf.Tensor3D[] = [];
          for (let r0 = 0; r0 < lq; r0 += rows) {
            const n = Math.min(rows, lq - r0);
            parts.push(tf.tidy(() => mm(probs(part(qg, [0, r0, 0], [-1, n, -1]), kk, scale, maskBlock(mask, b, h0, g, r0, n), flags), vg, flags)));
          }
          return parts.length === 1 ? parts[0] : (tf.concat(parts, 1) as tf.Tensor3D); // [G, Lq, D]
        }),
      );
    }
    return mergeHeads(outs.length === 1 ? outs[0] : (tf.concat(outs, 0) as tf.Tensor3D)); // [Lq, C]
  });
}

/** The gradients of forwardOne for output gradient dO [Lq, H*D]: [dq, dk, dv] ([L, H*D] each), or [dq] without needKV. */
function backwardOne(
  qh: tf.Tensor3D,
  kh: tf.Tensor3D,
  vh: tf.Tensor3D,
  dO: tf.Tensor2D,
  b: number,
  scale: number,
  mask: tf.Tensor | undefined,
  chunk: number | undefined,
  needKV: boolean,
): tf.Tensor2D[] {
  return tf.tidy(() => {
    const [heads, lq] = qh.shape;
    const lk = kh.shape[1];
    const g = headGroup(heads);
    const rows = chunkRows(lq, lk, g, chunk);
    const flags = fusedKernels();
    const dOh = splitHeads(dO, heads); // [H, Lq, D]
    const dq: tf.Tensor3D[] = [];
    const dk: tf.Tensor3D[] = [];
    const dv: tf.Tensor3D[] = [];
    for (let h0 = 0; h0 < heads; h0 += g) {
      const [dqg, dkg, dvg] = tf.tidy((): tf.Tensor3D[] => {
        const qg = group(qh, h0, g);
        const kg = group(kh, h0, g); // [G, Lk, D]
        const kk = flags ? kg : t12(kg); // as in forwardOne
        const vg = group(vh, h0, g); // [G, Lk, D]
        const vv = flags ? vg : t12(vg); // v [G, Lk, D] with the flag, else vT [G, D, Lk]
        const dOg = group(dOh, h0, g);
        let dK: tf.Tensor3D | null = null; // sums over the query chunks
        let dV: tf.Tensor3D | null = null;
        const dQ: tf.Tensor3D[] = [];
        for (let r0 = 0; r0 < lq; r0 += rows) {
          const n = Math.min(rows, lq - r0);
          const [dq0, dk0, dv0] = tf.tidy(() => {
            const qc = part(qg, [0, r0, 0], [-1, n, -1]); // [G, n, D]
            const dOc = part(dOg, [0, r0, 0], [-1, n, -1]); // [G, n, D]
            const p = probs(qc, kk, scale, maskBlock(mask, b, h0, g, r0, n), flags); // recomputed, [G, n, Lk]
            const dP = (flags ? matMulTiled(dOc, vv, false, true) : tf.matMul(dOc, vv)) as tf.Tensor3D; // [G, n, Lk]
            if (flags) {
              const dSs = softmaxGrad(p, dP, scale); // softmax backward times the scale, one program
              if (!needKV) return [mm(dSs, kg, true)] as tf.Tensor3D[];
              return [mm(dSs, kg, true), matMulAT(dSs, qc, true), matMulAT(p, dOc, true)] as tf.Tensor3D[];
            }
            const dS = tf.mul(p, tf.sub(dP, tf.sum(tf.mul(dP, p), -1, true))) as tf.Tensor3D; // softmax backward
            if (!needKV) return [tf.mul(tf.matMul(dS, kg), scale)] as tf.Tensor3D[];
            return [tf.mul(tf.matMul(dS, kg), scale), tf.mul(matMulAT(dS, qc, false), scale), matMulAT(p, dOc, false)] as tf.Tensor3D[];
          });
          dQ.push(dq0);
          if (!needKV) continue;
          if (!dK || !dV) [dK, dV] = [dk0, dv0];
          else {
            const nk: tf.Tensor3D = tf.add(dK, dk0);
            const nv: tf.Tensor3D = tf.add(dV, dv0);
            tf.dispose([dK, dV, dk0, dv0]);
            [dK, dV] = [nk, nv];
          }
        }
        const dQall = dQ.length === 1 ? dQ[0] : (tf.concat(dQ, 1) as tf.Tensor3D);
        return dK && dV ? [dQall, dK, dV] : [dQall];
      });
      dq.push(dqg);
      if (dkg && dvg) {
        dk.push(dkg);
        dv.push(dvg);
      }
    }
    const cat = (l: tf.Tensor3D[]) => mergeHeads(l.length === 1 ? l[0] : (tf.concat(l, 0) as tf.Tensor3D));
    return needKV ? [cat(dq), cat(dk), cat(dv)] : [cat(dq)];
  });
}

/**
 * softmax(q k^T * scale + mask) v with heads split from the channel axis: q [B, Lq, H*D], k and v [B, Lk, H*D]
 * -> [B, Lq, H*D]. Same result as the plain formula (checked to 1e-5 in the tests), memory linear in Lq.
 */
export function chunkedAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, heads: number, opts: AttentionOptions = {}): tf.Tensor {
  const [bsz, , c] = q.shape as [number, number, number];
  const scale = opts.scale ?? 1 / Math.sqrt(c / heads);
  const needKV = !opts.constantKV;
  // The op's inputs are q, k and v (only q when k and v are constants: they are captured instead, and their
  // gradients never computed), then the mask: an input with a zero gradient, so that tfjs keeps it alive until the
  // backward pass even when it was made inside the function being differentiated.
  // One batch item's [L, C] rows split into heads [H, L, D].
  const headsOf = (t: tf.Tensor, b: number) =>
    tf.tidy(() => splitHeads(part(t, [b, 0, 0], [1, -1, -1]).reshape([t.shape[1]!, c]) as tf.Tensor2D, heads)); // [1, L, C] -> [L, C] -> [H, L, D]
  // On WebGPU the forward pass saves the heads it split (one transpose program each, not repeated in the backward
  // pass; q, k and v themselves are then free to go, so memory is the same); elsewhere it saves q, k and v.
  const keepHeads = fusedKernels();
  const run = (qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor, mm: tf.Tensor | undefined, save: tf.GradSaveFunc) => {
    const split: tf.Tensor3D[][] = []; // per batch item [qh, kh, vh]
    const outs: tf.Tensor2D[] = [];
    for (let b = 0; b < bsz; b++) {
      const hs = [qq, kk, vv].map((t) => headsOf(t, b));
      outs.push(forwardOne(hs[0], hs[1], hs[2], b, scale, mm, opts.chunk));
      split.push(hs);
    }
    const saved = keepHeads ? split.flat() : [qq, kk, vv];
    save(mm ? [...saved, mm] : saved);
    if (!keepHeads) tf.dispose(split.flat());
    const value = tf.stack(outs); // [B, Lq, C]
    tf.dispose(outs);
    const gradFunc = (dy: tf.Tensor, sv: tf.Tensor[]) => {
      const sm = mm ? sv[sv.length - 1] : undefined;
      const g: [tf.Tensor2D[], tf.Tensor2D[], tf.Tensor2D[]] = [[], [], []];
      for (let b = 0; b < bsz; b++) {
        const hs = keepHeads ? (sv.slice(3 * b, 3 * b + 3) as tf.Tensor3D[]) : sv.slice(0, 3).map((t) => headsOf(t, b));
        const d2 = tf.tidy(() => part(dy, [b, 0, 0], [1, -1, -1]).reshape([dy.shape[1]!, c]) as tf.Tensor2D); // [1, Lq, C] -> [Lq, C]
        const [a, bb, cc] = backwardOne(hs[0], hs[1], hs[2], d2, b, scale, sm, opts.chunk, needKV);
        g[0].push(a);
        if (bb && cc) {
          g[1].push(bb);
          g[2].push(cc);
        }
        if (!keepHeads) tf.dispose(hs);
        d2.dispose();
      }
      const res = g.slice(0, needKV ? 3 : 1).map((list) => {
        const st = tf.stack(list);
        tf.dispose(list);
        return st;
      });
      return sm ? [...res, tf.zerosLike(sm)] : res;
    };
    return { value, gradFunc };
  };
  const mask = opts.mask;
  if (!needKV) {
    if (mask) return withGrad<[tf.Tensor, tf.Tensor]>((qq, mm, save) => run(qq, k, v, mm, save))(q, mask);
    return withGrad<[tf.Tensor]>((qq, save) => run(qq, k, v, undefined, save))(q);
  }
  if (mask) return withGrad<[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]>((qq, kk, vv, mm, save) => run(qq, kk, vv, mm, save))(q, k, v, mask);
  return withGrad<[tf.Tensor, tf.Tensor, tf.Tensor]>((qq, kk, vv, save) => run(qq, kk, vv, undefined, save))(q, k, v);
}

/** The textbook formula with batched matMuls (reference for the tests; stores the [B, H, Lq, Lk] scores). */
export function plainAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, heads: number, opts: AttentionOptions = {}): tf.Tensor {
  return tf.tidy(() => {
    const [b, lq, c] = q.shape as [number, number, number];
    const lk = k.shape[1] as number;
    const d = c / heads;
    const scale = opts.scale ?? 1 / Math.sqrt(d);
    const qh = q.reshape([b, lq, heads, d]).transpose([0, 2, 1, 3]); // [B, H, Lq, D]
    const kt = k.reshape([b, lk, heads, d]).transpose([0, 2, 3, 1]); // [B, H, D, Lk]
    const vh = v.reshape([b, lk, heads, d]).transpose([0, 2, 1, 3]); // [B, H, Lk, D]
    let s: tf.Tensor = tf.mul(tf.matMul(qh as tf.Tensor4D, kt as tf.Tensor4D), scale); // [B, H, Lq, Lk]
    if (opts.mask) s = tf.add(s, opts.mask);
    const o = tf.matMul(tf.softmax(s, -1) as tf.Tensor4D, vh as tf.Tensor4D); // [B, H, Lq, D]
    return o.transpose([0, 2, 1, 3]).reshape([b, lq, c]); // [B, Lq, H, D] -> [B, Lq, C]
  });
}
