// The ReNO loop's gradient (src/optimize/loop.ts evaluate): each reward's image gradient on its own tape, then one
// backward pass through the generator, gives the same z-gradient as one tape over generator, rewards and regulariser,
// holds fewer tensor bytes at its peak, and leaks nothing. Tiny preset generator and the paper's tiny reward models.
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BENCH_PROMPT, buildGenerator, buildReward, paperDefaults } from '../../bench/full-models.js';
import { withPeak } from '../../bench/measure.js';
import { RewardInput } from '../../rewards/input.js';
import { evaluate, type ActiveReward } from '../../src/optimize/loop.js';
import { chiRegulariser } from '../../src/optimize/pieces.js';
import { seededNoise } from '../../src/optimize/noise.js';
import { backend, maxRelErr, noLeak } from '../helpers.js';

test('the loop gradient: reward by reward equals one tape over everything, with a lower peak', async () => {
  await backend('wasm');
  const d = paperDefaults();
  const gen = buildGenerator('tiny');
  const names = ['imagereward', 'aesthetic', 'pickscore', 'clip'] as const;
  const built = await Promise.all(names.map((n) => buildReward(n, 'tiny')));
  const active: ActiveReward[] = names.map((n, i) => ({ name: n, weight: [1, 0.5, 0.05, 2][i], prepared: built[i].prepare(BENCH_PROMPT) }));
  const cond = gen.prepare(BENCH_PROMPT);
  const z = seededNoise(gen.latentShape({ width: 64, height: 64 }), 3);
  try {
    // one tape: the straightforward objective
    const oneTape = (zz: tf.Tensor) =>
      tf.tidy(() => {
        const input = new RewardInput(gen.generate(zz as tf.Tensor4D, cond));
        let total: tf.Tensor = chiRegulariser(zz, d.regWeight);
        for (const r of active) total = tf.add(total, tf.mul(r.prepared.loss(input), r.weight));
        return total as tf.Scalar;
      });
    const ref = await withPeak(async () => {
      const g = tf.grad(oneTape)(z);
      const v = await g.data();
      g.dispose();
      return v;
    });
    const ours = await withPeak(async () => {
      const e = await evaluate(gen, cond, z, active, d.regWeight, true);
      const v = await e.grad!.data();
      tf.dispose([e.grad!, e.image]);
      return { v, e };
    });
    const err = maxRelErr(ours.value.v, ref.value);
    assert.ok(err < 1e-5, `z-gradient differs from the one-tape gradient by ${err}`);
    assert.ok(
      ours.value.v.some((x) => x !== 0),
      'the gradient is not all zeros',
    );
    // the losses are the unweighted ones, as the one-tape forward computes them
    const input = new RewardInput(gen.generate(z, cond));
    for (const [i, r] of active.entries()) {
      const l = r.prepared.loss(input);
      assert.ok(Math.abs(l.dataSync()[0] - ours.value.e.losses[i]) < 1e-5 * (1 + Math.abs(l.dataSync()[0])), r.name);
      l.dispose();
    }
    tf.dispose(input.image);
    input.dispose();
    assert.ok(ours.peakBytes < ref.peakBytes, `peak ${ours.peakBytes} B not below the one-tape peak ${ref.peakBytes} B`);
    await noLeak(async () => {
      const e = await evaluate(gen, cond, z, active, d.regWeight, true);
      tf.dispose([e.grad!, e.image]);
    });
  } finally {
    tf.dispose(z);
    cond.dispose();
    for (const a of active) a.prepared.dispose();
    for (const r of built) r.dispose();
    gen.dispose();
  }
});
