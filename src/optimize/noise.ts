// Seeded Gaussian noise: seedrandom's ARC4 stream + Box-Muller. Values are drawn in PyTorch's NCHW order (so a saved
// noise can be fed to diffusers as-is) and returned as an NHWC tensor. Deterministic for a seed on every backend;
// bit-equality with torch.randn is impossible (different generator).
import * as tf from '../runtime/tf.js';
import seedrandom from 'seedrandom';
import { nchwToNhwc } from '../weights/layout.js';

export function gaussian(n: number, seed: number | string): Float32Array {
  const rng = seedrandom(String(seed));
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    let u1 = rng();
    while (u1 <= Number.EPSILON) u1 = rng();
    const u2 = rng();
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}

/** Unit noise for an NHWC latent shape [B, H, W, C]. */
export function seededNoise(shape: [number, number, number, number], seed: number): tf.Tensor4D {
  const [b, h, w, c] = shape;
  const nchw = gaussian(b * c * h * w, seed);
  return tf.tensor4d(nchwToNhwc(nchw, b, c, h, w), shape);
}
