// The CLIP-family rewards (PickScore, CLIP score) on the tiny preset's random CLIPModels (real layout, real
// vocabulary, 224 input): ReNO's formula, gradients against central differences, the shared 224 view, leaks;
// plus the tiny folders against the model registry and the aesthetic ViT-L's 768-d projection.
import assert from 'node:assert/strict';
import * as path from 'node:path';
import { after, before, test } from 'node:test';
import * as tf from '../../src/runtime/tf.js';
import { writeTinyClipRewards } from '../../scripts/tiny/clip-rewards.js';
import { loadClipModel, loadClipTokenizer, tokenizeForClip } from '../../src/models/clip/load.js';
import { clipScoreReward } from '../../rewards/clip-score.js';
import { RewardInput } from '../../rewards/input.js';
import { pickscoreReward } from '../../rewards/pickscore.js';
import { CLIP224, clipPreprocess } from '../../src/image/preprocess.js';
import type { PreparedReward, Reward, RewardLoadContext, RewardSpec } from '../../rewards/types.js';
import { modelsVerify } from '../../src/commands/models.js';
import { getModel } from '../../src/config/models.js';
import { missingFiles } from '../../src/weights/hub.js';
import { ASSETS, backend, maxRelErr, noLeak, testBackends, tmpDir } from '../helpers.js';

const root = tmpDir('reno-clip-rewards');
const PROMPT = 'a watercolor painting of a red fox in the snow';
const ctx: RewardLoadContext = { locate: (name) => path.join(root, getModel(name).repo), smokeTest: true };
const loaded = new Map<string, { reward: Reward; prepared: PreparedReward }>();
let image: tf.Tensor4D;

before(async () => {
  await backend('cpu');
  writeTinyClipRewards(root, ASSETS);
  // a smooth-ish 96x64 image in [0.1, 0.9] (non-square: the resize and the crop both act)
  image = tf.tidy(() => tf.add(tf.mul(tf.sigmoid(tf.randomNormal([1, 64, 96, 3], 0, 1.5, 'float32', 3)), 0.8), 0.1) as tf.Tensor4D);
  for (const spec of [pickscoreReward, clipScoreReward]) {
    const reward = await spec.load(ctx);
    loaded.set(spec.name, { reward, prepared: reward.prepare(PROMPT) });
  }
});

after(() => {
  for (const { reward, prepared } of loaded.values()) {
    prepared.dispose();
    reward.dispose();
  }
  image.dispose();
});

test('the tiny folders satisfy the registry (reno models verify) and the aesthetic CLIP projects to 768', async () => {
  const lines: string[] = [];
  const out = { write: (s: string) => (lines.push(s), true) } as unknown as NodeJS.WritableStream;
  const res = await modelsVerify(['pickscore', 'clip'], { modelsDir: root, env: {}, out });
  assert.deepEqual(res.map((r) => r.name).sort(), ['clip', 'clip-h-tokenizer', 'pickscore'], lines.join(''));
  assert.ok(
    res.every((r) => r.ok),
    lines.join(''),
  );
  const aes = getModel('aesthetic');
  assert.deepEqual(missingFiles(path.join(root, aes.repo), aes.files), []);
  const vitL = loadClipModel(path.join(root, aes.repo));
  assert.equal(vitL.config.vision.hiddenAct, 'quick_gelu');
  const f = tf.tidy(() => vitL.getImageFeatures(clipPreprocess(image)));
  assert.deepEqual(f.shape, [1, 768]);
  f.dispose();
  vitL.dispose();
});

