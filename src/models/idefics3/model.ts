// Idefics3 / SmolVLM as a whole (transformers models/idefics3/modeling_idefics3.py: Idefics3Model with
// get_image_features and inputs_merger, Idefics3ForConditionalGeneration with lm_head), split into the pieces a
// preference model needs:
//   (a) inputsEmbeds(ids, pixelValues)        merged text + image embeddings (differentiable in the pixels)
//   (b) forwardEmbeds(embeds, {prefixEmbeds})  the language model from embeddings (differentiable in them)
//   (c) logitsAt / logitDiffAt(hidden, pos)    next-token logits at chosen positions only
//   (d) forwardEmbeds(..., {returnCache}) then forwardEmbeds(suffix, {past})  a prefix encoded once, reused
// Images are NHWC: pixelValues [B, N, H, W, C], already normalised; an image whose values are all 0 is padding
// and is dropped, like transformers' real_images_inds.
import * as tf from '../../runtime/tf.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ModelNotFoundError, UsageError } from '../../errors.js';
import { Linear } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';
import { loadModule } from '../../weights/load.js';
import { openWeights } from '../../weights/open.js';
import type { TensorSource } from '../../weights/source.js';
import { readIdefics3Config, type Idefics3Config } from './config.js';
import { Idefics3Connector, mergeImageFeatures } from './connector.js';
import { KvCache, LlamaModel, type AttentionRecord } from './llama.js';
import { Idefics3VisionTransformer } from './vision.js';

export { KvCache };
export type { AttentionRecord };

/** Idefics3Model: vision_model, connector, text_model (the state_dict names under "model."). */
export class Idefics3Model extends Module {
  vision_model: Idefics3VisionTransformer;
  connector: Idefics3Connector;
  text_model: LlamaModel;
  constructor(c: Idefics3Config) {
    super();
    this.vision_model = new Idefics3VisionTransformer(c.vision);
    this.connector = new Idefics3Connector(c.vision.hiddenSize, c.text.hiddenSize, c.scaleFactor);
    this.text_model = new LlamaModel(c.text);
  }
}

export interface ImageFeatures {
  /** Indices (b * N + n) of the real images, in order. */
  real: number[];
  /** Vision tower output of the real images [nReal, patches, Dv]. */
  visionHidden: tf.Tensor3D;
  /** Connector output [nReal, imageSeqLen, Dt]: the rows that replace the image tokens. */
  imageHidden: tf.Tensor3D;
}

export interface ForwardEmbedsOptions {
  /** 0/1 mask over the token positions, [B, L] (default all ones). */
  attentionMask?: tf.Tensor | number[][];
  /**
   * Extra embedding rows put before the tokens ([Lp, D] shared by every row, or [B, Lp, D]), e.g. learnable
   * prototypes. They take positions 0 .. Lp-1 and are always attended to; the returned hidden states cover the
   * tokens only (token position t is row t). Not allowed together with `past` (they start a sequence).
   */
  prefixEmbeds?: tf.Tensor;
  /** A cache of an earlier forward (its positions come first; this call's positions continue after them). */
  past?: KvCache;
  /** Return a cache of everything seen so far (past + prefix + tokens). */
  returnCache?: boolean;
  /**
   * Hand one language-model layer's attention probabilities [B, Lq, Lk] to a sink (llama.ts AttentionRecord): rows
   * are this call's token positions (the prefix rows too, first, when prefixEmbeds are given), columns every key:
   * the cache's positions (for a preference cache: the prototypes, then the history), then this call's. Off by default.
   */
  recordAttention?: AttentionRecord;
}

function realIndices(flags: ArrayLike<number>): number[] {
  const real = Array.from({ length: flags.length }, (_, i) => i).filter((i) => flags[i]);
  return real.length ? real : [0];
}

function hostRows(x: tf.Tensor | number[][]): number[][] {
  if (Array.isArray(x)) return x;
  const [b, l] = x.shape as [number, number];
  const v = x.dataSync();
  return Array.from({ length: b }, (_, i) => Array.from(v.subarray(i * l, (i + 1) * l), Number));
}

