// `reno preference eval --baselines embedding,embedding:nn`: the embedding personal model as a baseline row with its
// own N_ref sweep, on a small synthetic taste world (tiny preset towers, wasm). Its top-1 accuracy equals the one
// computed here by scoring every query pair with the `personal` reward in embedding mode (history.json files built
// from the protocol's histories): the eval row and the reward a user runs are the same model.
import assert from 'node:assert/strict';
import * as tf from '../../src/runtime/tf.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, test } from 'node:test';
import { RewardInput } from '../../rewards/input.js';
import { personalReward } from '../../rewards/personal.js';
import { readPreferenceDataset } from '../../src/preference/data.js';
import { evalProtocol } from '../../src/preference/protocol.js';
import { writeTasteWorld } from '../../src/preference/synth.js';
import { preferenceEval } from '../../src/commands/preference-eval.js';
import { readImage } from '../../src/image/png.js';
import { getModel } from '../../src/config/models.js';
import { ROOT, backend, tmpDir } from '../helpers.js';

const CKPT = path.join(ROOT, 'presets', 'tiny', 'reno', 'preference-tiny');
const TINY = path.join(ROOT, 'presets', 'tiny');
let root = '';
let data = '';

before(async () => {
  await backend('wasm');
  root = tmpDir('reno-pref-eval-emb');
  data = path.join(root, 'world');
  await writeTasteWorld({ out: data, users: 6, pairsPerUser: 8, unseen: 0.34, seed: 3 });
});

test("eval --baselines embedding,embedding:nn: rows with their N_ref sweep; the accuracy equals the personal reward's own scores", async () => {
  const r = await preferenceEval({
    model: [CKPT],
    data,
    out: path.join(root, 'eval'),
    preset: 'tiny',
    baselines: ['embedding', 'embedding:nn'],
    backend: 'wasm',
    quiet: true,
    print: () => {},
  });
  const emb = r.models.filter((m) => m.kind === 'embedding');
  assert.deepEqual(
    emb.map((m) => m.label),
    ['Embedding centroid (pickscore)', 'Embedding nn (pickscore)'],
  );
  const json = JSON.parse(fs.readFileSync(path.join(root, 'eval', 'tables.json'), 'utf8'));
  assert.ok(json.tables[0].columns.includes('Embedding centroid (pickscore)'));
  for (const m of emb) {
    assert.deepEqual(
      m.sweep!.map((s) => s.nRef),
      [0, 1, 2, 3],
    );
    assert.equal(m.sweep![0].accuracy.all, 0.5, 'no history: every image scores 0, all ties');
    assert.equal(m.nRef, 3);
  }
  assert.ok(r.sweep.series.some((s) => s.model === 'Embedding centroid (pickscore)'));
  // the same numbers through the reward: one history.json per user (the protocol's first 3 pairs)
  const ds = readPreferenceDataset(data);
  const proto = evalProtocol(ds, { maxNRef: 3, seed: 0 });
  let correct = 0;
  let n = 0;
  for (const u of proto.users) {
    const file = path.join(root, `${u.user}.json`);
    fs.writeFileSync(
      file,
      JSON.stringify({ user: u.user, pairs: u.history.slice(0, 3).map((p) => ({ prompt: p.prompt, liked: p.liked, disliked: p.disliked })) }),
    );
    const reward = await personalReward.load({
      locate: (m) => path.join(TINY, getModel(m).repo),
      smokeTest: true,
      personal: { historyFile: file, guidance: 'like', nRef: 3, mode: 'embedding', log: () => {} },
    });
    for (const q of u.queries) {
      const p = reward.prepare(q.prompt);
      const s: number[] = [];
      for (const f of [q.liked, q.disliked]) {
        const img = await readImage(f);
        const input = new RewardInput(img as never);
        const t = p.score(input);
        s.push((await t.data())[0]);
        tf.dispose([t, img as never]);
        input.dispose();
      }
      p.dispose();
      correct += s[0] > s[1] ? 1 : s[0] === s[1] ? 0.5 : 0;
      n++;
    }
    reward.dispose();
  }
  assert.equal(emb[0].top1.n.seen + emb[0].top1.n.unseen, n);
  assert.ok(Math.abs(emb[0].top1.all - correct / n) < 1e-9, `eval ${emb[0].top1.all} vs reward ${correct / n}`);
});

test('eval --baselines embedding:unknown is refused by name', async () => {
  await assert.rejects(
    preferenceEval({
      model: [CKPT],
      data,
      out: path.join(root, 'eval2'),
      preset: 'tiny',
      baselines: ['embedding:cosine'],
      backend: 'wasm',
      quiet: true,
      print: () => {},
    }),
    /--baselines embedding:cosine: unknown formula "cosine" \(known: centroid, nn, ridge, ridge-sub, ridge-cat\)/,
  );
});
