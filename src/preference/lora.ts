// LoRA adapters on the language model's linear layers (Hu et al. 2021; the PEFT library's LoraLayer / Linear):
// y = x W + (alpha / r) * (x A) B, with A [in, r] initialised like PEFT (kaiming_uniform(a = sqrt 5), i.e.
// U(-1/sqrt(in), 1/sqrt(in))) and B [r, out] zero, so an adapter starts as the identity change. No dropout.
// The base layer is not edited: its `forward` is wrapped on the instance, and `remove()` restores it.
// QLoRA (a 4-bit base, as the paper trains IDEFICS2-8B) is not available in TensorFlow.js: the base stays float32.
// Saved under PEFT's key names without the "base_model.model." prefix, in PyTorch layout:
//   model.text_model.layers.0.self_attn.q_proj.lora_A.weight [r, in], ...lora_B.weight [out, r].
// Also here: making the vision tower (and connector) trainable in full, for --train-vision, and the language model
// (decoder layers, final norm, lm_head), for --train-text.
import * as tf from '../runtime/tf.js';
import seedrandom from 'seedrandom';
import { ConfigError } from '../errors.js';
import type { Idefics3ForConditionalGeneration } from '../models/idefics3/model.js';
import { Linear } from '../nn/layers.js';
import type { Param } from '../nn/module.js';
import { matMulWeight } from '../nn/ops.js';

export const ATTENTION_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj'] as const;
export const MLP_TARGETS = ['gate_proj', 'up_proj', 'down_proj'] as const;
const ALL_TARGETS: readonly string[] = [...ATTENTION_TARGETS, ...MLP_TARGETS];

export interface LoraOptions {
  rank: number;
  alpha: number;
  /** Module names inside each decoder layer: q_proj, k_proj, v_proj, o_proj (+ gate_proj, up_proj, down_proj). */
  targets: string[];
}

export const DEFAULT_LORA: LoraOptions = { rank: 8, alpha: 8, targets: [...ATTENTION_TARGETS] };

export function checkLoraOptions(o: LoraOptions): void {
  if (!(Number.isInteger(o.rank) && o.rank >= 1)) throw new ConfigError(`LoRA rank must be a positive integer, found ${o.rank}`);
  if (!(o.alpha > 0)) throw new ConfigError(`LoRA alpha must be positive, found ${o.alpha}`);
  if (!o.targets.length) throw new ConfigError('LoRA needs at least one target module');
  for (const t of o.targets) if (!ALL_TARGETS.includes(t)) throw new ConfigError(`unknown LoRA target "${t}" (known: ${ALL_TARGETS.join(', ')})`);
}

/** One adapter: A [in, r] and B [r, out] in the tfjs layout (variables while training, plain tensors otherwise). */
export class LoraAdapter {
  private readonly baseForward: (x: tf.Tensor) => tf.Tensor;
  constructor(
    /** State-dict name of the wrapped layer, e.g. model.text_model.layers.0.self_attn.q_proj */
    readonly key: string,
    readonly linear: Linear,
    public a: tf.Tensor2D,
    public b: tf.Tensor2D,
    readonly scale: number,
  ) {
    this.baseForward = linear.forward.bind(linear);
    linear.forward = (x: tf.Tensor) =>
      tf.tidy(() => {
        const shape = x.shape;
        const x2 = x.reshape([-1, linear.inFeatures]) as tf.Tensor2D; // [..., in] -> [N, in]
        const low = matMulWeight(matMulWeight(x2, this.a), this.b); // [N, r] -> [N, out]
        return tf.add(this.baseForward(x), tf.mul(low, this.scale).reshape([...shape.slice(0, -1), linear.outFeatures])); // [N, out] -> [..., out]
      });
  }

  get aKey(): string {
    return `${this.key}.lora_A.weight`;
  }

  get bKey(): string {
    return `${this.key}.lora_B.weight`;
  }

  /** Restore the base layer's forward and free A and B. */
  remove(): void {
    this.linear.forward = this.baseForward;
    tf.dispose([this.a, this.b]);
  }
}

/** Every target Linear of the text model, with its state-dict name. */
export function loraTargets(m: Idefics3ForConditionalGeneration, targets: string[]): [string, Linear][] {
  const out: [string, Linear][] = [];
  m.model.text_model.layers.forEach((layer, i) => {
    const attn = layer.self_attn as unknown as Record<string, Linear>;
    const mlp = layer.mlp as unknown as Record<string, Linear>;
    for (const t of targets) {
      const isAttn = (ATTENTION_TARGETS as readonly string[]).includes(t);
      const lin = isAttn ? attn[t] : mlp[t];
      if (!(lin instanceof Linear)) throw new ConfigError(`LoRA target ${t} is not a linear layer of decoder layer ${i}`);
      out.push([`model.text_model.layers.${i}.${isAttn ? 'self_attn' : 'mlp'}.${t}`, lin]);
    }
  });
  return out;
}

/**
 * Wrap every target layer with a fresh adapter (A seeded, B zero). `trainable` makes A and B tf.Variables.
 * Returns the adapters in a fixed order (layer by layer, targets in the given order).
 */
export function attachLora(m: Idefics3ForConditionalGeneration, o: LoraOptions, seed: number | string, trainable: boolean): LoraAdapter[] {
  checkLoraOptions(o);
  return loraTargets(m, o.targets).map(([key, lin]) => {
    const rng = seedrandom(`${seed}:lora:${key}`);
    const bound = 1 / Math.sqrt(lin.inFeatures);
    const av = Float32Array.from({ length: lin.inFeatures * o.rank }, () => (rng() * 2 - 1) * bound);
    const a = tf.tensor2d(av, [lin.inFeatures, o.rank]);
    const b = tf.zeros([o.rank, lin.outFeatures]) as tf.Tensor2D;
    const wrap = (t: tf.Tensor2D): tf.Tensor2D => {
      if (!trainable) return t;
      const v = tf.variable(t, true) as unknown as tf.Tensor2D; // unnamed: tfjs names must be unique per process
      t.dispose();
      return v;
    };
    return new LoraAdapter(key, lin, wrap(a), wrap(b), o.alpha / o.rank);
  });
}

/** Parameters of the vision tower and connector that --train-vision trains (position embeddings stay frozen: their
 * gather has no gradient on wasm). */
export function visionParams(m: Idefics3ForConditionalGeneration): [string, Param][] {
  const vision = m.model.vision_model.namedParams('model.vision_model.').filter(([k]) => !k.includes('position_embedding'));
  return [...vision, ...m.model.connector.namedParams('model.connector.')];
}

/** Parameters of the language model that --train-text trains in full: every decoder layer, the final norm and
 * lm_head (the token embeddings stay frozen: their gather has no gradient on wasm). */
export function textParams(m: Idefics3ForConditionalGeneration): [string, Param][] {
  const text = m.model.text_model.namedParams('model.text_model.').filter(([k]) => !k.includes('embed_tokens'));
  return [...text, ...m.lm_head.namedParams('lm_head.')];
}

/** Turn the given parameters into trainable tf.Variables (or back into plain tensors) in place. */
export function setTrainable(params: [string, Param][], trainable: boolean): void {
  for (const [, p] of params) {
    const v = p.v;
    const isVar = v instanceof tf.Variable;
    if (trainable && !isVar) {
      p.value = tf.variable(v, true);
      v.dispose();
      p.half?.dispose(); // a float16-stored or host weight trains at float32, on the device
      p.half = null;
      p.host = null;
    } else if (!trainable && isVar) {
      p.value = tf.clone(v);
      v.dispose();
    }
  }
}
