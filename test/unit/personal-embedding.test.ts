// The embedding personal model on the tiny preset's random CLIP towers (PickScore's, the clip reward's, the
// aesthetic's ViT-L): each formula's score against the formula written out here on plain arrays (the tower's
// features taken straight from the CLIP model, normalised by hand, the ridge fit in its primal form), the image
// gradient against central differences, like/dislike signs, the content-hash cache, and the mode choice.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import * as tf from '../../src/runtime/tf.js';
import { loadClipImageEncoder } from '../../rewards/aesthetic.js';
import { loadClipModel, loadClipTokenizer, tokenizeForClip } from '../../src/models/clip/load.js';
import { RewardInput } from '../../rewards/input.js';
import { EmbeddingPersonalReward, choosePersonalModel, personalReward } from '../../rewards/personal.js';
import { FORMULAS, embeddingCache, fitPersonal, loadEmbeddingTower, needsText, solve, type Formula } from '../../rewards/personal-embedding.js';
import { clipPreprocess } from '../../src/image/preprocess.js';
import type { RewardLoadContext } from '../../rewards/types.js';
import { lastPairs, readHistory } from '../../src/data/history.js';
import { readImage } from '../../src/image/png.js';
import { getModel } from '../../src/config/models.js';
import { readNpy } from '../../src/weights/npy.js';
import { PARITY, ROOT, backend, noLeak, tmpDir } from '../helpers.js';

const TINY = path.join(ROOT, 'presets', 'tiny');
const HISTORY = path.join(ROOT, 'examples', 'history.json');
const PROMPT = 'two circles';
const locate = (m: string) => path.join(TINY, getModel(m).repo);
const ctxFor = (formula: Formula, tower = 'pickscore', guidance: 'like' | 'dislike' = 'like'): RewardLoadContext => ({
  locate,
  smokeTest: true,
  personal: { historyFile: HISTORY, guidance, nRef: 8, mode: 'embedding', tower, formula, log: () => {} },
});
let image: tf.Tensor4D;

before(async () => {
  await backend('cpu');
  image = tf.tidy(() => tf.add(tf.mul(tf.sigmoid(tf.randomNormal([1, 48, 64, 3], 0, 1.5, 'float32', 7)), 0.8), 0.1) as tf.Tensor4D);
});
after(() => image.dispose());

// ---- the direct formulas, on plain arrays -------------------------------------------------------------------
const dot = (a: number[], b: number[]) => a.reduce((s, x, i) => s + x * b[i], 0);
const norm = (a: number[]) => a.map((x) => x / Math.sqrt(dot(a, a)));
const sub = (a: number[], b: number[]) => a.map((x, i) => x - b[i]);
const mean = (rows: number[][]) => rows[0].map((_, i) => rows.reduce((s, r) => s + r[i], 0) / rows.length);
/** Primal ridge: w = (X^T X + I)^-1 X^T y (the model uses the dual form). */
function ridgePrimal(X: number[][], y: number[]): number[] {
  const d = X[0].length;
  const A = Array.from({ length: d }, (_, i) => Array.from({ length: d }, (_, j) => X.reduce((s, r) => s + r[i] * r[j], 0) + (i === j ? 1 : 0)));
  const b = Array.from({ length: d }, (_, i) => X.reduce((s, r, k) => s + r[i] * y[k], 0));
  return solve(A, b);
}
function direct(formula: Formula, e: number[], t: number[], L: number[][], D: number[][], TL: number[][], TD: number[][]): number {
  const y = [...L.map(() => 1), ...D.map(() => -1)];
  switch (formula) {
    case 'centroid':
      return 100 * dot(e, norm(sub(mean(L), mean(D))));
    case 'nn':
      return 100 * (Math.max(...L.map((l) => dot(e, l))) - Math.max(...D.map((x) => dot(e, x))));
    case 'ridge':
      return 100 * dot(e, norm(ridgePrimal([...L, ...D], y)));
    case 'ridge-sub':
      return 100 * dot(sub(e, t), norm(ridgePrimal([...L.map((l, k) => sub(l, TL[k])), ...D.map((x, k) => sub(x, TD[k]))], y)));
    case 'ridge-cat':
      return 100 * dot([...e, ...t], norm(ridgePrimal([...L.map((l, k) => [...l, ...TL[k]]), ...D.map((x, k) => [...x, ...TD[k]])], y)));
  }
}

