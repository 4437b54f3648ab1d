// The Llama text model of Idefics3 / SmolVLM (transformers models/llama/modeling_llama.py: LlamaRMSNorm,
// LlamaRotaryEmbedding, rotate_half / apply_rotary_pos_emb, repeat_kv, LlamaAttention, LlamaMLP,
// LlamaDecoderLayer, LlamaModel), run from input embeddings, with an optional key/value cache: a constant prefix
// is encoded once (`forward(..., {returnCache: true})`) and later suffixes attend to it (`{past}`).
import * as tf from '../../runtime/tf.js';
import { UsageError } from '../../errors.js';
import { Embedding, Linear } from '../../nn/layers.js';
import { Module, Param } from '../../nn/module.js';
import { activation, attention } from '../../nn/ops.js';
import type { LlamaConfig } from './config.js';

/** LlamaRMSNorm: x / sqrt(mean(x^2) + eps) * weight. */
export class LlamaRmsNorm extends Module {
  weight: Param;
  constructor(
    readonly dim: number,
    readonly eps: number,
  ) {
    super();
    this.weight = new Param([dim]);
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const variance = tf.mean(tf.square(x), -1, true);
      return tf.mul(tf.mul(x, tf.rsqrt(tf.add(variance, this.eps))), this.weight.v);
    });
  }
}

/**
 * LlamaRotaryEmbedding ("default" rope) for positions start .. start+len-1: cos and sin [len, headDim], each row
 * cat(freqs, freqs). Every step is rounded to float32 like upstream (inv_freq = 1 / base^(2i/d), freqs =
 * inv_freq * position, cos/sin of float32 angles).
 */
export function rotaryTables(headDim: number, theta: number, start: number, len: number): { cos: Float32Array; sin: Float32Array } {
  const f = Math.fround;
  const half = headDim / 2;
  const invFreq = Array.from({ length: half }, (_, i) => f(1 / f(Math.pow(theta, f((2 * i) / headDim)))));
  const cos = new Float32Array(len * headDim);
  const sin = new Float32Array(len * headDim);
  for (let p = 0; p < len; p++) {
    for (let i = 0; i < half; i++) {
      const a = f(invFreq[i] * (start + p));
      const c = Math.cos(a);
      const s = Math.sin(a);
      cos[p * headDim + i] = cos[p * headDim + half + i] = c;
      sin[p * headDim + i] = sin[p * headDim + half + i] = s;
    }
  }
  return { cos, sin };
}

/** apply_rotary_pos_emb on x [B, L, H, D] with cos/sin [1, L, 1, D]: x cos + rotate_half(x) sin. */
export function applyRotary(x: tf.Tensor4D, cos: tf.Tensor, sin: tf.Tensor): tf.Tensor4D {
  return tf.tidy(() => {
    const [x1, x2] = tf.split(x, 2, 3); // first and second half of each head
    const rotated = tf.concat([tf.neg(x2), x1], 3); // rotate_half: cat(-x2, x1)
    return tf.add(tf.mul(x, cos), tf.mul(rotated, sin)) as tf.Tensor4D;
  });
}

/**
 * repeat_kv on the [B, L, Hkv*D] layout: each key/value head is used by nRep consecutive query heads
 * (query head h reads kv head floor(h / nRep)). -> [B, L, Hkv*nRep*D].
 */
export function repeatKv(x: tf.Tensor3D, kvHeads: number, nRep: number): tf.Tensor3D {
  if (nRep === 1) return x.clone();
  return tf.tidy(() => {
    const [b, l, c] = x.shape;
    const d = c / kvHeads;
    const heads = x.reshape([b * l * kvHeads, 1, d]); // [B, L, Hkv, D] -> [B*L*Hkv, 1, D]
    const copies = tf.concat(new Array<tf.Tensor>(nRep).fill(heads), 1); // [B*L*Hkv, nRep, D]
    return copies.reshape([b, l, kvHeads * nRep * d]) as tf.Tensor3D; // [B, L, (Hkv, nRep, D)]
  });
}

/**
 * Additive attention bias [B, 1, Lq, Lp+Lq] for queries at positions past .. past+Lq-1: a key is visible when its
 * 0/1 key mask is 1 and it is not in the future (causal). keyMask is [B][Lp+Lq] on the host.
 */