/** Idefics3ForConditionalGeneration: Idefics3Model plus lm_head (tied to embed_tokens when the config says so). */
export class Idefics3ForConditionalGeneration extends Module {
  model: Idefics3Model;
  lm_head: Linear;
  constructor(readonly config: Idefics3Config) {
    super();
    this.model = new Idefics3Model(config);
    this.lm_head = new Linear(config.text.hiddenSize, config.text.vocabSize, false);
  }

  /**
   * Which of the B*N images are real (not all zeros); at least the first one, like transformers. Reads the pixels
   * back synchronously: on WebGPU compute it with realImagesAsync (or pass the list to imageFeatures).
   */
  realImages(pixelValues: tf.Tensor5D): number[] {
    const [b, n] = pixelValues.shape;
    const flags = tf.tidy(() => tf.any(tf.notEqual(pixelValues.reshape([b * n, -1]), 0), 1).dataSync()); // [B*N]
    return realIndices(flags);
  }

  async realImagesAsync(pixelValues: tf.Tensor5D): Promise<number[]> {
    const [b, n] = pixelValues.shape;
    const t = tf.tidy(() => tf.any(tf.notEqual(pixelValues.reshape([b * n, -1]), 0), 1)); // [B*N]
    const flags = await t.data();
    t.dispose();
    return realIndices(flags);
  }

  /** get_image_features: drop padding images, vision tower, connector. pixelValues [B, N, H, W, C]. */
  imageFeatures(pixelValues: tf.Tensor5D, realList?: number[]): ImageFeatures {
    const real = realList ?? this.realImages(pixelValues);
    const [b, n, h, w, c] = pixelValues.shape;
    return tf.tidy(() => {
      const flat = pixelValues.reshape([b * n, h, w, c]); // [B, N, H, W, C] -> [B*N, H, W, C]
      const picked = real.map((i) => tf.slice(flat, [i, 0, 0, 0], [1, h, w, c])); // slices: gradient on every backend
      const images = (picked.length === 1 ? picked[0] : tf.concat(picked, 0)) as tf.Tensor4D; // [nReal, H, W, C]
      const visionHidden = this.model.vision_model.forward(images);
      const imageHidden = this.model.connector.forward(visionHidden);
      return { real, visionHidden, imageHidden };
    });
  }

  /** embed_tokens of ids [B, L]. */
  embedTokens(ids: tf.Tensor2D): tf.Tensor3D {
    return this.model.text_model.embed(ids);
  }

  /**
   * inputs_embeds for ids [B, L] (int32): token embeddings with the image tokens replaced by the connector outputs
   * of the real images of pixelValues, in order. Pass `imageHidden` instead of pixelValues to reuse features.
   */
  inputsEmbeds(
    ids: tf.Tensor2D,
    pixelValues?: tf.Tensor5D | null,
    imageHidden?: tf.Tensor3D,
    host: { real?: number[]; ids?: ArrayLike<number> } = {},
  ): tf.Tensor3D {
    // host copies avoid synchronous device read-backs (WebGPU in Node has none)
    const idData = Int32Array.from(host.ids ?? (ids.dataSync() as Int32Array));
    return tf.tidy(() => {
      const tokens = this.embedTokens(ids);
      let feats = imageHidden ?? null;
      if (!feats && pixelValues) {
        const f = this.imageFeatures(pixelValues, host.real);
        f.visionHidden.dispose();
        feats = f.imageHidden;
      }
      return mergeImageFeatures(tokens, idData, feats, this.config.imageTokenId);
    });
  }

