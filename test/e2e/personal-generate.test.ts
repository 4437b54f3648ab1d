// `reno generate --preset tiny --user examples/history.json` end to end with only the personal reward: like guidance
// raises the user's Q(+) of the best image over the initial one, dislike guidance lowers it (same seed), read from
// metrics.jsonl and again by scoring best.png / init.png with the reward.
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { REWARDS } from '../../rewards/index.js';
import { RewardInput } from '../../rewards/input.js';
import { personalReward } from '../../rewards/personal.js';
import { generateCommand } from '../../src/commands/generate.js';
import { readImage } from '../../src/image/png.js';
import { ROOT, tmpDir } from '../helpers.js';

if (!REWARDS.some((r) => r.name === 'personal')) REWARDS.push(personalReward); // until the registry lists it

const HISTORY = path.join(ROOT, 'examples', 'history.json');
const ONLY_PERSONAL = { weights: { personal: 1, imagereward: 0, aesthetic: 0, pickscore: 0, clip: 0 } };
const metrics = (dir: string) =>
  fs
    .readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

test('like raises and dislike lowers the personal score of the best image (same seed)', async (t) => {
  const out = tmpDir('reno-personal-e2e');
  const prompt = 'a circle';
  const q: Record<string, { init: number; best: number; dir: string }> = {};
  for (const guidance of ['like', 'dislike'] as const) {
    const r = await generateCommand({
      prompt,
      preset: 'tiny',
      user: HISTORY,
      guidance,
      steps: 10,
      seed: 3,
      out,
      backend: 'wasm',
      quiet: true,
      overrides: ONLY_PERSONAL,
    });
    const m = metrics(r.dir);
    assert.equal(m.length, 10);
    // loss -> Q(+): like loss = -log Q, dislike loss = -log(1 - Q)
    const toQ = (loss: number) => (guidance === 'like' ? Math.exp(-loss) : 1 - Math.exp(-loss));
    const best = m.reduce((a, b) => (b.total < a.total ? b : a));
    q[guidance] = { init: toQ(m[0].rewards.personal), best: toQ(best.rewards.personal), dir: r.dir };
    assert.match(fs.readFileSync(path.join(r.dir, 'run.yaml'), 'utf8'), /active_rewards:\n\s+- personal/);
  }
  t.diagnostic(
    `Q(+) like: ${q.like.init.toFixed(4)} -> ${q.like.best.toFixed(4)}; dislike: ${q.dislike.init.toFixed(4)} -> ${q.dislike.best.toFixed(4)}`,
  );
  assert.ok(Math.abs(q.like.init - q.dislike.init) < 1e-6, 'same seed, same initial image');
  assert.ok(q.like.best > q.like.init, `like: ${q.like.best} <= ${q.like.init}`);
  assert.ok(q.dislike.best < q.dislike.init, `dislike: ${q.dislike.best} >= ${q.dislike.init}`);
  // the saved images, scored again by the reward (8-bit PNGs, so only the direction is compared)
  await tf.setBackend('wasm');
  const reward = await personalReward.load({
    locate: () => path.join(ROOT, 'presets', 'tiny', 'HuggingFaceTB', 'SmolVLM-256M-Instruct'),
    smokeTest: true,
    personal: { historyFile: HISTORY, guidance: 'like', nRef: 8 },
  });
  const p = reward.prepare(prompt);
  const score = async (file: string) => {
    const img = await readImage(file);
    const input = new RewardInput(img);
    const s = p.score(input);
    const v = (await s.data())[0];
    tf.dispose([s, img]);
    input.dispose();
    return v;
  };
  assert.ok((await score(path.join(q.like.dir, 'best.png'))) > (await score(path.join(q.like.dir, 'init.png'))));
  assert.ok((await score(path.join(q.dislike.dir, 'best.png'))) < (await score(path.join(q.dislike.dir, 'init.png'))));
  p.dispose();
  reward.dispose();
});