export function causalBias(keyMask: ArrayLike<number>[], lq: number, past: number): tf.Tensor4D {
  const b = keyMask.length;
  const lk = past + lq;
  const m = new Float32Array(b * lq * lk);
  for (let i = 0; i < b; i++)
    for (let q = 0; q < lq; q++) for (let k = 0; k < lk; k++) if (k > past + q || !keyMask[i][k]) m[(i * lq + q) * lk + k] = -1e9;
  return tf.tensor4d(m, [b, 1, lq, lk]);
}

/** One layer's keys (after rotary) and values of the positions seen so far, [B, Lp, Hkv*D] each. */
export type LayerKv = { k: tf.Tensor3D; v: tf.Tensor3D };

/**
 * Optional read-out of one layer's attention probabilities (for pictures such as the seed paper's Fig. 3), computed
 * apart from the attention itself (from the same rotated queries and keys and the same bias), so the forward's
 * results and speed are unchanged. The sink gets softmax(q k^T / sqrt(D) + bias) [B, Lq, Lk] of one query head (or
 * the mean over heads): rows are this call's positions, columns every key (cached positions first); it owns the
 * tensor (dispose it).
 */
export interface AttentionRecord {
  /** Decoder layer index (0-based). */
  layer: number;
  /** Query head (GQA: it reads key head floor(head / (H / Hkv))), or 'mean' over all query heads. */
  head: number | 'mean';
  sink: (probs: tf.Tensor3D) => void;
}

/** Attention probabilities [B, Lq, Lk] of one head (or the mean) from rotated q [B, Lq, H, D] and k [B, Lk, Hkv*D]. */
function headProbabilities(q: tf.Tensor4D, k: tf.Tensor3D, bias: tf.Tensor, head: number | 'mean', hkv: number): tf.Tensor3D {
  return tf.tidy(() => {
    const [b, lq, h, d] = q.shape;
    const lk = k.shape[1];
    const nRep = h / hkv;
    const k4 = k.reshape([b, lk, hkv, d]); // [B, Lk, Hkv*D] -> [B, Lk, Hkv, D]
    const bias3 = bias.reshape([b, lq, lk]); // [B, 1, Lq, Lk] -> [B, Lq, Lk]
    const one = (hh: number) => {
      const qh = tf.slice(q, [0, 0, hh, 0], [b, lq, 1, d]).reshape([b, lq, d]); // [B, Lq, 1, D] -> [B, Lq, D]
      const kh = tf.slice(k4, [0, 0, Math.floor(hh / nRep), 0], [b, lk, 1, d]).reshape([b, lk, d]); // [B, Lk, 1, D] -> [B, Lk, D]
      return tf.softmax(tf.add(tf.mul(tf.matMul(qh, kh, false, true), 1 / Math.sqrt(d)), bias3)); // [B, Lq, Lk]
    };
    if (head !== 'mean') return one(head) as tf.Tensor3D;
    return tf.div(tf.addN(Array.from({ length: h }, (_, i) => one(i))), h) as tf.Tensor3D;
  });
}

export class LlamaAttention extends Module {
  q_proj: Linear;
  k_proj: Linear;
  v_proj: Linear;
  o_proj: Linear;
  constructor(readonly c: LlamaConfig) {
    super();
    const qDim = c.numHeads * c.headDim;
    const kvDim = c.numKvHeads * c.headDim;
    this.q_proj = new Linear(c.hiddenSize, qDim, c.attentionBias);
    this.k_proj = new Linear(c.hiddenSize, kvDim, c.attentionBias);
    this.v_proj = new Linear(c.hiddenSize, kvDim, c.attentionBias);
    this.o_proj = new Linear(qDim, c.hiddenSize, c.attentionBias);
  }

