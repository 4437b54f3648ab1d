// Memory-bounded multi-head attention with its own gradient (tf.customGrad), in the style of FlashAttention's
// recompute: queries are processed in chunks, so no tensor larger than [chunk, Lk] exists per head, in the forward
// or the backward pass, and the backward pass recomputes the probabilities instead of storing them. Every product
// is a plain 2-D matMul without transpose flags (operands are transposed explicitly first), which is the only fast
// matMul on the wasm backend (../shared/docs/backends.md); it also keeps each WebGPU binding under the device limit.
import * as tf from '@tensorflow/tfjs';

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
}

/** Largest [rows, Lk] float32 block (elements) per step: 8M elements = 32 MiB, far under WebGPU's 128 MiB bindings. */
export let maxBlockElems = 8 * 1024 * 1024;
export function setMaxBlockElems(n: number): void {
  maxBlockElems = n;
}

function chunkRows(lq: number, lk: number, chunk?: number): number {
  return Math.max(1, Math.min(lq, chunk ?? Math.floor(maxBlockElems / Math.max(1, lk))));
}

/** The [rows, Lk] slice of the mask for batch b, head h, query rows [r0, r0 + n). */
function maskBlock(mask: tf.Tensor | undefined, b: number, h: number, r0: number, n: number): tf.Tensor | null {
  if (!mask) return null;
  const m = mask.rank === 4 ? mask : mask.reshape([1, 1, ...mask.shape.slice(-2)]); // -> [Bm, Hm, Rm, Lk]
  const [bm, hm, rm, lk] = m.shape as [number, number, number, number];
  const rows = rm === 1 ? [0, 1] : [r0, n];
  return tf.slice(m, [bm === 1 ? 0 : b, hm === 1 ? 0 : h, rows[0], 0], [1, 1, rows[1], lk]).reshape([rows[1], lk]); // [rows, Lk]
}

/** Softmax probabilities of one block: p = softmax(q kT * scale + mask), q [n, D], kT [D, Lk]. */
function probs(q: tf.Tensor2D, kT: tf.Tensor2D, scale: number, m: tf.Tensor | null): tf.Tensor2D {
  let s: tf.Tensor = tf.mul(tf.matMul(q, kT), scale); // [n, Lk]
  if (m) s = tf.add(s, m);
  return tf.softmax(s, -1) as tf.Tensor2D;
}

/** Column block h of a [L, C] matrix: [L, D]. */
const headCols = (t: tf.Tensor2D, h: number, d: number) => tf.slice(t, [0, h * d], [-1, d]) as tf.Tensor2D;

function forwardOne(q: tf.Tensor2D, k: tf.Tensor2D, v: tf.Tensor2D, heads: number, b: number, scale: number, mask: tf.Tensor | undefined, rows: number): tf.Tensor2D {
  const [lq, c] = q.shape;
  const d = c / heads;
  const outs: tf.Tensor2D[] = [];
  for (let h = 0; h < heads; h++) {
    const o = tf.tidy(() => {
      const qh = headCols(q, h, d);
      const kT = tf.transpose(headCols(k, h, d)) as tf.Tensor2D; // [D, Lk]
      const vh = headCols(v, h, d); // [Lk, D]
      const parts: tf.Tensor2D[] = [];
      for (let r0 = 0; r0 < lq; r0 += rows) {
        const n = Math.min(rows, lq - r0);
        parts.push(tf.tidy(() => tf.matMul(probs(tf.slice(qh, [r0, 0], [n, d]), kT, scale, maskBlock(mask, b, h, r0, n)), vh)));
      }
      return parts.length === 1 ? parts[0] : (tf.concat(parts, 0) as tf.Tensor2D); // [Lq, D]
    });
    outs.push(o);
  }
  const out = tf.concat(outs, 1) as tf.Tensor2D; // heads side by side: [Lq, C]
  tf.dispose(outs);
  return out;
}

