// The preference dataset format (DIR/images, DIR/pairs.jsonl): the synthetic taste world writer (deterministic,
// seen and unseen users, 64x64 PNGs, prompts naming the content), the validating reader (errors name file, line
// and field), seen/unseen test users, reference pools and seeded sampling, and the image cache.
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { ImageCache, readPreferenceDataset, referencePool, rngFor, sampleReferences, splitPairs, trainTargets } from '../../src/preference/data.js';
import { SHAPES, TASTE_FEATURES, tasteFeatures, utility, writeTasteWorld } from '../../src/preference/synth.js';
import { preferenceSynth } from '../../src/commands/preference.js';
import { DataError, UsageError } from '../../src/errors.js';
import { backend, noLeak, tmpDir } from '../helpers.js';

const hashDir = (dir: string): string => {
  const h = createHash('sha256');
  const walk = (d: string) => {
    for (const n of fs.readdirSync(d).sort()) {
      const p = path.join(d, n);
      if (fs.statSync(p).isDirectory()) walk(p);
      else h.update(n).update(fs.readFileSync(p));
    }
  };
  walk(dir);
  return h.digest('hex');
};

test('synth: deterministic for a seed; seen users have train/val/test, unseen users only test; PNGs 64x64', async () => {
  const root = tmpDir('reno-synth');
  const [a, b, c] = ['a', 'b', 'c'].map((n) => path.join(root, n));
  const r = await preferenceSynth({ out: a, users: 5, pairsPerUser: 10, seed: 7, quiet: true });
  await writeTasteWorld({ out: b, users: 5, pairsPerUser: 10, seed: 7 });
  await writeTasteWorld({ out: c, users: 5, pairsPerUser: 10, seed: 8 });
  assert.equal(hashDir(a), hashDir(b));
  assert.notEqual(hashDir(a), hashDir(c));
  assert.deepEqual(r.users, { seen: 4, unseen: 1 });
  assert.equal(r.pairs, 50);
  assert.equal(r.images, 100);
  await assert.rejects(preferenceSynth({ out: a, quiet: true }), UsageError); // refuses to overwrite a dataset
  const ds = readPreferenceDataset(a);
  assert.equal(ds.pairs.length, 50);
  assert.deepEqual([...ds.seen].sort(), ['u000', 'u001', 'u002', 'u003']);
  for (const u of ds.seen) assert.deepEqual([...new Set(ds.byUser.get(u)!.map((i) => ds.pairs[i].split))].sort(), ['test', 'train', 'val']);
  assert.ok(ds.byUser.get('u004')!.every((i) => ds.pairs[i].split === 'test'));
  assert.equal(splitPairs(ds, 'test', 'unseen').length, 10);
  assert.equal(splitPairs(ds, 'test', 'seen').length, 4 * 3); // a quarter of 10, rounded
  const meta = await sharp(ds.pairs[0].liked).metadata();
  assert.deepEqual([meta.width, meta.height, meta.format], [64, 64, 'png']);
  // prompts name the content; the labels follow the recorded utility more often than not
  const lines = fs
    .readFileSync(path.join(a, 'pairs.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  for (const l of lines) assert.match(l.prompt, new RegExp(`^(a|two|three) (${SHAPES.join('|')})s?$`));
  const world = JSON.parse(fs.readFileSync(path.join(a, 'world.json'), 'utf8'));
  assert.deepEqual(world.taste_features, [...TASTE_FEATURES]);
  assert.ok(world.oracle_test_accuracy.true_utility > 0.6);
  assert.deepEqual(tasteFeatures({ colour: 'red', background: 'black', texture: 'striped', size: 'large' }).slice(2), [1, 1]);
  assert.equal(utility([1, 0, 0, 0], { colour: 'blue', background: 'white', texture: 'flat', size: 'small' }) < 0, true);
});

function dataset(lines: unknown[]): string {
  const dir = tmpDir('reno-pairs');
  fs.mkdirSync(path.join(dir, 'images', 'u'), { recursive: true });
  for (const n of ['a', 'b', 'c', 'd', 'e', 'f']) fs.writeFileSync(path.join(dir, 'images', 'u', `${n}.png`), '');
  fs.writeFileSync(path.join(dir, 'pairs.jsonl'), lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n');
  return dir;
}

const pair = (user: string, l: string, d: string, split: string, prompt = 'p') => ({
  user,
  prompt,
  liked: `images/u/${l}.png`,
  disliked: `images/u/${d}.png`,
  split,
});

test('reader: every error names the file, the line and the field', () => {
  const ok = pair('u1', 'a', 'b', 'train');
  const cases: [unknown[], RegExp][] = [
    [[ok, '{"user": '], /pairs\.jsonl:2: not valid JSON/],
    [[ok, ok, { ...ok, split: 'dev' }], /pairs\.jsonl:3: "split" must be one of train, val, test, found "dev"/],
    [[{ ...ok, user: '' }], /pairs\.jsonl:1: "user" is empty/],
    [[{ ...ok, prompt: 5 }], /pairs\.jsonl:1: "prompt" must be a string, found 5/],
    [[{ ...ok, liked: undefined }], /pairs\.jsonl:1: "liked" must be a string, found nothing/],
    [[ok, { ...ok, disliked: 'images/u/zz.png' }], /pairs\.jsonl:2: "disliked" image not found: .*zz\.png/],
    [[{ ...ok, liked: '../x.png' }], /pairs\.jsonl:1: "liked" must be a path relative to/],
    [[{ ...ok, disliked: ok.liked }], /pairs\.jsonl:1: "liked" and "disliked" are the same image/],
    [['[1, 2]'], /pairs\.jsonl:1: a pair must be a JSON object/],
    [[''], /no pairs/],
  ];
  for (const [lines, re] of cases)
    assert.throws(
      () => readPreferenceDataset(dataset(lines)),
      (e: Error) => e instanceof DataError && re.test(e.message),
      String(re),
    );
  assert.throws(() => readPreferenceDataset(tmpDir('reno-empty')), /cannot read pairs\.jsonl/);
  // blank lines are skipped (line numbers still count them); unknown keys are ignored; an empty prompt is allowed
  const ds = readPreferenceDataset(dataset([ok, '', { ...pair('u2', 'c', 'd', 'test', ''), meta: { x: 1 } }]));
  assert.deepEqual(
    ds.pairs.map((p) => [p.line, p.user, p.prompt]),
    [
      [1, 'u1', 'p'],
      [3, 'u2', ''],
    ],
  );
});

test('reference pools and seeded sampling: never the target; train targets use train pairs; test targets their split too', () => {
  const dir = dataset([
    pair('s', 'a', 'b', 'train'),
    pair('s', 'c', 'd', 'train'),
    pair('s', 'e', 'f', 'train'),
    pair('s', 'a', 'c', 'val'),
    pair('s', 'b', 'd', 'test'),
    pair('s', 'd', 'e', 'test'),
    pair('n', 'a', 'f', 'test'),
    pair('n', 'b', 'e', 'test'),
    pair('lone', 'c', 'f', 'train'),
  ]);
  const ds = readPreferenceDataset(dir);
  const idx = (ps: { index: number }[]) => ps.map((p) => p.index).sort();
  assert.deepEqual(idx(referencePool(ds, ds.pairs[0])), [1, 2]);
  assert.deepEqual(idx(referencePool(ds, ds.pairs[3])), [0, 1, 2]);
  assert.deepEqual(idx(referencePool(ds, ds.pairs[4])), [0, 1, 2, 5]);
  assert.deepEqual(idx(referencePool(ds, ds.pairs[6])), [7]); // an unseen user: their other test pairs
  assert.deepEqual(idx(trainTargets(ds)), [0, 1, 2]); // "lone" has no reference
  assert.ok(ds.seen.has('s') && !ds.seen.has('n'));
  const a = sampleReferences(ds, ds.pairs[4], 2, rngFor('x', 1), true).map((p) => p.index);
  const b = sampleReferences(ds, ds.pairs[4], 2, rngFor('x', 1), true).map((p) => p.index);
  assert.deepEqual(a, b);
  assert.equal(new Set(a).size, 2);
  assert.ok(!a.includes(4));
  const ordered = sampleReferences(ds, ds.pairs[4], 8, rngFor('y'), false).map((p) => p.index);
  assert.deepEqual(ordered, [0, 1, 2, 5]); // evaluation: all of them, in file order
});

test('image cache: decodes once, bounded, frees what it drops', async () => {
  await backend('cpu');
  const dir = tmpDir('reno-imgcache');
  const files = await Promise.all(
    [0, 1, 2].map(async (i) => {
      const f = path.join(dir, `${i}.png`);
      await sharp(Buffer.alloc(4 * 4 * 3, 80 * i), { raw: { width: 4, height: 4, channels: 3 } })
        .png()
        .toFile(f);
      return f;
    }),
  );
  await noLeak(async () => {
    const c = new ImageCache(2, (x) => tf.mul(x, 2) as tf.Tensor4D);
    const t0 = await c.get(files[0]);
    assert.equal(await c.get(files[0]), t0);
    assert.deepEqual(t0.shape, [1, 4, 4, 3]);
    assert.ok(Math.abs(t0.dataSync()[0]) < 1e-6);
    assert.ok(Math.abs((await c.get(files[1])).dataSync()[0] - (2 * 80) / 255) < 1e-6);
    await c.get(files[2]); // drops files[0]
    assert.ok(t0.isDisposed);
    c.dispose();
  });
  await assert.rejects(new ImageCache().get(path.join(dir, 'nope.png')), DataError);
});
