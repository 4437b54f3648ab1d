// The ReNO loop's pieces as small pure functions on tensors, each unit-tested against hand-computed values
// (as in ReNO's trainer: torch.optim.SGD with Nesterov momentum, Adam(eps=1e-2), clip_grad_norm_, the chi-norm
// regulariser, best-image selection).
import * as tf from '../runtime/tf.js';

/** ReNO's regulariser: weight * (r^2 / 2 - (d - 1) ln r), r = ||z||, d = number of elements (trainer.py:109-118). */
export function chiRegulariser(z: tf.Tensor, weight: number): tf.Scalar {
  return tf.tidy(() => {
    const d = z.size;
    const r2 = tf.sum(tf.square(z));
    const lnR = tf.mul(tf.log(r2), 0.5); // ln r = ln(r^2) / 2
    return tf.mul(tf.sub(tf.mul(r2, 0.5), tf.mul(lnR, d - 1)), weight) as tf.Scalar;
  });
}

/** torch.nn.utils.clip_grad_norm_: g * min(1, max / (||g|| + 1e-6)); returns the clipped gradient and the norm. */
export async function clipGradNorm(g: tf.Tensor, maxNorm: number): Promise<{ grad: tf.Tensor; norm: number }> {
  const normT = tf.tidy(() => tf.norm(g));
  const norm = (await normT.data())[0];
  normT.dispose();
  if (maxNorm <= 0) return { grad: g.clone(), norm };
  const coef = Math.min(1, maxNorm / (norm + 1e-6));
  return { grad: tf.tidy(() => tf.mul(g, coef)), norm };
}

export interface OptimizerState {
  step: number;
  buf: tf.Tensor | null; // SGD momentum buffer / Adam first moment
  v: tf.Tensor | null; // Adam second moment
}

export function newOptimizerState(): OptimizerState {
  return { step: 0, buf: null, v: null };
}

/**
 * torch.optim.SGD(lr, momentum, nesterov): buf = m * buf + g (buf = g on the first step);
 * z -= lr * (g + m * buf) with Nesterov, else z -= lr * buf. Returns the new z; updates state in place.
 */
export function sgdStep(z: tf.Tensor, g: tf.Tensor, s: OptimizerState, lr: number, momentum: number, nesterov: boolean): tf.Tensor {
  const buf = s.buf ? tf.tidy(() => tf.add(tf.mul(s.buf!, momentum), g)) : g.clone();
  s.buf?.dispose();
  s.buf = buf;
  s.step++;
  return tf.tidy(() => {
    const d = momentum === 0 ? g : nesterov ? tf.add(g, tf.mul(buf, momentum)) : buf;
    return tf.sub(z, tf.mul(d, lr));
  });
}

/** torch.optim.Adam(lr, betas=(0.9, 0.999), eps=1e-2) as ReNO configures it (training/optim.py). */
export function adamStep(z: tf.Tensor, g: tf.Tensor, s: OptimizerState, lr: number, beta1 = 0.9, beta2 = 0.999, eps = 1e-2): tf.Tensor {
  s.step++;
  const m = tf.tidy(() => (s.buf ? tf.add(tf.mul(s.buf, beta1), tf.mul(g, 1 - beta1)) : tf.mul(g, 1 - beta1)));
  const v = tf.tidy(() => (s.v ? tf.add(tf.mul(s.v, beta2), tf.mul(tf.square(g), 1 - beta2)) : tf.mul(tf.square(g), 1 - beta2)));
  s.buf?.dispose();
  s.v?.dispose();
  s.buf = m;
  s.v = v;
  const bc1 = 1 - beta1 ** s.step;
  const bc2 = 1 - beta2 ** s.step;
  return tf.tidy(() => tf.sub(z, tf.mul(tf.div(m, tf.add(tf.div(tf.sqrt(v), Math.sqrt(bc2)), eps)), lr / bc1)));
}

export function disposeOptimizerState(s: OptimizerState): void {
  s.buf?.dispose();
  s.v?.dispose();
  s.buf = null;
  s.v = null;
}

/** Index of the best (lowest, finite) total reward loss; ties keep the earliest (ReNO uses a strict <). */
export function bestIndex(totals: number[]): number {
  let best = -1;
  for (let i = 0; i < totals.length; i++) if (Number.isFinite(totals[i]) && (best < 0 || totals[i] < totals[best])) best = i;
  return best;
}
