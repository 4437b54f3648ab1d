// Evaluation metrics of the preference model (seed paper sec. 4.1 "Evaluation Metric", Tables 1-5, Figs. 5 and 7).
// Pure functions on numbers and ids: no tfjs. Accuracies are fractions in [0, 1]; tables show them in percent.
//
// Ties in scores are counted by expectation, as if they were broken uniformly at random:
//   - pairwise (one liked vs one disliked, Tables 1, 2, 4, 5): 1 when liked > disliked, 0.5 when equal, 0 otherwise;
//   - top-k among candidates (one liked vs several disliked, Table 3): with g = number of disliked scored strictly
//     higher than the liked image and e = number scored equal to it, the liked image's rank is uniform on
//     g+1 .. g+1+e, so P(rank <= k) = clamp((k - g) / (e + 1), 0, 1) and the expected rank is g + 1 + e/2.
//     With one disliked candidate top-1 equals the pairwise value; with all scores equal top-k = k / candidates
//     (the "Random" row of Table 3: 25 / 50 / 75 % for 4 candidates).
// A non-finite score is an error (a model that returns NaN must not look like a coin flip).
import seedrandom from 'seedrandom';
import { shuffle } from '../util/shuffle.js';

export type Group = 'seen' | 'unseen';

function finite(x: number, what: string): number {
  if (!Number.isFinite(x)) throw new RangeError(`${what} is not a finite score: ${x}`);
  return x;
}

/** 1 if liked > disliked, 0.5 if equal, 0 otherwise. */
export function pairCorrect(liked: number, disliked: number): number {
  finite(liked, 'liked');
  finite(disliked, 'disliked');
  return liked > disliked ? 1 : liked === disliked ? 0.5 : 0;
}

/** Mean of pairCorrect over the pairs (NaN when there are none). */
export function pairwiseAccuracy(pairs: readonly { liked: number; disliked: number }[]): number {
  if (!pairs.length) return NaN;
  return pairs.reduce((s, p) => s + pairCorrect(p.liked, p.disliked), 0) / pairs.length;
}

function rankCounts(liked: number, disliked: readonly number[]): { above: number; equal: number } {
  finite(liked, 'liked');
  let above = 0;
  let equal = 0;
  disliked.forEach((d, i) => {
    finite(d, `disliked[${i}]`);
    if (d > liked) above++;
    else if (d === liked) equal++;
  });
  return { above, equal };
}

/** P(the liked item is among the top k) with ties broken uniformly at random. */
export function topKHit(liked: number, disliked: readonly number[], k: number): number {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`k must be a positive integer, got ${k}`);
  const { above, equal } = rankCounts(liked, disliked);
  return Math.min(1, Math.max(0, (k - above) / (equal + 1)));
}

/** The liked item's expected 1-based rank among all candidates (ties broken uniformly at random). */
export function expectedRank(liked: number, disliked: readonly number[]): number {
  const { above, equal } = rankCounts(liked, disliked);
  return above + 1 + equal / 2;
}

/** Top-k accuracy for each k (mean of topKHit over the candidate sets; NaN when there are none). */
export function topKAccuracy(sets: readonly { liked: number; disliked: readonly number[] }[], ks: readonly number[] = [1, 2, 3]): number[] {
  return ks.map((k) => (sets.length ? sets.reduce((s, c) => s + topKHit(c.liked, c.disliked, k), 0) / sets.length : NaN));
}

// ---------------------------------------------------------------------------------------------------------------
// Seen / unseen grouping (Table 2, Fig. 5)

export interface ScoredPair {
  user: string;
  group: Group;
  liked: number;
  disliked: number;
}

export interface ScoredSet {
  user: string;
  group: Group;
  liked: number;
  disliked: number[];
}

export interface Grouped<T> {
  all: T;
  seen: T;
  unseen: T;
  /** |seen - unseen| (Table 2's |Δ|), per k for top-k. */
  gap: T;
  n: { all: number; seen: number; unseen: number };
}

const absGap = (a: number, b: number) => Math.abs(a - b);