  /**
   * x [B, L, hidden]; cos/sin [1, L, 1, D]; bias [B, 1, L, Lp+L]; past keys/values [B|1, Lp, Hkv*D].
   * Returns the output and this layer's full keys/values (past + new). `record` hands this layer's attention
   * probabilities to a sink (AttentionRecord; its `layer` is not read here).
   */
  forward(
    x: tf.Tensor3D,
    cos: tf.Tensor,
    sin: tf.Tensor,
    bias: tf.Tensor,
    past?: LayerKv,
    record?: AttentionRecord,
  ): { out: tf.Tensor3D; kv: LayerKv } {
    return tf.tidy(() => {
      const { numHeads: h, numKvHeads: hkv, headDim: d } = this.c;
      const [b, l] = x.shape;
      const q = applyRotary(this.q_proj.forward(x).reshape([b, l, h, d]) as tf.Tensor4D, cos, sin); // [B, L, H, D]
      const kNew = applyRotary(this.k_proj.forward(x).reshape([b, l, hkv, d]) as tf.Tensor4D, cos, sin); // [B, L, Hkv, D]
      const vNew = this.v_proj.forward(x); // [B, L, Hkv*D]
      let k = kNew.reshape([b, l, hkv * d]) as tf.Tensor3D; // [B, L, Hkv*D]
      let v = vNew as tf.Tensor3D;
      if (past) {
        const pk = past.k.shape[0] === b ? past.k : tf.tile(past.k, [b, 1, 1]); // a batch-1 prefix serves every row
        const pv = past.v.shape[0] === b ? past.v : tf.tile(past.v, [b, 1, 1]);
        k = tf.concat([pk, k], 1); // [B, Lp+L, Hkv*D]
        v = tf.concat([pv, v], 1);
      }
      const nRep = h / hkv;
      if (record) record.sink(tf.keep(headProbabilities(q, k, bias, record.head, hkv)));
      const a = attention(q.reshape([b, l, h * d]), repeatKv(k, hkv, nRep), repeatKv(v, hkv, nRep), h, { mask: bias }); // [B, L, H*D]
      return { out: this.o_proj.forward(a) as tf.Tensor3D, kv: { k, v } };
    });
  }
}

/** LlamaMLP: down(act(gate(x)) * up(x)). */
export class LlamaMlp extends Module {
  gate_proj: Linear;
  up_proj: Linear;
  down_proj: Linear;
  private readonly act: (x: tf.Tensor) => tf.Tensor;
  constructor(c: LlamaConfig) {
    super();
    this.gate_proj = new Linear(c.hiddenSize, c.intermediateSize, c.mlpBias);
    this.up_proj = new Linear(c.hiddenSize, c.intermediateSize, c.mlpBias);
    this.down_proj = new Linear(c.intermediateSize, c.hiddenSize, c.mlpBias);
    this.act = activation(c.hiddenAct);
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.down_proj.forward(tf.mul(this.act(this.gate_proj.forward(x)), this.up_proj.forward(x))));
  }
}

export class LlamaDecoderLayer extends Module {
  self_attn: LlamaAttention;
  mlp: LlamaMlp;
  input_layernorm: LlamaRmsNorm;
  post_attention_layernorm: LlamaRmsNorm;
  constructor(c: LlamaConfig) {
    super();
    this.self_attn = new LlamaAttention(c);
    this.mlp = new LlamaMlp(c);
    this.input_layernorm = new LlamaRmsNorm(c.hiddenSize, c.rmsNormEps);
    this.post_attention_layernorm = new LlamaRmsNorm(c.hiddenSize, c.rmsNormEps);
  }

  forward(
    x: tf.Tensor3D,
    cos: tf.Tensor,
    sin: tf.Tensor,
    bias: tf.Tensor,
    past?: LayerKv,
    record?: AttentionRecord,
  ): { out: tf.Tensor3D; kv: LayerKv } {
    return tf.tidy(() => {
      const a = this.self_attn.forward(this.input_layernorm.forward(x) as tf.Tensor3D, cos, sin, bias, past, record);
      const h = tf.add(x, a.out);
      const out = tf.add(h, this.mlp.forward(this.post_attention_layernorm.forward(h))) as tf.Tensor3D;
      return { out, kv: a.kv };
    });
  }
}

/** Keys/values of every layer for an encoded prefix (a past_key_values cache), plus its key mask and length. */
export class KvCache {
  constructor(
    readonly layers: LayerKv[],
    /** 0/1 key mask of the cached positions, [B][length], on the host. */
    readonly mask: number[][],
  ) {}

