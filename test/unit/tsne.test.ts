// Exact t-SNE: perplexity calibration per point, symmetric P, separated Gaussian clusters stay separated
// (nearest-neighbour class agreement > 0.95), determinism from the seed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import seedrandom from 'seedrandom';
import { conditionalP, jointP, nearestNeighbourAgreement, squaredDistances, tsne } from '../../src/preference/tsne.js';

function clusters(k: number, per: number, dim: number, sep: number, seed: string) {
  const rng = seedrandom(seed);
  const randn = () => Math.sqrt(-2 * Math.log(Math.max(rng(), 1e-300))) * Math.cos(2 * Math.PI * rng());
  const centres = Array.from({ length: k }, () => Array.from({ length: dim }, () => sep * randn()));
  const x: number[][] = [];
  const labels: number[] = [];
  for (let c = 0; c < k; c++)
    for (let i = 0; i < per; i++) {
      x.push(centres[c].map((m) => m + randn()));
      labels.push(c);
    }
  return { x, labels };
}

test('perplexity search: each row has the asked-for perplexity and sums to 1', () => {
  const { x } = clusters(3, 20, 5, 4, 'p');
  const d = squaredDistances(x);
  const n = x.length;
  for (const perp of [5, 15]) {
    for (const i of [0, 17, 59]) {
      const { p } = conditionalP(d.subarray(i * n, (i + 1) * n), i, perp);
      assert.equal(p[i], 0);
      const sum = p.reduce((a, b) => a + b, 0);
      assert.ok(Math.abs(sum - 1) < 1e-12);
      const H = -p.reduce((a, v) => a + (v > 0 ? v * Math.log(v) : 0), 0);
      assert.ok(Math.abs(Math.exp(H) - perp) < 1e-3, `perplexity ${Math.exp(H)} vs ${perp}`);
    }
  }
  const P = jointP(x, 10);
  let total = 0;
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      total += P[i * n + j];
      assert.equal(P[i * n + j], P[j * n + i]);
    }
  assert.ok(Math.abs(total - 1) < 1e-6);
});

test('well-separated Gaussian clusters stay separated; seeded', () => {
  const { x, labels } = clusters(4, 30, 10, 6, 'clusters');
  assert.ok(nearestNeighbourAgreement(x, labels) > 0.99, 'separated in the input');
  const r = tsne(x, { perplexity: 20, iterations: 500, seed: 1 });
  assert.equal(r.points.length, 120);
  assert.equal(r.points[0].length, 2);
  assert.ok(r.points.flat().every(Number.isFinite));
  const agree = nearestNeighbourAgreement(r.points, labels);
  assert.ok(agree > 0.95, `nearest-neighbour agreement ${agree}`);
  assert.ok(r.kl > 0 && r.kl < 2, `KL ${r.kl}`);
  const again = tsne(x, { perplexity: 20, iterations: 500, seed: 1 });
  assert.deepEqual(again.points, r.points);
  const other = tsne(x, { perplexity: 20, iterations: 50, seed: 2 });
  assert.notDeepEqual(other.points, r.points);
  // Small inputs: perplexity is clamped, trivial sizes work.
  assert.equal(tsne(x.slice(0, 10), { iterations: 10 }).perplexity, 3);
  assert.deepEqual(tsne([[1, 2]]).points, [[0, 0]]);
  assert.deepEqual(tsne([]).points, []);
});
