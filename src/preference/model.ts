// The seed paper's preference model (section 3): a VLM (here Idefics3 / SmolVLM, src/models/idefics3) reads a user's
// reference entries, each an image, its prompt and a "+" / "-" label, then a target entry without a label, and
// predicts the label token. Learnable latent preference prototypes P_v [Lp, D] are put before the user sequence,
// eq. (1) x'_p = [P_v; x_u]; the attention of eqs. (2)-(3) between tokens and prototypes is the language model's
// own self-attention (nothing extra to compute). Q(S, z) = softmax over the "+" and "-" logits, eq. (5).
// LoRA adapters on the language model (./lora.ts) and, optionally, the whole vision tower are trained.
// The token layout is documented in ./layout.ts. A history (the constant prefix) is encoded once into a KvCache and
// reused for every target (training: the liked and the disliked target; the personal reward: every ReNO step).
import * as tf from '../runtime/tf.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readJsonFile } from '../config/json.js';
import { ConfigError } from '../errors.js';
import { KvCache, loadIdefics3, type Idefics3ForConditionalGeneration } from '../models/idefics3/model.js';
import { Idefics3Tokenizer } from '../models/idefics3/tokenizer.js';
import { gaussian } from '../util/random.js';
import { resizeBilinearAA } from '../image/preprocess.js';
import { DEFAULT_TEMPLATE, SequenceLayout, type EntryRef, type PreferenceTemplate, type TokenSequence } from './sequence.js';
import { DEFAULT_LORA, attachLora, setTrainable, textParams, visionParams, type LoraAdapter, type LoraOptions } from './lora.js';

export interface PreferenceConfig {
  /** L_p, the number of prototypes (paper default 10; 0 = none). */
  prototypes: number;
  /** LoRA on the language model (null: no adapters). */
  lora: LoraOptions | null;
  /** Vision tower and connector trained in full (position embeddings excepted). */
  trainVision: boolean;
  /** The language model trained in full (decoder layers, final norm, lm_head; token embeddings excepted). */
  trainText: boolean;
  /** false: entries carry no prompt (ViPer*, "<image>Score for this image?"). */
  usePrompt: boolean;
  /** Reference pairs per history (paper 8). */
  nRef: number;
  template: PreferenceTemplate;
}

/** One reference pair as model inputs: normalised pixels [1, S, S, 3] (see PreferenceModel.pixels). */
export interface RefPixels {
  prompt: string;
  liked: tf.Tensor4D;
  disliked: tf.Tensor4D;
  /** Entry order inside the pair (default true: liked first; training draws it at random). */
  likedFirst?: boolean;
}

export const DEFAULT_PREFERENCE_CONFIG: PreferenceConfig = {
  prototypes: 10,
  lora: DEFAULT_LORA,
  trainVision: false,
  trainText: false,
  usePrompt: true,
  nRef: 8,
  template: DEFAULT_TEMPLATE,
};

/** A reference image pair's entries, liked then disliked (layout.ts), as the layout wants them. */
export function pairEntries(prompt: string, likedFirst = true): EntryRef[] {
  const liked: EntryRef = { prompt, label: 'like' };
  const disliked: EntryRef = { prompt, label: 'dislike' };
  return likedFirst ? [liked, disliked] : [disliked, liked];
}

/** image_mean / image_std of the backbone's preprocessor_config.json (SmolVLM: 0.5 / 0.5). */
export function readImageNormalisation(dir: string): { mean: number[]; std: number[] } {
  const file = path.join(dir, 'preprocessor_config.json');
  if (!fs.existsSync(file)) return { mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5] };
  const j = readJsonFile(file, 'preprocessor config');
  const triple = (k: string): number[] => {
    const v = j[k] ?? [0.5, 0.5, 0.5];
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number')) throw new ConfigError(`${file}: "${k}" must be 3 numbers`);
    return v as number[];
  };
  return { mean: triple('image_mean'), std: triple('image_std') };
}

export class PreferenceModel {
  readonly layout: SequenceLayout;
  readonly imageSize: number;
  readonly hiddenSize: number;
  private readonly mean: tf.Tensor1D;
  private readonly std: tf.Tensor1D;