function backwardOne(
  q: tf.Tensor2D,
  k: tf.Tensor2D,
  v: tf.Tensor2D,
  dO: tf.Tensor2D,
  heads: number,
  b: number,
  scale: number,
  mask: tf.Tensor | undefined,
  rows: number,
): [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D] {
  const [lq, c] = q.shape;
  const d = c / heads;
  const dq: tf.Tensor2D[] = [];
  const dk: tf.Tensor2D[] = [];
  const dv: tf.Tensor2D[] = [];
  for (let h = 0; h < heads; h++) {
    const [dqh, dkh, dvh] = tf.tidy(() => {
      const qh = headCols(q, h, d);
      const kh = headCols(k, h, d); // [Lk, D]
      const kT = tf.transpose(kh) as tf.Tensor2D; // [D, Lk]
      const vT = tf.transpose(headCols(v, h, d)) as tf.Tensor2D; // [D, Lk]
      const dOh = headCols(dO, h, d);
      let dK: tf.Tensor2D = tf.zerosLike(kh);
      let dV: tf.Tensor2D = tf.zerosLike(kh);
      const dQ: tf.Tensor2D[] = [];
      for (let r0 = 0; r0 < lq; r0 += rows) {
        const n = Math.min(rows, lq - r0);
        const [dq0, dk0, dv0] = tf.tidy(() => {
          const qc = tf.slice(qh, [r0, 0], [n, d]); // [n, D]
          const dOc = tf.slice(dOh, [r0, 0], [n, d]); // [n, D]
          const p = probs(qc, kT, scale, maskBlock(mask, b, h, r0, n)); // recomputed, [n, Lk]
          const pT = tf.transpose(p) as tf.Tensor2D; // [Lk, n]
          const dP = tf.matMul(dOc, vT); // [n, Lk]
          const dS = tf.mul(p, tf.sub(dP, tf.sum(tf.mul(dP, p), -1, true))) as tf.Tensor2D; // softmax backward
          const dST = tf.transpose(dS) as tf.Tensor2D; // [Lk, n]
          return [tf.mul(tf.matMul(dS, kh), scale), tf.mul(tf.matMul(dST, qc), scale), tf.matMul(pT, dOc)] as tf.Tensor2D[];
        });
        dQ.push(dq0);
        const nk = tf.add(dK, dk0) as tf.Tensor2D;
        const nv = tf.add(dV, dv0) as tf.Tensor2D;
        tf.dispose([dK, dV, dk0, dv0]);
        dK = nk;
        dV = nv;
      }
      return [dQ.length === 1 ? dQ[0] : (tf.concat(dQ, 0) as tf.Tensor2D), dK, dV];
    });
    dq.push(dqh);
    dk.push(dkh);
    dv.push(dvh);
  }
  const res = [tf.concat(dq, 1), tf.concat(dk, 1), tf.concat(dv, 1)] as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
  tf.dispose([...dq, ...dk, ...dv]);
  return res;
}

/**
 * softmax(q k^T * scale + mask) v with heads split from the channel axis: q [B, Lq, H*D], k and v [B, Lk, H*D]
 * -> [B, Lq, H*D]. Same result as the plain formula (checked to 1e-5 in the tests), memory linear in Lq.
 */
export function chunkedAttention(q: tf.Tensor, k: tf.Tensor, v: tf.Tensor, heads: number, opts: AttentionOptions = {}): tf.Tensor {
  const [bsz, lq, c] = q.shape as [number, number, number];
  const lk = k.shape[1] as number;
  const scale = opts.scale ?? 1 / Math.sqrt(c / heads);
  const rows = chunkRows(lq, lk, opts.chunk);
  // The mask is an input of the custom op (with a zero gradient), so tfjs keeps it alive until the backward pass
  // even when it was made inside the function being differentiated.
  const run = (qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor, mm: tf.Tensor | undefined, save: tf.GradSaveFunc) => {
    save(mm ? [qq, kk, vv, mm] : [qq, kk, vv]);
    const outs: tf.Tensor2D[] = [];
    for (let b = 0; b < bsz; b++) {
      const [q2, k2, v2] = [qq, kk, vv].map((t) => tf.tidy(() => t.slice([b, 0, 0], [1, -1, -1]).reshape([t.shape[1]!, c]) as tf.Tensor2D)); // [L, C]
      outs.push(forwardOne(q2, k2, v2, heads, b, scale, mm, rows));
      tf.dispose([q2, k2, v2]);
    }
    const value = tf.stack(outs); // [B, Lq, C]
    tf.dispose(outs);
    const gradFunc = (dy: tf.Tensor, saved: tf.Tensor[]) => {
      const [sq, sk, sv, sm] = saved;
      const g: [tf.Tensor2D[], tf.Tensor2D[], tf.Tensor2D[]] = [[], [], []];
      for (let b = 0; b < bsz; b++) {
        const [q2, k2, v2, d2] = [sq, sk, sv, dy].map((t) => tf.tidy(() => t.slice([b, 0, 0], [1, -1, -1]).reshape([t.shape[1]!, c]) as tf.Tensor2D));
        const [a, bb, cc] = backwardOne(q2, k2, v2, d2, heads, b, scale, sm, rows);
        g[0].push(a);
        g[1].push(bb);
        g[2].push(cc);
        tf.dispose([q2, k2, v2, d2]);
      }
      const res = g.map((list) => {
        const st = tf.stack(list);
        tf.dispose(list);
        return st;
      });
      return sm ? [...res, tf.zerosLike(sm)] : res;
    };
    return { value, gradFunc };
  };
  if (opts.mask) return withGrad<[tf.Tensor, tf.Tensor, tf.Tensor, tf.Tensor]>((qq, kk, vv, mm, save) => run(qq, kk, vv, mm, save))(q, k, v, opts.mask);
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
