// AdamW (Loshchilov & Hutter; torch.optim.AdamW's update, amsgrad off) over named tf.Variables, with its state
// (exp_avg, exp_avg_sq, step) exported and restored as plain arrays so a training run resumes exactly:
//   p <- p (1 - lr wd)
//   m <- b1 m + (1 - b1) g ;  v <- b2 v + (1 - b2) g^2
//   p <- p - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
// Plus the global gradient-norm clip applied before it (torch.nn.utils.clip_grad_norm_, HF Trainer's max_grad_norm).
import * as tf from '../runtime/tf.js';
import { WeightsError } from '../errors.js';
import type { TensorSource } from '../weights/source.js';

export interface AdamWOptions {
  lr: number;
  weightDecay: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
}

export class AdamW {
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  /** Optimizer steps taken. */
  step = 0;
  private readonly m = new Map<string, tf.Variable>();
  private readonly v = new Map<string, tf.Variable>();

  constructor(
    readonly params: Map<string, tf.Variable>,
    readonly o: AdamWOptions,
  ) {
    this.beta1 = o.beta1 ?? 0.9;
    this.beta2 = o.beta2 ?? 0.999;
    this.eps = o.eps ?? 1e-8;
    const zeroed = (p: tf.Variable) => tf.tidy(() => tf.variable(tf.zerosLike(p), false)); // the zeros are freed, not the variable
    for (const [k, p] of params) {
      this.m.set(k, zeroed(p));
      this.v.set(k, zeroed(p));
    }
  }

  /** One update with gradients by name (every parameter must have one). */
  apply(grads: Map<string, tf.Tensor>, lr = this.o.lr): void {
    this.step++;
    const t = this.step;
    const bc1 = 1 - Math.pow(this.beta1, t);
    const bc2 = 1 - Math.pow(this.beta2, t);
    tf.tidy(() => {
      for (const [k, p] of this.params) {
        const g = grads.get(k);
        if (!g) throw new Error(`AdamW: no gradient for ${k}`);
        const m = this.m.get(k)!;
        const v = this.v.get(k)!;
        m.assign(tf.add(tf.mul(m, this.beta1), tf.mul(g, 1 - this.beta1)));
        v.assign(tf.add(tf.mul(v, this.beta2), tf.mul(tf.square(g), 1 - this.beta2)));
        const decayed = tf.mul(p, 1 - lr * this.o.weightDecay);
        const denom = tf.add(tf.sqrt(tf.div(v, bc2)), this.eps);
        p.assign(tf.sub(decayed, tf.mul(tf.div(tf.div(m, bc1), denom), lr)));
      }
    });
  }

  /**
   * exp_avg.<key>, exp_avg_sq.<key> (tfjs layout) for a safetensors file; the step goes in its metadata. Read back
   * asynchronously (WebGPU in Node has no synchronous read).
   */
  async state(): Promise<Map<string, { shape: number[]; data: Float32Array }>> {
    const out = new Map<string, { shape: number[]; data: Float32Array }>();
    for (const k of this.params.keys()) {
      for (const [prefix, map] of [
        ['exp_avg', this.m],
        ['exp_avg_sq', this.v],
      ] as const) {
        const t = map.get(k)!;
        out.set(`${prefix}.${k}`, { shape: [...t.shape], data: Float32Array.from(await t.data()) });
      }
    }
    return out;
  }

  /** Restore moments from a source written by state(), and the step count. */
  load(source: TensorSource, step: number): void {
    for (const k of this.params.keys()) {
      for (const [prefix, map] of [
        ['exp_avg', this.m],
        ['exp_avg_sq', this.v],
      ] as const) {
        const key = `${prefix}.${k}`;
        const info = source.info(key);
        const t = map.get(k)!;
        if (!info) throw new WeightsError(`${source.path}: missing optimizer state ${key}`);
        if (info.shape.join() !== t.shape.join()) throw new WeightsError(`${source.path}: ${key} is [${info.shape}], expected [${t.shape}]`);
        tf.tidy(() => t.assign(tf.tensor(source.read(key), t.shape)));
      }
    }
    this.step = step;
  }

  dispose(): void {
    tf.dispose([...this.m.values(), ...this.v.values()]);
  }
}

/**
 * Scale gradients so their global L2 norm is at most maxNorm (no-op for maxNorm <= 0). Resolves to the norm before
 * (read back asynchronously: WebGPU in Node has no synchronous read).
 */
export async function clipGlobalNorm(grads: Map<string, tf.Tensor>, maxNorm: number): Promise<number> {
  const normT = tf.tidy(() => tf.sqrt(tf.addN([...grads.values()].map((g) => tf.sum(tf.square(g))))));
  const norm = (await normT.data())[0];
  normT.dispose();
  if (maxNorm > 0 && norm > maxNorm) {
    const s = maxNorm / (norm + 1e-6);
    for (const [k, g] of grads) {
      grads.set(k, tf.mul(g, s));
      g.dispose();
    }
  }
  return norm;
}