  constructor(
    readonly backbone: Idefics3ForConditionalGeneration,
    readonly tokenizer: Idefics3Tokenizer,
    readonly config: PreferenceConfig,
    readonly backboneDir: string,
    /** [Lp, D] (a tf.Variable while training), or null when Lp = 0. */
    public prototypes: tf.Tensor2D | null,
    readonly adapters: LoraAdapter[],
    norm: { mean: number[]; std: number[] },
  ) {
    const c = backbone.config;
    this.layout = new SequenceLayout(tokenizer, config.template, c.imageSeqLen, config.usePrompt);
    this.imageSize = c.vision.imageSize;
    this.hiddenSize = c.text.hiddenSize;
    this.mean = tf.tensor1d(norm.mean);
    this.std = tf.tensor1d(norm.std);
  }

  /**
   * The backbone of `backboneDir` with fresh prototypes (N(0, std of embed_tokens), seeded) and LoRA adapters
   * (B = 0). `trainable` makes them tf.Variables (and the vision tower too when config.trainVision).
   */
  static create(backboneDir: string, config: PreferenceConfig, o: { seed?: number | string; trainable?: boolean } = {}): PreferenceModel {
    if (!(Number.isInteger(config.prototypes) && config.prototypes >= 0))
      throw new ConfigError(`prototypes must be an integer >= 0, found ${config.prototypes}`);
    if (!(Number.isInteger(config.nRef) && config.nRef >= 1)) throw new ConfigError(`n_ref must be a positive integer, found ${config.nRef}`);
    const seed = o.seed ?? 0;
    const trainable = o.trainable ?? false;
    const backbone = loadIdefics3(backboneDir);
    try {
      const tokenizer = Idefics3Tokenizer.load(backboneDir);
      const d = backbone.config.text.hiddenSize;
      let prototypes: tf.Tensor2D | null = null;
      if (config.prototypes > 0) {
        // N(0, 1) draws scaled on the device by the token embeddings' standard deviation (no read-back: WebGPU in
        // Node has no synchronous one)
        const g = gaussian(config.prototypes * d, `${seed}:prototypes`);
        const t = tf.tidy(() =>
          tf.mul(tf.tensor2d(g, [config.prototypes, d]), tf.sqrt(tf.moments(backbone.model.text_model.embed_tokens.weight.v).variance)),
        ) as tf.Tensor2D;
        prototypes = trainable ? (tf.variable(t, true) as unknown as tf.Tensor2D) : t;
        if (trainable) t.dispose();
      }
      const adapters = config.lora ? attachLora(backbone, config.lora, seed, trainable) : [];
      // a trained vision tower is part of the checkpoint's tensors (read and replaced as tensors): kept on the backend
      if (config.trainVision) for (const [, p] of visionParams(backbone)) p.pin();
      if (trainable && config.trainVision) setTrainable(visionParams(backbone), true);
      if (config.trainText) for (const [, p] of textParams(backbone)) p.pin();
      if (trainable && config.trainText) setTrainable(textParams(backbone), true);
      return new PreferenceModel(backbone, tokenizer, config, backboneDir, prototypes, adapters, readImageNormalisation(backboneDir));
    } catch (e) {
      backbone.dispose();
      throw e;
    }
  }

  /**
   * Images [B, H, W, 3] in [0, 1] -> the vision tower's input [B, S, S, 3]: antialiased bilinear resize to the tower's
   * image_size (SmolVLM-256M: 512, so a 512 SD-Turbo image is only normalised), then the processor's mean/std.
   * Differentiable. No image splitting (one global image per entry, do_image_splitting=False); a non-square image is
   * stretched to the square.
   */
  pixels(image: tf.Tensor4D): tf.Tensor4D {
    return tf.tidy(() => {
      const [, h, w] = image.shape;
      const s = this.imageSize;
      const resized = h === s && w === s ? image : resizeBilinearAA(image, s, s);
      return tf.div(tf.sub(resized, this.mean), this.std) as tf.Tensor4D;
    });
  }

