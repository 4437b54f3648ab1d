// A minimal module tree in the PyTorch style: a Module's own fields that are Params, Modules or arrays of Modules
// name its parameters exactly as the checkpoint's state_dict does ("down_blocks.0.resnets.1.conv1.weight").
// Loading (./load.ts in src/weights) walks this tree, so key names are never spelled twice.
import * as tf from '../runtime/tf.js';
import { halfWeightsOn, hostWeightsOn } from '../runtime/weight-storage.js';
import { packHalf, packHalfValues, unpackHalf, unpackHalfValues } from '../runtime/half.js';

/** How a PyTorch tensor maps onto the tfjs layout the module computes with. */
export type Layout =
  | 'none' // same shape, same order (norms, biases, embeddings)
  | 'linear' // [out, in] -> [in, out]
  | 'conv2d'; // [out, in, kh, kw] -> [kh, kw, in, out]

export { halfWeightsOn, hostWeightsOn, setHalfWeights, setHostWeights } from '../runtime/weight-storage.js';

export class Param {
  /** The float32 value (a tf.Variable for a trainable parameter). */
  value: tf.Tensor | null = null;
  /** A frozen conv / Linear weight stored as packed float16 pairs (./half.ts), when half weights are on. */
  half: tf.Tensor | null = null;
  /** A frozen conv / Linear weight kept in host memory (setHostWeights): float32 values or packed float16 pairs. */
  host: { values: Float32Array | Int32Array; half: boolean } | null = null;
  /** The value while parked in host memory (Module.park), off the device. */
  parked: { values: tf.TypedArray; shape: number[]; dtype: tf.DataType; variable: boolean; half: boolean } | null = null;
  constructor(
    /** Shape in the checkpoint (PyTorch layout). */
    readonly torchShape: readonly number[],
    readonly layout: Layout = 'none',
    readonly opts: { optional?: boolean; trainable?: boolean } = {},
  ) {}

  get tfShape(): number[] {
    return tfShapeOf(this.layout, this.torchShape);
  }

  get loaded(): boolean {
    return this.value !== null || this.half !== null || this.host !== null;
  }

  /**
   * Take t (tfjs layout, float32; owned from now on) as the value: a trainable parameter becomes a variable, a frozen
   * conv or Linear weight is packed to float16 when half weights are on, and kept in host memory when host weights
   * are on.
   */
  store(t: tf.Tensor): void {
    this.clear();
    if (this.opts.trainable) {
      this.value = tf.variable(t, true);
      t.dispose();
    } else if (hostWeightsOn() && this.layout !== 'none') {
      const values = t.dataSync() as Float32Array;
      this.host = halfWeightsOn() ? { values: packHalfValues(values), half: true } : { values: values.slice(), half: false };
      t.dispose();
    } else if (halfWeightsOn() && this.layout !== 'none') {
      this.half = packHalf(t);
      t.dispose();
    } else this.value = t;
  }

  /**
   * Keep the value as one float32 tensor on the backend (a float16 or host weight is made into it once): for
   * weights that are read and replaced as tensors, like a preference model's trained vision tower.
   */
  pin(): void {
    if (this.value || !(this.half || this.host)) return;
    const t = this.v;
    this.half?.dispose();
    this.half = null;
    this.host = null;
    this.value = t;
  }

  /** Free the value (and any parked copy). */
  clear(): void {
    this.value?.dispose();
    this.half?.dispose();
    this.value = null;
    this.half = null;
    this.host = null;
    this.parked = null;
  }

  /**
   * The loaded value; throws a clear error if the module was used before loading. A float16-stored or host weight
   * is made into a new tensor on every call: call it inside a tf.tidy (or dispose the result), and never keep it in
   * a gradient's closure (src/nn/ops.ts conv2d and matMulWeight take the Param itself for that).
   */
  get v(): tf.Tensor {
    if (this.value) return this.value;
    if (this.half) return unpackHalf(this.half, this.tfShape);
    if (this.host) {
      const shape = this.tfShape;
      const n = shape.reduce((a, b) => a * b, 1);
      return tf.tensor(this.host.half ? unpackHalfValues(this.host.values as Int32Array, n) : this.host.values, shape, 'float32');
    }
    throw new Error(
      `parameter of shape [${this.torchShape}] used ${this.parked ? 'while parked in host memory (Module.unpark first)' : 'before it was loaded'}`,
    );
  }

