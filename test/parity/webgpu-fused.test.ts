// The fused WebGPU programs (src/runtime/fused.ts) against the op-by-op ones on the same backend, values and input
// gradients, fewer GPU programs, no leaked tensors: the norms (src/runtime/webgpu/norm.ts; GroupNorm and LayerNorm, with
// and without the affine transform and the SiLU, one chunk and many chunks per group, and a large mean, where a
// one-pass sum of squares would lose the variance), linear and conv with the bias fused, and the attention with
// transpose flags, one program for its scaled, masked softmax and one for the softmax gradient, and GEGLU.
// Skipped when no WebGPU adapter is available (CI installs Mesa 25 lavapipe).
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { useBackend } from '../../src/runtime/backend.js';
import { normAffine, type NormOptions } from '../../src/nn/norm.js';
import { setFusedKernels } from '../../src/runtime/fused.js';
import { normChunks, setNormChunkElems } from '../../src/runtime/webgpu/norm.js';
import { chunkedAttention } from '../../src/nn/attention.js';
import { conv2d, geglu, gelu, keyPaddingMask, matMulWeight, quickGelu, silu } from '../../src/nn/ops.js';
import { parseWinograd, setWinograd } from '../../src/runtime/webgpu/winograd.js';
import { setupWebgpu } from '../../src/runtime/webgpu/setup.js';
import { countPrograms, maxRelErr } from '../helpers.js';

const probe = await setupWebgpu({ allowSoftware: true }).catch((e: Error) => ({ ok: false, why: e.message }));
const skip = probe.ok ? false : `WebGPU unavailable: ${probe.why}`;

interface Case {
  name: string;
  shape: number[];
  groups: number | null;
  affine: boolean;
  act: 'none' | 'silu';
  offset?: number;
  chunk?: number;
}
const CASES: Case[] = [
  { name: 'GroupNorm + SiLU, one chunk', shape: [2, 6, 5, 12], groups: 3, affine: true, act: 'silu' },
  { name: 'GroupNorm, 4 chunks per group', shape: [2, 8, 7, 12], groups: 4, affine: true, act: 'none', chunk: 40 },
  { name: 'GroupNorm + SiLU, chunked, ragged last chunk', shape: [1, 9, 11, 8], groups: 2, affine: true, act: 'silu', chunk: 52 },
  { name: 'GroupNorm without affine, mean 1000', shape: [1, 16, 16, 32], groups: 8, affine: false, act: 'none', offset: 1000 },
  { name: 'GroupNorm on [B, L, C]', shape: [2, 77, 64], groups: 32, affine: true, act: 'none' },
  { name: 'LayerNorm', shape: [3, 7, 20], groups: null, affine: true, act: 'none' },
  { name: 'LayerNorm, wide rows, mean 1000', shape: [5, 1280], groups: null, affine: true, act: 'none', offset: 1000 },
  // more workgroups than one dispatch dimension allows (65535): tfjs folds the dispatch into two dimensions
  { name: 'LayerNorm over 70000 rows', shape: [70000, 8], groups: null, affine: true, act: 'none' },
];

