// BLIP's BERT text encoder with cross-attention to the image tokens: ImageReward models/BLIP/med.py (BertEmbeddings,
// BertSelfAttention, BertSelfOutput, BertAttention, BertIntermediate, BertOutput, BertLayer, BertEncoder, BertPooler,
// BertModel), which transformers ports as models/blip/modeling_blip_text.py (BlipText* classes, same key names).
// Post-LN layers: LN(x + dense(self-attn x)), LN(a + dense(cross-attn(a, image))), LN(c + W2 act(W1 c)).
// Embeddings are word + absolute position only (no token_type), then LayerNorm. Dropout is the identity at eval.
import * as tf from '../../runtime/tf.js';
import { Embedding, LayerNorm, Linear } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';
import { activation, attention } from '../../nn/ops.js';
import type { BertTextConfig } from './config.js';

/** The additive value med.py / BlipTextModel.get_extended_attention_mask give to masked positions. */
export const MASKED = -10000;

/** med.py BertEmbeddings: word_embeddings(ids) + position_embeddings(0..L-1), LayerNorm. The position_ids buffer is not a parameter. */
export class BertEmbeddings extends Module {
  word_embeddings: Embedding;
  position_embeddings: Embedding;
  LayerNorm: LayerNorm;
  constructor(c: BertTextConfig) {
    super();
    this.word_embeddings = new Embedding(c.vocabSize, c.hiddenSize);
    this.position_embeddings = new Embedding(c.maxPositions, c.hiddenSize);
    this.LayerNorm = new LayerNorm(c.hiddenSize, c.layerNormEps);
  }

  /** ids [B, L] int32 -> [B, L, H] */
  forward(ids: tf.Tensor2D): tf.Tensor3D {
    return tf.tidy(() => {
      const l = ids.shape[1];
      const pos = tf.slice(this.position_embeddings.weight.v, [0, 0], [l, -1]); // position_ids[:, :L] -> [L, H]
      return this.LayerNorm.forward(tf.add(this.word_embeddings.forward(ids), pos)) as tf.Tensor3D;
    });
  }
}

/** med.py BertSelfAttention: query from the text; key/value from the text, or from the image tokens (width encoderWidth). */
export class BertSelfAttention extends Module {
  query: Linear;
  key: Linear;
  value: Linear;
  constructor(
    c: BertTextConfig,
    isCross: boolean,
    readonly heads = c.numHeads,
  ) {
    super();
    const kvIn = isCross ? c.encoderWidth : c.hiddenSize;
    this.query = new Linear(c.hiddenSize, c.hiddenSize);
    this.key = new Linear(kvIn, c.hiddenSize);
    this.value = new Linear(kvIn, c.hiddenSize);
  }

  /** x [B, L, H]; memory [B, M, W] for cross-attention (else x itself); mask additive, broadcast to [B, heads, L, M]. */
  forward(x: tf.Tensor, memory: tf.Tensor, mask?: tf.Tensor): tf.Tensor {
    return tf.tidy(() => attention(this.query.forward(x), this.key.forward(memory), this.value.forward(memory), this.heads, { mask }));
  }
}

/** med.py BertSelfOutput (also BertOutput's shape): LayerNorm(dense(h) + residual). */
export class BertSelfOutput extends Module {
  dense: Linear;
  LayerNorm: LayerNorm;
  constructor(inDim: number, c: BertTextConfig) {
    super();
    this.dense = new Linear(inDim, c.hiddenSize);
    this.LayerNorm = new LayerNorm(c.hiddenSize, c.layerNormEps);
  }

  forward(h: tf.Tensor, residual: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.LayerNorm.forward(tf.add(this.dense.forward(h), residual)));
  }
}

/** med.py BertAttention: `self` (the attention) and `output` (dense + residual LayerNorm). */
export class BertAttention extends Module {
  self: BertSelfAttention;
  output: BertSelfOutput;
  constructor(c: BertTextConfig, isCross: boolean) {
    super();
    this.self = new BertSelfAttention(c, isCross);
    this.output = new BertSelfOutput(c.hiddenSize, c);
  }

