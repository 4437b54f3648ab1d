// The embedding-space personal model: a few-shot user model that needs no training. The history's liked and
// disliked images are embedded once with an image tower reno already ports (PickScore's CLIP ViT-H/14 by default,
// the clip reward's ViT-H/14 or the aesthetic reward's OpenAI CLIP ViT-L/14 as options), L2-normalised, and a new
// image e (its normalised embedding, differentiable in the pixels) is scored by one of these formulas, all
// multiplied by 100 (CLIP score units: a cosine of 0.01 is one point):
//   centroid   e . d / |d|,            d = mean(liked) - mean(disliked)            (centroid difference direction)
//   nn         max_i cos(e, l_i) - max_j cos(e, d_j)                              (nearest-neighbour margin)
//   ridge      e . w / |w|,            w = X^T (X X^T + lambda I)^-1 y, X = [liked; disliked], y = +1 / -1
//   ridge-sub  (e - t) . w / |w|,      the same fit on x - t(prompt of its pair): prompt-conditioned by subtraction
//   ridge-cat  [e, t] . w / |w|,       the fit on [x, t(prompt of its pair)]: prompt-conditioned by concatenation
// (t: the normalised text embedding of the prompt, the generation prompt for the new image). The directions and the
// ridge fit are computed once from the history (host arithmetic: at most 2 n_ref rows); only e depends on the image.
// History embeddings are cached in memory by sha256 of the image file's bytes and the tower (name and folder), so a
// sweep or an evaluation embeds each image once per process.
import * as tf from '../src/runtime/tf.js';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import { DataError, UsageError } from '../src/errors.js';
import { readImage } from '../src/image/png.js';
import { l2Normalize } from '../src/nn/ops.js';
import { loadClipImageEncoder } from './aesthetic.js';
import { acquireClipModel, loadClipTokenizer, tokenizeForClip } from '../src/models/clip/load.js';
import type { ClipModel } from '../src/models/clip/model.js';
import type { RewardInput } from './input.js';
import { CLIP224, clipPreprocess } from '../src/image/preprocess.js';

import { EMBEDDING_TOWERS, type EmbeddingTowerName } from '../src/config/run-config.js';
export { EMBEDDING_TOWERS, type EmbeddingTowerName };
/** Registered models (configs/models.yaml) each tower loads. */
export const TOWER_MODELS: Record<EmbeddingTowerName, string[]> = {
  pickscore: ['pickscore', 'clip-h-tokenizer'],
  clip: ['clip', 'clip-h-tokenizer'],
  aesthetic: ['aesthetic'],
};
export const FORMULAS = ['centroid', 'nn', 'ridge', 'ridge-sub', 'ridge-cat'] as const;
export type Formula = (typeof FORMULAS)[number];
/** The default formula (chosen by measurement: README "The embedding personal model", bench/RESULTS.md). */
export const DEFAULT_FORMULA: Formula = 'centroid';
export const DEFAULT_TOWER: EmbeddingTowerName = 'pickscore';
/** Scores are 100 x a cosine-like value, the CLIP score's units. */
export const EMBED_SCALE = 100;
/** The ridge fit's L2 penalty. */
export const RIDGE_LAMBDA = 1;

export const needsText = (f: Formula) => f === 'ridge-sub' || f === 'ridge-cat';

export function checkTower(name: string, where = '--personal-tower'): EmbeddingTowerName {
  if (!(EMBEDDING_TOWERS as readonly string[]).includes(name))
    throw new UsageError(`${where}: unknown embedding tower "${name}" (known: ${EMBEDDING_TOWERS.join(', ')})`);
  return name as EmbeddingTowerName;
}
export function checkFormula(name: string, where = 'embedding formula'): Formula {
  if (!(FORMULAS as readonly string[]).includes(name)) throw new UsageError(`${where}: unknown formula "${name}" (known: ${FORMULAS.join(', ')})`);
  return name as Formula;
}

// ---------------------------------------------------------------------------------------------------------------
// The formulas: pure functions. Host ones fit the history; tensor ones score candidate embeddings [B, P] -> [B].

const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};
function unit(v: Float64Array): Float32Array {
  const n = Math.sqrt(dot(v, v));
  return Float32Array.from(v, (x) => (n > 1e-12 ? x / n : 0));
}

