// The ReNO loop (ReNO training/trainer.py LatentNoiseTrainer.train), flat like nanoGPT's train.py:
// every iteration generates an image from z, evaluates the weighted reward losses, keeps the best image (by reward
// loss, regulariser excluded, initial image included) and, except after the last evaluation, back-propagates
// total + chi-norm regulariser to z, clips the global gradient norm and takes an optimiser step. A non-finite noise,
// image, loss, regulariser or gradient stops the run, keeping the best finite image.
import * as tf from '../runtime/tf.js';
import type { Conditioning, Generator } from '../../generators/types.js';
import { RewardInput } from '../../rewards/input.js';
import { scoreFromLoss } from '../../rewards/index.js';
import type { PreparedReward, Reward } from '../../rewards/types.js';
import { isolatedGrads } from '../nn/recompute.js';
import { adamStep, bestIndex, chiRegulariser, clipGradNorm, disposeOptimizerState, newOptimizerState, sgdStep } from './pieces.js';

export interface ActiveReward {
  name: string;
  weight: number;
  prepared: PreparedReward;
  /** the loaded reward, for reading its loss back as a score (scoreFromLoss); else the registry's offset */
  reward?: Reward;
}

export interface LoopSettings {
  steps: number;
  optimize: boolean;
  optimizer: 'sgd' | 'adam';
  lr: number;
  momentum: number;
  nesterov: boolean;
  gradClip: number;
  regWeight: number;
}

export interface StepRecord {
  step: number;
  /** each reward's loss (what the loop minimises; const - score for most rewards) */
  rewards: Record<string, number>;
  /** each reward's score (higher is better; what `reno score` prints), read back from its loss by scoreFromLoss */
  scores: Record<string, number>;
  /** weighted reward loss (the selection criterion) */
  total: number;
  /** regulariser value (back-propagated, not used for selection) */
  reg: number;
  /** ||z|| */
  norm: number;
  /** global gradient norm before clipping (null when no update followed) */
  grad_norm: number | null;
  seconds: number;
  best: boolean;
}

export interface LoopEvents {
  /** Called after each evaluation with the image of that step (owned by the loop: copy what you keep). */
  onStep?: (rec: StepRecord, image: tf.Tensor4D) => Promise<void> | void;
  /** Checked after each step (Ctrl-C). */
  shouldStop?: () => boolean;
}

export interface LoopResult {
  records: StepRecord[];
  init: { image: tf.Tensor4D; record: StepRecord } | null;
  best: { image: tf.Tensor4D; record: StepRecord; z: tf.Tensor4D } | null;
  stopped: null | { reason: 'interrupted' | 'non-finite'; message: string; step: number };
}

export interface Evaluation {
  image: tf.Tensor4D;
  losses: number[];
  total: number;
  reg: number;
  /** every pixel of the image is finite */
  imageFinite: boolean;
  grad: tf.Tensor | null;
}

/**
 * The weighted reward loss of `image` and, with `withGrad`, its gradient to the image, taken one reward at a time,
 * each on a tape of its own that is freed before the next reward runs: the backward pass then holds one reward's
 * activations at a time, not all of them (tfjs frees a tape's saved tensors only when its whole backward pass ends,
 * so with one tape over everything every reward's activations would also stay alive through the generator's backward
 * pass). Each reward gets its own RewardInput: a shared preprocessed view would belong to the first reward's tape.
 */
function rewardLosses(image: tf.Tensor4D, rewards: ActiveReward[], withGrad: boolean): { losses: tf.Scalar[]; grad: tf.Tensor4D | null } {
  if (!withGrad) {
    const input = new RewardInput(image);
    return { losses: rewards.map((r) => r.prepared.loss(input)), grad: null };
  }
  const losses: tf.Scalar[] = [];
  let grad: tf.Tensor4D | null = null;
  for (const r of rewards) {
    const dy = tf.scalar(r.weight); // the weight as the output gradient: the loss comes back unweighted
    const { value, grads } = isolatedGrads((img) => r.prepared.loss(new RewardInput(img as tf.Tensor4D)), [image], dy);
    dy.dispose();
    losses.push(value as tf.Scalar);
    if (grad) {
      const sum = tf.add(grad, grads[0]) as tf.Tensor4D;
      tf.dispose([grad, grads[0]]);
      grad = sum;
    } else grad = grads[0] as tf.Tensor4D;
  }
  return { losses, grad };
}

