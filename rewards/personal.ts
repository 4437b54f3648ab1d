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
// The mode (--personal, config personal_model): vlm needs such a checkpoint; embedding is the training-free
// embedding-space model (./personal-embedding.ts: score = 100 x a cosine-like value; like loss = -score, dislike
// loss = +score, offset 0); auto (default) takes the VLM when a checkpoint is named or found, else the embedding
// model, and says which and why on stderr. Each reward's `info` (mode, tower, formula, reason) goes to run.yaml and
// the PNG text chunks.
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
import {
  DEFAULT_FORMULA,
  DEFAULT_TOWER,
  TOWER_MODELS,
  checkFormula,
  checkTower,
  embedHistory,
  fitPersonal,
  loadEmbeddingTower,
  needsText,
  towerView,
  type EmbeddingTower,
  type FittedPersonal,
  type Formula,
} from './personal-embedding.js';

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

export const PERSONAL_MODES = ['auto', 'vlm', 'embedding'] as const;
export type PersonalMode = (typeof PERSONAL_MODES)[number];

/** Which personal model a run uses and why (one line for stderr and run.yaml). */
export interface PersonalChoice {
  mode: 'vlm' | 'embedding';
  /** The checkpoint folder (vlm). */
  checkpoint?: string;
  reason: string;
}

/** The mode of `--personal auto|vlm|embedding` (see the header). */
export function choosePersonalModel(ctx: RewardLoadContext, history: History): PersonalChoice {
  const asked = ctx.personal?.mode ?? 'auto';
  if (!(PERSONAL_MODES as readonly string[]).includes(asked))
    throw new UsageError(`--personal must be one of ${PERSONAL_MODES.join(', ')}, found "${asked}"`);
  if (asked === 'embedding') return { mode: 'embedding', reason: '--personal embedding' };
  if (asked === 'vlm') return { mode: 'vlm', checkpoint: personalCheckpoint(ctx, history), reason: '--personal vlm' };
  if (ctx.personal?.checkpoint)
    return { mode: 'vlm', checkpoint: path.resolve(ctx.personal.checkpoint), reason: 'a checkpoint is named by --preference-model' };
  if (history.model) return { mode: 'vlm', checkpoint: history.model, reason: `a checkpoint is named by "model" in ${history.file}` };
  if (ctx.smokeTest) {
    let tiny: string | null = null;
    try {
      tiny = path.resolve(ctx.locate('smolvlm'), '..', '..', TINY_PREFERENCE_DIR);
    } catch {
      tiny = null;
    }
    if (tiny && fs.existsSync(path.join(tiny, 'config.json')))
      return { mode: 'vlm', checkpoint: tiny, reason: "the tiny preset's checkpoint was found" };
  }
  return { mode: 'embedding', reason: `no trained preference checkpoint was named or found (--preference-model, "model" in ${history.file})` };
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
  info: Record<string, string> = { personal_model: 'vlm' };
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

  /** like: loss = -log Q, so Q = exp(-loss); dislike: loss = -log(1 - Q), so Q = 1 - exp(-loss). */
  scoreFromLoss(loss: number): number {
    return this.guidance === 'like' ? Math.exp(-loss) : 1 - Math.exp(-loss);
  }

  dispose(): void {
    for (const r of this.refs) tf.dispose([r.liked, r.disliked]);
    this.model.dispose();
  }
}

/** The embedding-space personal model as the `personal` reward: score = the fitted formula of the image's embedding. */
export class EmbeddingPersonalReward implements Reward {
  readonly name = 'personal';
  readonly info: Record<string, string>;
  constructor(
    readonly tower: EmbeddingTower,
    /** Fitted to the history once at load (owned). */
    readonly fitted: FittedPersonal,
    readonly guidance: 'like' | 'dislike',
    reason: string,
  ) {
    this.info = { personal_model: 'embedding', personal_tower: tower.name, personal_formula: fitted.formula, personal_reason: reason };
  }

