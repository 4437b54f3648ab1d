// The ceilings of a taste world (src/preference/synth.ts), computed from its truth: the top-1 accuracy that one taste
// for everyone (population), the user's taste group (group oracle) and the user's own utility (Bayes) reach on the
// world's test pairs; what a model's accuracy is read against.
/** Top-1 accuracy, on the drawn labels, of three scorers that know the world's truth. */
export interface Ceilings {
  /** One taste for everyone: the single weight vector that best fits every user's true preferences (logistic fit
   * of the true P(liked) of all pairs), what a model that ignores the history can reach at best. */
  population: number;
  /** The user's taste group: global + group weights (a model that tells the group from the history). */
  group: number;
  /** The user's own true utility (the Bayes decision; no model can expect more). */
  bayes: number;
  /** Expected accuracy of the Bayes decision, mean of max(p, 1 - p) (bayes is its draw on these labels). */
  bayes_expected: number;
  /** Test pairs counted. */
  n: number;
}
export interface WorldCeilings {
  unseen: Ceilings;
  seen: Ceilings;
  /** The population taste's weights (the world's taste-feature order). */
  population_taste: number[];
}

/** One pair as the ceilings need it: taste-feature difference liked - disliked, P(liked), the two users' weights. */
export interface TruthPair {
  diff: number[];
  pLiked: number;
  user: number[];
  group: number[];
  test: 'seen' | 'unseen' | null;
}

/** The best single taste: logistic regression of the true P(liked) on the feature difference (Newton steps, no bias:
 * the liked/disliked order carries no information). The temperature is folded into the weights. */
export function fitPopulationTaste(pairs: { diff: number[]; pLiked: number }[], k = pairs[0]?.diff.length ?? 0): number[] {
  let w = new Array<number>(k).fill(0);
  for (let it = 0; it < 50; it++) {
    const g = new Array<number>(k).fill(0);
    const h = Array.from({ length: k }, () => new Array<number>(k).fill(1e-6));
    for (const p of pairs) {
      const z = p.diff.reduce((s, d, i) => s + d * w[i], 0);
      const q = 1 / (1 + Math.exp(-z));
      for (let i = 0; i < k; i++) {
        g[i] += (p.pLiked - q) * p.diff[i];
        for (let j = 0; j < k; j++) h[i][j] += q * (1 - q) * p.diff[i] * p.diff[j];
      }
    }
    const step = solve(h, g);
    w = w.map((x, i) => x + step[i]);
    if (Math.hypot(...step) < 1e-9) break;
  }
  return w;
}

/** Solve A x = b (small, symmetric positive definite) by Gaussian elimination with partial pivoting. */
function solve(a: number[][], b: number[]): number[] {
  const n = b.length;
  const m = a.map((row, i) => [...row, b[i]]);
  for (let c = 0; c < n; c++) {
    let piv = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r][c]) > Math.abs(m[piv][c])) piv = r;
    [m[c], m[piv]] = [m[piv], m[c]];
    for (let r = 0; r < n; r++) {
      if (r === c || m[c][c] === 0) continue;
      const f = m[r][c] / m[c][c];
      for (let j = c; j <= n; j++) m[r][j] -= f * m[c][j];
    }
  }
  return m.map((row, i) => (row[i] === 0 ? 0 : row[n] / row[i]));
}

/** The ceilings of a world from its truth (every pair's features, P(liked), user and group weights). */
export function worldCeilings(pairs: TruthPair[], features: number): WorldCeilings {
  const pop = fitPopulationTaste(pairs, features);
  const dot = (w: number[], d: number[]) => d.reduce((s, x, i) => s + x * w[i], 0);
  const right = (v: number) => (v > 0 ? 1 : v === 0 ? 0.5 : 0);
  const of = (which: 'seen' | 'unseen'): Ceilings => {
    const ps = pairs.filter((p) => p.test === which);
    const mean = (f: (p: TruthPair) => number) => (ps.length ? ps.reduce((s, p) => s + f(p), 0) / ps.length : NaN);
    return {
      population: mean((p) => right(dot(pop, p.diff))),
      group: mean((p) => right(dot(p.group, p.diff))),
      bayes: mean((p) => right(dot(p.user, p.diff))),
      bayes_expected: mean((p) => Math.max(p.pLiked, 1 - p.pLiked)),
      n: ps.length,
    };
  };
  return { unseen: of('unseen'), seen: of('seen'), population_taste: pop };
}
