// Training the preference model (seed paper 4.1 "Implementation Details"):
//   stage 1: the model (LoRA adapters, the vision tower with --train-vision) and the prototypes, L_all of eq. (8)
//            (./losses.ts), for `stage1Steps` optimizer steps;
//   stage 2: the model frozen, only the prototypes, for `stage2Steps` steps (a fresh AdamW over them).
// One sample = one train pair of one user as the two targets (z_pos, z_neg) + up to n_ref other train pairs of that
// user as references, in an order shuffled every sample (pairs, and liked/disliked inside a pair); the history is
// encoded once (KvCache) and both targets are scored against it. Gradients are accumulated over `batch` samples
// (the effective batch), averaged, clipped to a global norm, and AdamW (lr 1e-5, weight decay 1e-2 by default)
// takes one step. Every random draw comes from seedrandom(seed, stage, step, sample), so a run resumed from a
// checkpoint (weights, AdamW moments, step) continues exactly as an uninterrupted one.
// Writes into `out`: the checkpoint (./checkpoint.ts) every `saveEvery` steps and at the end of each stage,
// metrics.jsonl (one line per step: loss parts, pair accuracy of the batch, grad norm, lr, seconds; one line per
// evaluation), eval.json at the end (pairwise accuracy on val and test, seen / unseen).
import * as tf from '../runtime/tf.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DataError } from '../errors.js';
import { appendLine, makeDirs, writeFileAtomic } from '../util/files.js';
import { fmtNum, progress } from '../util/progress.js';
import { SafetensorsFile } from '../weights/safetensors.js';
import { saveCheckpoint, type TrainingState } from './checkpoint.js';
import {
  ImageCache,
  referencePool,
  rngFor,
  sampleReferences,
  splitPairs,
  trainTargets,
  type PreferenceDataset,
  type PreferencePair,
} from './data.js';
import { shuffle } from '../util/shuffle.js';
import { splitAccuracy, type Accuracy } from './eval.js';
import { preferenceLoss, type BaseLoss } from './losses.js';
import type { PreferenceModel, RefPixels } from './model.js';
import { AdamW, clipGlobalNorm } from './optim.js';

export interface TrainSettings {
  /** Stage 1 optimizer steps (paper 5000). */
  stage1Steps: number;
  /** Stage 2 (prototypes only) optimizer steps (paper 16000). */
  stage2Steps: number;
  /**
   * Reference pairs per sample are drawn uniformly from minRef .. n_ref (default n_ref: always n_ref, as the paper);
   * a range trains the model for shorter histories too and makes a sample cheaper on average.
   */
  minRef?: number;
  /** Samples per optimizer step (gradient accumulation; paper 64). */
  batch: number;
  lr: number;
  /** Stage 2 learning rate (default: lr). */
  protoLr?: number;
  weightDecay: number;
  /** Global gradient-norm clip (0: none). */
  maxGradNorm: number;
  baseLoss: BaseLoss;
  /** false: --no-aux-loss (L_all = L_base). */
  aux: boolean;
  /**
   * Weight of the history loss (0: none, the paper's objective): each reference pair's first entry is also a
   * prediction, its label from the entries before it (-log Q of the right label at the ":" before it), so every
   * sample trains reading a history of 0 .. N-1 pairs N times over. The second entry of a pair is left out: its
   * label follows from the first one's without looking at any image.
   */
  historyLoss?: number;
  /**
   * Target pairs per sample (default 1, the paper's): the extra ones are other train pairs of the same user, not
   * among the references, scored after the same history (encoded once), so a history trains several targets.
   */
  targets?: number;
  /**
   * Share of samples (0 .. 1, default 0) at the start of stage 1 whose target pair is one of their own references
   * (same images, same labels), falling linearly to 0 at the end of stage 1: a curriculum where the answer is first
   * in the history verbatim, so reading it (binding each label to its image) is rewarded before similar images have
   * to be generalised to.
   */
  copyShare?: number;
  seed: number;
  saveEvery: number;
  /** Evaluate on val every this many steps (0: only at the end). */
  evalEvery: number;
  /** At most this many pairs per evaluation. */
  evalPairs: number;
}

export interface TrainRun {
  out: string;
  /** Where to start: a fresh run is {stage: 1, step: 0}. */
  start: TrainingState;
  /** AdamW state to restore (the checkpoint's optimizer.safetensors) when resuming mid-stage. */
  optimizerFile?: string;
  /** Everything to record as config.json's "training" (the command's arguments). */
  record: Record<string, unknown>;
  quiet?: boolean;
  stream?: NodeJS.WriteStream;
  log?: (line: string) => void;
  shouldStop?: () => boolean;
}

