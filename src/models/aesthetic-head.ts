// The LAION improved-aesthetic-predictor head (christophschuhmann/improved-aesthetic-predictor simple_inference.py
// MLP; the same class in ReNO rewards/aesthetic.py): nn.Sequential of Linear(768, 1024), Dropout(0.2),
// Linear(1024, 128), Dropout(0.2), Linear(128, 64), Dropout(0.1), Linear(64, 16), Linear(16, 1), with the ReLUs
// commented out upstream: the head is linear. Dropout is the identity in eval(), and holds no weights, so the
// Linears sit at indices 0, 2, 4, 6, 7 (keys layers.N.weight / layers.N.bias). Sizes are read from the checkpoint,
// so a smaller head with the same key names (the tiny preset) loads too.
import * as tf from '@tensorflow/tfjs';
import { WeightsError } from '../errors.js';
import { Linear } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { loadModule } from '../weights/load.js';
import { openWeights } from '../weights/open.js';
import type { TensorSource } from '../weights/source.js';

/** Positions of the Linears in the upstream nn.Sequential (the others are Dropouts). */
export const AESTHETIC_LINEARS = [0, 2, 4, 6, 7] as const;
const SEQUENCE_LENGTH = 8;

export class AestheticHead extends Module {
  layers: (Linear | null)[];

  /** sizes: [in, hidden0, hidden1, hidden2, hidden3, out] (upstream 768, 1024, 128, 64, 16, 1). */
  constructor(readonly sizes: readonly number[]) {
    super();
    if (sizes.length !== AESTHETIC_LINEARS.length + 1) throw new Error(`aesthetic head needs ${AESTHETIC_LINEARS.length + 1} sizes, got ${sizes.length}`);
    this.layers = new Array<Linear | null>(SEQUENCE_LENGTH).fill(null);
    AESTHETIC_LINEARS.forEach((idx, i) => (this.layers[idx] = new Linear(sizes[i], sizes[i + 1])));
  }

  get inFeatures(): number {
    return this.sizes[0];
  }

  /** x [N, in] -> score [N, out]: the Linears in order, nothing between them. */
  forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      let h = x;
      for (const layer of this.layers) if (layer) h = layer.forward(h);
      return h;
    });
  }
}

/** The head's sizes from the shapes of layers.N.weight in the checkpoint; each layer must feed the next. */
export function aestheticHeadSizes(source: TensorSource): number[] {
  const sizes: number[] = [];
  AESTHETIC_LINEARS.forEach((idx, i) => {
    const key = `layers.${idx}.weight`;
    const info = source.info(key);
    if (!info || info.shape.length !== 2)
      throw new WeightsError(`${source.path}: not an improved-aesthetic-predictor head: ${key} is ${info ? `[${info.shape}]` : 'missing'} (expected a [out, in] Linear weight)`);
    const [out, inp] = info.shape;
    if (i === 0) sizes.push(inp);
    else if (inp !== sizes[i]) throw new WeightsError(`${source.path}: ${key} takes ${inp} inputs but the previous layer gives ${sizes[i]}`);
    sizes.push(out);
  });
  return sizes;
}

/** Open the head's .pth (a torch.save zip; the released file records cuda:0 storages, which do not matter here). */
export function loadAestheticHead(weights: string | TensorSource): AestheticHead {
  const source = typeof weights === 'string' ? openWeights(weights) : weights;
  try {
    const head = new AestheticHead(aestheticHeadSizes(source));
    loadModule(head, source);
    return head;
  } finally {
    if (typeof weights === 'string') source.close();
  }
}

/**
 * The whole head as one affine map, in float64 (rewards.md 6.3): w_eff = W7 W6 W4 W2 W0 ([out, in]) and
 * b_eff = W7 (W6 (W4 (W2 b0 + b2) + b4) + b6) + b7. Exact because there is no nonlinearity.
 */
export function collapseAestheticHead(source: TensorSource): { weight: Float64Array; bias: Float64Array; inFeatures: number; outFeatures: number } {
  const sizes = aestheticHeadSizes(source);
  // Running map A [rows, inFeatures] and offset c [rows], starting from the identity.
  let rows = sizes[0];
  let a = new Float64Array(rows * rows);
  for (let i = 0; i < rows; i++) a[i * rows + i] = 1;
  let c = new Float64Array(rows);
  AESTHETIC_LINEARS.forEach((idx, li) => {
    const w = source.read(`layers.${idx}.weight`);
    const b = source.read(`layers.${idx}.bias`);
    const out = sizes[li + 1];
    const inp = sizes[li];
    const na = new Float64Array(out * sizes[0]);
    const nc = new Float64Array(out);
    for (let o = 0; o < out; o++) {
      let s = b[o];
      for (let k = 0; k < inp; k++) {
        const wk = w[o * inp + k];
        if (wk === 0) continue;
        s += wk * c[k];
        for (let j = 0; j < sizes[0]; j++) na[o * sizes[0] + j] += wk * a[k * sizes[0] + j];
      }
      nc[o] = s;
    }
    a = na;
    c = nc;
    rows = out;
  });
  return { weight: a, bias: c, inFeatures: sizes[0], outFeatures: rows };
}
