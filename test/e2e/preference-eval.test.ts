// `reno preference eval | attention | tsne` on a small synthetic taste world with the tiny preset's preference
// checkpoint (wasm): the files, their columns and groups, every baseline, the per-user scorer against the existing
// per-item scorer (src/preference/eval.ts scorePairs), PNGs of sensible sizes, and the backbone's attention
// recording hook leaving the scores unchanged.
import assert from 'node:assert/strict';
import * as tf from '../../src/runtime/tf.js';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { before, test } from 'node:test';
import sharp from 'sharp';
import { loadPreferenceModel } from '../../src/preference/checkpoint.js';
import { ImageCache, readPreferenceDataset } from '../../src/preference/data.js';
import { accuracyOf, scorePairs } from '../../src/preference/eval.js';
import { evalProtocol, historyRefs, queryTargets, scoreAfterHistory, swapPartners, targetKey, worldGroups } from '../../src/preference/protocol.js';
import { groupedPairwise, type ScoredPair } from '../../src/preference/metrics.js';
import { writeTasteWorld } from '../../src/preference/synth.js';
import { preferenceAttention } from '../../src/commands/preference-attention.js';
import { preferenceEval } from '../../src/commands/preference-eval.js';
import { preferenceTsne } from '../../src/commands/preference-tsne.js';
import { ROOT, backend, noLeak, tmpDir } from '../helpers.js';

const CKPT = path.join(ROOT, 'presets', 'tiny', 'reno', 'preference-tiny');
let root = '';
let data = '';

before(async () => {
  await backend('wasm');
  root = tmpDir('reno-pref-eval');
  data = path.join(root, 'world');
  // 4 seen users (2 test pairs each) and 2 unseen users (8 test pairs: 3 history + 5 queries)
  await writeTasteWorld({ out: data, users: 6, pairsPerUser: 8, unseen: 0.34, seed: 3 });
});

const pngSize = async (file: string) => {
  const m = await sharp(file).metadata();
  return { width: m.width ?? 0, height: m.height ?? 0, format: m.format };
};

test('eval: tables.md / tables.json / nref.png with every baseline, seen and unseen groups, the sweep; --json prints tables.json', async () => {
  const out = path.join(root, 'eval');
  let printed = '';
  const r = await preferenceEval({
    model: [CKPT, { label: 'copy', dir: CKPT }],
    data,
    out,
    preset: 'tiny',
    json: true,
    backend: 'wasm',
    quiet: true,
    print: (s) => (printed += s),
  });
  for (const f of ['tables.md', 'tables.json', 'nref.png', 'nref-all.png']) assert.ok(fs.existsSync(path.join(out, f)), f);
  const json = JSON.parse(fs.readFileSync(path.join(out, 'tables.json'), 'utf8'));
  assert.deepEqual(JSON.parse(printed), json);
  assert.deepEqual(json.protocol.users, { seen: 4, unseen: 2 });
  assert.deepEqual(json.protocol.queries, { seen: 8, unseen: 10 });
  const labels = ['ImageReward', 'Aes Score', 'PickScore', 'CLIP Score', 'HPSv2', 'Untrained VLM', 'copy', 'Ours', 'Ours, swapped history'];
  assert.deepEqual(
    r.models.map((m) => m.label),
    labels,
  );
  const byId = Object.fromEntries(json.tables.map((t: { id: string }) => [t.id, t]));
  assert.deepEqual(Object.keys(byId), ['table1', 'table2', 'table3', 'table4']);
  assert.deepEqual(byId.table1.columns, ['Model', ...labels]);
  assert.deepEqual(byId.table1.rows[0], ['N_ref', 0, 0, 0, 0, 0, 3, 3, 3, 3]);
  assert.deepEqual(
    byId.table2.rows.map((row: unknown[]) => row[0]),
    ['Seen', 'Unseen', '|Δ| (%)'],
  );
  assert.deepEqual(byId.table3.columns, ['Model', 'N_ref', 'Top-1 Acc', 'Top-2 Acc', 'Top-3 Acc']);
  assert.deepEqual(byId.table3.rows[0], ['Random', 0, 25, 50, 75]);
  assert.deepEqual(byId.table4.columns, ['', 'copy', 'Ours']);
  for (const m of r.models) {
    assert.equal(m.top1.n.seen, 8);
    assert.equal(m.top1.n.unseen, 10);
    for (const v of [m.top1.all, m.top1.seen, m.top1.unseen]) assert.ok(v >= 0 && v <= 1, `${m.label}: ${v}`);
    assert.ok(Math.abs(m.top1.all - (8 * m.top1.seen + 10 * m.top1.unseen) / 18) < 1e-12, 'all = pair-weighted mean of the groups');
    assert.equal(m.topK.all.length, 3);
    assert.ok(m.topK.all[0] <= m.topK.all[1] && m.topK.all[1] <= m.topK.all[2], `${m.label}: top-k not monotone`);
  }
  const ours = r.models.find((m) => m.label === 'Ours')!;
  const swapped = r.models.find((m) => m.label === 'Ours, swapped history')!;
  assert.equal(swapped.kind, 'swapped');
  assert.equal(swapped.nRef, 3);
  assert.equal(swapped.sweep, undefined);
  assert.deepEqual(r.models.find((m) => m.label === 'copy')!.top1, ours.top1, 'the same checkpoint twice scores the same');
  assert.deepEqual(r.sweep.nRef, [0, 1, 2, 3]);
  assert.deepEqual(
    r.sweep.series.map((s) => s.model),
    ['Untrained VLM', 'copy', 'Ours'],
  );
  assert.equal(r.sweep.series[2].all[3], ours.top1.all, 'the sweep at N_ref 3 is the main number');
  const md = fs.readFileSync(path.join(out, 'tables.md'), 'utf8');
  for (const s of [
    '**Table 1.**',
    '**Table 2.**',
    '**Table 3.**',
    '**Table 4.**',
    '| Random | 0 | 25.00 | 50.00 | 75.00 |',
    'Tiny smoke-test preset',
    '"Swapped history": each user\'s queries scored after the history of another user of the same kind and of another taste group (6 users).',
  ])
    assert.ok(md.includes(s), s);
  assert.deepEqual(await pngSize(path.join(out, 'nref.png')), { width: 760, height: 420, format: 'png' });
  assert.deepEqual(await pngSize(path.join(out, 'nref-all.png')), { width: 680, height: 420, format: 'png' });
});