/** Pairwise top-1 accuracy over all pairs, seen users' pairs and unseen users' pairs, and the seen-unseen gap. */
export function groupedPairwise(pairs: readonly ScoredPair[]): Grouped<number> {
  const seen = pairs.filter((p) => p.group === 'seen');
  const unseen = pairs.filter((p) => p.group === 'unseen');
  const s = pairwiseAccuracy(seen);
  const u = pairwiseAccuracy(unseen);
  return { all: pairwiseAccuracy(pairs), seen: s, unseen: u, gap: absGap(s, u), n: { all: pairs.length, seen: seen.length, unseen: unseen.length } };
}

/** Top-k accuracies (one per k) grouped the same way. */
export function groupedTopK(sets: readonly ScoredSet[], ks: readonly number[] = [1, 2, 3]): Grouped<number[]> {
  const seen = sets.filter((p) => p.group === 'seen');
  const unseen = sets.filter((p) => p.group === 'unseen');
  const s = topKAccuracy(seen, ks);
  const u = topKAccuracy(unseen, ks);
  return {
    all: topKAccuracy(sets, ks),
    seen: s,
    unseen: u,
    gap: s.map((v, i) => absGap(v, u[i])),
    n: { all: sets.length, seen: seen.length, unseen: unseen.length },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Deterministic evaluation sets

export interface EvalPair {
  user: string;
  prompt: string;
  liked: string;
  disliked: string;
}

export interface Candidate {
  image: string;
  /** The prompt of the pair the image comes from (each candidate is scored with its own prompt). */
  prompt: string;
}

/** One liked image against `disliked.length` disliked images of the same user; disliked[0] is its own pair's. */
export interface CandidateSet {
  user: string;
  liked: Candidate;
  disliked: Candidate[];
}

export interface CandidateOptions {
  seed: number | string;
  /** Disliked candidates per set (default 3, Table 3). */
  disliked?: number;
  /** Sets per user (default 1), each with a different liked image. */
  perUser?: number;
  /** Images (per user) that may not be candidates, e.g. the user's reference images. */
  exclude?: ReadonlyMap<string, ReadonlySet<string>>;
}

const byPair = (a: EvalPair, b: EvalPair) =>
  a.liked < b.liked
    ? -1
    : a.liked > b.liked
      ? 1
      : a.disliked < b.disliked
        ? -1
        : a.disliked > b.disliked
          ? 1
          : a.prompt < b.prompt
            ? -1
            : a.prompt > b.prompt
              ? 1
              : 0;

function groupByUser(pairs: readonly EvalPair[]): Map<string, EvalPair[]> {
  const m = new Map<string, EvalPair[]>();
  for (const p of pairs) m.set(p.user, [...(m.get(p.user) ?? []), p]);
  for (const v of m.values()) v.sort(byPair);
  return new Map([...m].sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true })));
}

/**
 * Candidate sets for the top-k evaluation, independent of the input order and reproducible from the seed. Per user
 * (own RNG seeded by seed and user id): the pool of disliked candidates is every image the user disliked and never
 * liked in these pairs, minus `exclude`; liked pairs are taken in seeded order (one per liked image, liked image not
 * excluded); each set is the pair's liked and disliked image plus `disliked - 1` other pool images drawn at random.
 * A user whose pool is smaller than `disliked` gets no set and is listed in `skipped`.
 */
