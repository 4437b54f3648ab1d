// The CLIP transformer encoder shared by the text and vision towers
// (transformers models/clip/modeling_clip.py: CLIPAttention, CLIPMLP, CLIPEncoderLayer, CLIPEncoder).
import * as tf from '../../runtime/tf.js';
import { LayerNorm, Linear } from '../../nn/layers.js';
import { Module } from '../../nn/module.js';
import { activation, attention } from '../../nn/ops.js';

export class ClipAttention extends Module {
  q_proj: Linear;
  k_proj: Linear;
  v_proj: Linear;
  out_proj: Linear;
  constructor(
    dim: number,
    readonly heads: number,
  ) {
    super();
    this.q_proj = new Linear(dim, dim);
    this.k_proj = new Linear(dim, dim);
    this.v_proj = new Linear(dim, dim);
    this.out_proj = new Linear(dim, dim);
  }

  /** x [B, L, D]; mask additive, broadcastable to [B, H, L, L]. */
  forward(x: tf.Tensor, mask?: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const a = attention(this.q_proj.forward(x), this.k_proj.forward(x), this.v_proj.forward(x), this.heads, { mask });
      return this.out_proj.forward(a);
    });
  }
}

export class ClipMlp extends Module {
  fc1: Linear;
  fc2: Linear;
  private readonly act: (x: tf.Tensor) => tf.Tensor;
  constructor(dim: number, hidden: number, act: string) {
    super();
    this.fc1 = new Linear(dim, hidden);
    this.fc2 = new Linear(hidden, dim);
    this.act = activation(act);
  }

  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => this.fc2.forward(this.act(this.fc1.forward(x))));
  }
}

export class ClipEncoderLayer extends Module {
  self_attn: ClipAttention;
  layer_norm1: LayerNorm;
  mlp: ClipMlp;
  layer_norm2: LayerNorm;
  constructor(dim: number, heads: number, hidden: number, act: string, eps: number) {
    super();
    this.self_attn = new ClipAttention(dim, heads);
    this.layer_norm1 = new LayerNorm(dim, eps);
    this.mlp = new ClipMlp(dim, hidden, act);
    this.layer_norm2 = new LayerNorm(dim, eps);
  }

  forward(x: tf.Tensor, mask?: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const h = tf.add(x, this.self_attn.forward(this.layer_norm1.forward(x), mask));
      return tf.add(h, this.mlp.forward(this.layer_norm2.forward(h)));
    });
  }
}

export class ClipEncoder extends Module {
  layers: ClipEncoderLayer[];
  constructor(n: number, dim: number, heads: number, hidden: number, act: string, eps: number) {
    super();
    this.layers = Array.from({ length: n }, () => new ClipEncoderLayer(dim, heads, hidden, act, eps));
  }

  /** Returns the output of every layer (the last one is the encoder output). */
  forward(x: tf.Tensor, mask?: tf.Tensor, keepAll = false): tf.Tensor[] {
    const states: tf.Tensor[] = [];
    let h = x;
    for (const layer of this.layers) {
      const next = layer.forward(h, mask);
      if (h !== x && !keepAll) h.dispose();
      h = next;
      if (keepAll) states.push(h);
    }
    return keepAll ? states : [h];
  }
}
