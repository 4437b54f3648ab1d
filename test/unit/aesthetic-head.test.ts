// The LAION aesthetic head read from the released sac+logos+ava1-l14-linearMSE.pth (a torch zip whose storages say
// cuda:0): its sizes from the checkpoint, the float64 collapse to one affine map against the upstream figures (computed
// there from the same file), and the five-layer forward against that collapse.
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { test } from 'node:test';
import { WeightsError } from '../../src/errors.js';
import { aestheticHeadSizes, collapseAestheticHead, loadAestheticHead } from '../../src/models/aesthetic-head.js';
import { openWeights } from '../../src/weights/open.js';
import { MemorySource } from '../../src/weights/source.js';
import { TorchCheckpoint } from '../../src/weights/torch.js';
import { ASSETS, backend, maxRelErr, noLeak, PARITY } from '../helpers.js';
import { readNpy } from '../../src/weights/npy.js';

const HEAD = path.join(ASSETS, 'sac+logos+ava1-l14-linearMSE.pth');

test('the released head: keys layers.{0,2,4,6,7}, sizes 768-1024-128-64-16-1, storages recorded on cuda:0', () => {
  const src = openWeights(HEAD);
  try {
    assert.deepEqual(aestheticHeadSizes(src), [768, 1024, 128, 64, 16, 1]);
    assert.deepEqual(src.keys().sort(), [
      'layers.0.bias',
      'layers.0.weight',
      'layers.2.bias',
      'layers.2.weight',
      'layers.4.bias',
      'layers.4.weight',
      'layers.6.bias',
      'layers.6.weight',
      'layers.7.bias',
      'layers.7.weight',
    ]);
    assert.equal((src as TorchCheckpoint).tensorInfo('layers.0.weight')?.location, 'cuda:0');
  } finally {
    src.close();
  }
});

test('collapse (float64): |w_eff| 17.9956, b_eff 5.2366, w_eff[0:4], score of the uniform unit vector 4.8833 (rewards.md 6.3)', () => {
  const src = openWeights(HEAD);
  const { weight, bias, inFeatures, outFeatures } = collapseAestheticHead(src);
  src.close();
  assert.equal(inFeatures, 768);
  assert.equal(outFeatures, 1);
  const norm = Math.sqrt(weight.reduce((a, x) => a + x * x, 0));
  assert.ok(Math.abs(norm - 17.9956) < 1e-4, `norm ${norm}`);
  assert.ok(Math.abs(bias[0] - 5.2366) < 1e-4, `b_eff ${bias[0]}`);
  [-0.69159, -0.55699, -0.32117, -0.63148].forEach((w, i) => assert.ok(Math.abs(weight[i] - w) < 1e-5, `w_eff[${i}] ${weight[i]}`));
  const uniform = weight.reduce((a, x) => a + x / Math.sqrt(768), 0) + bias[0];
  assert.ok(Math.abs(uniform - 4.8833) < 1e-4, `uniform ${uniform}`);
});

test('the five Linears equal the collapsed map on the fixture embeddings, and the input gradient is w_eff', async () => {
  await backend('cpu');
  const head = loadAestheticHead(HEAD);
  const src = openWeights(HEAD);
  const { weight, bias } = collapseAestheticHead(src);
  src.close();
  const emb = readNpy(path.join(PARITY, 'aesthetic_laion', 'io', 'embeddings.npy'));
  const n = emb.shape[0];
  const ref = Array.from({ length: n }, (_, r) => weight.reduce((a, w, j) => a + w * emb.data[r * 768 + j], bias[0]));
  const { score, grad } = await noLeak(() =>
    tf.tidy(() => {
      const x = tf.tensor2d(Float32Array.from(emb.data), [n, 768]);
      return {
        score: head.forward(x).dataSync(),
        grad: tf
          .grad((e: tf.Tensor) => tf.sum(head.forward(e)))(x)
          .dataSync(),
      };
    }),
  );
  assert.ok(maxRelErr(score, ref) < 1e-6, `score ${maxRelErr(score, ref)}`);
  assert.ok(maxRelErr(grad.subarray(0, 768), weight) < 1e-5, `grad ${maxRelErr(grad.subarray(0, 768), weight)}`);
  head.dispose();
});

test('a head whose layers do not chain, or with a key missing, is refused with the key named', () => {
  const t = (shape: number[]) => ({ shape, data: new Float32Array(shape.reduce((a, b) => a * b, 1)) });
  const sizes = [
    [8, 4],
    [6, 8],
    [5, 6],
    [3, 5],
    [1, 3],
  ];
  const full = new Map(
    sizes.flatMap(
      ([o, i], k) =>
        [
          [`layers.${[0, 2, 4, 6, 7][k]}.weight`, t([o, i])],
          [`layers.${[0, 2, 4, 6, 7][k]}.bias`, t([o])],
        ] as const,
    ),
  );
  assert.deepEqual(aestheticHeadSizes(new MemorySource(new Map(full), 'ok.pth')), [4, 8, 6, 5, 3, 1]);
  const broken = new Map(full);
  broken.set('layers.4.weight', t([5, 7]));
  assert.throws(
    () => aestheticHeadSizes(new MemorySource(broken, 'broken.pth')),
    (e: Error) => e instanceof WeightsError && /layers\.4\.weight takes 7 inputs/.test(e.message),
  );
  const missing = new Map(full);
  missing.delete('layers.6.weight');
  assert.throws(() => aestheticHeadSizes(new MemorySource(missing, 'missing.pth')), /layers\.6\.weight is missing/);
});
