// A minimal module tree in the PyTorch style: a Module's own fields that are Params, Modules or arrays of Modules
// name its parameters exactly as the checkpoint's state_dict does ("down_blocks.0.resnets.1.conv1.weight").
// Loading (./load.ts in src/weights) walks this tree, so key names are never spelled twice.
import * as tf from '@tensorflow/tfjs';

/** How a PyTorch tensor maps onto the tfjs layout the module computes with. */
export type Layout =
  | 'none' // same shape, same order (norms, biases, embeddings)
  | 'linear' // [out, in] -> [in, out]
  | 'conv2d'; // [out, in, kh, kw] -> [kh, kw, in, out]

export class Param {
  value: tf.Tensor | null = null;
  /** The value while parked in host memory (Module.park), off the device. */
  parked: { values: tf.TypedArray; shape: number[]; dtype: tf.DataType; variable: boolean } | null = null;
  constructor(
    /** Shape in the checkpoint (PyTorch layout). */
    readonly torchShape: readonly number[],
    readonly layout: Layout = 'none',
    readonly opts: { optional?: boolean; trainable?: boolean } = {},
  ) {}

  get tfShape(): number[] {
    return tfShapeOf(this.layout, this.torchShape);
  }

  /** The loaded value; throws a clear error if the module was used before loading. */
  get v(): tf.Tensor {
    if (!this.value) throw new Error(`parameter of shape [${this.torchShape}] used ${this.parked ? 'while parked in host memory (Module.unpark first)' : 'before it was loaded'}`);
    return this.value;
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
    for (const [, p] of this.namedParams()) {
      p.value?.dispose();
      p.value = null;
      p.parked = null;
    }
  }

  /**
   * Move every loaded parameter to host memory and free its tensor: for a part used once per prompt (a text encoder),
   * whose device memory the optimisation loop can use meanwhile. Read back asynchronously (WebGPU in Node has no
   * synchronous read-back); unpark() makes the tensors again. A parameter shared by two modules is moved once.
   * `only` picks parameters by their dotted name (a text tower at a model's top level).
   */
  async park(only: (name: string) => boolean = () => true): Promise<void> {
    for (const [name, p] of this.namedParams()) {
      if (!p.value || !only(name)) continue;
      const t = p.value;
      p.parked = { values: (await t.data()) as tf.TypedArray, shape: t.shape, dtype: t.dtype, variable: t instanceof tf.Variable };
      t.dispose();
      p.value = null;
    }
  }

  /** Bring parked parameters back (a no-op for parameters that are not parked). */
  unpark(): void {
    for (const [, p] of this.namedParams()) {
      if (!p.parked) continue;
      const t = tf.tensor(p.parked.values, p.parked.shape, p.parked.dtype);
      p.value = p.parked.variable ? tf.variable(t, true) : t;
      p.parked = null;
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