/** The tower's normalised features of image files / a tensor and of prompts, straight from the CLIP model. */
async function rawFeatures(tower: string) {
  const model = tower === 'aesthetic' ? loadClipImageEncoder(locate('aesthetic')) : loadClipModel(locate(tower));
  const size = 'vision' in model.config ? model.config.vision.imageSize : model.config.imageSize;
  const img = (x: tf.Tensor4D) => norm([...tf.tidy(() => model.getImageFeatures(clipPreprocess(x as never, size) as never)).dataSync()]);
  const files = async (fs: string[]) => {
    const out: number[][] = [];
    for (const f of fs) {
      const x = await readImage(f);
      out.push(img(x as unknown as tf.Tensor4D));
      x.dispose();
    }
    return out;
  };
  const tok = loadClipTokenizer(locate('clip-h-tokenizer'));
  const text = (ps: string[]) =>
    ps.map((p) => {
      const { ids, mask } = tokenizeForClip(tok, [p]);
      const v = norm([...tf.tidy(() => (model as ReturnType<typeof loadClipModel>).getTextFeatures(ids, mask)).dataSync()]);
      tf.dispose([ids, mask]);
      return v;
    });
  return { img, files, text, dispose: () => model.dispose() };
}

const pairs = lastPairs(readHistory(HISTORY), 8);

for (const [tower, formulas] of [
  ['pickscore', FORMULAS],
  ['clip', ['centroid', 'ridge-cat']],
  ['aesthetic', ['centroid', 'nn']],
] as const) {
  for (const formula of formulas as readonly Formula[]) {
    test(`${tower} tower, ${formula}: the score equals the formula written out (1e-4), dislike loss = score, like loss = -score`, async () => {
      const raw = await rawFeatures(tower);
      const L = await raw.files(pairs.map((p) => p.liked));
      const D = await raw.files(pairs.map((p) => p.disliked));
      const tt = needsText(formula);
      const TL = tt ? raw.text(pairs.map((p) => p.prompt)) : [];
      const e = raw.img(image);
      const t = tt ? raw.text([PROMPT])[0] : [];
      const want = direct(formula, e, t, L, D, TL, TL);
      raw.dispose();
      for (const guidance of ['like', 'dislike'] as const) {
        const reward = await personalReward.load(ctxFor(formula, tower, guidance));
        assert.ok(reward instanceof EmbeddingPersonalReward);
        assert.equal(reward.info?.personal_formula, formula);
        const p = reward.prepare(PROMPT);
        tf.tidy(() => {
          const input = new RewardInput(image);
          const s = p.score(input).dataSync()[0];
          const l = p.loss(input).dataSync()[0];
          assert.ok(Math.abs(s - want) < 1e-4 * Math.max(1, Math.abs(want)), `${s} vs ${want}`);
          assert.ok(Math.abs(l - (guidance === 'like' ? -s : s)) < 1e-6, `${guidance}: loss ${l}, score ${s}`);
        });
        p.dispose();
        reward.dispose();
      }
      assert.ok(Math.abs(want) > 1e-3, `a degenerate case: the score is ${want}`);
    });
  }
}