export async function evaluate(
  gen: Generator,
  cond: Conditioning,
  z: tf.Tensor4D,
  rewards: ActiveReward[],
  regWeight: number,
  withGrad: boolean,
): Promise<Evaluation> {
  let kept: { image: tf.Tensor4D; losses: tf.Scalar[]; total: tf.Scalar; reg: tf.Scalar } | null = null;
  // The function whose z-gradient the step needs. With gradients, the rewards' part is sum(image * g) for the
  // rewards' image gradient g taken beforehand (rewardLosses): its gradient to the image is g, so the outer tape
  // back-propagates g through the generator and never holds a reward's activations.
  const objective = (zz: tf.Tensor4D): tf.Scalar => {
    const image = gen.generate(zz, cond);
    const { losses, grad } = rewardLosses(image, rewards, withGrad);
    const total = losses.reduce((acc: tf.Scalar, l, i) => tf.add(acc, tf.mul(l, rewards[i].weight)) as tf.Scalar, tf.scalar(0));
    const reg = chiRegulariser(zz, regWeight);
    kept = { image: tf.keep(image), losses: losses.map((l) => tf.keep(l)), total: tf.keep(total), reg: tf.keep(reg) };
    return tf.add(grad ? tf.sum(tf.mul(image, grad)) : total, reg) as tf.Scalar;
  };
  let grad: tf.Tensor | null = null;
  if (withGrad) grad = tf.grad((zz: tf.Tensor) => objective(zz as tf.Tensor4D))(z);
  else
    tf.tidy(() => {
      objective(z); // the returned sum is freed; the kept tensors survive
    });
  const k = kept!;
  // one read-back for all scalars (asynchronous: the only kind WebGPU offers in Node)
  const values = tf.tidy(() => tf.stack([...k.losses, k.total, k.reg, tf.cast(tf.all(tf.isFinite(k.image)), 'float32')]));
  const v = await values.data();
  values.dispose();
  const n = k.losses.length;
  const out: Evaluation = { image: k.image, losses: [...v.slice(0, n)], total: v[n], reg: v[n + 1], imageFinite: v[n + 2] === 1, grad };
  tf.dispose([...k.losses, k.total, k.reg]);
  return out;
}

/** "NaN" or "infinite", for messages. */
function kind(x: number): string {
  return Number.isNaN(x) ? 'NaN' : 'infinite';
}