test('fused WebGPU norms match the composite: values, input gradients, fewer programs, no leaks', { skip, timeout: 300_000 }, async () => {
  await useBackend('webgpu', { quiet: true });
  try {
    for (const k of CASES) {
      setNormChunkElems(k.chunk ?? 16384);
      const c = k.shape[k.shape.length - 1];
      const x = tf.tidy(() => tf.add(tf.randomNormal(k.shape, 0, 2, 'float32', 1), k.offset ?? 0));
      const dy = tf.randomNormal(k.shape, 0, 1, 'float32', 2);
      const o: NormOptions = {
        groups: k.groups,
        eps: 1e-5,
        weight: k.affine ? tf.randomNormal([c], 1, 0.5, 'float32', 3) : null,
        bias: k.affine ? tf.randomNormal([c], 0, 0.5, 'float32', 4) : null,
        act: k.act,
      };
      const loss = (t: tf.Tensor) => tf.sum(tf.mul(normAffine(t, o), dy));
      const run = async (fusedOn: boolean) => {
        setFusedKernels(fusedOn);
        const before = tf.memory().numTensors;
        const fwd = countPrograms(() => normAffine(x, o));
        const bwd = countPrograms(() => tf.grad(loss)(x));
        const out = { y: await fwd.value.data(), dx: await bwd.value.data(), fwdPrograms: fwd.n, gradPrograms: bwd.n };
        tf.dispose([fwd.value, bwd.value]);
        assert.equal(tf.memory().numTensors, before, `${k.name}: tensors leaked (fused ${fusedOn})`);
        return out;
      };
      setFusedKernels(true);
      tf.dispose(normAffine(x, o)); // makes the kept ones / zeros a norm without affine weights uses (once per width)
      const ref = await run(false);
      const got = await run(true);
      const y = maxRelErr(got.y, ref.y);
      const dx = maxRelErr(got.dx, ref.dx);
      assert.ok(y < 1e-4, `${k.name}: forward relative error ${y} ${Array.from(got.y.slice(0, 4))} ${Array.from(ref.y.slice(0, 4))}`);
      assert.ok(dx < 1e-3, `${k.name}: gradient relative error ${dx}`);
      const chunked = k.groups !== null && normChunks({ B: k.shape[0], N: x.size / (k.shape[0] * c), G: k.groups, Cg: c / k.groups }).K > 1;
      if (k.chunk) assert.ok(chunked, `${k.name}: meant to take the chunked path`);
      // forward: stats (+ finalize) + apply; forward + backward: that, the reduction (+ finalize) + apply, plus the loss's own ops
      assert.ok(got.fwdPrograms <= (chunked ? 3 : 2), `${k.name}: ${got.fwdPrograms} programs forward`);
      assert.ok(
        got.fwdPrograms < ref.fwdPrograms && got.gradPrograms < ref.gradPrograms,
        `${k.name}: programs ${JSON.stringify([got.fwdPrograms, got.gradPrograms])} against ${JSON.stringify([ref.fwdPrograms, ref.gradPrograms])}`,
      );
      tf.dispose([x, dy, o.weight, o.bias].filter((t): t is tf.Tensor => t !== null));
    }
  } finally {
    setFusedKernels(true);
    setNormChunkElems(16384);
  }
});

/** Values and input gradients of fn on x with the fused programs off and on (same backend), and their programs. */
async function compareFused(fn: (xs: tf.Tensor[]) => tf.Tensor, xs: tf.Tensor[], dy: tf.Tensor) {
  const run = async (on: boolean) => {
    setFusedKernels(on);
    const before = tf.memory().numTensors;
    const fwd = countPrograms(() => fn(xs));
    const bwd = countPrograms(() => tf.grads((...a: tf.Tensor[]) => tf.sum(tf.mul(fn(a), dy)))(xs));
    const out = { y: await fwd.value.data(), grads: await Promise.all(bwd.value.map((g) => g.data())), programs: fwd.n + bwd.n };
    tf.dispose([fwd.value, ...bwd.value]);
    assert.equal(tf.memory().numTensors, before, `tensors leaked (fused ${on})`);
    return out;
  };
  try {
    const off = await run(false);
    const on = await run(true);
    return {
      yErr: maxRelErr(on.y, off.y),
      gradErr: Math.max(...on.grads.map((g, i) => maxRelErr(g, off.grads[i]))),
      programs: [off.programs, on.programs],
    };
  } finally {
    setFusedKernels(true);
  }
}

