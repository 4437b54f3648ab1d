// The seed paper's training objective (section 3.3), for N samples. Sample i is one history S_i with two targets:
// z_pos (the image the user liked) and z_neg (the one they disliked), each scored at the target's last position.
// M+(S, z) and M-(S, z) are the logits of the "+" and "-" label tokens there.
//
//   (4)  L_base = 1/2 ( L(M(S, z_pos), y_pos) + L(M(S, z_neg), y_neg) )
//          L = cross-entropy of the label token: y_pos = "+", y_neg = "-". 'vocab' (default): over the whole
//          vocabulary (next-token prediction of the label, as ViPer's train_metric.py); 'pair': over {+, -} only,
//          i.e. -log Q(S, z_pos) and -log(1 - Q(S, z_neg)).
//   (5)  Q(S, z) = exp M+(S, z) / (exp M+(S, z) + exp M-(S, z)) = sigmoid(M+ - M-)
//   (6)  L_+ = -1/N sum_i log sigmoid( M+(S, z_pos) - M+(S, z_neg) )
//   (7)  L_- = -1/N sum_i log sigmoid( M-(S, z_neg) - M-(S, z_pos) )
//        L_aux = L_+ + L_-
//   (8)  L_all = L_base + L_aux           (--no-aux-loss: L_all = L_base)
// L_base is averaged over the N samples too. -log sigmoid(x) is computed as softplus(-x) (stable).
import * as tf from '../runtime/tf.js';

export type BaseLoss = 'vocab' | 'pair';

export interface PreferenceLossParts {
  all: tf.Scalar;
  base: tf.Scalar;
  plus: tf.Scalar;
  minus: tf.Scalar;
}

/** The column `id` of logits [N, V] -> [N] (a slice: differentiable on every backend). */
export function column(logits: tf.Tensor2D, id: number): tf.Tensor1D {
  return tf.tidy(() => tf.slice(logits, [0, id], [-1, 1]).reshape([logits.shape[0]]) as tf.Tensor1D);
}

/** -log softmax(logits)[id] per row, [N]. */
export function crossEntropy(logits: tf.Tensor2D, id: number): tf.Tensor1D {
  return tf.tidy(() => tf.sub(tf.logSumExp(logits, 1), column(logits, id)) as tf.Tensor1D);
}

/** -log sigmoid(x) = softplus(-x). */
export function negLogSigmoid(x: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.softplus(tf.neg(x)));
}

/**
 * Eqs. (4), (6), (7), (8) from the target logits: pos [N, V] (the liked targets) and neg [N, V] (the disliked ones),
 * `plusId` / `minusId` the label tokens' columns.
 */
export function preferenceLoss(
  pos: tf.Tensor2D,
  neg: tf.Tensor2D,
  plusId: number,
  minusId: number,
  o: { baseLoss?: BaseLoss; aux?: boolean } = {},
): PreferenceLossParts {
  const baseLoss = o.baseLoss ?? 'vocab';
  const aux = o.aux ?? true;
  return tf.tidy(() => {
    const pPlus = column(pos, plusId); // M+(S, z_pos)
    const pMinus = column(pos, minusId); // M-(S, z_pos)
    const nPlus = column(neg, plusId); // M+(S, z_neg)
    const nMinus = column(neg, minusId); // M-(S, z_neg)
    let basePos: tf.Tensor;
    let baseNeg: tf.Tensor;
    if (baseLoss === 'vocab') {
      basePos = crossEntropy(pos, plusId);
      baseNeg = crossEntropy(neg, minusId);
    } else {
      basePos = negLogSigmoid(tf.sub(pPlus, pMinus)); // -log Q(S, z_pos)
      baseNeg = negLogSigmoid(tf.sub(nMinus, nPlus)); // -log (1 - Q(S, z_neg))
    }
    const base = tf.mul(0.5, tf.add(tf.mean(basePos), tf.mean(baseNeg))) as tf.Scalar; // (4)
    const plus = tf.mean(negLogSigmoid(tf.sub(pPlus, nPlus))) as tf.Scalar; // (6)
    const minus = tf.mean(negLogSigmoid(tf.sub(nMinus, pMinus))) as tf.Scalar; // (7)
    const all = (aux ? tf.add(base, tf.add(plus, minus)) : tf.clone(base)) as tf.Scalar; // (8)
    return { all, base, plus, minus };
  });
}

/** Q(S, z) of eq. (5) from the two logits, [N] (or from their difference M+ - M-). */
export function preferenceProbability(plusLogit: tf.Tensor, minusLogit?: tf.Tensor): tf.Tensor {
  return tf.tidy(() => tf.sigmoid(minusLogit ? tf.sub(plusLogit, minusLogit) : plusLogit));
}

/**
 * The personal reward's guidance losses from d = M+ - M- (rewards/personal.ts): like minimises -log Q(+) =
 * softplus(-d); dislike minimises -log(1 - Q(+)) = softplus(d).
 */
export function guidanceLoss(diff: tf.Tensor, guidance: 'like' | 'dislike'): tf.Tensor {
  return tf.tidy(() => tf.softplus(guidance === 'like' ? tf.neg(diff) : diff));
}
