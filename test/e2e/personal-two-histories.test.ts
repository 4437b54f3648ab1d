// Two users of opposite taste (examples/history.json likes what examples/history-opposite.json dislikes; both from
// the tiny preset's taste world, scripts/tiny/preference.ts) with the committed tiny preference checkpoint: the
// personal reward ranks one fixed set of candidate images differently for the two histories, and, from the same
// seed, like guidance raises and dislike guidance lowers each user's Q(+) of the best image.
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { REWARDS } from '../../rewards/index.js';
import { RewardInput } from '../../rewards/input.js';
import { personalReward } from '../../rewards/personal.js';
import { generateCommand } from '../../src/commands/generate.js';
import { renderImage, type ImageSpec } from '../../src/preference/synth.js';
import { ROOT, backend, tmpDir } from '../helpers.js';

if (!REWARDS.some((r) => r.name === 'personal')) REWARDS.push(personalReward); // until the registry lists it

const HISTORIES = { history: path.join(ROOT, 'examples', 'history.json'), opposite: path.join(ROOT, 'examples', 'history-opposite.json') };
const SMOLVLM = path.join(ROOT, 'presets', 'tiny', 'HuggingFaceTB', 'SmolVLM-256M-Instruct');
const ONLY_PERSONAL = { weights: { personal: 1, imagereward: 0, aesthetic: 0, pickscore: 0, clip: 0 } };
const PROMPT = 'a circle';

/** The fixed candidates: one circle on each background, in two colours and both sizes. */
function candidates(): ImageSpec[] {
  const out: ImageSpec[] = [];
  const backgrounds = ['white', 'sky', 'sand', 'grey', 'black'];
  backgrounds.forEach((background, i) =>
    out.push({
      shape: 'circle',
      count: 1,
      colour: i % 2 ? 'blue' : 'red',
      background,
      texture: 'flat',
      size: i % 2 ? 'small' : 'large',
      angle: 0,
      dx: 0,
      dy: 0,
    }),
  );
  return out;
}

async function scores(history: string): Promise<number[]> {
  const reward = await personalReward.load({
    locate: () => SMOLVLM,
    smokeTest: true,
    personal: { historyFile: history, guidance: 'like', nRef: 8, log: () => {} },
  });
  const p = reward.prepare(PROMPT);
  try {
    const out: number[] = [];
    for (const c of candidates()) {
      const img = tf.tidy(() => tf.div(tf.tensor4d(renderImage(c, 64), [1, 64, 64, 3], 'int32').toFloat(), 255)) as tf.Tensor4D;
      const input = new RewardInput(img);
      const s = p.score(input);
      out.push((await s.data())[0]);
      tf.dispose([s, img]);
      input.dispose();
    }
    return out;
  } finally {
    p.dispose();
    reward.dispose();
  }
}

const order = (xs: number[]) =>
  xs
    .map((x, i) => [x, i])
    .sort((a, b) => b[0] - a[0])
    .map((x) => x[1]);

// todo until the tiny model reads the history (issue 24, bench/RESULTS.md "Personalisation"): the test runs and
// reports its result, and fails the suite once the todo is removed
test(
  'the personal reward ranks the same candidates differently for two opposite histories',
  { todo: 'the tiny checkpoint does not read the history yet (issue 24)' },
  async (t) => {
    await backend('wasm');
    const a = await scores(HISTORIES.history);
    const b = await scores(HISTORIES.opposite);
    t.diagnostic(`Q(+) history: ${a.map((x) => x.toFixed(3)).join(' ')}; opposite: ${b.map((x) => x.toFixed(3)).join(' ')}`);
    assert.notDeepEqual(order(a), order(b), 'both histories rank the candidates in the same order');
    assert.notEqual(order(a)[0], order(b)[0], 'both histories prefer the same candidate');
  },
);

test('like and dislike move the best image in opposite directions for each history (same seed)', async (t) => {
  const out = tmpDir('reno-personal-two');
  for (const [name, history] of Object.entries(HISTORIES)) {
    const q: Record<string, { init: number; best: number }> = {};
    for (const guidance of ['like', 'dislike'] as const) {
      const r = await generateCommand({
        prompt: PROMPT,
        preset: 'tiny',
        user: history,
        guidance,
        steps: 6,
        seed: 5,
        out,
        backend: 'wasm',
        quiet: true,
        overrides: ONLY_PERSONAL,
      });
      const m = fs
        .readFileSync(path.join(r.dir, 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { total: number; rewards: { personal: number } });
      const toQ = (loss: number) => (guidance === 'like' ? Math.exp(-loss) : 1 - Math.exp(-loss));
      const best = m.reduce((x, y) => (y.total < x.total ? y : x));
      q[guidance] = { init: toQ(m[0].rewards.personal), best: toQ(best.rewards.personal) };
    }
    t.diagnostic(
      `${name}: like ${q.like.init.toFixed(4)} -> ${q.like.best.toFixed(4)}; dislike ${q.dislike.init.toFixed(4)} -> ${q.dislike.best.toFixed(4)}`,
    );
    assert.ok(Math.abs(q.like.init - q.dislike.init) < 1e-6, `${name}: same seed, same initial image`);
    assert.ok(q.like.best > q.like.init, `${name}: like did not raise Q(+): ${q.like.best} <= ${q.like.init}`);
    assert.ok(q.dislike.best < q.dislike.init, `${name}: dislike did not lower Q(+): ${q.dislike.best} >= ${q.dislike.init}`);
  }
});