export async function runReno(
  gen: Generator,
  cond: Conditioning,
  z0: tf.Tensor4D,
  rewards: ActiveReward[],
  s: LoopSettings,
  ev: LoopEvents = {},
): Promise<LoopResult> {
  const res: LoopResult = { records: [], init: null, best: null, stopped: null };
  const opt = newOptimizerState();
  const steps = s.optimize ? s.steps : 1;
  // Any non-finite value (the noise, the image, the loss or regulariser, the gradient) stops the run; the best image
  // stays the best FINITE one, and the message says where it happened and what is kept.
  const stop = (it: number, why: string) => {
    const kept = res.best ? `kept the best finite image (step ${res.best.record.step})` : 'no finite image to keep';
    res.stopped = { reason: 'non-finite', step: it, message: `stopped at step ${it}: ${why}; ${kept}` };
  };
  let z = z0.clone();
  for (let it = 0; it < steps; it++) {
    const t0 = performance.now();
    const update = it < steps - 1; // no update after the last evaluation (trainer.py:126)
    const normT = tf.tidy(() => tf.norm(z));
    const norm = (await normT.data())[0];
    normT.dispose();
    if (!Number.isFinite(norm)) {
      // an update overflowed (or the initial noise was bad): nothing this z generates can be kept
      stop(it, `the noise became non-finite (||z|| = ${norm}${it > 0 ? `; lr ${s.lr} too large?` : ''})`);
      break;
    }
    const e = await evaluate(gen, cond, z, rewards, s.regWeight, update);
    const lossFinite = Number.isFinite(e.total) && e.losses.every(Number.isFinite) && Number.isFinite(e.reg);
    const finite = lossFinite && e.imageFinite;
    let gradNorm: number | null = null;
    let next: tf.Tensor4D | null = null;
    if (update && finite && e.grad) {
      const { grad, norm: gn } = await clipGradNorm(e.grad, s.gradClip);
      gradNorm = gn;
      if (Number.isFinite(gn))
        next = (s.optimizer === 'adam' ? adamStep(z, grad, opt, s.lr) : sgdStep(z, grad, opt, s.lr, s.momentum, s.nesterov)) as tf.Tensor4D;
      grad.dispose();
    }
    e.grad?.dispose();
    const rec: StepRecord = {
      step: it,
      rewards: Object.fromEntries(rewards.map((r, i) => [r.name, e.losses[i]])),
      scores: Object.fromEntries(rewards.map((r, i) => [r.name, scoreFromLoss(r.name, e.losses[i], r.reward)])),
      total: e.total,
      reg: e.reg,
      norm,
      grad_norm: gradNorm !== null && Number.isFinite(gradNorm) ? gradNorm : null,
      seconds: (performance.now() - t0) / 1000,
      best: false,
    };
    // every earlier step was finite (the loop stops at the first that is not); a step whose image is non-finite
    // never counts, whatever its loss
    const totals = res.records.map((r) => r.total);
    totals.push(finite ? e.total : NaN);
    rec.best = finite && bestIndex(totals) === it;
    res.records.push(rec);
    if (it === 0 && e.imageFinite) res.init = { image: e.image.clone(), record: rec };
    if (rec.best) {
      if (res.best) tf.dispose([res.best.image, res.best.z]);
      res.best = { image: e.image.clone(), record: rec, z: z.clone() };
    }
    await ev.onStep?.(rec, e.image);
    e.image.dispose();
    if (!e.imageFinite || !lossFinite) {
      next?.dispose();
      if (!e.imageFinite) stop(it, `the image is non-finite${it === 0 ? ' from the first step (a NaN or infinite weight in the generator?)' : ''}`);
      else {
        const bad = rewards.filter((_, i) => !Number.isFinite(e.losses[i])).map((r) => r.name);
        const what = Number.isFinite(e.total) && !bad.length ? `the regulariser became ${kind(e.reg)}` : `the loss became ${kind(e.total)}`;
        stop(it, `${what}${bad.length ? ` (reward ${bad.join(', ')})` : ''}`);
      }
      break;
    }
    if (gradNorm !== null && !Number.isFinite(gradNorm)) {
      stop(it, `the gradient became non-finite (||grad|| = ${gradNorm})`);
      break;
    }
    if (next) {
      z.dispose();
      z = next;
    }
    // give the event loop a turn: on CPU backends read-backs resolve as microtasks, and a Ctrl-C handler (a
    // macrotask) would otherwise wait for the whole run
    await new Promise((r) => setImmediate(r));
    if (ev.shouldStop?.() && it < steps - 1) {
      res.stopped = { reason: 'interrupted', step: it, message: `interrupted after step ${it}; kept the best image so far` };
      break;
    }
  }
  z.dispose();
  disposeOptimizerState(opt);
  return res;
}

export function disposeResult(r: LoopResult): void {
  if (r.init) r.init.image.dispose();
  if (r.best) tf.dispose([r.best.image, r.best.z]);
}