  forward(x: tf.Tensor, memory: tf.Tensor, mask?: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.output.forward(this.self.forward(x, memory, mask), x));
  }
}

/** med.py BertIntermediate: dense -> hidden_act ("gelu" = exact erf GELU). */
export class BertIntermediate extends Module {
  dense: Linear;
  private readonly act: (x: tf.Tensor) => tf.Tensor;
  constructor(c: BertTextConfig) {
    super();
    this.dense = new Linear(c.hiddenSize, c.intermediateSize);
    this.act = activation(c.hiddenAct);
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.act(this.dense.forward(x)));
  }
}

/** Masks for one forward pass: additive, already broadcastable to the attention scores. */
export interface BertMasks {
  /** [B, 1, 1, L] (encoder) or [B, 1, L, L] (decoder), 0 or MASKED. */
  self?: tf.Tensor;
  /** [B, 1, 1, M] over the image tokens; absent = attend to all of them. */
  cross?: tf.Tensor;
}

/** med.py BertLayer in mode 'multimodal' (HF BlipTextLayer with encoder_hidden_states): self-attn, cross-attn, FFN. */
export class BertLayer extends Module {
  attention: BertAttention;
  crossattention: BertAttention | null;
  intermediate: BertIntermediate;
  output: BertSelfOutput;
  constructor(c: BertTextConfig) {
    super();
    this.attention = new BertAttention(c, false);
    this.crossattention = c.crossAttention ? new BertAttention(c, true) : null;
    this.intermediate = new BertIntermediate(c);
    this.output = new BertSelfOutput(c.intermediateSize, c);
  }

  /** h [B, L, H]; image [B, M, W] (cross-attention runs only when it is given, as upstream). */
  forward(h: tf.Tensor, masks: BertMasks, image?: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      let a = this.attention.forward(h, h, masks.self);
      if (image) {
        if (!this.crossattention) throw new Error('this text encoder has no cross-attention layers (add_cross_attention / is_decoder is false)');
        a = this.crossattention.forward(a, image, masks.cross);
      }
      return this.output.forward(this.intermediate.forward(a), a);
    });
  }
}

/** med.py BertEncoder: the `layer` list. */
export class BertEncoder extends Module {
  layer: BertLayer[];
  constructor(c: BertTextConfig) {
    super();
    this.layer = Array.from({ length: c.numLayers }, () => new BertLayer(c));
  }

  forward(x: tf.Tensor, masks: BertMasks, image?: tf.Tensor): tf.Tensor {
    let h = x;
    for (const layer of this.layer) {
      const next = layer.forward(h, masks, image);
      if (h !== x) h.dispose();
      h = next;
    }
    return h === x ? tf.clone(x) : h;
  }
}

/** med.py BertPooler: tanh(dense(h[:, 0])). */
export class BertPooler extends Module {
  dense: Linear;
  constructor(c: BertTextConfig) {
    super();
    this.dense = new Linear(c.hiddenSize, c.hiddenSize);
  }

  /** h [B, L, H] -> [B, H] */
  forward(h: tf.Tensor): tf.Tensor {
    return tf.tidy(() => tf.tanh(this.dense.forward(firstToken(h))));
  }
}

/** h[:, 0, :] with a slice (no StridedSlice gradient on any backend): [B, L, H] -> [B, H]. */
export function firstToken(h: tf.Tensor): tf.Tensor2D {
  const [b, , d] = h.shape as [number, number, number];
  return tf.tidy(() => tf.slice(h, [0, 0, 0], [b, 1, d]).reshape([b, d])); // [B, 1, H] -> [B, H]
}

/**
 * get_extended_attention_mask (med.py BertModel, BlipTextModel): from a 0/1 key mask [B, L] to (1 - m) * -10000,
 * [B, 1, 1, L] for the encoder; for the decoder the causal mask is multiplied in first: [B, 1, L, L].
 */