test("eval --controls: the swapped-history row is each user's queries scored after a partner's history (recomputed here), none without the control", async () => {
  const out = path.join(root, 'eval-controls');
  const run = (controls?: string[]) =>
    preferenceEval({ model: [CKPT], data, out, baselines: [], controls, backend: 'wasm', quiet: true, print: () => {} });
  const on = await run();
  assert.deepEqual(
    on.models.map((m) => [m.label, m.kind]),
    [
      ['Ours', 'checkpoint'],
      ['Ours, swapped history', 'swapped'],
    ],
  );
  const [ours, swapped] = on.models;
  // the row is every user's queries scored after their partner's first n_ref history pairs (recomputed here)
  const ds = readPreferenceDataset(data);
  const proto = evalProtocol(ds, { maxNRef: 3, seed: 0 });
  const partners = swapPartners(proto.users, worldGroups(data));
  assert.equal(partners.size, proto.users.length, 'every test user of this world has a partner of another taste group');
  const model = loadPreferenceModel(CKPT);
  const images = new ImageCache(256, (x) => model.pixels(x));
  const pairs: ScoredPair[] = [];
  for (const u of proto.users) {
    const targets = queryTargets(u);
    const s = await scoreAfterHistory(model, await historyRefs(images, partners.get(u.user)!.history.slice(0, 3)), images, targets);
    const q = new Map(targets.map((t, i) => [targetKey(t), s[i]]));
    for (const p of u.queries)
      pairs.push({
        user: u.user,
        group: u.group,
        liked: q.get(targetKey({ prompt: p.prompt, image: p.liked }))!,
        disliked: q.get(targetKey({ prompt: p.prompt, image: p.disliked }))!,
      });
  }
  images.dispose();
  model.dispose();
  assert.deepEqual(swapped.top1, groupedPairwise(pairs));
  const off = await run([]);
  assert.deepEqual(
    off.models.map((m) => m.label),
    ['Ours'],
  );
  assert.deepEqual(off.models[0].top1, ours.top1, 'the control does not change the main row');
  assert.ok(!fs.readFileSync(path.join(out, 'tables.md'), 'utf8').includes('Swapped history'));
  await assert.rejects(run(['shuffle']), /unknown --controls value "shuffle" \(known: swap\)/);
});

test('eval scorer: the per-user history cache gives the Q of src/preference/eval.ts scorePairs for the same references', async () => {
  const ds = readPreferenceDataset(data);
  const proto = evalProtocol(ds, { maxNRef: 3, seed: 0 });
  const model = loadPreferenceModel(CKPT);
  try {
    await noLeak(async () => {
      const images = new ImageCache(4096, (x) => model.pixels(x));
      const items = proto.users.flatMap((u) =>
        u.queries.map((q) => ({
          refs: u.history.map((h) => ({ prompt: h.prompt, liked: h.liked, disliked: h.disliked })),
          prompt: q.prompt,
          liked: q.liked,
          disliked: q.disliked,
        })),
      );
      const ref = await scorePairs(model, items, { images, batchSize: 4 });
      const mine: number[][] = [];
      for (const u of proto.users) {
        const targets = queryTargets(u);
        const s = await scoreAfterHistory(model, await historyRefs(images, u.history), images, targets);
        const at = new Map(targets.map((t, i) => [targetKey(t), 1 / (1 + Math.exp(-s[i]))]));
        for (const q of u.queries)
          mine.push([at.get(targetKey({ prompt: q.prompt, image: q.liked }))!, at.get(targetKey({ prompt: q.prompt, image: q.disliked }))!]);
      }
      mine.forEach(([l, d], i) => {
        assert.ok(
          Math.abs(l - ref.liked[i]) < 1e-5 && Math.abs(d - ref.disliked[i]) < 1e-5,
          `item ${i}: ${l}, ${d} vs ${ref.liked[i]}, ${ref.disliked[i]}`,
        );
      });
      assert.equal(accuracyOf({ liked: mine.map((m) => m[0]), disliked: mine.map((m) => m[1]) }).accuracy, accuracyOf(ref).accuracy);
      images.dispose();
    });
  } finally {
    model.dispose();
  }
});