export function candidateSets(pairs: readonly EvalPair[], o: CandidateOptions): { sets: CandidateSet[]; skipped: string[] } {
  const nDis = o.disliked ?? 3;
  const perUser = o.perUser ?? 1;
  const sets: CandidateSet[] = [];
  const skipped: string[] = [];
  for (const [user, ps] of groupByUser(pairs)) {
    const rng = seedrandom(`reno-candidates:${o.seed}:${user}`);
    const excl = o.exclude?.get(user) ?? new Set<string>();
    const liked = new Set(ps.map((p) => p.liked));
    const pool = new Map<string, Candidate>();
    for (const p of ps)
      if (!liked.has(p.disliked) && !excl.has(p.disliked) && !pool.has(p.disliked)) pool.set(p.disliked, { image: p.disliked, prompt: p.prompt });
    const usable = ps.filter((p) => pool.has(p.disliked) && !excl.has(p.liked));
    if (pool.size < nDis || !usable.length) {
      skipped.push(user);
      continue;
    }
    const usedLiked = new Set<string>();
    for (const p of shuffle(usable, rng)) {
      if (usedLiked.size >= perUser) break;
      if (usedLiked.has(p.liked)) continue;
      usedLiked.add(p.liked);
      const others = shuffle(
        [...pool.values()].filter((c) => c.image !== p.disliked),
        rng,
      ).slice(0, nDis - 1);
      sets.push({ user, liked: { image: p.liked, prompt: p.prompt }, disliked: [pool.get(p.disliked)!, ...others] });
    }
  }
  return { sets, skipped };
}

/**
 * A user's pairs split into references (the preference history given to the model) and queries (the pairs scored),
 * in a seeded order fixed per user: references are the first nRef pairs of that order and queries are those after
 * the first maxNRef, so an N_ref sweep (nRef <= maxNRef) scores the same queries with nested references.
 */
export function splitReferences<P extends EvalPair>(
  userPairs: readonly P[],
  o: { nRef: number; maxNRef?: number; seed: number | string },
): { references: P[]; queries: P[] } {
  const max = o.maxNRef ?? o.nRef;
  if (!Number.isInteger(o.nRef) || o.nRef < 0 || o.nRef > max) throw new RangeError(`nRef must be an integer in [0, maxNRef=${max}], got ${o.nRef}`);
  const user = userPairs[0]?.user ?? '';
  const order = shuffle([...userPairs].sort(byPair), seedrandom(`reno-references:${o.seed}:${user}`));
  return { references: order.slice(0, o.nRef), queries: order.slice(max) };
}

// ---------------------------------------------------------------------------------------------------------------
// N_ref sweep (Figs. 5 and 7)

export interface NRefSweep {
  /** The N_ref values, ascending. */
  nRef: number[];
  /** Per model: top-1 accuracy at each N_ref over all test users, seen users and unseen users. */
  series: { model: string; all: number[]; seen: number[]; unseen: number[] }[];
}

