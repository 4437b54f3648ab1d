// The evaluation protocol of `reno preference eval` (and the histories that `attention` and `tsne` read), and the
// per-user scoring it runs on. Seed paper 4.1: a test user is "seen" when they also have train pairs.
//   seen user:    history = their train pairs in a seeded order (metrics.ts splitReferences), the first maxNRef kept;
//                 queries = all their test pairs (none of them was trained on);
//   unseen user:  their test pairs split by splitReferences: history = the first maxNRef of a seeded order,
//                 queries = the rest (a user with no pair left over is skipped).
// An N_ref sweep gives the model the first n pairs of the same history (nested) and scores the same queries, so
// the points of a curve differ only in N_ref. Every model and reward baseline is scored on the same queries.
// Scoring: one user's history is encoded once (KvCache) and every query image is a target after it, grouped by
// prompt (the targets of one prompt are one batch); the score is the logit difference M+ - M- (Q = sigmoid of it,
// eq. 5; ranking by the difference avoids float32 sigmoid saturating two large margins to the same 1.0).
import * as tf from '../runtime/tf.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { KvCache } from '../models/idefics3/model.js';
import type { ImageCache, PreferenceDataset, PreferencePair } from './data.js';
import { splitReferences, type Group } from './metrics.js';
import type { PreferenceModel, RefPixels } from './model.js';

export interface EvalUser {
  user: string;
  group: Group;
  /** Reference pairs in the order given to the model (the first n for N_ref = n), at most maxNRef. */
  history: PreferencePair[];
  /** Test pairs scored. */
  queries: PreferencePair[];
}

export interface EvalProtocol {
  users: EvalUser[];
  /** Test users left out (an unseen user with no more than maxNRef test pairs). */
  skipped: string[];
  maxNRef: number;
  seed: number | string;
}

/** The protocol of the header for every test user (in user order). */
export function evalProtocol(ds: PreferenceDataset, o: { maxNRef: number; seed: number | string }): EvalProtocol {
  const users: EvalUser[] = [];
  const skipped: string[] = [];
  const testUsers = [...new Set(ds.pairs.filter((p) => p.split === 'test').map((p) => p.user))].sort((a, b) =>
    a.localeCompare(b, 'en', { numeric: true }),
  );
  for (const user of testUsers) {
    const mine = ds.byUser.get(user)!.map((i) => ds.pairs[i]);
    const test = mine.filter((p) => p.split === 'test');
    if (ds.seen.has(user)) {
      const train = mine.filter((p) => p.split === 'train');
      const n = Math.min(o.maxNRef, train.length);
      users.push({ user, group: 'seen', history: splitReferences(train, { nRef: n, maxNRef: n, seed: o.seed }).references, queries: test });
    } else {
      const s = splitReferences(test, { nRef: o.maxNRef, maxNRef: o.maxNRef, seed: o.seed });
      if (!s.queries.length) skipped.push(user);
      else users.push({ user, group: 'unseen', history: s.references, queries: s.queries });
    }
  }
  return { users, skipped, maxNRef: o.maxNRef, seed: o.seed };
}

/** Taste group of each user when the dataset is a synthetic taste world (DIR/world.json, ./synth.ts), else null. */
export function worldGroups(dir: string): Map<string, number> | null {
  const file = path.join(dir, 'world.json');
  if (!fs.existsSync(file)) return null;
  try {
    const info = (JSON.parse(fs.readFileSync(file, 'utf8')) as { user_info?: Record<string, { group?: unknown }> }).user_info ?? {};
    const m = new Map<string, number>();
    for (const [u, v] of Object.entries(info)) if (typeof v.group === 'number') m.set(u, v.group);
    return m.size ? m : null;
  } catch {
    return null;
  }
}

/**
 * The swapped-history control's partner of each user: another test user of the same kind (seen / unseen) whose
 * history replaces the user's own, so a model that reads the history scores the user's queries by someone else's
 * taste. With taste groups known (a synthetic world) the partner is of another group; else any other user. The
 * partner is the next such user after the user in protocol order (cyclic), so the choice is fixed. Users with no
 * possible partner are left out of the map.
 */
