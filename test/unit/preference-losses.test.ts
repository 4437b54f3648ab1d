// The seed paper's losses (eqs. 4-8) and Q (eq. 5) against values computed by hand, and the personal reward's
// guidance losses (like -log Q, dislike -log(1 - Q)).
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { crossEntropy, guidanceLoss, preferenceLoss, preferenceProbability } from '../../src/preference/losses.js';
import { backend, noLeak } from '../helpers.js';

const PLUS = 1;
const MINUS = 2;
// two samples, a vocabulary of 4; rows: logits at the target's last position
const POS = [
  [0.5, 2.0, -1.0, 0.0], // sample 0, liked target: M+ = 2, M- = -1
  [1.0, 0.3, 0.8, -0.5], // sample 1, liked target: M+ = 0.3, M- = 0.8
];
const NEG = [
  [0.0, 0.5, 1.5, 0.2], // sample 0, disliked target: M+ = 0.5, M- = 1.5
  [-0.2, 1.1, 0.1, 0.4], // sample 1, disliked target: M+ = 1.1, M- = 0.1
];

const lse = (r: number[]) => Math.log(r.reduce((s, x) => s + Math.exp(x), 0));
const softplus = (x: number) => Math.log(1 + Math.exp(x));
const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;

function byHand(baseLoss: 'vocab' | 'pair') {
  const basePos = POS.map((r) => (baseLoss === 'vocab' ? lse(r) - r[PLUS] : softplus(r[MINUS] - r[PLUS])));
  const baseNeg = NEG.map((r) => (baseLoss === 'vocab' ? lse(r) - r[MINUS] : softplus(r[PLUS] - r[MINUS])));
  const base = 0.5 * (mean(basePos) + mean(baseNeg)); // (4)
  const plus = mean(POS.map((r, i) => softplus(-(r[PLUS] - NEG[i][PLUS])))); // (6) -log sigmoid(M+(pos) - M+(neg))
  const minus = mean(POS.map((r, i) => softplus(-(NEG[i][MINUS] - r[MINUS])))); // (7) -log sigmoid(M-(neg) - M-(pos))
  return { base, plus, minus, all: base + plus + minus }; // (8)
}

const close = (a: number, b: number, what: string) => assert.ok(Math.abs(a - b) <= 1e-5 * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);

function losses(mode: 'vocab' | 'pair', aux = true) {
  return tf.tidy(() => {
    const p = preferenceLoss(tf.tensor2d(POS), tf.tensor2d(NEG), PLUS, MINUS, { baseLoss: mode, aux });
    return { all: p.all.dataSync()[0], base: p.base.dataSync()[0], plus: p.plus.dataSync()[0], minus: p.minus.dataSync()[0] };
  });
}

test('eqs. 4, 6, 7, 8 match hand-computed values (vocabulary and two-way cross-entropy)', async () => {
  await backend('cpu');
  // written out for sample 0: CE of the liked row [0.5, 2, -1, 0] = log(e^.5 + e^2 + e^-1 + e^0) - 2 = 0.3423496;
  // its L+ term: -log sigmoid(2 - 0.5) = softplus(-1.5) = 0.2014133; its L- term: -log sigmoid(1.5 - -1) = 0.0788897
  close(lse(POS[0]) - 2, 0.3423496, 'CE sample 0');
  close(softplus(-1.5), 0.2014133, 'L+ sample 0');
  close(softplus(-2.5), 0.0788897, 'L- sample 0');
  for (const mode of ['vocab', 'pair'] as const) {
    const want = byHand(mode);
    const got = await noLeak(() => losses(mode));
    for (const k of ['all', 'base', 'plus', 'minus'] as const) close(got[k], want[k], `${mode} ${k}`);
  }
});

test('--no-aux-loss: L_all = L_base', async () => {
  await backend('cpu');
  const got = losses('vocab', false);
  close(got.all, byHand('vocab').base, 'all = base');
});

test('eq. 5 Q = softmax over (M+, M-); guidance losses -log Q and -log(1 - Q); crossEntropy per row', async () => {
  await backend('cpu');
  const mp = [2, 0.3, -4];
  const mm = [-1, 0.8, 3];
  const want = mp.map((p, i) => Math.exp(p) / (Math.exp(p) + Math.exp(mm[i])));
  const got = await noLeak(() =>
    tf.tidy(() => {
      const a = tf.tensor1d(mp);
      const b = tf.tensor1d(mm);
      const diff = tf.sub(a, b);
      return {
        q: Array.from(preferenceProbability(a, b).dataSync()),
        qDiff: Array.from(preferenceProbability(diff).dataSync()),
        like: Array.from(guidanceLoss(diff, 'like').dataSync()),
        dislike: Array.from(guidanceLoss(diff, 'dislike').dataSync()),
        ce: Array.from(crossEntropy(tf.tensor2d(POS), PLUS).dataSync()),
      };
    }),
  );
  want.forEach((w, i) => {
    close(got.q[i], w, `Q[${i}]`);
    close(got.qDiff[i], w, `Q from the difference [${i}]`);
    close(got.like[i], -Math.log(w), `like[${i}]`);
    close(got.dislike[i], -Math.log(1 - w), `dislike[${i}]`);
  });
  POS.forEach((r, i) => close(got.ce[i], lse(r) - r[PLUS], `CE row ${i}`));
});
