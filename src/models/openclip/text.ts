// open_clip's text tower (open_clip/transformer.py TextTransformer; open_clip/model.py CLIP.encode_text). open_clip's
// CLIP copies the tower's modules onto itself (CLIP.__init__: self.transformer = text.transformer, ...), so these keys
// carry no prefix: token_embedding, positional_embedding, transformer.resblocks.N, ln_final, text_projection. The
// model class (./model.ts) extends this one to keep exactly those names.
// Causal mask (-inf above the diagonal; a non-persistent buffer, never in checkpoints), ln_final on every position,
// pooling at text.argmax(-1) (the EOT token has the highest id), then `pooled @ text_projection` [width, embed_dim].
import * as tf from '../../runtime/tf.js';
import { Embedding, LayerNorm } from '../../nn/layers.js';
import { Module, Param } from '../../nn/module.js';
import { causalMask } from '../../nn/ops.js';
import type { OpenClipTextConfig } from './config.js';
import { Transformer, type Act } from './transformer.js';

export interface TextOutput {
  /** ln_final over every position: [N, L, width]. */
  tokens: tf.Tensor3D;
  /** encode_text (not normalised): [N, embed_dim]. */
  features: tf.Tensor2D;
}

/** Per row, the position of the first largest id (torch.argmax on CPU returns the first maximal index). */
export function argmaxPositions(ids: Int32Array | number[], n: number, l: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let j = 1; j < l; j++) if (ids[i * l + j] > ids[i * l + best]) best = j;
    out.push(best);
  }
  return out;
}

export class OpenClipTextTower extends Module {
  token_embedding: Embedding;
  positional_embedding: Param;
  transformer: Transformer;
  ln_final: LayerNorm;
  text_projection: Param;

  constructor(
    readonly textConfig: OpenClipTextConfig,
    embedDim: number,
    act: Act,
  ) {
    super();
    const c = textConfig;
    this.token_embedding = new Embedding(c.vocabSize, c.width);
    this.positional_embedding = new Param([c.contextLength, c.width]);
    this.transformer = new Transformer(c.width, c.layers, c.heads, c.mlpWidth, act);
    this.ln_final = new LayerNorm(c.width, 1e-5);
    this.text_projection = new Param([c.width, embedDim]);
  }

  /** ids [N, L] int32 token ids (L <= context_length; open_clip's tokenizer pads with 0 to 77). */
  encodeText(ids: tf.Tensor2D): TextOutput {
    const [n, l] = ids.shape;
    const c = this.textConfig;
    if (l > c.contextLength) throw new Error(`open_clip text tower: ${l} tokens exceed context_length ${c.contextLength}`);
    const values = ids.dataSync();
    for (const v of values)
      if (v < 0 || v >= c.vocabSize) throw new Error(`open_clip text tower: token id ${v} outside the vocabulary [0, ${c.vocabSize})`);
    const pool = argmaxPositions(values as Int32Array, n, l);
    return tf.tidy(() => {
      const pos = tf.slice(this.positional_embedding.v, [0, 0], [l, c.width]); // [L, W]
      const x = tf.add(this.token_embedding.forward(ids), pos); // [N, L, W]
      const mask = causalMask(l); // [1, 1, L, L]
      const tokens = this.ln_final.forward(this.transformer.forward(x, mask)) as tf.Tensor3D;
      const flat = tokens.reshape([n * l, c.width]); // [N, L, W] -> [N*L, W]
      const pooled = tf.gather(
        flat,
        tf.tensor1d(
          pool.map((p, i) => i * l + p),
          'int32',
        ),
      ); // [N, W]
      const features = tf.matMul(pooled as tf.Tensor2D, this.text_projection.v as tf.Tensor2D) as tf.Tensor2D; // [N, W] @ [W, E] -> [N, E]
      return { tokens, features };
    });
  }
}