for (const formula of FORMULAS) {
  test(`pickscore tower, ${formula}: the image gradient matches central differences`, async (t) => {
    const reward = await personalReward.load(ctxFor(formula));
    const p = reward.prepare(PROMPT);
    const f = (x: tf.Tensor) => p.loss(new RewardInput(x as tf.Tensor4D));
    const grad = tf.tidy(() => tf.grad(f)(image));
    for (let k = 0; k < 3; k++) {
      tf.tidy(() => {
        const d = tf.randomNormal(image.shape, 0, 1, 'float32', 200 + k);
        const u = tf.div(d, tf.norm(d));
        const h = 0.05;
        const lp = tf.tidy(() => f(tf.add(image, tf.mul(u, h)))).dataSync()[0];
        const lm = tf.tidy(() => f(tf.sub(image, tf.mul(u, h)))).dataSync()[0];
        const fd = (lp - lm) / (2 * h);
        const an = tf.sum(tf.mul(grad, u)).dataSync()[0];
        const err = Math.abs(fd - an) / Math.max(1, Math.abs(an));
        t.diagnostic(`direction ${k}: finite difference ${fd.toExponential(5)}, gradient ${an.toExponential(5)}, err ${err.toExponential(2)}`);
        assert.ok(err < 1e-3, `direction ${k}: finite difference ${fd} vs gradient ${an}`);
      });
    }
    grad.dispose();
    // no tensors left by repeated losses and gradients
    await noLeak(() => {
      for (let i = 0; i < 2; i++) tf.tidy(() => void tf.grad(f)(image));
    });
    p.dispose();
    reward.dispose();
  });
}

test('the history is embedded once per process: a second load hits the content-hash cache, a copied file too', async () => {
  const reward = await personalReward.load(ctxFor('centroid'));
  reward.dispose();
  const misses = embeddingCache.misses;
  const hits = embeddingCache.hits;
  // the same images under other names: the cache keys on the bytes, not the path
  const dir = tmpDir('reno-emb-cache');
  const copied = pairs.map((p, i) => {
    for (const f of ['liked', 'disliked'] as const) fs.copyFileSync(p[f], path.join(dir, `${i}-${f}.png`));
    return { prompt: p.prompt, liked: `${i}-liked.png`, disliked: `${i}-disliked.png` };
  });
  fs.writeFileSync(path.join(dir, 'history.json'), JSON.stringify({ user: 'copy', pairs: copied }));
  const ctx = ctxFor('centroid');
  ctx.personal!.historyFile = path.join(dir, 'history.json');
  const again = await personalReward.load(ctx);
  again.dispose();
  assert.equal(embeddingCache.misses, misses, 'no image was embedded again');
  assert.equal(embeddingCache.hits, hits + 2 * pairs.length);
});

test('the mode: auto takes the VLM when a checkpoint is named or found, else the embedding model; vlm needs one', () => {
  const h = readHistory(HISTORY);
  const base = { historyFile: HISTORY, guidance: 'like' as const, nRef: 8 };
  // the tiny preset's checkpoint is found with --preset tiny
  assert.equal(choosePersonalModel({ locate, smokeTest: true, personal: base }, h).mode, 'vlm');
  // no preset (the same folders as --models-dir), no --preference-model, no "model": the embedding model
  const c = choosePersonalModel({ locate, smokeTest: false, personal: base }, h);
  assert.equal(c.mode, 'embedding');
  assert.match(c.reason, /no trained preference checkpoint/);
  assert.equal(choosePersonalModel({ locate, smokeTest: false, personal: { ...base, checkpoint: '/x/ckpt' } }, h).checkpoint, '/x/ckpt');
  assert.equal(choosePersonalModel({ locate, smokeTest: true, personal: { ...base, mode: 'embedding' } }, h).mode, 'embedding');
  assert.throws(
    () => choosePersonalModel({ locate, smokeTest: false, personal: { ...base, mode: 'vlm' } }, h),
    /no preference model for the personal reward.*--preference-model/,
  );
  // the models located follow the mode
  assert.deepEqual(personalReward.modelsFor!({ locate, smokeTest: false, personal: base }), ['pickscore', 'clip-h-tokenizer']);
  assert.deepEqual(personalReward.modelsFor!({ locate, smokeTest: false, personal: { ...base, tower: 'aesthetic' } }), ['aesthetic']);
  assert.deepEqual(personalReward.modelsFor!({ locate, smokeTest: true, personal: base }), ['smolvlm']);
});

test('a prompt-conditioned formula on the aesthetic tower (no text side) is refused by name', async () => {
  await assert.rejects(personalReward.load(ctxFor('ridge-sub', 'aesthetic')), /ridge-sub needs a tower with a text side/);
});

