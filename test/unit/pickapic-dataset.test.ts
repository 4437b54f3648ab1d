// Pick-a-Pic v2 -> per-user preference dataset: the fixture's kept users, no ties, split disjointness, counts,
// determinism, a shard without user_id, an unreadable image, and the row rules / hold-out helpers.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import sharp from 'sharp';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { preferenceDataset, safeName, type PairLine, type PreferenceDatasetStats } from '../../src/commands/preference-dataset.js';
import { classifyRow, holdOut, imageComponents, PickapicScan, planSplits, splitCounts, PAPER_SPLIT } from '../../src/preference/pickapic.js';
import { listParquetFiles, openParquet, parquetBatches, parquetRows } from '../../src/data/parquet.js';
import { FIXTURES, tmpDir } from '../helpers.js';

const PICKAPIC = path.join(FIXTURES, 'pickapic');
const expected = JSON.parse(fs.readFileSync(path.join(PICKAPIC, 'expected.json'), 'utf8')) as {
  rows: number;
  users: number;
  users_with_at_least_11_unique_liked: string[];
  per_user: Record<string, { rows: number; unique_liked: number; non_tie_pairs: number }>;
};
class Collect {
  text = '';
  write(s: string) {
    this.text += s;
    return true;
  }
}

function readPairs(dir: string): PairLine[] {
  return fs
    .readFileSync(path.join(dir, 'pairs.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as PairLine);
}

async function build(out: string, extra: Record<string, unknown> = {}) {
  const log = new Collect();
  const stats = await preferenceDataset({ pickapic: PICKAPIC, out, quiet: true, log: log as unknown as NodeJS.WritableStream, ...extra });
  return { stats, log: log.text, pairs: readPairs(out) };
}

/** The fixture's rows with ids and labels (read independently of the builder's rules). */
async function fixtureRows() {
  const rows: { user: string; l0: number; l1: number; u0: string; u1: string }[] = [];
  for (const f of listParquetFiles(PICKAPIC)) {
    for await (const { row } of parquetRows(f, { columns: ['user_id', 'label_0', 'label_1', 'image_0_uid', 'image_1_uid'] })) {
      rows.push({
        user: String(row.user_id),
        l0: row.label_0 as number,
        l1: row.label_1 as number,
        u0: row.image_0_uid as string,
        u1: row.image_1_uid as string,
      });
    }
  }
  return rows;
}

const uidOf = (rel: string) => path.basename(rel).replace(/\.[a-z]+$/, '');

function checkDisjoint(stats: PreferenceDatasetStats, pairs: PairLine[]) {
  const byUser = new Map<string, PairLine[]>();
  for (const p of pairs) byUser.set(p.user, [...(byUser.get(p.user) ?? []), p]);
  for (const u of stats.users['test-unseen']) {
    const ps = byUser.get(u)!;
    assert.ok(ps.length > 0 && ps.every((p) => p.split === 'test'), `unseen user ${u} has only test pairs`);
  }
  for (const u of stats.users.val)
    assert.ok(
      byUser.get(u)!.every((p) => p.split === 'val'),
      `val user ${u}`,
    );
  for (const u of stats.users.train)
    assert.ok(
      byUser.get(u)!.every((p) => p.split === 'train'),
      `train user ${u}`,
    );
  for (const u of stats.users['test-seen']) {
    const ps = byUser.get(u)!;
    const train = ps.filter((p) => p.split === 'train');
    const tst = ps.filter((p) => p.split === 'test');
    assert.ok(train.length > 0 && tst.length > 0, `seen user ${u} has train and test pairs`);
    assert.equal(train.length + tst.length, ps.length);
    const trainImages = new Set(train.flatMap((p) => [p.liked, p.disliked]));
    for (const p of tst) assert.ok(!trainImages.has(p.liked) && !trainImages.has(p.disliked), `seen user ${u}: test image in train`);
  }
  // A test pair's user is seen iff they have train pairs.
  const trainUsers = new Set(pairs.filter((p) => p.split === 'train').map((p) => p.user));
  const testUsers = new Set(pairs.filter((p) => p.split === 'test').map((p) => p.user));
  assert.deepEqual([...testUsers].filter((u) => trainUsers.has(u)).sort(), [...stats.users['test-seen']].sort());
}

test('fixture: exactly the expected users, no ties, pairs per user, disjoint splits, counts, images', async () => {
  const out = tmpDir('reno-pickapic');
  const { stats, log, pairs } = await build(out);
  const users = [...new Set(pairs.map((p) => p.user))].sort();
  assert.deepEqual(users, [...expected.users_with_at_least_11_unique_liked].sort());
  assert.equal(stats.filter.keptUsers, expected.users_with_at_least_11_unique_liked.length);
  assert.equal(stats.source.rows, expected.rows);
  assert.equal(stats.source.users, expected.users);

  // No tie, and liked is the image labelled 1 in its row.
  const rows = await fixtureRows();
  const ties = new Set(rows.filter((r) => r.l0 === 0.5 && r.l1 === 0.5).map((r) => `${r.user}|${[r.u0, r.u1].sort().join('|')}`));
  assert.ok(ties.size > 0, 'the fixture has ties');
  const labelled = new Set(rows.filter((r) => r.l0 !== 0.5).map((r) => (r.l0 === 1 ? `${r.user}|${r.u0}|${r.u1}` : `${r.user}|${r.u1}|${r.u0}`)));
  for (const p of pairs) {
    const [l, d] = [uidOf(p.liked), uidOf(p.disliked)];
    assert.ok(!ties.has(`${p.user}|${[l, d].sort().join('|')}`), `tie kept: ${JSON.stringify(p)}`);
    assert.ok(labelled.has(`${p.user}|${l}|${d}`), `liked is the image labelled 1: ${JSON.stringify(p)}`);
  }
  assert.equal(stats.filter.dropped.tie, rows.filter((r) => r.l0 === 0.5 && r.l1 === 0.5).length);

  // Every non-tie pair of a kept user, once; unique liked images as in expected.json.
  for (const u of users) {
    const mine = pairs.filter((p) => p.user === u);
    assert.equal(mine.length, expected.per_user[u].non_tie_pairs, `pairs of ${u}`);
    assert.equal(new Set(mine.map((p) => p.liked)).size, expected.per_user[u].unique_liked, `unique liked of ${u}`);
  }

  // Splits (defaults on 19 users: 1 val, 1 seen + 1 unseen test) and disjointness.
  assert.equal(stats.users.val.length, 1);
  assert.equal(stats.users['test-seen'].length, 1);
  assert.equal(stats.users['test-unseen'].length, 1);
  checkDisjoint(stats, pairs);

  // Counts match the file and are printed in the paper's terms.
  const count = (s: string) => pairs.filter((p) => p.split === s).length;
  assert.equal(stats.counts.train.pairs, count('train'));
  assert.equal(stats.counts.val.pairs, count('val'));
  assert.equal(stats.counts.test.pairs, count('test'));
  const images = (ps: PairLine[]) => new Set(ps.flatMap((p) => [p.liked, p.disliked])).size;
  assert.equal(stats.counts.train.images, images(pairs.filter((p) => p.split === 'train')));
  assert.equal(stats.counts.test.seen.images, images(pairs.filter((p) => p.split === 'test' && stats.users['test-seen'].includes(p.user))));
  assert.equal(stats.counts.test.unseen.images, images(pairs.filter((p) => p.split === 'test' && stats.users['test-unseen'].includes(p.user))));
  assert.equal(stats.counts.train.users, 17); // 16 train-only users + the seen one
  assert.match(log, /train: \d+ images and 17 users/);
  assert.match(
    log,
    new RegExp(`test: ${stats.counts.test.seen.images} images from 1 seen users .* ${stats.counts.test.unseen.images} images from 1 unseen users`),
  );
  assert.match(log, /dropped: \d+ ties/);

  // Files: stats.json equals the returned stats, every image decodes, no temporary file left.
  assert.deepEqual(JSON.parse(fs.readFileSync(path.join(out, 'stats.json'), 'utf8')), JSON.parse(JSON.stringify(stats)));
  const rels = new Set(pairs.flatMap((p) => [p.liked, p.disliked]));
  assert.equal(stats.imagesWritten, rels.size);
  for (const rel of [...rels].slice(0, 20)) {
    const meta = await sharp(path.join(out, rel)).metadata();
    assert.equal(meta.format, 'jpeg');
    assert.equal(meta.width, 64);
  }
  assert.deepEqual(fs.readdirSync(out).sort(), ['images', 'pairs.jsonl', 'stats.json']);

  // Deterministic; refusing to overwrite unless asked.
  await assert.rejects(build(out), /pairs\.jsonl exists/);
  const again = await build(out, { overwrite: true });
  assert.deepEqual(again.pairs, pairs);
  fs.rmSync(out, { recursive: true, force: true });
});

test('fixture: other split flags keep the definitions (several seen and unseen users, no val)', async () => {
  const out = tmpDir('reno-pickapic');
  const { stats, pairs } = await build(out, { valUsers: 0, testUsers: 0.5, seenShare: 0.5, seenHoldout: 0.4, seed: 7 });
  assert.equal(stats.users.val.length, 0);
  assert.equal(stats.users['test-seen'].length + stats.users['test-unseen'].length, 10); // round(19 * 0.5)
  assert.equal(stats.users['test-seen'].length, 5);
  assert.equal(pairs.filter((p) => p.split === 'val').length, 0);
  checkDisjoint(stats, pairs);
  fs.rmSync(out, { recursive: true, force: true });
});

/** A tiny shard with the Pick-a-Pic columns (optionally without some), user 1 liking `n` distinct images. */
async function writeShard(file: string, o: { n: number; drop?: string[]; corruptRow?: number }) {
  const jpg = async (v: number) =>
    sharp({ create: { width: 8, height: 8, channels: 3, background: { r: v, g: 40, b: 90 } } })
      .jpeg()
      .toBuffer();
  const rows = await Promise.all(
    Array.from({ length: o.n }, async (_, i) => ({
      user_id: 1n,
      caption: `prompt ${i}`,
      label_0: 1,
      label_1: 0,
      image_0_uid: `u${i}a`,
      image_1_uid: `u${i}b`,
      best_image_uid: `u${i}a`,
      jpg_0: i === o.corruptRow ? new Uint8Array(Buffer.from('not a jpeg at all')) : new Uint8Array(await jpg(10 * i)),
      jpg_1: new Uint8Array(await jpg(10 * i + 5)),
    })),
  );
  const cols: { name: string; type: 'INT64' | 'STRING' | 'DOUBLE' | 'BYTE_ARRAY' }[] = [
    { name: 'user_id', type: 'INT64' },
    { name: 'caption', type: 'STRING' },
    { name: 'label_0', type: 'DOUBLE' },
    { name: 'label_1', type: 'DOUBLE' },
    { name: 'image_0_uid', type: 'STRING' },
    { name: 'image_1_uid', type: 'STRING' },
    { name: 'best_image_uid', type: 'STRING' },
    { name: 'jpg_0', type: 'BYTE_ARRAY' },
    { name: 'jpg_1', type: 'BYTE_ARRAY' },
  ];
  const columnData = cols
    .filter((c) => !o.drop?.includes(c.name))
    .map((c) => ({ name: c.name, type: c.type, data: rows.map((r) => (r as Record<string, unknown>)[c.name]) as never }));
  fs.writeFileSync(file, Buffer.from(parquetWriteBuffer({ columnData, rowGroupSize: 4 })));
}

const tiny = { minLiked: 1, valUsers: 0, testUsers: 0, quiet: true, log: new Collect() as unknown as NodeJS.WritableStream };

test('a shard without user_id fails naming the column and the shard', async () => {
  const dir = tmpDir('reno-pickapic-bad');
  await writeShard(path.join(dir, 'a.parquet'), { n: 3 });
  await writeShard(path.join(dir, 'b.parquet'), { n: 3, drop: ['user_id'] });
  await assert.rejects(preferenceDataset({ pickapic: dir, out: path.join(dir, 'out'), ...tiny }), (e: Error) => {
    assert.equal(e.name, 'DataError');
    assert.match(e.message, /b\.parquet: missing required column 'user_id'/);
    return true;
  });
  assert.ok(!fs.existsSync(path.join(dir, 'out')), 'nothing written before the check');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('a synthetic shard builds; an unreadable image fails naming its shard, row and column; no pairs.jsonl left', async () => {
  const dir = tmpDir('reno-pickapic-img');
  await writeShard(path.join(dir, 'ok.parquet'), { n: 6 });
  const stats = await preferenceDataset({ pickapic: path.join(dir, 'ok.parquet'), out: path.join(dir, 'ok'), ...tiny });
  assert.equal(stats.counts.train.pairs, 6);
  assert.equal(readPairs(path.join(dir, 'ok'))[5].prompt, 'prompt 5');

  await writeShard(path.join(dir, 'bad.parquet'), { n: 6, corruptRow: 5 });
  await assert.rejects(preferenceDataset({ pickapic: path.join(dir, 'bad.parquet'), out: path.join(dir, 'bad'), ...tiny }), (e: Error) => {
    assert.equal(e.name, 'DataError');
    assert.match(e.message, /bad\.parquet row 5: 'jpg_0' \(image u5a\) is not a readable image/);
    return true;
  });
  assert.deepEqual(fs.readdirSync(path.join(dir, 'bad')), ['images']);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('parquet reader: one batch per row group, only the asked-for columns are read', async () => {
  const f = listParquetFiles(PICKAPIC)[0];
  const pf = await openParquet(f);
  const size = fs.statSync(f).size;
  const groups = pf.rowGroups.length;
  const numRows = pf.numRows;
  await pf.close();
  let batches = 0;
  let rows = 0;
  for await (const b of parquetBatches(f, { columns: ['user_id', 'jpg_0'] })) {
    batches++;
    rows += b.rows.length;
    assert.deepEqual(Object.keys(b.rows[0]).sort(), ['jpg_0', 'user_id']);
    assert.ok(Buffer.isBuffer(b.rows[0].jpg_0));
    assert.equal(typeof b.rows[0].user_id, 'bigint');
  }
  assert.equal(batches, groups);
  assert.equal(rows, numRows);
  // Labels only: a small part of the file is read (no image bytes).
  let bytes = 0;
  for await (const _ of parquetBatches(f, { columns: ['label_0', 'label_1'], onClose: (n) => (bytes = n) })) void _;
  assert.ok(bytes > 0 && bytes < (1 << 16) + size / 20, `read ${bytes} of ${size} bytes (64 KiB footer fetch + two label columns)`);
  await assert.rejects(async () => {
    for await (const _ of parquetBatches(f, { columns: ['nope'] })) void _;
  }, /missing required column 'nope'/);
});

test('row rules and hold-out helpers', () => {
  const row = (o: Record<string, unknown>) => ({
    user_id: 5n,
    label_0: 1,
    label_1: 0,
    image_0_uid: 'a',
    image_1_uid: 'b',
    best_image_uid: 'a',
    ...o,
  });
  assert.deepEqual(classifyRow(row({}), 'x'), { kind: 'pair', user: '5', liked: 'a', disliked: 'b', likedSide: 0 });
  assert.deepEqual(classifyRow(row({ label_0: 0, label_1: 1, best_image_uid: 'b' }), 'x'), {
    kind: 'pair',
    user: '5',
    liked: 'b',
    disliked: 'a',
    likedSide: 1,
  });
  assert.equal((classifyRow(row({ label_0: 0.5, label_1: 0.5, best_image_uid: '' }), 'x') as { reason: string }).reason, 'tie');
  assert.equal((classifyRow(row({ best_image_uid: 'b' }), 'x') as { reason: string }).reason, 'best_mismatch');
  assert.deepEqual(classifyRow(row({ best_image_uid: '' }), 'x').kind, 'pair'); // empty best: the labels decide
  assert.equal((classifyRow(row({ label_0: null, label_1: null }), 'x') as { reason: string }).reason, 'unlabelled');
  assert.equal((classifyRow(row({ image_1_uid: 'a' }), 'x') as { reason: string }).reason, 'same_image');
  assert.throws(() => classifyRow(row({ user_id: null }), 'f.parquet row 3'), /f\.parquet row 3: 'user_id' is empty/);

  const scan = new PickapicScan();
  scan.add(row({}), 'r0');
  scan.add(row({}), 'r1'); // duplicate pair
  scan.add(row({ image_1_uid: 'c' }), 'r2'); // same liked image again
  scan.add(row({ best_image_uid: 'b' }), 'r3');
  assert.equal(scan.users.get('5')!.liked.size, 1);
  assert.equal(scan.users.get('5')!.pairs.size, 2);
  assert.deepEqual(scan.totals.dropped, { tie: 0, unlabelled: 0, best_mismatch: 1, same_image: 0, duplicate: 1 });
  assert.deepEqual(scan.totals.mismatchExamples, ['r3']);
  assert.deepEqual(scan.kept(1), ['5']);
  assert.deepEqual(scan.kept(2), []);

  // Components link pairs through shared images; hold-out takes whole components and leaves train non-empty.
  const pairs = new Map<string, [string, string]>([
    ['p1', ['a', 'b']],
    ['p2', ['a', 'c']],
    ['p3', ['d', 'e']],
    ['p4', ['f', 'e']],
    ['p5', ['g', 'h']],
  ]);
  assert.deepEqual(
    imageComponents(pairs).map((c) => c.sort()),
    [['p1', 'p2'], ['p3', 'p4'], ['p5']],
  );
  for (let s = 0; s < 10; s++) {
    const h = holdOut(pairs, 0.9, `s${s}`)!;
    assert.ok(h.size >= 1 && h.size < 5);
    const test = new Set([...h].flatMap((k) => pairs.get(k)!));
    for (const [k, [a, b]] of pairs) if (!h.has(k)) assert.ok(!test.has(a) && !test.has(b));
  }
  assert.equal(
    holdOut(
      new Map([
        ['p1', ['a', 'b']],
        ['p2', ['a', 'c']],
      ]),
      0.5,
      's',
    ),
    null,
  );

  // Split counts with the paper's defaults on the paper's scale: 2,412 users -> 89 val, 70 test (14 seen, 56 unseen).
  assert.deepEqual(splitCounts(2412, PAPER_SPLIT), { val: 89, seen: 14, unseen: 56 });
  assert.throws(() => splitCounts(2, PAPER_SPLIT), /too few users/);
  const users = new Map(['1', '2', '3', '4', '5', '6'].map((u) => [u, { pairs }]));
  const a = planSplits(users, [...users.keys()], { ...PAPER_SPLIT, testUsers: 0.5 });
  const b = planSplits(users, [...users.keys()].reverse(), { ...PAPER_SPLIT, testUsers: 0.5 });
  assert.deepEqual([...a.roles].sort(), [...b.roles].sort());
  assert.equal(safeName('7-118-a'), '7-118-a');
  assert.match(safeName('../x y'), /^x_y-[0-9a-f]{10}$/);
});
