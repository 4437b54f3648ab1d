// The ReNO-step benchmark's core (bench/reno-step.ts benchWholeStep) on the tiny preset: one updating iteration of
// the real loop with the paper's rewards on wasm runs, reports finite figures and frees everything it built.
import * as assert from 'node:assert/strict';
import { test } from 'node:test';
import { benchWholeStep, paperRewards } from '../../bench/reno-step.js';
import { backend, noLeak } from '../helpers.js';

test('bench/reno-step: one ReNO iteration of the tiny preset on wasm', async () => {
  await backend('wasm');
  const rewards = paperRewards();
  assert.deepEqual([...rewards].sort(), ['aesthetic', 'clip', 'imagereward', 'pickscore']);
  const w = await noLeak(() => benchWholeStep({ arch: 'tiny', px: 64, steps: 1, rewards, checkpoint: true, warmup: 0 }));
  for (const v of [w.prepareSeconds, w.totalSeconds, w.iterationSeconds, w.finalSeconds, w.peakMB, w.rssMB])
    assert.ok(Number.isFinite(v) && v > 0, `not a positive number: ${v}`);
  assert.ok(w.totalSeconds >= w.iterationSeconds, 'the total covers the iteration');
  assert.deepEqual(Object.keys(w.losses).sort(), ['aesthetic', 'clip', 'imagereward', 'pickscore']);
  for (const v of Object.values(w.losses)) assert.ok(Number.isFinite(v));
});