  /**
   * A conv weight in host memory as the input gradient uses it, spatially flipped with its channels swapped
   * ([kh, kw, in, out] -> [kh, kw, out, in]), made in JS from the host values: on wasm, tfjs' Reverse and Transpose
   * of a 3x3 1280-channel filter took 0.7-0.9 s per use (a host copy takes 0.1 s). null when the weight is not a
   * conv weight in host memory. A new tensor on every call, like `v`.
   */
  flippedHost(): tf.Tensor4D | null {
    if (!this.host || this.layout !== 'conv2d') return null;
    const [kh, kw, ci, co] = this.tfShape;
    const n = kh * kw * ci * co;
    const src = this.host.half ? unpackHalfValues(this.host.values as Int32Array, n) : (this.host.values as Float32Array);
    const out = new Float32Array(n);
    for (let a = 0; a < kh; a++)
      for (let b = 0; b < kw; b++) {
        const from = ((kh - 1 - a) * kw + (kw - 1 - b)) * ci * co;
        const to = (a * kw + b) * co * ci;
        for (let i = 0; i < ci; i++) {
          const row = from + i * co;
          for (let o = 0; o < co; o++) out[to + o * ci + i] = src[row + o];
        }
      }
    return tf.tensor4d(out, [kh, kw, co, ci]);
  }
}

export function tfShapeOf(layout: Layout, s: readonly number[]): number[] {
  switch (layout) {
    case 'none':
      return [...s];
    case 'linear':
      return [s[1], s[0]];
    case 'conv2d':
      return [s[2], s[3], s[1], s[0]];
  }
}

export abstract class Module {
  /** Every parameter under this module with its dotted state_dict name. */
  namedParams(prefix = ''): [string, Param][] {
    const out: [string, Param][] = [];
    const visit = (name: string, v: unknown) => {
      if (v instanceof Param) out.push([name, v]);
      else if (v instanceof Module) out.push(...v.namedParams(name + '.'));
      else if (Array.isArray(v)) v.forEach((item, i) => visit(`${name}.${i}`, item));
    };
    for (const [k, v] of Object.entries(this)) visit(prefix + k, v);
    return out;
  }

  /** Free every loaded parameter tensor (and parked values). */
  dispose(): void {
    for (const [, p] of this.namedParams()) p.clear();
  }

  /**
   * Move every loaded parameter to host memory and free its tensor: for a part used once per prompt (a text encoder),
   * whose device memory the optimisation loop can use meanwhile. Read back asynchronously (WebGPU in Node has no
   * synchronous read-back); unpark() makes the tensors again. A parameter shared by two modules is moved once.
   * `only` picks parameters by their dotted name (a text tower at a model's top level).
   */
  async park(only: (name: string) => boolean = () => true): Promise<void> {
    for (const [name, p] of this.namedParams()) {
      const t = p.value ?? p.half;
      if (!t || !only(name)) continue;
      const parked = {
        values: (await t.data()) as tf.TypedArray,
        shape: t.shape,
        dtype: t.dtype,
        variable: t instanceof tf.Variable,
        half: t === p.half,
      };
      p.clear();
      p.parked = parked;
    }
  }

  /** Bring parked parameters back (a no-op for parameters that are not parked). */
  unpark(): void {
    for (const [, p] of this.namedParams()) {
      if (!p.parked) continue;
      const { values, shape, dtype, variable, half } = p.parked;
      const t = tf.tensor(values, shape, dtype);
      p.parked = null;
      if (half) p.half = t;
      else if (variable) {
        p.value = tf.variable(t, true);
        t.dispose();
      } else p.value = t;
    }
  }

  paramCount(): number {
    let n = 0;
    for (const [, p] of this.namedParams()) n += p.torchShape.reduce((a, b) => a * b, 1);
    return n;
  }
}

/** A Python-style sequence of modules (its items are named 0, 1, ...); use a plain array field where possible. */
export type ModuleArray<T> = (T | null)[];