test(
  'linear and conv with the bias fused, and the linear gradient by transpose flag, match the op-by-op programs',
  { skip, timeout: 300_000 },
  async () => {
    await useBackend('webgpu', { quiet: true });
    setWinograd(null); // the bias inside tfjs' fused conv is what this compares (Winograd: test/parity/webgpu-winograd.test.ts)
    try {
      const w = tf.randomNormal([24, 40], 0, 0.2, 'float32', 5) as tf.Tensor2D;
      const b = tf.randomNormal([40], 0, 1, 'float32', 6);
      const x = tf.randomNormal([33, 24], 0, 1, 'float32', 7);
      const lin = await compareFused(([a]) => matMulWeight(a as tf.Tensor2D, w, b), [x], tf.randomNormal([33, 40], 0, 1, 'float32', 8));
      assert.ok(lin.yErr < 1e-5 && lin.gradErr < 1e-5, `linear: ${JSON.stringify(lin)}`);
      assert.ok(lin.programs[1] < lin.programs[0], `linear programs ${lin.programs}`);
      const f = tf.randomNormal([3, 3, 8, 12], 0, 0.2, 'float32', 9) as tf.Tensor4D;
      const cb = tf.randomNormal([12], 0, 1, 'float32', 10);
      const img = tf.randomNormal([2, 9, 7, 8], 0, 1, 'float32', 11);
      for (const stride of [1, 2]) {
        const probe = conv2d(img as tf.Tensor4D, f, stride, 1, cb);
        const dy = tf.randomNormal(probe.shape, 0, 1, 'float32', 12);
        probe.dispose();
        const conv = await compareFused(([a]) => conv2d(a as tf.Tensor4D, f, stride, 1, cb), [img], dy);
        assert.ok(conv.yErr < 1e-5 && conv.gradErr < 1e-5, `conv stride ${stride}: ${JSON.stringify(conv)}`);
        assert.ok(conv.programs[1] < conv.programs[0], `conv stride ${stride} programs ${conv.programs}`);
        dy.dispose();
      }
      tf.dispose([w, b, x, f, cb, img]);
    } finally {
      setWinograd(parseWinograd(process.env.RENO_WEBGPU_WINOGRAD));
    }
  },
);

test(
  'attention with transpose flags matches the explicit transposes: a mask, several query chunks, every input gradient',
  { skip, timeout: 300_000 },
  async () => {
    await useBackend('webgpu', { quiet: true });
    const [bsz, lq, lk, c, heads] = [2, 37, 29, 48, 3];
    const q = tf.randomNormal([bsz, lq, c], 0, 1, 'float32', 13);
    const k = tf.randomNormal([bsz, lk, c], 0, 1, 'float32', 14);
    const v = tf.randomNormal([bsz, lk, c], 0, 1, 'float32', 15);
    const padding = tf.tidy(() =>
      keyPaddingMask(tf.tensor2d([Array.from({ length: lk }, (_, i) => (i < 20 ? 1 : 0)), Array.from({ length: lk }, () => 1)])),
    );
    // a mask per query row ([1, 1, Lq, Lk]) and one per batch item, head and row ([B, H, Lq, Lk])
    const rows = tf.tidy(() => tf.mul(tf.cast(tf.greater(tf.randomUniform([1, 1, lq, lk], 0, 1, 'float32', 21), 0.7), 'float32'), -1e9));
    const perHead = tf.randomNormal([bsz, heads, lq, lk], 0, 3, 'float32', 22);
    const dy = tf.randomNormal([bsz, lq, c], 0, 1, 'float32', 16);
    for (const [name, mask] of [
      ['key padding', padding],
      ['per row', rows],
      ['per head', perHead],
      ['none', undefined],
    ] as const) {
      for (const chunk of [undefined, 10]) {
        const r = await compareFused(([a, b2, d]) => chunkedAttention(a, b2, d, heads, { mask, chunk }), [q, k, v], dy);
        assert.ok(r.yErr < 1e-5 && r.gradErr < 1e-4, `${name} mask, chunk ${chunk}: ${JSON.stringify(r)}`);
        assert.ok(r.programs[1] < r.programs[0], `${name} mask, chunk ${chunk}: programs ${r.programs}`);
      }
    }
    // constant keys and values (the UNet's cross-attention in the ReNO loop): the gradient with respect to q only
    for (const chunk of [undefined, 10]) {
      const r = await compareFused(([a]) => chunkedAttention(a, k, v, heads, { mask: padding, chunk, constantKV: true }), [q], dy);
      assert.ok(r.yErr < 1e-5 && r.gradErr < 1e-4, `constant k, v, chunk ${chunk}: ${JSON.stringify(r)}`);
      assert.ok(r.programs[1] < r.programs[0], `constant k, v, chunk ${chunk}: programs ${r.programs}`);
    }
    tf.dispose([q, k, v, padding, rows, perHead, dy]);
  },
);

