// The LAION improved-aesthetic-predictor head (christophschuhmann/improved-aesthetic-predictor simple_inference.py
// MLP; the same class in ReNO rewards/aesthetic.py): nn.Sequential of Linear(768, 1024), Dropout(0.2),
// Linear(1024, 128), Dropout(0.2), Linear(128, 64), Dropout(0.1), Linear(64, 16), Linear(16, 1), with the ReLUs
// commented out upstream: the head is linear. Dropout is the identity in eval(), and holds no weights, so the
// Linears sit at indices 0, 2, 4, 6, 7 (keys layers.N.weight / layers.N.bias). Sizes are read from the checkpoint,
// so a smaller head with the same key names (the tiny preset) loads too.
import * as tf from '../runtime/tf.js';
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
    if (sizes.length !== AESTHETIC_LINEARS.length + 1)
      throw new Error(`aesthetic head needs ${AESTHETIC_LINEARS.length + 1} sizes, got ${sizes.length}`);
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
      throw new WeightsError(
        `${source.path}: not an improved-aesthetic-predictor head: ${key} is ${info ? `[${info.shape}]` : 'missing'} (expected a [out, in] Linear weight)`,
      );
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
 * The whole head as one affine map, in float64: w_eff = W7 W6 W4 W2 W0 ([out, in]) and
 * b_eff = W7 (W6 (W4 (W2 b0 + b2) + b4) + b6) + b7. Exact because there is no nonlinearity.
 */
export function collapseAestheticHead(source: TensorSource): { weight: Float64Array; bias: Float64Array; inFeatures: number; outFeatures: number } {
  const sizes = aestheticHeadSizes(source);
  const n = AESTHETIC_LINEARS.length;
  const w = AESTHETIC_LINEARS.map((idx) => source.read(`layers.${idx}.weight`)); // layer i: [sizes[i+1], sizes[i]]
  const b = AESTHETIC_LINEARS.map((idx) => source.read(`layers.${idx}.bias`));
  // bias: push b0 through the later layers, c <- W_i c + b_i
  let c = Float64Array.from(b[0]);
  for (let i = 1; i < n; i++) {
    const next = Float64Array.from(b[i]);
    for (let o = 0; o < sizes[i + 1]; o++) for (let k = 0; k < sizes[i]; k++) next[o] += w[i][o * sizes[i] + k] * c[k];
    c = next;
  }
  // weight: multiply from the output side, R [out, sizes[i+1]] <- R W_i, so every product stays small
  const out = sizes[n];
  let r = Float64Array.from(w[n - 1]);
  for (let i = n - 2; i >= 0; i--) {
    const [mid, inp] = [sizes[i + 1], sizes[i]];
    const next = new Float64Array(out * inp);
    for (let o = 0; o < out; o++)
      for (let k = 0; k < mid; k++) {
        const rk = r[o * mid + k];
        for (let j = 0; j < inp; j++) next[o * inp + j] += rk * w[i][k * inp + j];
      }
    r = next;
  }
  return { weight: r, bias: c, inFeatures: sizes[0], outFeatures: out };
}