/** Unit direction of mean(liked) - mean(disliked) (zero when the means coincide or there is no history). */
export function centroidDirection(liked: readonly ArrayLike<number>[], disliked: readonly ArrayLike<number>[], dim: number): Float32Array {
  const d = new Float64Array(dim);
  for (const l of liked) for (let i = 0; i < dim; i++) d[i] += l[i] / liked.length;
  for (const x of disliked) for (let i = 0; i < dim; i++) d[i] -= x[i] / disliked.length;
  return unit(d);
}

/** Solve A x = b (A symmetric positive definite, small) by Gaussian elimination with partial pivoting. */
export function solve(A: number[][], b: number[]): number[] {
  const n = b.length;
  const M = A.map((r, i) => [...r, b[i]]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r][c]) > Math.abs(M[p][c])) p = r;
    [M[c], M[p]] = [M[p], M[c]];
    if (Math.abs(M[c][c]) < 1e-15) throw new Error('ridge: singular system');
    for (let r = c + 1; r < n; r++) {
      const f = M[r][c] / M[c][c];
      for (let k = c; k <= n; k++) M[r][k] -= f * M[c][k];
    }
  }
  const x = new Array<number>(n).fill(0);
  for (let r = n - 1; r >= 0; r--) {
    let s = M[r][n];
    for (let k = r + 1; k < n; k++) s -= M[r][k] * x[k];
    x[r] = s / M[r][r];
  }
  return x;
}

/** Unit ridge weights w = X^T (X X^T + lambda I)^-1 y (the dual form: a 2n x 2n system), zero for no rows. */
export function ridgeDirection(X: readonly ArrayLike<number>[], y: readonly number[], dim: number, lambda = RIDGE_LAMBDA): Float32Array {
  if (!X.length) return new Float32Array(dim);
  const G = X.map((a, i) => X.map((b, j) => dot(a, b) + (i === j ? lambda : 0)));
  const alpha = solve(G, [...y]);
  const w = new Float64Array(dim);
  X.forEach((x, k) => {
    for (let i = 0; i < dim; i++) w[i] += alpha[k] * x[i];
  });
  return unit(w);
}

/** 100 e . w for e [B, P], w [P] -> [B]. */
export function linearScore(e: tf.Tensor2D, w: tf.Tensor1D): tf.Tensor1D {
  return tf.tidy(() => tf.mul(tf.squeeze(tf.matMul(e, tf.reshape(w, [-1, 1])), [1]), EMBED_SCALE) as tf.Tensor1D);
}

/** 100 (max_i e . l_i - max_j e . d_j) for e [B, P], L [n, P], D [m, P] -> [B] (0 for an empty history). */
export function nnMarginScore(e: tf.Tensor2D, L: tf.Tensor2D, D: tf.Tensor2D): tf.Tensor1D {
  return tf.tidy(() => {
    if (L.shape[0] === 0 || D.shape[0] === 0) return tf.mul(tf.sum(e, 1), 0) as tf.Tensor1D;
    const near = (R: tf.Tensor2D) => tf.max(tf.matMul(e, R, false, true), 1);
    return tf.mul(tf.sub(near(L), near(D)), EMBED_SCALE) as tf.Tensor1D;
  });
}

/** A user's history in embedding space: per pair the normalised liked / disliked image and (optionally) prompt. */
export interface HistoryEmbeddings {
  dim: number;
  liked: Float32Array[];
  disliked: Float32Array[];
  /** The pair's prompt embedding (normalised), one per pair; needed by the prompt-conditioned formulas. */
  text?: Float32Array[];
}

/** A formula fitted to a history: score(e [B, P], t [1, P] | null) -> [B]; tensors owned until dispose. */
export interface FittedPersonal {
  formula: Formula;
  score(e: tf.Tensor2D, t: tf.Tensor2D | null): tf.Tensor1D;
  dispose(): void;
}