test('GELU, SiLU and QuickGELU as one program each way match the composites', { skip, timeout: 300_000 }, async () => {
  await useBackend('webgpu', { quiet: true });
  const x = tf.tidy(() => tf.mul(tf.randomNormal([7, 130], 0, 1, 'float32', 17), tf.linspace(0.1, 12, 130))); // tails to |x| ~ 40
  const dy = tf.randomNormal([7, 130], 0, 1, 'float32', 18);
  for (const [name, act] of [
    ['gelu', gelu],
    ['silu', silu],
    ['quick_gelu', quickGelu],
  ] as const) {
    const r = await compareFused(([a]) => act(a), [x], dy);
    assert.ok(r.yErr < 1e-5 && r.gradErr < 1e-5, `${name}: ${JSON.stringify(r)}`);
    assert.ok(r.programs[1] < r.programs[0], `${name}: programs ${r.programs}`);
  }
  tf.dispose([x, dy]);
});

test('more than 65535 workgroups: element-wise and row-wise programs cover every element', { skip, timeout: 300_000 }, async () => {
  await useBackend('webgpu', { quiet: true });
  const x = tf.randomNormal([256 * 65536 + 300], 0, 2, 'float32', 23); // 65538 workgroups of 256
  const dy = tf.randomNormal(x.shape, 0, 1, 'float32', 24);
  const act = await compareFused(([a]) => silu(a), [x], dy);
  assert.ok(act.yErr < 1e-5 && act.gradErr < 1e-5, `silu: ${JSON.stringify(act)}`);
  tf.dispose([x, dy]);
  // 70000 softmax rows (one workgroup each) through the attention: 1 head, 70000 queries, 4 keys
  const q = tf.randomNormal([1, 70000, 8], 0, 1, 'float32', 25);
  const k = tf.randomNormal([1, 4, 8], 0, 1, 'float32', 26);
  const v = tf.randomNormal([1, 4, 8], 0, 1, 'float32', 27);
  const d = tf.randomNormal([1, 70000, 8], 0, 1, 'float32', 28);
  const att = await compareFused(([a]) => chunkedAttention(a, k, v, 1), [q], d);
  assert.ok(att.yErr < 1e-5 && att.gradErr < 1e-4, `attention: ${JSON.stringify(att)}`);
  tf.dispose([q, k, v, d]);
});

test('GEGLU as one program each way matches split, GELU and product', { skip, timeout: 300_000 }, async () => {
  await useBackend('webgpu', { quiet: true });
  const u = tf.randomNormal([2, 9, 2 * 24], 0, 2, 'float32', 19);
  const dy = tf.randomNormal([2, 9, 24], 0, 1, 'float32', 20);
  const r = await compareFused(([a]) => geglu(a), [u], dy);
  assert.ok(r.yErr < 1e-5 && r.gradErr < 1e-5, `geglu: ${JSON.stringify(r)}`);
  assert.ok(r.programs[1] < r.programs[0], `geglu: programs ${r.programs}`);
  tf.dispose([u, dy]);
});
