// The Idefics3 vision tower, a SigLIP ViT with NaViT-style position buckets (transformers
// models/idefics3/modeling_idefics3.py: Idefics3VisionEmbeddings, Idefics3VisionTransformer; its encoder layers are
// SiglipEncoderLayer = CLIPEncoderLayer with the same state_dict names, so the shared ClipEncoder is reused).
// Images are NHWC here. The stride-p patch convolution is computed as patchify (reshape/transpose) + one 2-D
// matMul, which has a gradient with respect to both the image and the weight on every backend (wasm has no
// Conv2DBackpropFilter).
import * as tf from '../../runtime/tf.js';
import { UsageError } from '../../errors.js';
import { Embedding, LayerNorm } from '../../nn/layers.js';
import { Module, Param } from '../../nn/module.js';
import { ClipEncoder } from '../clip/encoder.js';
import type { Idefics3VisionConfig } from './config.js';

/**
 * Position ids of an nbH x nbW patch grid (all patches real) in a table of perSide^2 positions, as transformers 5.x
 * computes them (Idefics3VisionEmbeddings.forward): fractional coordinates i * (1/nb) in float32, clamped to 1 - 1e-6,
 * bucketised with right=True against boundaries arange(1/perSide, 1, 1/perSide). Row-major; for a full grid
 * (nb == perSide) this is 0 .. perSide^2 - 1. (transformers 4.55-4.57 multiplied by (1 - 1e-6) instead, which
 * shifts the buckets: upstream issue #41190; 5.x restored the 4.54 ids.)
 */
export function visionPositionIds(nbH: number, nbW: number, perSide: number): Int32Array {
  const f = Math.fround;
  // torch.arange(start, end, step) in float32: length ceil((end - start) / step) and values start + i * step, both
  // computed in double, then rounded to float32.
  const step = 1 / perSide;
  const nBounds = Math.ceil((1 - step) / step);
  const boundaries = Array.from({ length: nBounds }, (_, i) => f(step + i * step));
  const buckets = (nb: number): number[] => {
    const inv = f(1 / nb);
    const cap = f(1 - 1e-6);
    return Array.from({ length: nb }, (_, i) => {
      const x = Math.min(f(i * inv), cap);
      let k = 0; // torch.bucketize(right=True): the number of boundaries <= x
      while (k < boundaries.length && boundaries[k] <= x) k++;
      return k;
    });
  };
  const bh = buckets(nbH);
  const bw = buckets(nbW);
  const out = new Int32Array(nbH * nbW);
  for (let i = 0; i < nbH; i++) for (let j = 0; j < nbW; j++) out[i * nbW + j] = bh[i] * perSide + bw[j];
  return out;
}

/** nn.Conv2d(C, D, kernel=p, stride=p, padding="valid") with the state_dict names weight [D, C, p, p] and bias [D]. */
export class PatchEmbedding extends Module {
  weight: Param;
  bias: Param;
  constructor(
    readonly inChannels: number,
    readonly dim: number,
    readonly patch: number,
  ) {
    super();
    this.weight = new Param([dim, inChannels, patch, patch], 'conv2d'); // tfjs layout [p, p, C, D]
    this.bias = new Param([dim]);
  }

  /** x [M, H, W, C] -> [M, (H/p)*(W/p), D], patches row-major. */
  forward(x: tf.Tensor4D): tf.Tensor3D {
    return tf.tidy(() => {
      const [m, h, w, c] = x.shape;
      const p = this.patch;
      if (h % p !== 0 || w % p !== 0) throw new UsageError(`image ${h}x${w} is not a multiple of the patch size ${p}`);
      const gh = h / p;
      const gw = w / p;
      const rows = x.reshape([m * gh, p, gw, p * c]); // [M, gh, p, gw, p, C] -> [M*gh, p(kh), gw, p*C (kw, c)]
      const patches = rows.transpose([0, 2, 1, 3]).reshape([m * gh * gw, p * p * c]); // [M*gh, gw, kh, (kw, c)] -> [N, (kh, kw, c)]
      const wMat = this.weight.v.reshape([p * p * c, this.dim]); // [kh, kw, C, D] -> [(kh, kw, c), D]
      const y = tf.add(tf.matMul(patches as tf.Tensor2D, wMat as tf.Tensor2D), this.bias.v); // [N, D]
      return y.reshape([m, gh * gw, this.dim]) as tf.Tensor3D; // [M, patches, D]
    });
  }
}

/** Idefics3VisionEmbeddings: patch embedding plus the bucketed learned position embedding. */
export class Idefics3VisionEmbeddings extends Module {
  patch_embedding: PatchEmbedding;
  position_embedding: Embedding;
  readonly perSide: number;
  constructor(c: Idefics3VisionConfig) {
    super();
    this.patch_embedding = new PatchEmbedding(c.numChannels, c.hiddenSize, c.patchSize);
    this.perSide = c.imageSize / c.patchSize;
    this.position_embedding = new Embedding(this.perSide * this.perSide, c.hiddenSize);
  }

  /** Images [M, H, W, C] (every patch real: no pixel_attention_mask) -> [M, patches, D]. */
  forward(x: tf.Tensor4D): tf.Tensor3D {
    return tf.tidy(() => {
      const [, h, w] = x.shape;
      const p = this.patch_embedding.patch;
      const nbH = h / p;
      const nbW = w / p;
      if (nbH > this.perSide || nbW > this.perSide)
        throw new UsageError(`image ${h}x${w} is larger than the vision tower's ${this.perSide * p}x${this.perSide * p}`);
      const ids = tf.tensor1d(visionPositionIds(nbH, nbW, this.perSide), 'int32');
      const pos = this.position_embedding.forward(ids); // [patches, D] (constant: no gradient needed)
      return tf.add(this.patch_embedding.forward(x), pos) as tf.Tensor3D; // [M, patches, D]
    });
  }
}

/** Idefics3VisionTransformer: embeddings, SigLIP encoder, post_layernorm. Returns last_hidden_state. */
export class Idefics3VisionTransformer extends Module {
  embeddings: Idefics3VisionEmbeddings;
  encoder: ClipEncoder;
  post_layernorm: LayerNorm;
  constructor(readonly config: Idefics3VisionConfig) {
    super();
    const c = config;
    this.embeddings = new Idefics3VisionEmbeddings(c);
    this.encoder = new ClipEncoder(c.numLayers, c.hiddenSize, c.numHeads, c.intermediateSize, c.hiddenAct, c.layerNormEps);
    this.post_layernorm = new LayerNorm(c.hiddenSize, c.layerNormEps);
  }

  /** Real images [M, H, W, C] (already normalised) -> [M, patches, D]. */
  forward(images: tf.Tensor4D): tf.Tensor3D {
    return tf.tidy(() => {
      const h = this.embeddings.forward(images);
      // all patches are real, so transformers passes no attention mask to the encoder
      const [last] = this.encoder.forward(h);
      return this.post_layernorm.forward(last) as tf.Tensor3D;
    });
  }
}
