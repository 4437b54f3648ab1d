// The image every reward sees in one step, with the shared preprocessing computed once: ReNO feeds one 224x224
// CLIP-normalised tensor to all CLIP-family rewards (ReNO rewards/utils.py clip_img_transform).
import type * as tf from '../src/runtime/tf.js';

export type Preprocess = (image: tf.Tensor4D) => tf.Tensor4D;

export class RewardInput {
  private readonly cache = new Map<string, tf.Tensor4D>();
  /** image [1, H, W, 3] in [0, 1] */
  constructor(readonly image: tf.Tensor4D) {}

  /** A preprocessed view, computed on first use and shared by every reward that asks with the same key. */
  view(key: string, fn: Preprocess): tf.Tensor4D {
    let t = this.cache.get(key);
    if (!t) {
      t = fn(this.image);
      this.cache.set(key, t);
    }
    return t;
  }

  /** Free the cached views (for callers outside a tf.tidy / tf.grad scope, such as `reno score`). */
  dispose(): void {
    for (const t of this.cache.values()) t.dispose();
    this.cache.clear();
  }
}
