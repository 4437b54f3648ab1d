// Exact t-SNE (van der Maaten & Hinton 2008), O(n^2) per iteration: fine for a few hundred points (user embeddings,
// prototype attention). Follows the reference tsne.py / sklearn's exact method: per-point Gaussian precision found
// by binary search on the entropy (perplexity), symmetrised P, Student-t Q, early exaggeration, momentum gradient
// descent with per-coordinate gains. Seeded: the initial layout is 1e-4 * N(0, 1) (as sklearn) from seedrandom + Box-Muller.
import seedrandom from 'seedrandom';

export interface TsneOptions {
  /** Output dimensions (default 2). */
  dims?: number;
  /** Effective number of neighbours (default 30; clamped to (n - 1) / 3 for small n). */
  perplexity?: number;
  /** Gradient steps (default 1000). */
  iterations?: number;
  /** Step size (default max(n / earlyExaggeration / 4, 50), sklearn's 'auto'). */
  learningRate?: number;
  /** P is multiplied by this for the first `exaggerationIterations` steps (default 12, 250). */
  earlyExaggeration?: number;
  exaggerationIterations?: number;
  /** Momentum before / after the exaggeration phase (default 0.5 / 0.8). */
  momentum?: [number, number];
  seed?: number | string;
}

export interface TsneResult {
  /** n x dims embedding, centred. */
  points: number[][];
  /** KL(P || Q) at the end. */
  kl: number;
  /** The perplexity used (after clamping). */
  perplexity: number;
}

/** Squared Euclidean distances, n x n row-major. */
export function squaredDistances(x: readonly (readonly number[])[]): Float64Array {
  const n = x.length;
  const d = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      let s = 0;
      const a = x[i];
      const b = x[j];
      for (let k = 0; k < a.length; k++) s += (a[k] - b[k]) ** 2;
      d[i * n + j] = s;
      d[j * n + i] = s;
    }
  }
  return d;
}

/**
 * p_{j|i} for one point from its squared distances to all points (entry `self` ignored): p ∝ exp(-beta d), with beta
 * found by bisection (doubling / halving while unbracketed) so that the entropy H = -Σ p ln p equals ln(perplexity)
 * within 1e-5 (at most 100 steps).
 */
export function conditionalP(dist2: ArrayLike<number>, self: number, perplexity: number): { p: Float64Array; beta: number } {
  const n = dist2.length;
  const target = Math.log(perplexity);
  const p = new Float64Array(n);
  let beta = 1;
  let lo = -Infinity;
  let hi = Infinity;
  // Shift by the smallest distance so exp() does not underflow for far-away points.
  let dmin = Infinity;
  for (let j = 0; j < n; j++) if (j !== self && dist2[j] < dmin) dmin = dist2[j];
  for (let step = 0; step < 100; step++) {
    let sum = 0;
    let dot = 0;
    for (let j = 0; j < n; j++) {
      const v = j === self ? 0 : Math.exp(-beta * (dist2[j] - dmin));
      p[j] = v;
      sum += v;
      dot += v * (dist2[j] - dmin);
    }
    const H = Math.log(sum) + (beta * dot) / sum; // entropy of the normalised row
    for (let j = 0; j < n; j++) p[j] /= sum;
    const diff = H - target;
    if (Math.abs(diff) < 1e-5) break;
    if (diff > 0) {
      lo = beta; // too flat: sharpen
      beta = hi === Infinity ? beta * 2 : (beta + hi) / 2;
    } else {
      hi = beta;
      beta = lo === -Infinity ? beta / 2 : (beta + lo) / 2;
    }
  }
  return { p, beta };
}

/** Symmetric joint probabilities P = (P_cond + P_cond^T) / 2n, floored at 1e-12. */
export function jointP(x: readonly (readonly number[])[], perplexity: number): Float64Array {
  const n = x.length;
  const d = squaredDistances(x);
  const cond = new Float64Array(n * n);
  for (let i = 0; i < n; i++) cond.set(conditionalP(d.subarray(i * n, (i + 1) * n), i, perplexity).p, i * n);
  const P = new Float64Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) P[i * n + j] = i === j ? 0 : Math.max((cond[i * n + j] + cond[j * n + i]) / (2 * n), 1e-12);
  return P;
}