export interface TrainResult {
  state: TrainingState;
  stopped: boolean;
  /** Final evaluation (absent when stopped early). */
  eval?: Record<string, Accuracy>;
  seconds: number;
}

interface SampleTarget {
  prompt: string;
  liked: tf.Tensor4D;
  disliked: tf.Tensor4D;
}

interface Sample {
  target: PreferencePair;
  refs: RefPixels[];
  liked: tf.Tensor4D;
  disliked: tf.Tensor4D;
  /** Further targets after the same history (TrainSettings.targets). */
  more: SampleTarget[];
}

/** The k-th sample of a step: target pair, references (shuffled order), both drawn from one seeded stream. */
async function drawSample(
  model: PreferenceModel,
  ds: PreferenceDataset,
  targets: PreferencePair[],
  images: ImageCache,
  set: TrainSettings,
  st: TrainingState,
  k: number,
): Promise<Sample> {
  const rng = rngFor('train', set.seed, st.stage, st.step, k);
  const target = targets[Math.floor(rng() * targets.length)];
  const max = model.config.nRef;
  const min = Math.min(max, set.minRef ?? max);
  const nRef = min + Math.floor(rng() * (max - min + 1));
  const refs: RefPixels[] = [];
  const picked = sampleReferences(ds, target, nRef, rng, true);
  for (const r of picked)
    refs.push({ prompt: r.prompt, liked: await images.get(r.liked), disliked: await images.get(r.disliked), likedFirst: rng() < 0.5 });
  const more: SampleTarget[] = [];
  if ((set.targets ?? 1) > 1) {
    const used = new Set([target.index, ...picked.map((p) => p.index)]);
    const pool = referencePool(ds, target).filter((p) => !used.has(p.index));
    for (const p of shuffle(pool, rng).slice(0, (set.targets ?? 1) - 1))
      more.push({ prompt: p.prompt, liked: await images.get(p.liked), disliked: await images.get(p.disliked) });
  }
  const copy = st.stage === 1 ? (set.copyShare ?? 0) * Math.max(0, 1 - st.step / Math.max(1, set.stage1Steps)) : 0;
  if (copy > 0 && picked.length && rng() < copy) {
    const c = picked[Math.floor(rng() * picked.length)];
    return { target: c, refs, liked: await images.get(c.liked), disliked: await images.get(c.disliked), more };
  }
  return { target, refs, liked: await images.get(target.liked), disliked: await images.get(target.disliked), more };
}

/** Loss parts of one sample (eq. 8 and its terms) and its margin Q(liked) - Q(disliked) > 0; differentiable. */
function sampleLoss(model: PreferenceModel, s: Sample, set: TrainSettings, keep: { parts?: tf.Tensor[] }): tf.Scalar {
  const hw = set.historyLoss ?? 0;
  const { cache, labelDiff } = hw > 0 ? model.encodeReferencesScored(s.refs) : { cache: model.encodeReferences(s.refs), labelDiff: null };
  const { like, dislike } = model.layout.labelIds;
  // every target pair after the one history: [1, V] logits of its liked and disliked image
  const scored = [{ prompt: s.target.prompt, liked: s.liked, disliked: s.disliked }, ...s.more].map((t) => {
    const logits = model.targetLogits(cache, model.layout.target(t.prompt), model.imageHidden(tf.concat([t.liked, t.disliked], 0) as tf.Tensor4D)); // [2, V]
    return tf.split(logits, 2, 0) as [tf.Tensor2D, tf.Tensor2D]; // [1, V] each
  });
  const [pos, neg] = scored[0];
  const p =
    scored.length === 1
      ? preferenceLoss(pos, neg, like, dislike, { baseLoss: set.baseLoss, aux: set.aux })
      : preferenceLoss(
          tf.concat(
            scored.map((x) => x[0]),
            0,
          ) as tf.Tensor2D,
          tf.concat(
            scored.map((x) => x[1]),
            0,
          ) as tf.Tensor2D,
          like,
          dislike,
          { baseLoss: set.baseLoss, aux: set.aux },
        );
  const margin = tf.sub(
    tf.sub(tf.slice(pos, [0, like], [1, 1]), tf.slice(pos, [0, dislike], [1, 1])),
    tf.sub(tf.slice(neg, [0, like], [1, 1]), tf.slice(neg, [0, dislike], [1, 1])),
  );
  let hist: tf.Scalar = tf.scalar(0);
  if (labelDiff) {
    // the first entry of each pair (even entries): +1 when it is the liked one; the second ones are masked out
    const sign = tf.tensor1d(s.refs.flatMap((r) => [(r.likedFirst ?? true) ? 1 : -1, 0]));
    const first = tf.tensor1d(s.refs.flatMap(() => [1, 0]));
    hist = tf.div(tf.sum(tf.mul(tf.softplus(tf.neg(tf.mul(labelDiff, sign))), first)), s.refs.length) as tf.Scalar;
  }
  const all = hw > 0 ? (tf.add(p.all, tf.mul(hw, hist)) as tf.Scalar) : p.all;
  keep.parts = [all, p.base, p.plus, p.minus, margin.reshape([]), hist].map((t) => tf.keep(t));
  return all;
}