export function swapPartners(users: readonly EvalUser[], groups: Map<string, number> | null = null): Map<string, EvalUser> {
  const out = new Map<string, EvalUser>();
  users.forEach((u, i) => {
    const ok = (v: EvalUser) =>
      v.user !== u.user && v.group === u.group && v.history.length > 0 && (!groups || groups.get(v.user) !== groups.get(u.user));
    for (let k = 1; k < users.length; k++) {
      const v = users[(i + k) % users.length];
      if (ok(v)) {
        out.set(u.user, v);
        break;
      }
    }
  });
  return out;
}

/**
 * Up to n users of the protocol for the pictures: the named ones (in that order) when `names` is given; else, with
 * taste groups known, two users of each group in turn (so users who share a taste appear beside users who do not),
 * seen and unseen users alternating inside a group; else seen and unseen users alternating.
 */
export function pickUsers(users: readonly EvalUser[], n: number, o: { names?: string[]; groups?: Map<string, number> | null } = {}): EvalUser[] {
  if (o.names?.length) {
    return o.names.map((name) => {
      const u = users.find((x) => x.user === name);
      if (!u) throw new RangeError(`user ${name} is not a test user with query pairs (known: ${users.map((x) => x.user).join(', ')})`);
      return u;
    });
  }
  const alternate = (list: readonly EvalUser[]) => {
    const seen = list.filter((u) => u.group === 'seen');
    const unseen = list.filter((u) => u.group === 'unseen');
    return Array.from({ length: Math.max(seen.length, unseen.length) }, (_, i) => [seen[i], unseen[i]])
      .flat()
      .filter((u): u is EvalUser => !!u);
  };
  if (!o.groups) return alternate(users).slice(0, n);
  const byGroup = new Map<number, EvalUser[]>();
  for (const u of users) {
    const g = o.groups.get(u.user) ?? -1;
    byGroup.set(g, [...(byGroup.get(g) ?? []), u]);
  }
  const lists = [...byGroup.entries()].sort((a, b) => a[0] - b[0]).map(([, l]) => alternate(l));
  const out: EvalUser[] = [];
  for (let i = 0; out.length < n && lists.some((l) => i < l.length); i += 2)
    for (const l of lists) for (const u of l.slice(i, i + 2)) if (out.length < n) out.push(u);
  return out;
}

/** A scored image: the image of a pair with that pair's prompt. */
export interface Target {
  prompt: string;
  image: string;
}

export const targetKey = (t: Target) => `${t.prompt}\u0000${t.image}`;

/** Every query image of a user (liked and disliked), once each. */
export function queryTargets(u: EvalUser): Target[] {
  const m = new Map<string, Target>();
  for (const q of u.queries) for (const image of [q.liked, q.disliked]) m.set(targetKey({ prompt: q.prompt, image }), { prompt: q.prompt, image });
  return [...m.values()];
}

/** Reference pairs as model inputs (pixels owned by the cache; liked entry first). */
export async function historyRefs(images: ImageCache, pairs: readonly PreferencePair[]): Promise<RefPixels[]> {
  const out: RefPixels[] = [];
  for (const p of pairs) out.push({ prompt: p.prompt, liked: await images.get(p.liked), disliked: await images.get(p.disliked) });
  return out;
}

/** Targets grouped by prompt, keeping each target's index. */
function byPrompt(targets: readonly Target[]): Map<string, number[]> {
  const m = new Map<string, number[]>();
  targets.forEach((t, i) => m.set(t.prompt, [...(m.get(t.prompt) ?? []), i]));
  return m;
}

/**
 * Run `fn` on each prompt's batch of targets after the history cache; returns per target the row of fn's [B, ...]
 * output (read back once). fn gets the target's token sequence and its images' connector rows [B, S, D].
 */