  /** Normalised images [M, S, S, 3] -> the rows that replace their <image> tokens, [M, imageSeqLen, D]. */
  imageHidden(pixels: tf.Tensor4D): tf.Tensor3D {
    return tf.tidy(() => this.backbone.model.connector.forward(this.backbone.model.vision_model.forward(pixels)));
  }

  /** Embeddings [B, L, D] of B copies of one token sequence, row b taking images rows of imageHidden in order. */
  embed(seq: TokenSequence, imageHidden: tf.Tensor3D | null, rows = 1): tf.Tensor3D {
    return tf.tidy(() => {
      const l = seq.ids.length;
      const ids = new Int32Array(rows * l);
      for (let b = 0; b < rows; b++) ids.set(seq.ids, b * l);
      const need = rows * seq.imageStarts.length;
      const have = imageHidden?.shape[0] ?? 0;
      if (need !== have) throw new ConfigError(`preference model: ${need} images in the token sequence(s), ${have} image feature blocks given`);
      return this.backbone.inputsEmbeds(tf.tensor2d(ids, [rows, l], 'int32'), null, imageHidden ?? undefined);
    });
  }

  /** Encode [prototypes; history] once: the cache every target of this history attends to. imageHidden [2N, S, D]. */
  encodeHistory(history: TokenSequence, imageHidden: tf.Tensor3D | null): KvCache {
    const embeds = this.embed(history, imageHidden);
    const out = this.backbone.forwardEmbeds(embeds, { prefixEmbeds: this.prototypes ?? undefined, returnCache: true });
    tf.dispose([embeds, out.hidden]);
    return out.cache!;
  }

  /** The history token sequence of reference pairs and their pixels [2N, S, S, 3] in entry order. */
  references(refs: RefPixels[]): { seq: TokenSequence; pixels: tf.Tensor4D | null } {
    const entries = refs.flatMap((r) => pairEntries(r.prompt, r.likedFirst ?? true));
    const images = refs.flatMap((r) => ((r.likedFirst ?? true) ? [r.liked, r.disliked] : [r.disliked, r.liked]));
    const pixels = images.length ? (tf.concat(images, 0) as tf.Tensor4D) : null; // [2N, S, S, 3]
    return { seq: this.layout.history(entries), pixels };
  }

  /** encodeHistory of reference pairs (their images go through the vision tower here). */
  encodeReferences(refs: RefPixels[]): KvCache {
    const { seq, pixels } = this.references(refs);
    const feats = pixels ? this.imageHidden(pixels) : null;
    try {
      return this.encodeHistory(seq, feats);
    } finally {
      pixels?.dispose();
      feats?.dispose();
    }
  }

  /**
   * encodeReferences that also reads M+ - M- [2N] at the position before each reference label (the ":" that ends
   * the entry, where the label is predicted from the entries before it): training's history loss. Empty: null.
   */
  encodeReferencesScored(refs: RefPixels[]): { cache: KvCache; labelDiff: tf.Tensor1D | null } {
    const { seq, pixels } = this.references(refs);
    const feats = pixels ? this.imageHidden(pixels) : null;
    try {
      const embeds = this.embed(seq, feats);
      const out = this.backbone.forwardEmbeds(embeds, { prefixEmbeds: this.prototypes ?? undefined, returnCache: true });
      embeds.dispose();
      const pos = seq.labelPositions.map((p) => p - 1);
      const { like, dislike } = this.layout.labelIds;
      const diff = !pos.length
        ? null
        : tf.tidy(() => {
            const d = out.hidden.shape[2];
            const rows = tf.concat(
              pos.map((p) => tf.slice(out.hidden, [0, p, 0], [1, 1, d]).reshape([1, d])),
              0,
            ) as tf.Tensor2D; // [2N, D] (slices: a gradient on every backend)
            const w = this.backbone.lm_head.weight.v; // [D, V]
            const col = tf.sub(tf.slice(w, [0, like], [d, 1]), tf.slice(w, [0, dislike], [d, 1])); // [D, 1]
            return tf.matMul(rows, col as tf.Tensor2D).reshape([pos.length]) as tf.Tensor1D;
          });
      out.hidden.dispose();
      return { cache: out.cache!, labelDiff: diff };
    } finally {
      pixels?.dispose();
      feats?.dispose();
    }
  }