for (const spec of [pickscoreReward, clipScoreReward] as RewardSpec[]) {
  test(`${spec.name}: score = exp(logit_scale) * cos (CLIPModel.forward's logits_per_image), loss = ${spec.offset} - score`, () => {
    const { prepared } = loaded.get(spec.name)!;
    const dir = ctx.locate(spec.name);
    const model = loadClipModel(dir);
    const tok = loadClipTokenizer(ctx.locate('clip-h-tokenizer'));
    const { ids, mask } = tokenizeForClip(tok, [PROMPT]);
    assert.equal(ids.shape[1], mask.sum().dataSync()[0]); // padding=True: one prompt is not padded
    assert.equal(ids.dataSync()[ids.shape[1] - 1], 49407);
    const ref = tf.tidy(() => model.forward(ids, mask, clipPreprocess(image)).logitsPerImage.dataSync()[0]);
    assert.ok(Math.abs(model.logitScale() - 100) < 0.1); // the preset stores log(100)
    tf.tidy(() => {
      const input = new RewardInput(image);
      const s = prepared.score(input).dataSync()[0];
      const l = prepared.loss(input).dataSync()[0];
      assert.ok(Math.abs(s - ref) < 1e-4 * Math.max(1, Math.abs(ref)), `${s} vs ${ref}`);
      assert.ok(Math.abs(l - (spec.offset - s)) < 1e-4, `${l} vs ${spec.offset} - ${s}`);
    });
    tf.dispose([ids, mask]);
    model.dispose();
  });

  test(`${spec.name}: the gradient matches central differences in random pixel directions`, (t) => {
    const { prepared } = loaded.get(spec.name)!;
    const f = (x: tf.Tensor) => prepared.loss(new RewardInput(x as tf.Tensor4D));
    const grad = tf.tidy(() => tf.grad(f)(image));
    const gnorm = tf.tidy(() => tf.norm(grad).dataSync()[0]);
    assert.ok(gnorm > 0 && Number.isFinite(gnorm));
    // unit directions: 3 random ones and the gradient's own. h = 0.1 moves each of the 18432 values by ~7e-4; a
    // smaller step drowns in float32 noise of the loss (~1e-5 on a loss of ~40 gives ~5e-4 at h = 0.01)
    for (let k = 0; k < 4; k++) {
      tf.tidy(() => {
        const d = k < 3 ? tf.randomNormal(image.shape, 0, 1, 'float32', 100 + k) : grad;
        const u = tf.div(d, tf.norm(d));
        const h = k < 3 ? 0.1 : 0.01; // the loss curves most along the gradient: a shorter step there
        const lp = tf.tidy(() => f(tf.add(image, tf.mul(u, h)))).dataSync()[0];
        const lm = tf.tidy(() => f(tf.sub(image, tf.mul(u, h)))).dataSync()[0];
        const fd = (lp - lm) / (2 * h);
        const an = tf.sum(tf.mul(grad, u)).dataSync()[0];
        const rel = Math.abs(fd - an) / Math.abs(an);
        t.diagnostic(
          `direction ${k < 3 ? k : 'grad'}: finite difference ${fd.toExponential(4)}, gradient ${an.toExponential(4)}, rel ${rel.toExponential(2)}`,
        );
        assert.ok(rel < 1e-2, `${spec.name} direction ${k}: finite difference ${fd} vs gradient ${an} (rel ${rel})`);
      });
    }
    grad.dispose();
  });

  test(`${spec.name}: loss() over repeated calls, and its gradient, leave no tensors`, async () => {
    const { prepared } = loaded.get(spec.name)!;
    tf.tidy(() => void prepared.loss(new RewardInput(image))); // warm-up (kernels, caches)
    await noLeak(() => {
      for (let i = 0; i < 3; i++) tf.tidy(() => void prepared.loss(new RewardInput(image)));
      for (let i = 0; i < 2; i++) tf.tidy(() => void tf.grad((x: tf.Tensor) => prepared.loss(new RewardInput(x as tf.Tensor4D)))(image));
      // outside tidy: the input's cached view lives in the caller's scope, the result is the caller's to dispose
      tf.engine().startScope();
      const input = new RewardInput(image);
      prepared.loss(input).dispose();
      prepared.score(input).dispose();
      tf.engine().endScope();
    });
  });
}

test('both rewards share one 224 view of the input, computed once, still alive for the second reward', () => {
  tf.tidy(() => {
    const input = new RewardInput(image);
    let calls = 0;
    const view = input.view(CLIP224, (x) => (calls++, clipPreprocess(x)));
    const a = loaded.get('pickscore')!.prepared.loss(input);
    const b = loaded.get('clip')!.prepared.loss(input);
    assert.equal(calls, 1);
    assert.ok(!view.isDisposed);
    assert.ok(Number.isFinite(a.dataSync()[0]) && Number.isFinite(b.dataSync()[0]));
    // the rewards differ (different random weights)
    assert.notEqual(a.dataSync()[0] - 30, b.dataSync()[0] - 100);
  });
});

for (const be of testBackends().filter((b) => b !== 'cpu')) {
  test(`pickscore and clip: loss and image gradient on ${be} equal cpu's`, async (t) => {
    await backend('cpu');
    const ref = new Map<string, { loss: number; grad: Float32Array }>();
    for (const [name, { prepared }] of loaded) {
      const f = (x: tf.Tensor) => prepared.loss(new RewardInput(x as tf.Tensor4D));
      ref.set(
        name,
        tf.tidy(() => ({ loss: f(image).dataSync()[0], grad: tf.grad(f)(image).dataSync() as Float32Array })),
      );
    }
    await backend(be);
    try {
      for (const spec of [pickscoreReward, clipScoreReward]) {
        const reward = await spec.load(ctx);
        const prepared = reward.prepare(PROMPT);
        const f = (x: tf.Tensor) => prepared.loss(new RewardInput(x as tf.Tensor4D));
        const img = tf.tensor(image.dataSync(), image.shape) as tf.Tensor4D;
        const { loss, grad } = tf.tidy(() => ({ loss: f(img).dataSync()[0], grad: tf.grad(f)(img).dataSync() as Float32Array }));
        const r = ref.get(spec.name)!;
        const e = maxRelErr(grad, r.grad);
        t.diagnostic(`${spec.name} on ${be}: loss ${loss} vs cpu ${r.loss}; gradient rel err ${e.toExponential(2)}`);
        assert.ok(Math.abs(loss - r.loss) < 1e-4 * Math.abs(r.loss));
        assert.ok(e < 1e-3, `${spec.name} gradient on ${be}: rel err ${e}`);
        img.dispose();
        prepared.dispose();
        reward.dispose();
      }
    } finally {
      await backend('cpu');
    }
  });
}