async function perTarget(
  model: PreferenceModel,
  cache: KvCache,
  images: ImageCache,
  targets: readonly Target[],
  fn: (seq: ReturnType<PreferenceModel['layout']['target']>, imageHidden: tf.Tensor3D) => tf.Tensor,
): Promise<number[][]> {
  const groups = [...byPrompt(targets)];
  const outs: tf.Tensor[] = [];
  for (const [prompt, idx] of groups) {
    const px: tf.Tensor4D[] = [];
    for (const i of idx) px.push(await images.get(targets[i].image));
    outs.push(tf.tidy(() => fn(model.layout.target(prompt), model.imageHidden(tf.concat(px, 0) as tf.Tensor4D))));
  }
  const values = await Promise.all(outs.map((t) => t.data()));
  const rows: number[][] = new Array(targets.length);
  groups.forEach(([, idx], g) => {
    const width = outs[g].size / idx.length;
    idx.forEach((ti, r) => (rows[ti] = Array.from(values[g].subarray(r * width, (r + 1) * width))));
  });
  tf.dispose(outs);
  return rows;
}

/** M+ - M- of each target after the history (see the header). */
export async function scoreAfterHistory(
  model: PreferenceModel,
  history: RefPixels[],
  images: ImageCache,
  targets: readonly Target[],
): Promise<number[]> {
  const cache = model.encodeReferences(history);
  try {
    return (await perTarget(model, cache, images, targets, (seq, h) => model.targetLogitDiff(cache, seq, h))).map((r) => r[0]);
  } finally {
    cache.dispose();
  }
}

/**
 * The feature the label is read from (seed paper Fig. 9: "the transformer outputs before the final linear layer"):
 * the final-norm hidden state [D] at the target's last position, after the history.
 */
export async function featuresAfterHistory(
  model: PreferenceModel,
  history: RefPixels[],
  images: ImageCache,
  targets: readonly Target[],
): Promise<number[][]> {
  const cache = model.encodeReferences(history);
  try {
    return await perTarget(model, cache, images, targets, (seq, h) => {
      const b = h.shape[0];
      const { hidden } = model.backbone.forwardEmbeds(model.embed(seq, h, b), { past: cache });
      return model.backbone.rowsAt(hidden, new Array<number>(b).fill(seq.ids.length - 1)); // [B, D]
    });
  } finally {
    cache.dispose();
  }
}

export interface TargetAttention {
  /** probs[token][prototype]: attention of each of the target image's S tokens to each prototype. */
  probs: number[][];
  /** The same rows over every key: the share of the row's attention that goes to the prototypes. */
  prototypeShare: number[];
  /** M+ - M- of the target in the same forward. */
  score: number;
}

/**
 * Attention probabilities (layer, head or 'mean') of the target image's tokens to the prototypes (the first Lp
 * keys of the cache), for one target image [1, S, S, 3] (normalised pixels) after the history.
 */
export async function targetAttention(
  model: PreferenceModel,
  history: RefPixels[],
  prompt: string,
  pixels: tf.Tensor4D,
  o: { layer: number; head: number | 'mean' },
): Promise<TargetAttention> {
  const lp = model.config.prototypes;
  const cache = model.encodeReferences(history);
  let rec: tf.Tensor3D | null = null;
  try {
    const seq = model.layout.target(prompt);
    const start = seq.imageStarts[0];
    const s = model.backbone.config.imageSeqLen;
    const diff = tf.tidy(() => {
      const { hidden } = model.backbone.forwardEmbeds(model.embed(seq, model.imageHidden(pixels)), {
        past: cache,
        recordAttention: { ...o, sink: (p) => (rec = p) },
      });
      return model.backbone.logitDiffAt(hidden, [seq.ids.length - 1], model.layout.labelIds.like, model.layout.labelIds.dislike);
    });
    const r = rec as tf.Tensor3D | null;
    if (!r) throw new Error('targetAttention: the attention was not recorded');
    const lk = r.shape[2];
    const rows = tf.tidy(() => tf.slice(r, [0, start, 0], [1, s, lk]).reshape([s, lk])); // [1, S, Lk] -> [S, Lk]
    const v = await rows.data();
    const score = (await diff.data())[0];
    tf.dispose([rows, diff]);
    const probs = Array.from({ length: s }, (_, i) => Array.from(v.subarray(i * lk, i * lk + lp)));
    return { probs, prototypeShare: probs.map((row) => row.reduce((a, b) => a + b, 0)), score };
  } finally {
    cache.dispose();
    (rec as tf.Tensor3D | null)?.dispose();
  }
}