  /** M+ - M- [B] of B candidate images (normalised pixels [B, S, S, 3]) for one prompt, after a history cache. */
  scoreTargets(cache: KvCache, prompt: string, pixels: tf.Tensor4D): tf.Tensor1D {
    return tf.tidy(() => this.targetLogitDiff(cache, this.layout.target(prompt), this.imageHidden(pixels)));
  }

  /** Last-position hidden states [B, D] of B targets (one prompt, B images [B, S, D]) after a history cache. */
  private targetHidden(cache: KvCache, target: TokenSequence, imageHidden: tf.Tensor3D): tf.Tensor2D {
    return tf.tidy(() => {
      const b = imageHidden.shape[0];
      const { hidden } = this.backbone.forwardEmbeds(this.embed(target, imageHidden, b), { past: cache });
      return this.backbone.rowsAt(hidden, new Array<number>(b).fill(target.ids.length - 1));
    });
  }

  /** Next-token logits [B, V] at the targets' last position. */
  targetLogits(cache: KvCache, target: TokenSequence, imageHidden: tf.Tensor3D): tf.Tensor2D {
    return tf.tidy(() => this.backbone.lm_head.forward(this.targetHidden(cache, target, imageHidden)) as tf.Tensor2D);
  }

  /** M+ - M- [B] at the targets' last position (only the two lm_head columns): Q = sigmoid of it, eq. (5). */
  targetLogitDiff(cache: KvCache, target: TokenSequence, imageHidden: tf.Tensor3D): tf.Tensor1D {
    return tf.tidy(() => {
      const h = this.targetHidden(cache, target, imageHidden);
      const { like, dislike } = this.layout.labelIds;
      const w = this.backbone.lm_head.weight.v; // [D, V]
      const d = w.shape[0];
      const col = tf.sub(tf.slice(w, [0, like], [d, 1]), tf.slice(w, [0, dislike], [d, 1])); // [D, 1]
      return tf.matMul(h, col as tf.Tensor2D).reshape([h.shape[0]]) as tf.Tensor1D;
    });
  }

  /**
   * Uncached reference path: [prototypes; history; target] in one forward. refImages [2N, S, D] in entry order,
   * targetImage [1, S, D] -> M+ - M- [1].
   */
  fullLogitDiff(refs: EntryRef[], prompt: string, refHidden: tf.Tensor3D | null, targetHidden: tf.Tensor3D): tf.Tensor1D {
    return tf.tidy(() => {
      const seq = this.layout.full(refs, prompt);
      const feats = refHidden ? tf.concat([refHidden, targetHidden], 0) : targetHidden; // [2N+1, S, D]
      const { hidden } = this.backbone.forwardEmbeds(this.embed(seq, feats as tf.Tensor3D), { prefixEmbeds: this.prototypes ?? undefined });
      return this.backbone.logitDiffAt(hidden, [seq.ids.length - 1], this.layout.labelIds.like, this.layout.labelIds.dislike);
    });
  }

  /** The trained tensors by key (tfjs layout): prototypes, LoRA A/B, and the vision tower when it is trained. */
  trainedTensors(): Map<string, tf.Tensor> {
    const out = new Map<string, tf.Tensor>();
    if (this.prototypes) out.set('prototypes', this.prototypes);
    for (const a of this.adapters) {
      out.set(a.aKey, a.a);
      out.set(a.bKey, a.b);
    }
    if (this.config.trainVision) for (const [k, p] of visionParams(this.backbone)) out.set(k, p.v);
    if (this.config.trainText) for (const [k, p] of textParams(this.backbone)) out.set(k, p.v);
    return out;
  }

  dispose(): void {
    for (const a of this.adapters) a.remove();
    this.prototypes?.dispose();
    this.backbone.dispose();
    tf.dispose([this.mean, this.std]);
  }
}
