// Flash attention on WebGPU (src/runtime/webgpu/flash.ts; lavapipe in CI) against the textbook formula: values within
// 1e-5 relative, gradients with respect to q, k and v within 1e-4, for self- and cross-attention shapes (ragged tiles,
// batches, the head widths of the UNet (64) and ViT-H (80)), constant keys and values, one program forward, fewer
// programs than the chunked path both ways, nothing left behind; a mask or a wide head takes the chunked path.
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { useBackend } from '../../src/runtime/backend.js';
import { plainAttention } from '../../src/nn/attention.js';
import { attention } from '../../src/nn/ops.js';
import { FLASH_MAX_HEAD, flashFits, parseAttention, setFlashAttention } from '../../src/runtime/webgpu/flash.js';
import { setupWebgpu } from '../../src/runtime/webgpu/setup.js';
import { countPrograms, maxRelErr, noLeak } from '../helpers.js';

const probe = await setupWebgpu({ allowSoftware: true }).catch((e: Error) => ({ ok: false, why: e.message }));
const skip = probe.ok ? false : `WebGPU unavailable: ${probe.why}`;

interface Case {
  b: number;
  lq: number;
  lk: number;
  heads: number;
  d: number;
  constantKV?: boolean;
}

/** Output, and d(sum(out * w))/d(q, k, v) (q only with constant k and v), of `f`. */
function run(f: typeof attention, c: Case, seed: number): tf.Tensor[] {
  return tf.tidy(() => {
    const q = tf.randomNormal([c.b, c.lq, c.heads * c.d], 0, 1, 'float32', seed);
    const k = tf.randomNormal([c.b, c.lk, c.heads * c.d], 0, 1, 'float32', seed + 1);
    const v = tf.randomNormal([c.b, c.lk, c.heads * c.d], 0, 1, 'float32', seed + 2);
    const w = tf.randomNormal([c.b, c.lq, c.heads * c.d], 0, 1, 'float32', seed + 3);
    const y = f(q, k, v, c.heads, { constantKV: c.constantKV });
    if (c.constantKV) return [y, tf.grad((qq: tf.Tensor) => tf.sum(tf.mul(f(qq, k, v, c.heads, { constantKV: true }), w)))(q)];
    const g = tf.grads((qq: tf.Tensor, kk: tf.Tensor, vv: tf.Tensor) => tf.sum(tf.mul(f(qq, kk, vv, c.heads), w)))([q, k, v]);
    return [y, ...g];
  });
}

test(
  'flash attention matches the formula: values, q / k / v gradients, one program forward, fewer programs, no leaks',
  { skip, timeout: 600_000 },
  async () => {
    await useBackend('webgpu', { quiet: true });
    const cases: Case[] = [
      { b: 2, lq: 70, lk: 70, heads: 3, d: 8 }, // ragged query blocks (64 + 6) and key tiles (16 x 4 + 6)
      { b: 1, lq: 130, lk: 77, heads: 2, d: 64, constantKV: true }, // the UNet's cross-attention: 77 text tokens
      { b: 1, lq: 257, lk: 257, heads: 2, d: 80 }, // ViT-H/14's head width and tokens
      { b: 1, lq: 1024, lk: 1024, heads: 1, d: 64 }, // the UNet's 32x32 self-attention, one head
      { b: 1, lq: 5, lk: 3, heads: 4, d: 16 }, // fewer rows than a tile
    ];
    try {
      for (const [i, c] of cases.entries()) {
        assert.ok(flashFits(c.heads * c.d, c.heads, false), `${JSON.stringify(c)} takes the flash programs`);
        await noLeak(async () => {
          const ref = run(plainAttention, c, 10 * i + 1);
          const { value: got, n } = countPrograms(() => run(attention, c, 10 * i + 1), 'renoFlash');
          assert.equal(n, 1 + 1 + (c.constantKV ? 2 : 4), `${JSON.stringify(c)}: forward, and stats, dq${c.constantKV ? '' : ', dk, dv'}`);
          for (const [j, t] of ref.entries()) {
            const err = maxRelErr(await got[j].data(), await t.data());
            assert.ok(err < (j === 0 ? 1e-5 : 1e-4), `${JSON.stringify(c)} ${['value', 'dq', 'dk', 'dv'][j]}: relative error ${err}`);
          }
          tf.dispose([...ref, ...got]);
        });
      }
      // the whole pass in programs: flash against the chunked path
      const c = cases[2];
      const flash = countPrograms(() => tf.dispose(run(attention, c, 1))).n;
      setFlashAttention(false);
      const chunked = countPrograms(() => tf.dispose(run(attention, c, 1))).n;
      assert.ok(flash < chunked / 2, `programs, forward + backward: flash ${flash}, chunked ${chunked}`);
    } finally {
      setFlashAttention(true);
    }
  },
);

test('a mask or a head over FLASH_MAX_HEAD takes the chunked path; RENO_WEBGPU_ATTENTION is flash or chunked', { skip }, async () => {
  await useBackend('webgpu', { quiet: true });
  assert.ok(!flashFits(64, 1, true), 'a mask');
  assert.ok(!flashFits(FLASH_MAX_HEAD + 8, 1, false), 'a wide head');
  const q = tf.randomNormal([1, 6, 8], 0, 1, 'float32', 1);
  const mask = tf.tensor4d([0, -1e9, 0, 0, 0, 0], [1, 1, 1, 6]);
  const { value: y, n } = countPrograms(() => attention(q, q, q, 2, { mask }), 'renoFlash');
  assert.equal(n, 0);
  const err = maxRelErr(await y.data(), await plainAttention(q, q, q, 2, { mask }).data());
  assert.ok(err < 1e-5, `masked: ${err}`);
  assert.equal(parseAttention(undefined), true);
  assert.equal(parseAttention('chunked'), false);
  assert.throws(() => parseAttention('fast'), /RENO_WEBGPU_ATTENTION must be flash or chunked \(got "fast"\)/);
  tf.dispose([q, mask, y]);
});
