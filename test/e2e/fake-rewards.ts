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

/** A finite loss (mean distance to grey) whose gradient turns NaN from the chosen step on. */
export function nanGradAt(name: string, step: number): RewardSpec {
  return {
    name,
    description: `test: NaN gradient from step ${step}`,
    offset: 0,
    models: [],
    async load() {
      let calls = 0;
      return {
        name,
        prepare: () => ({
          loss: (input) => {
            const bad = calls++ >= step;
            const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
              const x = args[0] as tf.Tensor;
              (args[1] as tf.GradSaveFunc)([x]);
              return {
                value: tf.mean(tf.square(tf.sub(x, 0.5))) as tf.Scalar,
                gradFunc: (dy: tf.Tensor, [xs]: tf.Tensor[]) => (bad ? tf.fill(xs.shape, NaN) : tf.mul(tf.mul(tf.sub(xs, 0.5), 2 / xs.size), dy)),
              };
            });
            return f(input.image) as tf.Scalar;
          },
          score: (input) => tf.tidy(() => tf.neg(tf.mean(tf.square(tf.sub(input.image, 0.5)))) as tf.Scalar),
          dispose() {},
        }),
        dispose() {},
      };
    },
  };
}