  /**
   * The language model from inputs_embeds [B, L, D]: final-norm hidden states of the token positions [B, L, D],
   * and a cache when asked. See ForwardEmbedsOptions for the prefix rows and the cache.
   */
  forwardEmbeds(embeds: tf.Tensor3D, opts: ForwardEmbedsOptions = {}): { hidden: tf.Tensor3D; cache?: KvCache } {
    const [b, l, d] = embeds.shape;
    const mask = opts.attentionMask ? hostRows(opts.attentionMask) : Array.from({ length: b }, () => new Array<number>(l).fill(1));
    const text = this.model.text_model;
    if (!opts.prefixEmbeds)
      return text.forward(embeds, { mask, past: opts.past, returnCache: opts.returnCache, recordAttention: opts.recordAttention });
    if (opts.past) throw new UsageError('prefixEmbeds start a sequence: they cannot follow a cache');
    const pre = opts.prefixEmbeds;
    const lp = pre.shape[pre.rank - 2];
    if (pre.shape[pre.rank - 1] !== d || (pre.rank === 3 && pre.shape[0] !== b) || (pre.rank !== 2 && pre.rank !== 3))
      throw new UsageError(`prefixEmbeds must be [Lp, ${d}] or [${b}, Lp, ${d}], got [${pre.shape}]`);
    const full = tf.tidy(() => {
      const rows = pre.rank === 2 ? tf.tile(pre.reshape([1, lp, d]), [b, 1, 1]) : pre; // [Lp, D] -> [B, Lp, D]
      return tf.concat([rows, embeds], 1) as tf.Tensor3D; // [B, Lp+L, D]
    });
    const fullMask = mask.map((r) => [...new Array<number>(lp).fill(1), ...r]);
    const out = text.forward(full, { mask: fullMask, returnCache: opts.returnCache, recordAttention: opts.recordAttention });
    const hidden = tf.slice(out.hidden, [0, lp, 0], [b, l, d]) as tf.Tensor3D; // token rows only
    tf.dispose([full, out.hidden]);
    return { hidden, cache: out.cache };
  }

  /** lm_head over every position: [B, L, D] -> [B, L, V]. */
  logits(hidden: tf.Tensor3D): tf.Tensor3D {
    return this.lm_head.forward(hidden) as tf.Tensor3D;
  }

  /** The hidden rows hidden[b, positions[b]] -> [B, D] (slices, so the gradient works on every backend). */
  rowsAt(hidden: tf.Tensor3D, positions: number[]): tf.Tensor2D {
    const [b, l, d] = hidden.shape;
    if (positions.length !== b) throw new UsageError(`need one position per row (${b}), got ${positions.length}`);
    return tf.tidy(() => {
      const rows = positions.map((p, i) => {
        if (!(p >= 0 && p < l)) throw new UsageError(`position ${p} is outside 0..${l - 1}`);
        return tf.slice(hidden, [i, p, 0], [1, 1, d]).reshape([1, d]); // [1, 1, D] -> [1, D]
      });
      return (rows.length === 1 ? rows[0] : tf.concat(rows, 0)) as tf.Tensor2D; // [B, D]
    });
  }

  /** Logits at one position per row: [B, V]. */
  logitsAt(hidden: tf.Tensor3D, positions: number[]): tf.Tensor2D {
    return tf.tidy(() => this.lm_head.forward(this.rowsAt(hidden, positions)) as tf.Tensor2D);
  }

  /** logit[yes] - logit[no] at one position per row, [B], computing only those two lm_head columns. */
  logitDiffAt(hidden: tf.Tensor3D, positions: number[], yesId: number, noId: number): tf.Tensor1D {
    return tf.tidy(() => {
      const w = this.lm_head.weight.v; // [D, V]
      const d = w.shape[0];
      const col = tf.sub(tf.slice(w, [0, yesId], [d, 1]), tf.slice(w, [0, noId], [d, 1])); // [D, 1]
      return tf.matMul(this.rowsAt(hidden, positions), col as tf.Tensor2D).reshape([positions.length]) as tf.Tensor1D;
    });
  }
}

/** The state_dict key whose tensor a tied lm_head reads. */
export const EMBED_KEY = 'model.text_model.embed_tokens.weight';

/** Load every weight of `m` from a source in the upstream layout (strict; a tied lm_head reads embed_tokens). */
export function loadIdefics3Weights(m: Idefics3ForConditionalGeneration, source: TensorSource): void {
  loadModule(m, source, m.config.tieWordEmbeddings ? { tied: { 'lm_head.weight': EMBED_KEY } } : {});
}

/** Load an Idefics3 / SmolVLM folder: config.json and model.safetensors (or a sharded index). */
export function loadIdefics3(dir: string): Idefics3ForConditionalGeneration {
  const config = readIdefics3Config(dir);
  const file = ['model.safetensors', 'model.safetensors.index.json'].map((f) => path.join(dir, f)).find((f) => fs.existsSync(f));
  if (!file) throw new ModelNotFoundError(`${dir}: no model.safetensors (or model.safetensors.index.json)`);
  const m = new Idefics3ForConditionalGeneration(config);
  const source = openWeights(file);
  try {
    loadIdefics3Weights(m, source);
  } finally {
    source.close();
  }
  return m;
}
