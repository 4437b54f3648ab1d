// Test-only rewards registered into the reward table: a differentiable "colour target" objective (a real objective
// on the tiny generator's pixels) and one that turns NaN at a chosen step.
import * as tf from '../../src/runtime/tf.js';
import { REWARDS } from '../../rewards/index.js';
import type { RewardSpec } from '../../rewards/types.js';

export function colourTarget(name: string, rgb: [number, number, number]): RewardSpec {
  return {
    name,
    description: `test: mean squared distance to the colour ${rgb}`,
    offset: 0,
    models: [],
    async load() {
      const target = tf.tensor1d(rgb);
      return {
        name,
        prepare: () => ({
          loss: (input) => tf.tidy(() => tf.mean(tf.square(tf.sub(input.image, target))) as tf.Scalar),
          score: (input) => tf.tidy(() => tf.neg(tf.mean(tf.square(tf.sub(input.image, target)))) as tf.Scalar),
          dispose() {},
        }),
        dispose: () => target.dispose(),
      };
    },
  };
}

export function nanAt(name: string, step: number): RewardSpec {
  return {
    name,
    description: `test: NaN from step ${step}`,
    offset: 0,
    models: [],
    async load() {
      let calls = 0;
      return {
        name,
        prepare: () => ({
          loss: (input) => tf.tidy(() => (calls++ >= step ? tf.scalar(NaN) : tf.mean(input.image)) as tf.Scalar),
          score: (input) => tf.tidy(() => tf.mean(input.image) as tf.Scalar),
          dispose() {},
        }),
        dispose() {},
      };
    },
  };
}

export function register(...specs: RewardSpec[]): void {
  for (const s of specs) if (!REWARDS.some((r) => r.name === s.name)) REWARDS.push(s);
}
