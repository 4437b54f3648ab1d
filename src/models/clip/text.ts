// CLIP text tower (transformers models/clip/modeling_clip.py: CLIPTextEmbeddings, CLIPTextTransformer,
// CLIPTextModel). Used by SD-Turbo's text encoder (23-layer OpenCLIP-H in the HF layout, exact GELU) and by the
// CLIP-family rewards.
import * as tf from '../../runtime/tf.js';
import { Embedding, LayerNorm } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';
import { causalMask, keyPaddingMask } from '../../nn/ops.js';
import type { ClipTextConfig } from './config.js';
import { ClipEncoder } from './encoder.js';

export class ClipTextEmbeddings extends Module {
  token_embedding: Embedding;
  position_embedding: Embedding;
  constructor(c: ClipTextConfig) {
    super();
    this.token_embedding = new Embedding(c.vocabSize, c.hiddenSize);
    this.position_embedding = new Embedding(c.maxPositions, c.hiddenSize);
  }

  forward(ids: tf.Tensor2D): tf.Tensor {
    return tf.tidy(() => {
      const l = ids.shape[1];
      const pos = tf.slice(this.position_embedding.weight.v, [0, 0], [l, -1]); // [L, D]
      return tf.add(this.token_embedding.forward(ids), pos); // [B, L, D]
    });
  }
}

export interface ClipTextOutput {
  lastHiddenState: tf.Tensor; // [B, L, D]
  pooled: tf.Tensor; // [B, D]
  /** embeddings then every layer's output (only with keepHidden). */
  hiddenStates?: tf.Tensor[];
}

export class ClipTextTransformer extends Module {
  embeddings: ClipTextEmbeddings;
  encoder: ClipEncoder;
  final_layer_norm: LayerNorm;
  constructor(readonly config: ClipTextConfig) {
    super();
    const c = config;
    this.embeddings = new ClipTextEmbeddings(c);
    this.encoder = new ClipEncoder(c.numLayers, c.hiddenSize, c.numHeads, c.intermediateSize, c.hiddenAct, c.layerNormEps);
    this.final_layer_norm = new LayerNorm(c.hiddenSize, c.layerNormEps);
  }

  /** ids [B, L] int32; attentionMask [B, L] of 0/1 (optional, CLIPModel passes it, SD does not). */
  forward(ids: tf.Tensor2D, attentionMask?: tf.Tensor2D, keepHidden = false): ClipTextOutput {
    const [b, l] = ids.shape;
    const emb = this.embeddings.forward(ids);
    const mask = tf.tidy(() => {
      const causal = causalMask(l);
      return attentionMask ? tf.add(causal, keyPaddingMask(attentionMask)) : causal; // [B|1, 1, L, L]
    });
    const states = this.encoder.forward(emb, mask, keepHidden);
    mask.dispose();
    const last = states[states.length - 1];
    const lastHiddenState = this.final_layer_norm.forward(last);
    const pooled = tf.tidy(() => {
      const idx = tf.add(eosPositions(ids, this.config.eosTokenId), tf.range(0, b * l, l, 'int32')); // flat row of each eos
      return tf.gather(lastHiddenState.reshape([b * l, -1]), idx); // [B*L, D] -> [B, D]
    });
    if (!keepHidden) {
      if (last !== emb) last.dispose();
      emb.dispose();
      return { lastHiddenState, pooled };
    }
    return { lastHiddenState, pooled, hiddenStates: [emb, ...states] };
  }
}

/**
 * Where CLIP pools each sequence, computed on the device (no read-back): argmax(ids) for the legacy eos id 2, else
 * the first occurrence of the eos id (transformers CLIPTextTransformer.forward; 0 when absent, like torch's argmax).
 */
export function eosPositions(ids: tf.Tensor2D, eosTokenId: number): tf.Tensor1D {
  return tf.tidy(() => (eosTokenId === 2 ? tf.argMax(ids, 1) : tf.argMax(tf.equal(ids, eosTokenId).toInt(), 1)).toInt() as tf.Tensor1D);
}

/** CLIPTextModel: the text tower alone (keys "text_model.*"). */
export class ClipTextModel extends Module {
  text_model: ClipTextTransformer;
  constructor(readonly config: ClipTextConfig) {
    super();
    this.text_model = new ClipTextTransformer(config);
  }

  forward(ids: tf.Tensor2D, attentionMask?: tf.Tensor2D, keepHidden = false): ClipTextOutput {
    return this.text_model.forward(ids, attentionMask, keepHidden);
  }
}