  prepare(prompt: string): PreparedReward {
    const t = needsText(this.fitted.formula) ? this.tower.textFeatures!([prompt]) : null;
    const score = (input: RewardInput): tf.Scalar => {
      const px = towerView(this.tower, input); // outside tidy: the view belongs to the input
      return tf.tidy(() => this.fitted.score(this.tower.imageFeatures(px), t).reshape([]) as tf.Scalar);
    };
    return {
      score,
      loss: (input) => {
        const s = score(input);
        const l = (this.guidance === 'like' ? tf.neg(s) : tf.clone(s)) as tf.Scalar;
        s.dispose();
        return l;
      },
      dispose: () => t?.dispose(),
    };
  }

  /** like: loss = -score; dislike: loss = +score. */
  scoreFromLoss(loss: number): number {
    return this.guidance === 'like' ? -loss : loss;
  }

  /** The text side runs only in prepare() (prompt-conditioned formulas) and at load: host memory meanwhile. */
  async parkPromptModels(): Promise<void> {
    await this.tower.parkText?.();
  }

  dispose(): void {
    this.fitted.dispose();
    this.tower.dispose();
  }
}

function embeddingOptions(ctx: RewardLoadContext): { tower: ReturnType<typeof checkTower>; formula: Formula } {
  return { tower: checkTower(ctx.personal?.tower ?? DEFAULT_TOWER), formula: checkFormula(ctx.personal?.formula ?? DEFAULT_FORMULA) };
}

/** Load the embedding model: the tower, the history's embeddings (cached by content), the formula fitted to them. */
export async function loadEmbeddingPersonal(ctx: RewardLoadContext, history: History, reason: string): Promise<EmbeddingPersonalReward> {
  const p = ctx.personal!;
  const { tower: name, formula } = embeddingOptions(ctx);
  const tower = loadEmbeddingTower(name, ctx.locate);
  try {
    if (needsText(formula) && !tower.textFeatures)
      throw new UsageError(`embedding formula ${formula} needs a tower with a text side (pickscore or clip), not ${name}`);
    const pairs = lastPairs(history, p.nRef);
    const emb = await embedHistory(tower, pairs, { text: needsText(formula), where: (i, f) => historyImageWhere(history, pairs[i], f) });
    return new EmbeddingPersonalReward(tower, fitPersonal(formula, emb), p.guidance ?? 'like', reason);
  } catch (e) {
    tower.dispose();
    throw e;
  }
}

export const personalReward: RewardSpec = {
  name: 'personal',
  description:
    "the user's personal model: the prototype VLM (seed paper; like -log Q(+), dislike -log(1 - Q(+)); score Q(+)) or, with no trained checkpoint, the embedding-space model (like -score, dislike +score)",
  offset: 0,
  models: ['smolvlm'],
  modelsFor(ctx) {
    if (!ctx.personal) return ['smolvlm'];
    const choice = choosePersonalModel(ctx, readHistory(ctx.personal.historyFile));
    return choice.mode === 'vlm' ? ['smolvlm'] : TOWER_MODELS[embeddingOptions(ctx).tower];
  },
  async load(ctx) {
    const p = ctx.personal;
    if (!p) throw new UsageError('the personal reward needs a user history (--user history.json)');
    const history = readHistory(p.historyFile);
    const choice = choosePersonalModel(ctx, history);
    const log = p.log ?? ((l: string) => process.stderr.write(l + '\n'));
    if (choice.mode === 'embedding') {
      const o = embeddingOptions(ctx);
      log(`reno: personal reward: embedding model (${o.tower} tower, ${o.formula}, no training) because ${choice.reason}`);
      return loadEmbeddingPersonal(ctx, history, choice.reason);
    }
    const ckpt = choice.checkpoint!;
    log(`reno: personal reward: prototype VLM ${ckpt} because ${choice.reason}`);
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
      const r = new PersonalReward(model, refs, p.guidance ?? 'like');
      r.info = { personal_model: 'vlm', personal_checkpoint: ckpt, personal_reason: choice.reason };
      return r;
    } catch (e) {
      model.dispose();
      throw e;
    }
  },
};
