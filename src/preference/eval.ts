// Scoring with a preference model: Q for one candidate (preferenceScore), Q of the liked and the disliked image of
// many (history, liked, disliked) items (scorePairs, what `reno preference eval` builds its tables on), and the
// pairwise (top-1) accuracy of a dataset split: the fraction of pairs whose liked image gets the higher Q (a tie
// counts one half), seed paper 4.1 "Evaluation Metric".
// Each item's history is encoded once into a KvCache and both targets are scored as a batch of two against it.
// Items are not padded together: right padding would shift the rotary positions of the target after a shorter
// history, so batching across items would change the scores; `batchSize` items share one read-back instead.
import * as tf from '../runtime/tf.js';
import { ImageCache, rngFor, sampleReferences, splitPairs, type PreferenceDataset, type PreferencePair, type Split } from './data.js';
import { pairwiseAccuracy } from './metrics.js';
import type { PreferenceModel, RefPixels } from './model.js';

/** Images of a history pair, [1, H, W, 3] in [0, 1] (any size: they are resized like the candidate). */
export interface HistoryImages {
  prompt: string;
  liked: tf.Tensor4D;
  disliked: tf.Tensor4D;
}

/** Q(S, z) of one candidate image [1, H, W, 3] in [0, 1] for a prompt, given a user's history (oldest first). */
export function preferenceScore(model: PreferenceModel, history: HistoryImages[], candidate: tf.Tensor4D, prompt: string): number {
  const refs: RefPixels[] = history.map((h) => ({ prompt: h.prompt, liked: model.pixels(h.liked), disliked: model.pixels(h.disliked) }));
  const cache = model.encodeReferences(refs);
  try {
    return tf.tidy(() => tf.sigmoid(model.scoreTargets(cache, prompt, model.pixels(candidate))).dataSync()[0]);
  } finally {
    cache.dispose();
    for (const r of refs) tf.dispose([r.liked, r.disliked]);
  }
}

/** One item to score: references (oldest first) and a target pair, as image files. */
export interface PairItem {
  refs: { prompt: string; liked: string; disliked: string }[];
  prompt: string;
  liked: string;
  disliked: string;
}

export interface PairScores {
  /** Q of the liked image of each item. */
  liked: number[];
  /** Q of the disliked image of each item. */
  disliked: number[];
}

/** Q(liked) and Q(disliked) for every item; images are read through `images` (a cache of normalised pixels). */
export async function scorePairs(
  model: PreferenceModel,
  items: PairItem[],
  o: { batchSize?: number; images?: ImageCache; onBatch?: (done: number) => void } = {},
): Promise<PairScores> {
  const images = o.images ?? new ImageCache(4096, (x) => model.pixels(x));
  const batch = Math.max(1, o.batchSize ?? 16);
  const out: PairScores = { liked: [], disliked: [] };
  try {
    for (let start = 0; start < items.length; start += batch) {
      const diffs: tf.Tensor1D[] = [];
      for (const it of items.slice(start, start + batch)) {
        const refs: RefPixels[] = [];
        for (const r of it.refs) refs.push({ prompt: r.prompt, liked: await images.get(r.liked), disliked: await images.get(r.disliked) });
        const liked = await images.get(it.liked);
        const disliked = await images.get(it.disliked);
        const cache = model.encodeReferences(refs);
        diffs.push(tf.tidy(() => model.scoreTargets(cache, it.prompt, tf.concat([liked, disliked], 0) as tf.Tensor4D)));
        cache.dispose();
      }
      const q = tf.tidy(() => tf.sigmoid(tf.stack(diffs))); // [n, 2]
      const v = await q.data();
      tf.dispose([q, ...diffs]);
      for (let i = 0; i < diffs.length; i++) {
        out.liked.push(v[2 * i]);
        out.disliked.push(v[2 * i + 1]);
      }
      o.onBatch?.(Math.min(items.length, start + batch));
    }
  } finally {
    if (!o.images) images.dispose();
  }
  return out;
}

/** Items for the pairs of a split with seeded references (in file order), as evaluation uses them. */
export function evalItems(ds: PreferenceDataset, pairs: PreferencePair[], nRef: number, seed: number | string): PairItem[] {
  return pairs.map((p) => ({
    refs: sampleReferences(ds, p, nRef, rngFor('eval-refs', seed, p.index), false).map((r) => ({
      prompt: r.prompt,
      liked: r.liked,
      disliked: r.disliked,
    })),
    prompt: p.prompt,
    liked: p.liked,
    disliked: p.disliked,
  }));
}

export interface Accuracy {
  accuracy: number;
  /** Pairs scored. */
  n: number;
}

/** Fraction of items with Q(liked) > Q(disliked), ties one half (./metrics.ts; a non-finite score throws). */
export function accuracyOf(s: PairScores): Accuracy {
  return { accuracy: pairwiseAccuracy(s.liked.map((liked, i) => ({ liked, disliked: s.disliked[i] }))), n: s.liked.length };
}

/**
 * Pairwise accuracy on a split (optionally only seen / unseen users), on at most maxPairs pairs drawn with `seed`
 * (all of them by default), with references as evalItems draws them.
 */
export async function splitAccuracy(
  model: PreferenceModel,
  ds: PreferenceDataset,
  split: Split,
  o: { users?: 'all' | 'seen' | 'unseen'; maxPairs?: number; seed?: number; nRef?: number; images?: ImageCache; batchSize?: number } = {},
): Promise<Accuracy> {
  let pairs = splitPairs(ds, split, o.users ?? 'all');
  const seed = o.seed ?? 0;
  if (o.maxPairs !== undefined && pairs.length > o.maxPairs) {
    const rng = rngFor('eval-subset', seed, split);
    pairs = pairs
      .map((p) => ({ p, k: rng() }))
      .sort((a, b) => a.k - b.k)
      .slice(0, o.maxPairs)
      .map((x) => x.p)
      .sort((a, b) => a.index - b.index);
  }
  const items = evalItems(ds, pairs, o.nRef ?? model.config.nRef, seed);
  return accuracyOf(await scorePairs(model, items, { images: o.images, batchSize: o.batchSize }));
}