function gaussian(rng: () => number): () => number {
  let spare: number | null = null;
  return () => {
    if (spare !== null) {
      const s = spare;
      spare = null;
      return s;
    }
    const u = Math.max(rng(), 1e-300);
    const v = rng();
    const r = Math.sqrt(-2 * Math.log(u));
    spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  };
}

/** Embed the rows of x (n points, any dimension) in `dims` dimensions. */
export function tsne(x: readonly (readonly number[])[], o: TsneOptions = {}): TsneResult {
  const n = x.length;
  const dims = o.dims ?? 2;
  if (n === 0) return { points: [], kl: 0, perplexity: 0 };
  if (n === 1) return { points: [new Array(dims).fill(0)], kl: 0, perplexity: 0 };
  const perplexity = Math.max(1, Math.min(o.perplexity ?? 30, (n - 1) / 3));
  const iters = o.iterations ?? 1000;
  const exag = o.earlyExaggeration ?? 12;
  const exagIters = o.exaggerationIterations ?? 250;
  const lr = o.learningRate ?? Math.max(n / exag / 4, 50);
  const [m0, m1] = o.momentum ?? [0.5, 0.8];
  const P = jointP(x, perplexity);

  const randn = gaussian(seedrandom(`reno-tsne:${o.seed ?? 0}`));
  const Y = new Float64Array(n * dims).map(() => 1e-4 * randn());
  const update = new Float64Array(n * dims);
  const gains = new Float64Array(n * dims).fill(1);
  const grad = new Float64Array(n * dims);
  const num = new Float64Array(n * n);

  let kl = 0;
  for (let it = 0; it < iters; it++) {
    const ex = it < exagIters ? exag : 1;
    // Student-t kernel num_ij = 1 / (1 + |y_i - y_j|^2), Q = num / Σ num.
    let sumNum = 0;
    for (let i = 0; i < n; i++) {
      for (let j = i + 1; j < n; j++) {
        let s = 0;
        for (let k = 0; k < dims; k++) s += (Y[i * dims + k] - Y[j * dims + k]) ** 2;
        const v = 1 / (1 + s);
        num[i * n + j] = v;
        num[j * n + i] = v;
        sumNum += 2 * v;
      }
    }
    // dC/dy_i = 4 Σ_j (ex p_ij - q_ij) num_ij (y_i - y_j)
    grad.fill(0);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < n; j++) {
        if (i === j) continue;
        const w = (ex * P[i * n + j] - num[i * n + j] / sumNum) * num[i * n + j];
        for (let k = 0; k < dims; k++) grad[i * dims + k] += 4 * w * (Y[i * dims + k] - Y[j * dims + k]);
      }
    }
    const mom = it < exagIters ? m0 : m1;
    for (let a = 0; a < n * dims; a++) {
      gains[a] = Math.sign(grad[a]) !== Math.sign(update[a]) ? gains[a] + 0.2 : gains[a] * 0.8;
      if (gains[a] < 0.01) gains[a] = 0.01;
      update[a] = mom * update[a] - lr * gains[a] * grad[a];
      Y[a] += update[a];
    }
    for (let k = 0; k < dims; k++) {
      let mean = 0;
      for (let i = 0; i < n; i++) mean += Y[i * dims + k];
      mean /= n;
      for (let i = 0; i < n; i++) Y[i * dims + k] -= mean;
    }
    if (it === iters - 1) {
      kl = 0;
      for (let a = 0; a < n * n; a++) {
        const i = Math.floor(a / n);
        if (i === a % n) continue;
        kl += P[a] * Math.log(P[a] / Math.max(num[a] / sumNum, 1e-12));
      }
    }
  }
  const points = Array.from({ length: n }, (_, i) => Array.from(Y.subarray(i * dims, (i + 1) * dims)));
  return { points, kl, perplexity };
}

/** Fraction of points whose nearest other point (Euclidean) has the same label. */
export function nearestNeighbourAgreement(points: readonly (readonly number[])[], labels: readonly (string | number)[]): number {
  const d = squaredDistances(points);
  const n = points.length;
  let same = 0;
  for (let i = 0; i < n; i++) {
    let best = -1;
    for (let j = 0; j < n; j++) if (j !== i && (best < 0 || d[i * n + j] < d[i * n + best])) best = j;
    if (best >= 0 && labels[best] === labels[i]) same++;
  }
  return n ? same / n : NaN;
}