/** Assemble a sweep from per-(model, N_ref) grouped results. */
export function nRefSweep(results: readonly { model: string; nRef: number; accuracy: Grouped<number> }[]): NRefSweep {
  const nRef = [...new Set(results.map((r) => r.nRef))].sort((a, b) => a - b);
  const models = [...new Set(results.map((r) => r.model))];
  return {
    nRef,
    series: models.map((model) => {
      const at = (n: number) => results.find((r) => r.model === model && r.nRef === n)?.accuracy;
      return {
        model,
        all: nRef.map((n) => at(n)?.all ?? NaN),
        seen: nRef.map((n) => at(n)?.seen ?? NaN),
        unseen: nRef.map((n) => at(n)?.unseen ?? NaN),
      };
    }),
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Tables in the paper's layout

export type Cell = string | number | null;

export interface PaperTable {
  /** "table1" .. "table5" */
  id: string;
  title: string;
  /** Header row; the first column holds the row labels. */
  columns: string[];
  /** Numbers are percentages (2 decimals when printed) except in `counts`; null prints as a dash. */
  rows: Cell[][];
  /** Rows / columns (indices into rows / columns) holding counts such as N_ref, printed as integers. */
  counts?: { rows?: number[]; columns?: number[] };
}

const pct = (x: number) => (Number.isFinite(x) ? Math.round(x * 1e6) / 1e4 : null);

/** Table 1: models as columns; rows N_ref and Top-1 acc (%) (one liked vs one disliked). */
export function table1(results: readonly { model: string; nRef: number; top1: number }[]): PaperTable {
  return {
    id: 'table1',
    title: 'Quantitative comparison between a liked and a disliked case.',
    columns: ['Model', ...results.map((r) => r.model)],
    rows: [
      ['N_ref', ...results.map((r) => r.nRef)],
      ['Top-1 acc (%)', ...results.map((r) => pct(r.top1))],
    ],
    counts: { rows: [0] },
  };
}

/** Table 2: models as columns; rows Seen, Unseen, |Δ| (%) (top-1 accuracy at one N_ref). */
export function table2(results: readonly { model: string; seen: number; unseen: number }[], nRef = 8): PaperTable {
  return {
    id: 'table2',
    title: `Top-1 accuracy on seen-unseen data with N_ref = ${nRef}.`,
    columns: ['', ...results.map((r) => r.model)],
    rows: [
      ['Seen', ...results.map((r) => pct(r.seen))],
      ['Unseen', ...results.map((r) => pct(r.unseen))],
      ['|Δ| (%)', ...results.map((r) => pct(Math.abs(r.seen - r.unseen)))],
    ],
  };
}

/** Table 3: one row per model (Model, N_ref, Top-1..Top-K Acc), preceded by the Random row (k / candidates). */
export function table3(
  results: readonly { model: string; nRef: number; topK: readonly number[] }[],
  o: { random?: boolean; candidates?: number } = {},
): PaperTable {
  const K = Math.max(3, ...results.map((r) => r.topK.length));
  const cands = o.candidates ?? 4;
  const rows: Cell[][] = [];
  if (o.random ?? true) rows.push(['Random', 0, ...Array.from({ length: K }, (_, i) => pct(Math.min(1, (i + 1) / cands)))]);
  for (const r of results) rows.push([r.model, r.nRef, ...Array.from({ length: K }, (_, i) => (i < r.topK.length ? pct(r.topK[i]) : null))]);
  return {
    id: 'table3',
    title: `A quantitative comparison between the liked case and ${cands - 1} disliked cases. We report the top-1 to top-${K} accuracy (%).`,
    columns: ['Model', 'N_ref', ...Array.from({ length: K }, (_, i) => `Top-${i + 1} Acc`)],
    rows,
    counts: { columns: [1] },
  };
}

/** Table 4: ablation settings as columns (e.g. Baseline, w/ Pmpt, w/ Pmpt & L_aux, Full); one row Top-1 Acc (%). */
export function table4(results: readonly { setting: string; top1: number }[]): PaperTable {
  return {
    id: 'table4',
    title: 'Ablation Study for different Settings.',
    columns: ['', ...results.map((r) => r.setting)],
    rows: [['Top-1 Acc (%)', ...results.map((r) => pct(r.top1))]],
  };
}

/** Table 5: prototype counts as columns; one row Top-1 Acc (%). */
export function table5(results: readonly { prototypes: number; top1: number }[]): PaperTable {
  return {
    id: 'table5',
    title: 'Ablation Study for Prototype Numbers.',
    columns: ['Number of Prototypes', ...results.map((r) => String(r.prototypes))],
    rows: [['Top-1 Acc (%)', ...results.map((r) => pct(r.top1))]],
  };
}

const cellText = (c: Cell, count: boolean) => (c === null ? '–' : typeof c === 'number' ? (count ? String(c) : c.toFixed(2)) : c);

/** GitHub markdown: a bold caption line, then the table (numbers right-aligned). */
export function tableMarkdown(t: PaperTable): string {
  const n = t.id.replace(/^table/, '');
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const numeric = t.columns.map((_, j) => j > 0 && t.rows.some((r) => typeof r[j] === 'number'));
  const lines = [
    `**Table ${n}.** ${t.title}`,
    '',
    `| ${t.columns.map(esc).join(' | ')} |`,
    `| ${numeric.map((num) => (num ? '---:' : '---')).join(' | ')} |`,
    ...t.rows.map(
      (r, i) => `| ${r.map((c, j) => esc(cellText(c, !!(t.counts?.rows?.includes(i) || t.counts?.columns?.includes(j))))).join(' | ')} |`,
    ),
  ];
  return lines.join('\n') + '\n';
}

/** The table as a JSON value: {id, title, columns, rows} with percentages rounded to 4 decimals. */
export function tableJson(t: PaperTable): PaperTable {
  return JSON.parse(JSON.stringify(t)) as PaperTable;
}