test('attention hook: recording a layer leaves the scores unchanged; its rows are probabilities, causal, and "mean" is the mean of the heads', async () => {
  const ds = readPreferenceDataset(data);
  const u = evalProtocol(ds, { maxNRef: 3, seed: 0 }).users[0];
  const model = loadPreferenceModel(CKPT);
  const images = new ImageCache(4096, (x) => model.pixels(x));
  try {
    const refs = await historyRefs(images, u.history);
    const q = u.queries[0];
    const px = tf.concat([await images.get(q.liked), await images.get(q.disliked)], 0) as tf.Tensor4D;
    await noLeak(async () => {
      const cache = model.encodeReferences(refs);
      const seq = model.layout.target(q.prompt);
      const plain = tf.tidy(() => model.targetLogitDiff(cache, seq, model.imageHidden(px)));
      const recorded: tf.Tensor3D[] = [];
      const run = (layer: number, head: number | 'mean') =>
        tf.tidy(() => {
          const { hidden } = model.backbone.forwardEmbeds(model.embed(seq, model.imageHidden(px), 2), {
            past: cache,
            recordAttention: { layer, head, sink: (p) => recorded.push(p) },
          });
          return model.backbone.logitDiffAt(
            hidden,
            [seq.ids.length - 1, seq.ids.length - 1],
            model.layout.labelIds.like,
            model.layout.labelIds.dislike,
          );
        });
      const heads = model.backbone.config.text.numHeads;
      const outs = [run(1, 'mean'), run(0, 2), ...Array.from({ length: heads }, (_, h) => run(1, h))];
      const p = await plain.data();
      for (const o of outs) assert.deepEqual(Array.from(await o.data()), Array.from(p), 'recording changed the score');
      const lq = seq.ids.length;
      const lk = cache.length + lq;
      for (const r of recorded) assert.deepEqual(r.shape, [2, lq, lk]);
      const mean = await recorded[0].array();
      const perHead = await Promise.all(recorded.slice(2).map((r) => r.array()));
      for (let b = 0; b < 2; b++)
        for (let i = 0; i < lq; i++) {
          const row = mean[b][i];
          assert.ok(Math.abs(row.reduce((s, v) => s + v, 0) - 1) < 1e-5, 'a row sums to 1');
          for (let k = cache.length + i + 1; k < lk; k++) assert.ok(row[k] < 1e-9, 'no attention to a later position');
          for (let k = 0; k < lk; k++) assert.ok(Math.abs(row[k] - perHead.reduce((s, h) => s + h[b][i][k], 0) / heads) < 1e-6);
        }
      assert.throws(
        () =>
          tf.tidy(
            () =>
              model.backbone.forwardEmbeds(model.embed(seq, model.imageHidden(px), 2), {
                past: cache,
                recordAttention: { layer: 5, head: 0, sink: () => {} },
              }).hidden,
          ),
        /layer 5 is outside/,
      );
      tf.dispose([plain, ...outs, ...recorded]);
      cache.dispose();
    });
    px.dispose();
  } finally {
    images.dispose();
    model.dispose();
  }
});

test('attention and tsne: PNG grids / scatter plots of sensible sizes, with their JSON', async () => {
  const out = path.join(root, 'pictures');
  const a = await preferenceAttention({ model: CKPT, data, users: 2, orders: 2, out, backend: 'wasm', quiet: true });
  assert.equal(a.panels.length, 4);
  for (const p of a.panels) {
    assert.equal(p.probs.length, 16); // the tiny backbone's 16 image tokens
    for (const row of p.probs) {
      assert.equal(row.length, 10); // 10 prototypes
      assert.ok(row.every((v) => v >= 0 && v <= 1) && row.reduce((s, v) => s + v, 0) <= 1 + 1e-6);
    }
  }
  assert.ok(a.spread.withinUser >= 0 && a.spread.betweenUsers >= 0);
  const as = await pngSize(a.png);
  assert.ok(as.width > 700 && as.width < 2500 && as.height > 600 && as.height < 2500, JSON.stringify(as));
  const t = await preferenceTsne({ model: CKPT, data, users: 3, out, backend: 'wasm', quiet: true, iterations: 300 });
  assert.ok(t.points.length >= 6 && t.points.every((p) => Number.isFinite(p.x) && Number.isFinite(p.y)));
  assert.equal(new Set(t.points.map((p) => p.user)).size, 3);
  for (const v of [t.sameUser.map, t.sameUser.features, t.sameUser.featuresWithoutHistory, t.sameUserChance]) assert.ok(v >= 0 && v <= 1);
  assert.deepEqual(await pngSize(t.png), { width: 760, height: 520, format: 'png' });
  for (const f of [a.json, t.json]) JSON.parse(fs.readFileSync(f, 'utf8'));
});
