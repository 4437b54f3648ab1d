// transformers models/blip/modeling_blip_text.py BlipTextLMHeadModel (= BLIP med.py BertLMHeadModel): the text
// decoder, a causal BlipTextModel without pooler (`bert.*`) and the MLM-style head `cls.predictions.*`
// (BlipTextPredictionHeadTransform: dense -> act -> LayerNorm; BlipTextLMPredictionHead: decoder + bias).
// The decoder's weight IS bert.embeddings.word_embeddings.weight and its bias IS cls.predictions.bias
// (tie_weights); save_pretrained stores only those shared names, so the head holds no weight of its own: it reads
// the embedding matrix through a private reference (not a parameter, so it is loaded and disposed once).
import * as tf from '../../runtime/tf.js';
import { LayerNorm, Linear, type Embedding } from '../../nn/layers.js';
import { Module, Param } from '../../nn/module.js';
import { activation } from '../../nn/ops.js';
import type { BertTextConfig } from './config.js';
import { BertModel, type BertForwardOptions } from './med.js';

/** BlipTextPredictionHeadTransform: LayerNorm(act(dense(h))). */
export class BlipTextPredictionHeadTransform extends Module {
  dense: Linear;
  LayerNorm: LayerNorm;
  private readonly act: (x: tf.Tensor) => tf.Tensor;
  constructor(c: BertTextConfig) {
    super();
    this.dense = new Linear(c.hiddenSize, c.hiddenSize);
    this.LayerNorm = new LayerNorm(c.hiddenSize, c.layerNormEps);
    this.act = activation(c.hiddenAct);
  }

  forward(h: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.LayerNorm.forward(this.act(this.dense.forward(h))));
  }
}

/** BlipTextLMPredictionHead: logits = transform(h) E^T + bias, E the (tied) word-embedding matrix [V, H]. */
export class BlipTextLMPredictionHead extends Module {
  transform: BlipTextPredictionHeadTransform;
  bias: Param;
  /** The tied output weight: bert.embeddings.word_embeddings (never a key of its own). */
  readonly #tied: Embedding;
  constructor(c: BertTextConfig, wordEmbeddings: Embedding) {
    super();
    this.transform = new BlipTextPredictionHeadTransform(c);
    this.bias = new Param([c.vocabSize]);
    this.#tied = wordEmbeddings;
  }

  /** The decoder weight, [V, H] (the same tensor as the word embeddings). */
  get decoderWeight(): tf.Tensor {
    return this.#tied.weight.v;
  }

  /** h [B, L, H] -> logits [B, L, V] */
  forward(h: tf.Tensor): tf.Tensor3D {
    return tf.tidy(() => {
      const [b, l, d] = h.shape as [number, number, number];
      const t = this.transform.forward(h).reshape([b * l, d]); // [B, L, H] -> [B*L, H]
      const logits = tf.add(tf.matMul(t as tf.Tensor2D, this.decoderWeight as tf.Tensor2D, false, true), this.bias.v); // [B*L, V]
      return logits.reshape([b, l, -1]) as tf.Tensor3D; // [B*L, V] -> [B, L, V]
    });
  }
}

/** BlipTextOnlyMLMHead: `predictions`. */
export class BlipTextOnlyMLMHead extends Module {
  predictions: BlipTextLMPredictionHead;
  constructor(c: BertTextConfig, wordEmbeddings: Embedding) {
    super();
    this.predictions = new BlipTextLMPredictionHead(c, wordEmbeddings);
  }
}

/** The label smoothing BlipTextLMHeadModel.forward hard-codes (CrossEntropyLoss(label_smoothing=0.1)). */
export const LM_LABEL_SMOOTHING = 0.1;

export interface LmOutputs {
  logits: tf.Tensor3D; // [B, L, V], unshifted
  /** Shifted next-token cross-entropy (mean over labels != -100), when labels were given. */
  loss: tf.Scalar | null;
}

/** BlipTextLMHeadModel (keys bert.* without pooler, cls.predictions.{transform.*, bias}). */
export class BlipTextLMHeadModel extends Module {
  bert: BertModel;
  cls: BlipTextOnlyMLMHead;
  constructor(readonly config: BertTextConfig) {
    super();
    this.bert = new BertModel(config, false);
    this.cls = new BlipTextOnlyMLMHead(config, this.bert.embeddings.word_embeddings);
  }

  /** ids [B, L]; labels [B, L] int (-100 = ignored) for the loss. is_decoder defaults to true, as upstream. */
  forward(ids: tf.Tensor2D, opts: BertForwardOptions & { labels?: ArrayLike<number> } = {}): LmOutputs {
    const { lastHiddenState } = this.bert.forward(ids, { ...opts, isDecoder: opts.isDecoder ?? true });
    const logits = this.cls.predictions.forward(lastHiddenState);
    lastHiddenState.dispose();
    const loss = opts.labels ? shiftedCrossEntropy(logits, opts.labels, LM_LABEL_SMOOTHING) : null;
    return { logits, loss };
  }
}

/**
 * BlipTextLMHeadModel's loss: logits[:, :-1] against labels[:, 1:], torch CrossEntropyLoss(reduction='mean',
 * label_smoothing=eps, ignore_index=-100): mean over kept tokens of (1 - eps)(-log p_y) + (eps / V) sum_c(-log p_c).
 */
export function shiftedCrossEntropy(logits: tf.Tensor3D, labels: ArrayLike<number>, eps: number): tf.Scalar {
  const [b, l, v] = logits.shape;
  if (labels.length !== b * l) throw new Error(`labels have ${labels.length} entries, expected ${b} x ${l}`);
  // the target distribution of every shifted position, zero for ignored ones, already divided by the kept count
  const target = new Float32Array(b * (l - 1) * v);
  let kept = 0;
  for (let i = 0; i < b; i++) for (let j = 1; j < l; j++) if (labels[i * l + j] !== -100) kept++;
  for (let i = 0; i < b; i++)
    for (let j = 1; j < l; j++) {
      const y = labels[i * l + j];
      if (y === -100) continue;
      if (!Number.isInteger(y) || y < 0 || y >= v) throw new Error(`label ${y} is outside the vocabulary [0, ${v})`);
      const row = (i * (l - 1) + (j - 1)) * v;
      for (let c = 0; c < v; c++) target[row + c] = eps / v / kept;
      target[row + y] += (1 - eps) / kept;
    }
  return tf.tidy(() => {
    const shifted = tf.slice(logits, [0, 0, 0], [b, l - 1, v]); // logits[:, :-1, :]
    const logp = tf.logSoftmax(shifted, -1);
    // every position ignored: torch returns nan (0 / 0)
    return kept === 0 ? tf.scalar(NaN) : (tf.neg(tf.sum(tf.mul(logp, tf.tensor3d(target, [b, l - 1, v])))) as tf.Scalar);
  });
}