test('the text tower waits in host memory during the loop (parkPromptModels) and comes back for the next prompt', async () => {
  const reward = await personalReward.load(ctxFor('ridge-sub'));
  const once = (): number => {
    const p = reward.prepare(PROMPT);
    const v = tf.tidy(() => p.score(new RewardInput(image)).dataSync()[0]);
    p.dispose();
    return v;
  };
  const before = once();
  const n = tf.memory().numTensors;
  await reward.parkPromptModels!();
  assert.ok(tf.memory().numTensors < n, 'the text weights left the backend');
  assert.ok(Math.abs(once() - before) < 1e-6);
  reward.dispose();
});

test('with the pickscore reward in the same session the tower is one shared copy, freed by the last holder', async () => {
  const { loadRewards } = await import('../../rewards/load.js');
  const { ClipSimilarityReward } = await import('../../rewards/clip/similarity.js');
  const start = tf.memory().numTensors;
  const ctx = ctxFor('centroid');
  const rewards = await loadRewards(['pickscore', 'personal'], ctx);
  const pick = rewards.get('pickscore') as InstanceType<typeof ClipSimilarityReward>;
  const personal = rewards.get('personal') as EmbeddingPersonalReward;
  assert.ok(pick.model === personal.tower.model, 'one CLIPModel for both');
  const alone = await personalReward.load(ctx);
  const s = (r: { prepare(p: string): { score(i: RewardInput): tf.Scalar; dispose(): void } }) => {
    const p = r.prepare(PROMPT);
    const v = tf.tidy(() => p.score(new RewardInput(image)).dataSync()[0]);
    p.dispose();
    return v;
  };
  const want = s(alone);
  alone.dispose();
  pick.dispose(); // the personal reward still holds the weights
  assert.ok(Math.abs(s(personal) - want) < 1e-6);
  personal.dispose();
  assert.equal(tf.memory().numTensors, start, 'the last release freed the weights');
});

test("upstream CLIP fixture (transformers CLIPModel): the tower's embeddings equal image_embeds, and centroid / nn scores on them equal the formulas on the upstream embeddings (1e-4)", () => {
  const dir = path.join(PARITY, 'clip');
  const tower = loadEmbeddingTower('pickscore', (m) => {
    assert.equal(m, 'pickscore', 'image-only formulas load no tokenizer');
    return dir;
  });
  const px = readNpy(path.join(dir, 'io', 'pixel_values.npy'));
  const up = readNpy(path.join(dir, 'io', 'image_embeds.npy'));
  const [b, c, h, w] = px.shape;
  const pixels = tf.tidy(() => tf.transpose(tf.tensor4d(px.data as Float32Array, [b, c, h, w]), [0, 2, 3, 1]) as tf.Tensor4D);
  const P = up.shape[1];
  const E = [0, 1].map((i) => [...(up.data as Float32Array).slice(i * P, (i + 1) * P)]);
  const mine = tf.tidy(() => tower.imageFeatures(pixels));
  const got = mine.dataSync();
  for (let i = 0; i < b * P; i++) assert.ok(Math.abs(got[i] - E[Math.floor(i / P)][i % P]) < 1e-4, `image_embeds[${i}]: ${got[i]}`);
  // image 0 liked, image 1 disliked: each formula's score of both images, against the upstream embeddings
  const hist = { dim: P, liked: [Float32Array.from(E[0])], disliked: [Float32Array.from(E[1])] };
  for (const formula of ['centroid', 'nn'] as const) {
    const fitted = fitPersonal(formula, hist);
    const s = tf.tidy(() => fitted.score(mine, null).dataSync());
    E.forEach((e, i) => {
      const want = direct(formula, e, [], [E[0]], [E[1]], [], []);
      assert.ok(Math.abs(s[i] - want) < 1e-4 * Math.max(1, Math.abs(want)), `${formula} image ${i}: ${s[i]} vs ${want}`);
    });
    fitted.dispose();
  }
  tf.dispose([pixels, mine]);
  tower.dispose();
});