/** Fit `formula` to a history (all host arithmetic; at most a 2n x 2n solve). */
export function fitPersonal(formula: Formula, h: HistoryEmbeddings, lambda = RIDGE_LAMBDA): FittedPersonal {
  const { dim } = h;
  const n = h.liked.length;
  if (needsText(formula) && n && (!h.text || h.text.length !== n))
    throw new UsageError(`embedding formula ${formula} needs the prompts' text embeddings (a tower with a text side)`);
  const y = [...h.liked.map(() => 1), ...h.disliked.map(() => -1)];
  switch (formula) {
    case 'centroid':
    case 'ridge': {
      const w = tf.tensor1d(
        formula === 'centroid' ? centroidDirection(h.liked, h.disliked, dim) : ridgeDirection([...h.liked, ...h.disliked], y, dim, lambda),
      );
      return { formula, score: (e) => linearScore(e, w), dispose: () => w.dispose() };
    }
    case 'nn': {
      const L = tf.tensor2d(
        h.liked.flatMap((v) => [...v]),
        [n, dim],
      );
      const D = tf.tensor2d(
        h.disliked.flatMap((v) => [...v]),
        [h.disliked.length, dim],
      );
      return { formula, score: (e) => nnMarginScore(e, L, D), dispose: () => tf.dispose([L, D]) };
    }
    case 'ridge-sub': {
      const sub = (x: Float32Array, t: Float32Array) => x.map((v, i) => v - t[i]);
      const X = [...h.liked.map((x, k) => sub(x, h.text![k])), ...h.disliked.map((x, k) => sub(x, h.text![k]))];
      const w = tf.tensor1d(ridgeDirection(X, y, dim, lambda));
      return {
        formula,
        score: (e, t) => tf.tidy(() => linearScore(t ? (tf.sub(e, t) as tf.Tensor2D) : e, w)),
        dispose: () => w.dispose(),
      };
    }
    case 'ridge-cat': {
      const cat = (x: Float32Array, t: Float32Array) => Float32Array.from([...x, ...t]);
      const X = [...h.liked.map((x, k) => cat(x, h.text![k])), ...h.disliked.map((x, k) => cat(x, h.text![k]))];
      const full = ridgeDirection(X, y, 2 * dim, lambda);
      const wi = tf.tensor1d(full.slice(0, dim));
      const wt = tf.tensor1d(full.slice(dim));
      return {
        formula,
        score: (e, t) => tf.tidy(() => (t ? (tf.add(linearScore(e, wi), linearScore(t, wt)) as tf.Tensor1D) : linearScore(e, wi))),
        dispose: () => tf.dispose([wi, wt]),
      };
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The towers and the history embeddings.

export interface EmbeddingTower {
  name: EmbeddingTowerName;
  /** Folder of the weights (part of the cache key). */
  dir: string;
  imageSize: number;
  dim: number;
  /** Normalised image embeddings of CLIP-preprocessed pixels [B, S, S, 3] -> [B, P]; differentiable. */
  imageFeatures(pixels: tf.Tensor4D): tf.Tensor2D;
  /** Normalised text embeddings [n, P]; absent when the tower has no text side (aesthetic). */
  textFeatures?(prompts: string[]): tf.Tensor2D;
  /** The CLIP model, shared with the pickscore / clip reward of the same folder (absent for aesthetic). */
  model?: ClipModel;
  /** Move the text side's weights to host memory until the next textFeatures() (ViT-H/14's: 1.4 GB). */
  parkText?(): Promise<void>;
  dispose(): void;
}

/** Load a tower with `locate` (registered model name -> folder). */
export function loadEmbeddingTower(name: EmbeddingTowerName, locate: (model: string) => string): EmbeddingTower {
  if (name === 'aesthetic') {
    const dir = locate('aesthetic');
    const enc = loadClipImageEncoder(dir);
    return {
      name,
      dir,
      imageSize: enc.config.imageSize,
      dim: enc.config.projectionDim,
      imageFeatures: (px) => tf.tidy(() => l2Normalize(enc.getImageFeatures(px)) as tf.Tensor2D),
      dispose: () => enc.dispose(),
    };
  }
  const dir = locate(name);
  let tokenizer: ReturnType<typeof loadClipTokenizer> | null = null; // on first use: only the prompt-conditioned formulas read text
  const { model, release } = acquireClipModel(dir); // one copy with the pickscore / clip reward of the same folder
  return {
    name,
    dir,
    model,
    imageSize: model.config.vision.imageSize,
    dim: model.config.projectionDim,
    imageFeatures: (px) => tf.tidy(() => l2Normalize(model.getImageFeatures(px)) as tf.Tensor2D),
    textFeatures: (prompts) => {
      model.text_model.unpark();
      model.text_projection.unpark();
      tokenizer ??= loadClipTokenizer(locate('clip-h-tokenizer'));
      const { ids, mask } = tokenizeForClip(tokenizer, prompts, Math.min(77, model.config.text.maxPositions));
      const f = tf.tidy(() => l2Normalize(model.getTextFeatures(ids, mask)) as tf.Tensor2D);
      tf.dispose([ids, mask]);
      return f;
    },
    parkText: async () => {
      await model.text_model.park();
      await model.text_projection.park();
    },
    dispose: release,
  };
}

/** The tower's CLIP view of a generated image (ReNO's shared 224 view when the tower is 224). */
export function towerView(tower: Pick<EmbeddingTower, 'imageSize'>, input: RewardInput): tf.Tensor4D {
  const size = tower.imageSize;
  return size === 224 ? input.view(CLIP224, clipPreprocess) : input.view(`clip${size}`, (x) => clipPreprocess(x, size));
}

/** The in-memory cache of embeddings: `${tower}\0${dir}\0${sha256 of the file}` or `...\0text\0${prompt}`. */
export const embeddingCache = { map: new Map<string, Float32Array>(), misses: 0, hits: 0 };

const towerKey = (t: EmbeddingTower) => `${t.name}\u0000${t.dir}`;

/** Normalised embeddings of image files (cached by content hash); `where(i)` names a file in errors. */
export async function embedImageFiles(
  tower: EmbeddingTower,
  files: readonly string[],
  where: (i: number) => string = (i) => files[i],
): Promise<Float32Array[]> {
  const out: Float32Array[] = [];
  for (const [i, file] of files.entries()) {
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(file);
    } catch (e) {
      throw new DataError(`${where(i)}: ${(e as Error).message}`);
    }
    const key = `${towerKey(tower)}\u0000${createHash('sha256').update(bytes).digest('hex')}`;
    const hit = embeddingCache.map.get(key);
    if (hit) {
      embeddingCache.hits++;
      out.push(hit);
      continue;
    }
    let raw: tf.Tensor4D;
    try {
      raw = (await readImage(file)) as unknown as tf.Tensor4D;
    } catch (e) {
      throw new DataError(`${where(i)}: ${(e as Error).message}`);
    }
    const f = tf.tidy(() => tower.imageFeatures(clipPreprocess(raw as never, tower.imageSize) as unknown as tf.Tensor4D));
    raw.dispose();
    const v = new Float32Array(await f.data());
    f.dispose();
    embeddingCache.map.set(key, v);
    embeddingCache.misses++;
    out.push(v);
  }
  return out;
}

/** Normalised text embeddings of prompts (cached per tower and prompt). */
export async function embedPrompts(tower: EmbeddingTower, prompts: readonly string[]): Promise<Float32Array[]> {
  if (!tower.textFeatures) throw new UsageError(`the ${tower.name} tower has no text side: prompt-conditioned formulas need pickscore or clip`);
  const out: Float32Array[] = [];
  for (const p of prompts) {
    const key = `${towerKey(tower)}\u0000text\u0000${p}`;
    let v = embeddingCache.map.get(key);
    if (!v) {
      const f = tower.textFeatures([p]);
      v = new Float32Array(await f.data());
      f.dispose();
      embeddingCache.map.set(key, v);
    }
    out.push(v);
  }
  return out;
}

/** The history embeddings of pairs (oldest first), with the prompts' text embeddings when `text`. */
export async function embedHistory(
  tower: EmbeddingTower,
  pairs: readonly { prompt: string; liked: string; disliked: string }[],
  o: { text?: boolean; where?: (pair: number, field: 'liked' | 'disliked') => string } = {},
): Promise<HistoryEmbeddings> {
  const where = o.where ?? ((i: number, f: 'liked' | 'disliked') => `pairs[${i}].${f}`);
  const liked = await embedImageFiles(
    tower,
    pairs.map((p) => p.liked),
    (i) => where(i, 'liked'),
  );
  const disliked = await embedImageFiles(
    tower,
    pairs.map((p) => p.disliked),
    (i) => where(i, 'disliked'),
  );
  const text = o.text
    ? await embedPrompts(
        tower,
        pairs.map((p) => p.prompt),
      )
    : undefined;
  return { dim: tower.dim, liked, disliked, text };
}
