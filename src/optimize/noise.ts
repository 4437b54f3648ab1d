// Seeded Gaussian noise: seedrandom's ARC4 stream + Box-Muller. Values are drawn in PyTorch's NCHW order (so a saved
// noise can be fed to diffusers as-is) and returned as an NHWC tensor. Deterministic for a seed on every backend;
// bit-equality with torch.randn is impossible (different generator).
import * as tf from '../runtime/tf.js';
import { gaussian } from '../util/random.js';
import { nchwToNhwc } from '../weights/layout.js';

export { gaussian };

/** Unit noise for an NHWC latent shape [B, H, W, C]. */
export function seededNoise(shape: [number, number, number, number], seed: number): tf.Tensor4D {
  const [b, h, w, c] = shape;
  const nchw = gaussian(b * c * h * w, seed);
  return tf.tensor4d(nchwToNhwc(nchw, b, c, h, w), shape);
}