  get length(): number {
    return this.layers[0]?.k.shape[1] ?? 0;
  }

  get batch(): number {
    return this.mask.length;
  }

  dispose(): void {
    for (const l of this.layers) tf.dispose([l.k, l.v]);
  }
}

export interface LlamaForwardOptions {
  /** 0/1 mask over this call's positions [B][L] (default all ones). Padding keys are never attended to. */
  mask?: number[][];
  /** A cache of the positions before this call's: positions continue from past.length. */
  past?: KvCache;
  /** Also return a cache of past + this call's positions. */
  returnCache?: boolean;
  /** Hand one layer's attention probabilities to a sink (see AttentionRecord); off by default. */
  recordAttention?: AttentionRecord;
}

/** LlamaModel without the token lookup in forward: embeddings in, final-norm hidden states out. */
export class LlamaModel extends Module {
  embed_tokens: Embedding;
  layers: LlamaDecoderLayer[];
  norm: LlamaRmsNorm;
  constructor(readonly config: LlamaConfig) {
    super();
    const c = config;
    this.embed_tokens = new Embedding(c.vocabSize, c.hiddenSize);
    this.layers = Array.from({ length: c.numLayers }, () => new LlamaDecoderLayer(c));
    this.norm = new LlamaRmsNorm(c.hiddenSize, c.rmsNormEps);
  }

  /** ids [B, L] -> [B, L, hidden] (embed_tokens). */
  embed(ids: tf.Tensor2D): tf.Tensor3D {
    return this.embed_tokens.forward(ids) as tf.Tensor3D;
  }

  /** inputs_embeds [B, L, hidden] -> last_hidden_state [B, L, hidden] (after the final norm), and the cache if asked. */
  forward(embeds: tf.Tensor3D, opts: LlamaForwardOptions = {}): { hidden: tf.Tensor3D; cache?: KvCache } {
    const [b, l] = embeds.shape;
    const c = this.config;
    const past = opts.past;
    const pastLen = past?.length ?? 0;
    if (past && past.batch !== b && past.batch !== 1)
      throw new UsageError(`the cache holds ${past.batch} rows, the input ${b} (a cache must have the same batch or 1)`);
    const mask = opts.mask ?? Array.from({ length: b }, () => new Array<number>(l).fill(1));
    if (mask.length !== b || mask.some((r) => r.length !== l)) throw new UsageError(`attention mask must be [${b}][${l}]`);
    const pastMask = past ? (past.batch === b ? past.mask : Array.from({ length: b }, () => past.mask[0])) : [];
    const keyMask = mask.map((row, i) => [...(pastMask[i] ?? []), ...Array.from(row)]);
    const rec = opts.recordAttention;
    if (rec) {
      if (!(Number.isInteger(rec.layer) && rec.layer >= 0 && rec.layer < c.numLayers))
        throw new UsageError(`recordAttention: layer ${rec.layer} is outside 0..${c.numLayers - 1}`);
      if (rec.head !== 'mean' && !(Number.isInteger(rec.head) && rec.head >= 0 && rec.head < c.numHeads))
        throw new UsageError(`recordAttention: head ${rec.head} is outside 0..${c.numHeads - 1}`);
    }
    const out = tf.tidy(() => {
      const { cos, sin } = rotaryTables(c.headDim, c.ropeTheta, pastLen, l);
      const cosT = tf.tensor4d(cos, [1, l, 1, c.headDim]);
      const sinT = tf.tensor4d(sin, [1, l, 1, c.headDim]);
      const bias = causalBias(keyMask, l, pastLen);
      let h = embeds;
      const kvs: LayerKv[] = [];
      this.layers.forEach((layer, i) => {
        const r = layer.forward(h, cosT, sinT, bias, past?.layers[i], rec?.layer === i ? rec : undefined);
        h = r.out;
        if (opts.returnCache) kvs.push(r.kv);
      });
      return { hidden: this.norm.forward(h) as tf.Tensor3D, kvs };
    });
    return { hidden: out.hidden, cache: opts.returnCache ? new KvCache(out.kvs, keyMask) : undefined };
  }
}