function trainedVariables(model: PreferenceModel, stage: 1 | 2): Map<string, tf.Variable> {
  const out = new Map<string, tf.Variable>();
  for (const [k, t] of model.trainedTensors()) {
    if (stage === 2 && k !== 'prototypes') continue;
    if (!(t instanceof tf.Variable)) throw new Error(`training: ${k} is not a variable (model not created trainable)`);
    out.set(k, t);
  }
  return out;
}

/** Run (or continue) the two stages. */
export async function trainPreference(model: PreferenceModel, ds: PreferenceDataset, set: TrainSettings, run: TrainRun): Promise<TrainResult> {
  const log = run.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const targets = trainTargets(ds);
  if (!targets.length) throw new DataError(`${ds.dir}: no train pair has a reference (every user needs at least 2 train pairs)`);
  const stage2 = model.prototypes && set.stage2Steps > 0 ? set.stage2Steps : 0;
  const total = set.stage1Steps + stage2;
  const images = new ImageCache(8192, (x) => model.pixels(x));
  makeDirs(run.out);
  const metrics = path.join(run.out, 'metrics.jsonl');
  const t0 = Date.now();
  let state: TrainingState = { ...run.start };
  if (fs.existsSync(metrics)) {
    // a fresh run starts a new file; a resumed one drops lines written after its checkpoint (a crash between saves)
    const kept = fs
      .readFileSync(metrics, 'utf8')
      .split('\n')
      .filter((l) => {
        if (!l.trim()) return false;
        try {
          const r = JSON.parse(l) as { stage: number; step: number };
          return r.stage < state.stage || (r.stage === state.stage && r.step <= state.step);
        } catch {
          return false; // an incomplete last line
        }
      });
    writeFileAtomic(metrics, kept.map((l) => l + '\n').join(''));
  }
  const bar = progress({ total, label: 'train', quiet: run.quiet, stream: run.stream });
  const done = () => (state.stage === 1 ? state.step : set.stage1Steps + state.step);
  bar.update(done(), 'starting');
  const evalVal = async (): Promise<Accuracy | null> =>
    set.evalPairs > 0 && splitPairs(ds, 'val').length ? splitAccuracy(model, ds, 'val', { maxPairs: set.evalPairs, seed: set.seed, images }) : null;
  let opt: AdamW | null = null;
  let stopped = false;
  try {
    for (const stage of [1, 2] as const) {
      const steps = stage === 1 ? set.stage1Steps : stage2;
      if (state.stage > stage || steps === 0) continue;
      if (state.stage < stage) state = { stage, step: 0 };
      if (state.step >= steps) continue;
      const lr = stage === 1 ? set.lr : (set.protoLr ?? set.lr);
      opt = new AdamW(trainedVariables(model, stage), { lr, weightDecay: set.weightDecay });
      if (state.step > 0) {
        if (!run.optimizerFile || !fs.existsSync(run.optimizerFile))
          throw new DataError(`cannot resume stage ${stage} at step ${state.step}: no optimizer.safetensors`);
        const src = new SafetensorsFile(run.optimizerFile);
        try {
          opt.load(src, state.step);
        } finally {
          src.close();
        }
      }
      const save = async () => saveCheckpoint(run.out, model, { training: run.record, state, optimizer: await opt!.state() });
      while (state.step < steps) {
        if (run.shouldStop?.()) {
          stopped = true;
          break;
        }
        const ts = Date.now();
        const vars = opt.params;
        const acc = new Map<string, tf.Tensor>();
        const sums = [0, 0, 0, 0, 0];
        let correct = 0;
        for (let k = 0; k < set.batch; k++) {
          const s = await drawSample(model, ds, targets, images, set, state, k);
          const keep: { parts?: tf.Tensor[] } = {};
          const { value, grads } = tf.variableGrads(() => sampleLoss(model, s, set, keep), [...vars.values()]);
          const stacked = tf.stack(keep.parts!);
          const vals = await stacked.data();
          tf.dispose([stacked, value, ...keep.parts!]);
          for (let i = 0; i < 4; i++) sums[i] += vals[i];
          sums[4] += vals[5];
          correct += vals[4] > 0 ? 1 : vals[4] === 0 ? 0.5 : 0;
          for (const [name, v] of vars) {
            const g = grads[v.name];
            const prev = acc.get(name);
            acc.set(name, prev ? tf.add(prev, g) : tf.clone(g));
            prev?.dispose();
          }
          tf.dispose(Object.values(grads));
        }
        for (const [name, g] of acc) {
          acc.set(name, tf.div(g, set.batch));
          g.dispose();
        }
        const gradNorm = await clipGlobalNorm(acc, set.maxGradNorm);
        opt.apply(acc, lr);
        tf.dispose([...acc.values()]);
        state = { stage, step: state.step + 1 };
        const [loss, base, plus, minus, history] = sums.map((x) => x / set.batch);
        if (!Number.isFinite(loss)) throw new DataError(`training diverged: the loss is ${loss} at stage ${stage} step ${state.step}`);
        const rec = {
          stage,
          step: state.step,
          loss,
          base,
          plus,
          minus,
          ...(set.historyLoss ? { history } : {}),
          acc: correct / set.batch,
          grad_norm: gradNorm,
          lr,
          seconds: (Date.now() - ts) / 1000,
        };
        appendLine(metrics, JSON.stringify(rec));
        bar.update(done(), `stage ${stage} loss ${fmtNum(loss)} acc ${fmtNum(rec.acc)}`);
        if (set.evalEvery > 0 && state.step % set.evalEvery === 0) {
          const a = await evalVal();
          if (a) {
            appendLine(metrics, JSON.stringify({ stage, step: state.step, eval: 'val', ...a }));
            bar.log(`stage ${stage} step ${state.step}: val accuracy ${a.accuracy.toFixed(4)} (${a.n} pairs)`);
          }
        }
        if (state.step % set.saveEvery === 0 || state.step === steps) await save();
      }
      if (stopped) {
        await save();
        break;
      }
      opt.dispose();
      opt = null;
    }
  } finally {
    bar.stop();
    opt?.dispose();
  }
  let evals: Record<string, Accuracy> | undefined;
  if (!stopped && set.evalPairs > 0) {
    evals = {};
    const parts: [string, 'val' | 'test', 'all' | 'seen' | 'unseen'][] = [
      ['val', 'val', 'all'],
      ['test_seen', 'test', 'seen'],
      ['test_unseen', 'test', 'unseen'],
    ];
    for (const [name, split, users] of parts) {
      if (!splitPairs(ds, split, users).length) continue;
      evals[name] = await splitAccuracy(model, ds, split, { users, maxPairs: set.evalPairs, seed: set.seed, images });
    }
    const seen = evals.test_seen ?? { accuracy: 0, n: 0 };
    const unseen = evals.test_unseen ?? { accuracy: 0, n: 0 };
    if (seen.n + unseen.n)
      evals.test = { accuracy: (seen.accuracy * seen.n + unseen.accuracy * unseen.n) / (seen.n + unseen.n), n: seen.n + unseen.n };
    writeFileAtomic(
      path.join(run.out, 'eval.json'),
      JSON.stringify({ n_ref: model.config.nRef, max_pairs: set.evalPairs, ...evals }, null, 2) + '\n',
    );
    log(
      `reno: ${
        Object.entries(evals)
          .map(([k, a]) => `${k} accuracy ${a.accuracy.toFixed(4)} (${a.n})`)
          .join(', ') || 'no val/test pairs to evaluate'
      }`,
    );
  } else if (stopped) log(`reno: stopped at stage ${state.stage} step ${state.step}; the checkpoint in ${run.out} resumes with --resume`);
  images.dispose();
  return { state, stopped, eval: evals, seconds: (Date.now() - t0) / 1000 };
}
