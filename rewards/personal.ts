// The personal reward: the user's preference model (src/preference, the seed paper's prototype VLM on SmolVLM)
// scoring the generated image against the user's history (history.json, src/data/history.ts), in ReNO's loop.
//   score = Q(+) = sigmoid(M+ - M-) (eq. 5), the probability that the user likes the image;
//   like    (default): loss = -log Q(+)       = softplus(M- - M+)
//   dislike          : loss = -log(1 - Q(+))  = softplus(M+ - M-)      (same context, the sign flips)
// offset 0 (the loss is not "const - score": read a like loss back as Q = exp(-loss), a dislike one as 1 - exp(-loss)).
// The references are the last n_ref pairs of the history (at most the checkpoint's own n_ref, the longest history
// it was trained on), oldest first, liked entry then disliked entry. Their images are decoded and put through the
// vision tower's preprocessing once at load; prepare(prompt) encodes [prototypes; history] once into a KvCache and
// tokenizes the target entry, so each ReNO step runs only the target: the generated image [1, H, W, 3] in [0, 1]
// -> antialiased bilinear resize to the vision tower's size -> mean/std -> vision tower -> the target's tokens.
// Which checkpoint: ctx.personal.checkpoint (the --preference-model flag), else history.json's "model", else, in a
// smoke test (--preset tiny), the preset's reno/preference-tiny next to its SmolVLM folder.
import * as tf from '../src/runtime/tf.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { historyImageWhere, lastPairs, readHistory, type History } from '../src/data/history.js';
import { DataError, RenoError, UsageError } from '../src/errors.js';
import { readImage } from '../src/image/png.js';
import type { RewardInput } from './input.js';
import { loadPreferenceModel } from '../src/preference/checkpoint.js';
import { guidanceLoss } from '../src/preference/losses.js';
import type { PreferenceModel, RefPixels } from '../src/preference/model.js';
import type { PreparedReward, Reward, RewardLoadContext, RewardSpec } from './types.js';

/** Where the tiny preset keeps its preference checkpoint, relative to the preset (models) root. */
export const TINY_PREFERENCE_DIR = path.join('reno', 'preference-tiny');

/** The checkpoint folder for a run (see the header for the order). */
export function personalCheckpoint(ctx: RewardLoadContext, history: History): string {
  if (ctx.personal?.checkpoint) return path.resolve(ctx.personal.checkpoint);
  if (history.model) return history.model;
  if (ctx.smokeTest) return path.resolve(ctx.locate('smolvlm'), '..', '..', TINY_PREFERENCE_DIR);
  throw new UsageError(
    `no preference model for the personal reward: name a trained checkpoint with --preference-model DIR or "model" in ${history.file} (train one with \`reno preference train\`; --preset tiny ships a small one)`,
  );
}

/** Decode the history images of the chosen pairs into the model's normalised pixels (errors name pair and field). */
export async function historyPixels(model: PreferenceModel, h: History, nRef: number): Promise<RefPixels[]> {
  const out: RefPixels[] = [];
  const load = async (pair: History['pairs'][number], field: 'liked' | 'disliked') => {
    let raw: tf.Tensor4D;
    try {
      raw = await readImage(pair[field]);
    } catch (e) {
      throw new DataError(`${historyImageWhere(h, pair, field)}: ${(e as Error).message}`);
    }
    const px = model.pixels(raw);
    raw.dispose();
    return px;
  };
  const made: tf.Tensor[] = [];
  try {
    for (const p of lastPairs(h, nRef)) {
      const liked = await load(p, 'liked');
      made.push(liked);
      const disliked = await load(p, 'disliked');
      made.push(disliked);
      out.push({ prompt: p.prompt, liked, disliked });
    }
  } catch (e) {
    tf.dispose(made);
    throw e;
  }
  return out;
}

export class PersonalReward implements Reward {
  readonly name = 'personal';
  constructor(
    readonly model: PreferenceModel,
    /** The reference pairs (owned: freed by dispose). */
    readonly refs: RefPixels[],
    readonly guidance: 'like' | 'dislike',
  ) {}

  /** The vision tower's input view of the generated image, shared by every call in one step. */
  private view(input: RewardInput): tf.Tensor4D {
    return input.view(`smolvlm${this.model.imageSize}`, (x) => this.model.pixels(x));
  }

  prepare(prompt: string): PreparedReward {
    const cache = this.model.encodeReferences(this.refs);
    const target = this.model.layout.target(prompt);
    const diff = (input: RewardInput): tf.Scalar => {
      const px = this.view(input); // outside tidy: the view belongs to the input
      return tf.tidy(() => this.model.targetLogitDiff(cache, target, this.model.imageHidden(px)).reshape([]) as tf.Scalar);
    };
    return {
      loss: (input) => {
        const d = diff(input);
        const l = guidanceLoss(d, this.guidance) as tf.Scalar;
        d.dispose();
        return l;
      },
      score: (input) => {
        const d = diff(input);
        const q = tf.sigmoid(d) as tf.Scalar;
        d.dispose();
        return q;
      },
      dispose: () => cache.dispose(),
    };
  }

  dispose(): void {
    for (const r of this.refs) tf.dispose([r.liked, r.disliked]);
    this.model.dispose();
  }
}

export const personalReward: RewardSpec = {
  name: 'personal',
  description: "the user's preference model (prototype VLM on SmolVLM, seed paper): like -log Q(+), dislike -log(1 - Q(+)); score Q(+)",
  offset: 0,
  models: ['smolvlm'],
  async load(ctx) {
    const p = ctx.personal;
    if (!p) throw new UsageError('the personal reward needs a user history (--user history.json)');
    const history = readHistory(p.historyFile);
    const ckpt = personalCheckpoint(ctx, history);
    if (!fs.existsSync(path.join(ckpt, 'config.json'))) throw new UsageError(`preference checkpoint not found: ${ckpt} (no config.json)`);
    let model: PreferenceModel;
    try {
      model = loadPreferenceModel(ckpt, { backboneDir: ctx.locate('smolvlm') });
    } catch (e) {
      if (e instanceof RenoError) e.message = `personal reward (${ckpt}): ${e.message}`;
      throw e;
    }
    try {
      const refs = await historyPixels(model, history, Math.min(p.nRef, model.config.nRef));
      return new PersonalReward(model, refs, p.guidance ?? 'like');
    } catch (e) {
      model.dispose();
      throw e;
    }
  },
};
