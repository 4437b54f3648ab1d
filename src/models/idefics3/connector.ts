// The Idefics3 connector and the image-token merge (transformers models/idefics3/modeling_idefics3.py:
// Idefics3SimpleMLP, Idefics3Connector.pixel_shuffle / forward, Idefics3Model.inputs_merger).
// The merge is written with slices and concats only (no scatter / gather), so gradients reach both the image
// features and the token embeddings on every backend (wasm lacks gather's gradient).
import * as tf from '../../runtime/tf.js';
import { DataError, UsageError } from '../../errors.js';
import { Linear } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';

/**
 * Idefics3Connector.pixel_shuffle: [M, seq, D] -> [M, seq / s^2, D * s^2] on a square sqrt(seq) grid, in exactly
 * transformers' order (two reshape/permute rounds; the channel blocks of one output token are read from s
 * consecutive columns of s consecutive rows).
 */
export function pixelShuffle(x: tf.Tensor3D, s: number): tf.Tensor3D {
  return tf.tidy(() => {
    const [m, seq, d] = x.shape;
    const side = Math.round(Math.sqrt(seq));
    if (side * side !== seq) throw new UsageError(`pixel shuffle needs a square patch grid, got ${seq} patches`);
    if (side % s !== 0) throw new UsageError(`pixel shuffle: ${side} patches per side are not a multiple of ${s}`);
    const h = side;
    const w = side;
    const a = x.reshape([m, h, w / s, d * s]); // view(M, h, w, D) -> view(M, h, w/s, D*s)
    const b = a.transpose([0, 2, 1, 3]); // permute(0, 2, 1, 3): [M, w/s, h, D*s]
    const c = b.reshape([m, w / s, h / s, d * s * s]); // [M, w/s, h/s, D*s^2]
    const e = c.transpose([0, 2, 1, 3]); // permute(0, 2, 1, 3): [M, h/s, w/s, D*s^2]
    return e.reshape([m, seq / (s * s), d * s * s]) as tf.Tensor3D; // [M, seq/s^2, D*s^2]
  });
}

/** Idefics3SimpleMLP: one Linear without bias (state_dict name proj.weight). */
export class Idefics3SimpleMlp extends Module {
  proj: Linear;
  constructor(inFeatures: number, outFeatures: number) {
    super();
    this.proj = new Linear(inFeatures, outFeatures, false);
  }

  forward(x: tf.Tensor): tf.Tensor {
    return this.proj.forward(x);
  }
}

/** Idefics3Connector: pixel shuffle by scale_factor, then modality_projection. */
export class Idefics3Connector extends Module {
  modality_projection: Idefics3SimpleMlp;
  constructor(
    visionHidden: number,
    textHidden: number,
    readonly scaleFactor: number,
  ) {
    super();
    this.modality_projection = new Idefics3SimpleMlp(visionHidden * scaleFactor * scaleFactor, textHidden);
  }

  /** Vision last_hidden_state [M, patches, Dv] -> image_hidden_states [M, patches / s^2, Dt]. */
  forward(visionHidden: tf.Tensor3D): tf.Tensor3D {
    return tf.tidy(() => this.modality_projection.forward(pixelShuffle(visionHidden, this.scaleFactor)) as tf.Tensor3D);
  }
}

/** A maximal run of positions in one row: text tokens [start, start+len) or image tokens fed from feature rows. */
interface Run {
  image: boolean;
  start: number;
  len: number;
  /** First row of the flattened image features this run takes (image runs only). */
  feature: number;
}

/** Where the image tokens are, per row, and which feature rows fill them (row-major order, like masked_scatter). */
export function imageRuns(ids: Int32Array | number[], b: number, l: number, imageTokenId: number): Run[][] {
  const rows: Run[][] = [];
  let feature = 0;
  for (let i = 0; i < b; i++) {
    const runs: Run[] = [];
    for (let j = 0; j < l; j++) {
      const image = ids[i * l + j] === imageTokenId;
      const last = runs[runs.length - 1];
      if (last && last.image === image) last.len++;
      else runs.push({ image, start: j, len: 1, feature });
      if (image) feature++;
    }
    rows.push(runs);
  }
  return rows;
}

/**
 * Idefics3Model.inputs_merger: the embeddings of the image tokens (id imageTokenId) are replaced, in row-major order,
 * by the rows of imageFeatures [nImages, imageSeqLen, D] flattened (masked_scatter).
 * tokenEmbeds [B, L, D]; ids are the same [B, L] ids, read on the host.
 */
export function mergeImageFeatures(
  tokenEmbeds: tf.Tensor3D,
  ids: Int32Array | number[],
  imageFeatures: tf.Tensor3D | null,
  imageTokenId: number,
): tf.Tensor3D {
  return tf.tidy(() => {
    const [b, l, d] = tokenEmbeds.shape;
    const rows = imageRuns(ids, b, l, imageTokenId);
    const nTokens = rows
      .flat()
      .filter((r) => r.image)
      .reduce((n, r) => n + r.len, 0);
    const nFeatures = imageFeatures ? imageFeatures.shape[0] * imageFeatures.shape[1] : 0;
    if (nTokens !== nFeatures)
      throw new DataError(
        `image features and image tokens do not match: ${nTokens} image tokens (id ${imageTokenId}) in the text, ${nFeatures} image feature rows`,
      );
    if (nTokens === 0) return tokenEmbeds.clone();
    const flat = imageFeatures!.reshape([nFeatures, d]); // [nImages, S, D] -> [nImages*S, D]
    const merged = rows.map((runs, i) => {
      const parts = runs.map((r) =>
        r.image
          ? tf.slice(flat, [r.feature, 0], [r.len, d]).reshape([1, r.len, d]) // [len, D] -> [1, len, D]
          : tf.slice(tokenEmbeds, [i, r.start, 0], [1, r.len, d]),
      );
      return parts.length === 1 ? parts[0] : tf.concat(parts, 1); // [1, L, D]
    });
    return (merged.length === 1 ? merged[0] : tf.concat(merged, 0)) as tf.Tensor3D; // [B, L, D]
  });
}
