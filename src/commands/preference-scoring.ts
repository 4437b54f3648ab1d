// The scorers behind `reno preference eval` (src/commands/preference-eval.ts): a checkpoint after each user's
// history (and after a swapped user's history: the control), the training-free embedding personal model, and a
// general reward zero-shot; each gives a score per query pair (top-1) and per candidate set (top-k).
import * as tf from '../runtime/tf.js';
import { RewardInput, rewardSpec } from '../../rewards/index.js';
import { ImageCache } from '../preference/data.js';
import { type CandidateSet, type ScoredPair } from '../preference/metrics.js';
import { PreferenceModel } from '../preference/model.js';
import {
  checkTower,
  embedHistory,
  embedImageFiles,
  embedPrompts,
  fitPersonal,
  loadEmbeddingTower,
  needsText,
  type Formula,
} from '../../rewards/personal-embedding.js';
import { historyRefs, queryTargets, scoreAfterHistory, targetKey, type EvalProtocol, type EvalUser, type Target } from '../preference/protocol.js';
import { readImage } from '../image/png.js';
import { type Progress } from '../util/progress.js';
import { rewardContext } from '../run/session.js';
import { modelPlaces } from './common.js';

export function pairsOf(proto: EvalProtocol, score: (user: string, t: Target) => number): ScoredPair[] {
  return proto.users.flatMap((u) =>
    u.queries.map((q) => ({
      user: u.user,
      group: u.group,
      liked: score(u.user, { prompt: q.prompt, image: q.liked }),
      disliked: score(u.user, { prompt: q.prompt, image: q.disliked }),
    })),
  );
}

export function setsOf(proto: EvalProtocol, sets: CandidateSet[], score: (user: string, t: Target) => number) {
  const group = new Map(proto.users.map((u) => [u.user, u.group]));
  return sets.map((s) => ({
    user: s.user,
    group: group.get(s.user)!,
    liked: score(s.user, s.liked),
    disliked: s.disliked.map((c) => score(s.user, c)),
  }));
}

/** Scores (M+ - M-) of every user's query images after the first n history pairs, for each n. */
export async function scoreModel(
  model: PreferenceModel,
  proto: EvalProtocol,
  ns: number[],
  bar: Progress,
  tick: () => number,
  label: string,
): Promise<Map<number, Map<string, number>>> {
  const images = new ImageCache(4096, (x) => model.pixels(x));
  const out = new Map<number, Map<string, number>>(ns.map((n) => [n, new Map()]));
  try {
    for (const u of proto.users) {
      const targets = queryTargets(u);
      for (const n of ns) {
        const refs = await historyRefs(images, u.history.slice(0, n));
        const s = await scoreAfterHistory(model, refs, images, targets);
        const m = out.get(n)!;
        targets.forEach((t, i) => m.set(`${u.user}\u0000${targetKey(t)}`, s[i]));
        bar.update(tick(), `${label} ${u.user} N_ref ${n}`);
      }
    }
  } finally {
    images.dispose();
  }
  return out;
}

/** Scores of every user's query images after the first n pairs of their swap partner's history. */
export async function scoreSwapped(
  model: PreferenceModel,
  proto: EvalProtocol,
  partners: Map<string, EvalUser>,
  n: number,
  bar: Progress,
  tick: () => number,
  label: string,
): Promise<Map<string, number>> {
  const images = new ImageCache(4096, (x) => model.pixels(x));
  const out = new Map<string, number>();
  try {
    for (const u of proto.users) {
      const p = partners.get(u.user);
      if (!p) continue;
      const targets = queryTargets(u);
      const s = await scoreAfterHistory(model, await historyRefs(images, p.history.slice(0, n)), images, targets);
      targets.forEach((t, i) => out.set(`${u.user}\u0000${targetKey(t)}`, s[i]));
      bar.update(tick(), `${label} ${u.user} swapped with ${p.user}`);
    }
  } finally {
    images.dispose();
  }
  return out;
}

/** The embedding model's scores of every user's query images after the first n history pairs, for each n and formula. */
export async function scoreEmbedding(
  towerName: string,
  formulas: Formula[],
  places: ReturnType<typeof modelPlaces>,
  proto: EvalProtocol,
  ns: number[],
  bar: Progress,
  tick: () => number,
): Promise<Map<Formula, Map<number, Map<string, number>>>> {
  const tower = loadEmbeddingTower(checkTower(towerName, '--embedding-tower'), rewardContext(places).locate);
  const text = formulas.some(needsText);
  const out = new Map(formulas.map((f) => [f, new Map<number, Map<string, number>>(ns.map((n) => [n, new Map()]))]));
  try {
    for (const u of proto.users) {
      const targets = queryTargets(u);
      const e = await embedImageFiles(
        tower,
        targets.map((t) => t.image),
      );
      const tt = text
        ? await embedPrompts(
            tower,
            targets.map((t) => t.prompt),
          )
        : null;
      const full = await embedHistory(tower, u.history.slice(0, Math.max(...ns)), { text });
      const E = tf.tensor2d(
        e.flatMap((v) => [...v]),
        [e.length, tower.dim],
      );
      const T = tt
        ? tf.tensor2d(
            tt.flatMap((v) => [...v]),
            [tt.length, tower.dim],
          )
        : null;
      try {
        for (const n of ns) {
          const h = { dim: full.dim, liked: full.liked.slice(0, n), disliked: full.disliked.slice(0, n), text: full.text?.slice(0, n) };
          for (const f of formulas) {
            const fitted = fitPersonal(f, h);
            const st = fitted.score(E as never, T as never);
            const v = await st.data();
            st.dispose();
            fitted.dispose();
            const m = out.get(f)!.get(n)!;
            targets.forEach((t, i) => m.set(`${u.user}\u0000${targetKey(t)}`, v[i]));
          }
          bar.update(tick(), `embedding ${u.user} N_ref ${n}`);
        }
      } finally {
        tf.dispose([E, ...(T ? [T] : [])]);
      }
    }
  } finally {
    tower.dispose();
  }
  return out;
}

/** A reward's score of every distinct query image (with its pair's prompt). */
export async function scoreReward(
  name: string,
  places: ReturnType<typeof modelPlaces>,
  targets: Target[],
  bar: Progress,
  tick: (k: number) => number,
): Promise<Map<string, number>> {
  const reward = await rewardSpec(name).load(rewardContext(places));
  const out = new Map<string, number>();
  try {
    const byPrompt = new Map<string, Target[]>();
    for (const t of targets) byPrompt.set(t.prompt, [...(byPrompt.get(t.prompt) ?? []), t]);
    for (const [prompt, ts] of byPrompt) {
      const prepared = reward.prepare(prompt);
      try {
        const scores: tf.Scalar[] = [];
        for (const t of ts) {
          const image = await readImage(t.image);
          const input = new RewardInput(image);
          scores.push(tf.tidy(() => prepared.score(input)));
          input.dispose();
          image.dispose();
        }
        const st = tf.stack(scores);
        const v = await st.data();
        tf.dispose([st, ...scores]);
        ts.forEach((t, i) => out.set(targetKey(t), v[i]));
        bar.update(tick(ts.length), `${name} ${out.size}/${targets.length}`);
      } finally {
        prepared.dispose();
      }
    }
  } finally {
    reward.dispose();
  }
  return out;
}