export function extendedAttentionMask(mask01: tf.Tensor, isDecoder: boolean): tf.Tensor {
  return tf.tidy(() => {
    const [b, l] = mask01.shape as [number, number];
    const keys = mask01.toFloat().reshape([b, 1, 1, l]); // m[:, None, None, :]
    if (!isDecoder) return tf.mul(tf.sub(1, keys), MASKED);
    const causal = new Float32Array(l * l);
    for (let i = 0; i < l; i++) for (let j = 0; j <= i; j++) causal[i * l + j] = 1; // seq_ids[j] <= seq_ids[i]
    const both = tf.mul(tf.tensor4d(causal, [1, 1, l, l]), keys); // [B, 1, L, L]
    return tf.mul(tf.sub(1, both), MASKED);
  });
}

/** invert_attention_mask for the image tokens: [B, M] of 0/1 -> [B, 1, 1, M] additive. */
export function encoderAttentionMask(mask01: tf.Tensor): tf.Tensor {
  return tf.tidy(() => {
    const [b, m] = mask01.shape as [number, number];
    return tf.mul(tf.sub(1, mask01.toFloat()), MASKED).reshape([b, 1, 1, m]); // [B, M] -> [B, 1, 1, M]
  });
}

export interface BertMaskOptions {
  /** 0/1 [B, L]; absent = every token is real. */
  attentionMask?: tf.Tensor;
  /** 0/1 [B, M]; absent = all ones (ImageReward's image_atts). */
  encoderAttentionMask?: tf.Tensor;
  /** Causal self-attention (BlipTextLMHeadModel passes is_decoder=True; BlipTextModel.forward and med default False). */
  isDecoder?: boolean;
}

export interface BertForwardOptions extends BertMaskOptions {
  /** The image tokens to cross-attend to, [B, M, encoderWidth]. */
  encoderHiddenStates?: tf.Tensor;
  /**
   * Masks made beforehand by `bertMasks` (they replace the three options above and are not disposed here). Needed
   * when a gradient is taken through the text encoder: ops.attention's own gradient reads its mask in the backward
   * pass, so the mask must outlive the forward scope of tf.grad.
   */
  masks?: BertMasks;
}

/** The additive masks of one forward pass for ids of shape [B, L]. */
export function bertMasks(b: number, l: number, opts: BertMaskOptions = {}): BertMasks {
  return {
    self: tf.tidy(() => extendedAttentionMask(opts.attentionMask ?? tf.ones([b, l]), opts.isDecoder ?? false)),
    cross: opts.encoderAttentionMask ? encoderAttentionMask(opts.encoderAttentionMask) : undefined,
  };
}

export function disposeMasks(m: BertMasks): void {
  tf.dispose([m.self, m.cross].filter((t): t is tf.Tensor => t !== undefined));
}

export interface BertOutputs {
  lastHiddenState: tf.Tensor3D; // [B, L, H]
  pooled: tf.Tensor2D | null; // [B, H] when the model has a pooler
}

/**
 * med.py BertModel / transformers BlipTextModel (keys embeddings.*, encoder.layer.N.*, pooler.dense.*).
 * ImageReward's text_encoder is built with add_pooling_layer=False.
 */
export class BertModel extends Module {
  embeddings: BertEmbeddings;
  encoder: BertEncoder;
  pooler: BertPooler | null;
  constructor(
    readonly config: BertTextConfig,
    addPoolingLayer = true,
  ) {
    super();
    this.embeddings = new BertEmbeddings(config);
    this.encoder = new BertEncoder(config);
    this.pooler = addPoolingLayer ? new BertPooler(config) : null;
  }

  /** ids [B, L] int32 -> last_hidden_state [B, L, H] (+ pooler_output). */
  forward(ids: tf.Tensor2D, opts: BertForwardOptions = {}): BertOutputs {
    const [b, l] = ids.shape;
    const masks = opts.masks ?? bertMasks(b, l, opts);
    const emb = this.embeddings.forward(ids);
    const lastHiddenState = this.encoder.forward(emb, masks, opts.encoderHiddenStates) as tf.Tensor3D;
    emb.dispose();
    if (!opts.masks) disposeMasks(masks);
    const pooled = this.pooler ? (this.pooler.forward(lastHiddenState) as tf.Tensor2D) : null;
    return { lastHiddenState, pooled };
  }
}
