// Preference evaluation metrics against hand-computed rankings (ties included), a brute-force tie-breaking check,
// seen/unseen grouping, deterministic candidate sets and references, the N_ref sweep shape and the paper's tables.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  candidateSets,
  expectedRank,
  groupedPairwise,
  groupedTopK,
  nRefSweep,
  pairCorrect,
  pairwiseAccuracy,
  splitReferences,
  table1,
  table2,
  table3,
  table4,
  table5,
  tableJson,
  tableMarkdown,
  topKAccuracy,
  topKHit,
  type EvalPair,
} from '../../src/preference/metrics.js';

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} != ${b}`);
const closeAll = (a: number[], b: number[]) => a.forEach((v, i) => close(v, b[i]));

test('pairwise top-1: win 1, tie 0.5, loss 0', () => {
  assert.equal(pairCorrect(3, 1), 1);
  assert.equal(pairCorrect(1, 3), 0);
  assert.equal(pairCorrect(2, 2), 0.5);
  // (3>1) 1 + (1<3) 0 + (2=2) 0.5 + (0.5>0.4) 1 = 2.5 of 4
  close(
    pairwiseAccuracy([
      { liked: 3, disliked: 1 },
      { liked: 1, disliked: 3 },
      { liked: 2, disliked: 2 },
      { liked: 0.5, disliked: 0.4 },
    ]),
    0.625,
  );
  assert.ok(Number.isNaN(pairwiseAccuracy([])));
  assert.throws(() => pairCorrect(NaN, 1), /not a finite score/);
});

test('top-k with ties by expected rank: hand-computed sets', () => {
  // liked 0.5 vs [0.7, 0.5, 0.5, 0.1]: one above, two equal -> rank uniform on {2, 3, 4}
  assert.equal(topKHit(0.5, [0.7, 0.5, 0.5, 0.1], 1), 0);
  close(topKHit(0.5, [0.7, 0.5, 0.5, 0.1], 2), 1 / 3);
  close(topKHit(0.5, [0.7, 0.5, 0.5, 0.1], 3), 2 / 3);
  assert.equal(topKHit(0.5, [0.7, 0.5, 0.5, 0.1], 4), 1);
  assert.equal(expectedRank(0.5, [0.7, 0.5, 0.5, 0.1]), 3);
  // all four equal: k / 4 (the Random row of Table 3)
  closeAll(
    [1, 2, 3, 4].map((k) => topKHit(1, [1, 1, 1], k)),
    [0.25, 0.5, 0.75, 1],
  );
  assert.equal(expectedRank(1, [1, 1, 1]), 2.5);
  // one disliked: top-1 is the pairwise value
  for (const [l, d] of [
    [1, 0],
    [0, 1],
    [2, 2],
  ])
    assert.equal(topKHit(l, [d], 1), pairCorrect(l, d));
  // A: .9 vs [.1,.2,.3] -> rank 1: [1,1,1]
  // B: .5 vs [.7,.5,.5] -> rank on {2,3,4}: [0, 1/3, 2/3]
  // C: .2 vs [.5,.9,.3] -> rank 4: [0,0,0]
  // D: .4 vs [.4,.1,.6] -> rank on {2,3}: [0, 1/2, 1]
  const sets = [
    { liked: 0.9, disliked: [0.1, 0.2, 0.3] },
    { liked: 0.5, disliked: [0.7, 0.5, 0.5] },
    { liked: 0.2, disliked: [0.5, 0.9, 0.3] },
    { liked: 0.4, disliked: [0.4, 0.1, 0.6] },
  ];
  closeAll(topKAccuracy(sets), [1 / 4, (1 + 1 / 3 + 0 + 1 / 2) / 4, (1 + 2 / 3 + 0 + 1) / 4]);
  closeAll(
    sets.map((s) => expectedRank(s.liked, s.disliked)),
    [1, 3, 4, 2.5],
  );
  assert.throws(() => topKHit(1, [0], 0), /positive integer/);
});

test('top-k equals the fraction of uniformly tie-broken orders (brute force over permutations)', () => {
  const perms = <T>(a: T[]): T[][] => (a.length <= 1 ? [a] : a.flatMap((x, i) => perms([...a.slice(0, i), ...a.slice(i + 1)]).map((p) => [x, ...p])));
  let seed = 3;
  const rnd = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  for (let trial = 0; trial < 40; trial++) {
    const scores = Array.from({ length: 4 }, () => Math.floor(rnd() * 3)); // many ties
    // Orders consistent with the scores (descending) are equally likely under uniform tie breaking.
    const orders = perms([0, 1, 2, 3]).filter((o) => o.every((c, i) => i === 0 || scores[o[i - 1]] >= scores[c]));
    for (let k = 1; k <= 4; k++) {
      const frac = orders.filter((o) => o.indexOf(0) < k).length / orders.length;
      close(topKHit(scores[0], scores.slice(1), k), frac);
    }
    const meanRank = orders.reduce((s, o) => s + o.indexOf(0) + 1, 0) / orders.length;
    close(expectedRank(scores[0], scores.slice(1)), meanRank);
  }
});

test('seen / unseen grouping and the gap', () => {
  const g = groupedPairwise([
    { user: 'a', group: 'seen', liked: 1, disliked: 0 },
    { user: 'a', group: 'seen', liked: 1, disliked: 1 },
    { user: 'b', group: 'unseen', liked: 0, disliked: 1 },
    { user: 'b', group: 'unseen', liked: 2, disliked: 1 },
    { user: 'c', group: 'unseen', liked: 2, disliked: 1 },
  ]);
  close(g.seen, 0.75);
  close(g.unseen, 2 / 3);
  close(g.all, 3.5 / 5);
  close(g.gap, 0.75 - 2 / 3);
  assert.deepEqual(g.n, { all: 5, seen: 2, unseen: 3 });
  const t = groupedTopK([
    { user: 'a', group: 'seen', liked: 0.9, disliked: [0.1, 0.2, 0.3] },
    { user: 'b', group: 'unseen', liked: 0.5, disliked: [0.7, 0.5, 0.5] },
  ]);
  closeAll(t.seen, [1, 1, 1]);
  closeAll(t.unseen, [0, 1 / 3, 2 / 3]);
  closeAll(t.all, [0.5, 2 / 3, 5 / 6]);
  closeAll(t.gap, [1, 2 / 3, 1 / 3]);
});

const P = (user: string, liked: string, disliked: string, prompt = `p-${liked}`): EvalPair => ({ user, prompt, liked, disliked });

test('candidate sets: 1 liked + 3 disliked, seeded, order independent, never a liked or excluded image', () => {
  const pairs = [
    P('u1', 'a', 'x'),
    P('u1', 'b', 'y'),
    P('u1', 'c', 'z'),
    P('u1', 'd', 'w'),
    P('u1', 'e', 'a'), // 'a' is liked elsewhere: never a disliked candidate
    P('u2', 'f', 'q'),
    P('u2', 'g', 'r'), // pool of 2 < 3: skipped
    P('u10', 'h', 's'),
    P('u10', 'i', 't'),
    P('u10', 'j', 'v'),
  ];
  const a = candidateSets(pairs, { seed: 1 });
  const b = candidateSets([...pairs].reverse(), { seed: 1 });
  assert.deepEqual(a, b);
  assert.deepEqual(a.skipped, ['u2']);
  assert.deepEqual(
    a.sets.map((s) => s.user),
    ['u1', 'u10'],
  ); // natural id order
  for (const s of a.sets) {
    assert.equal(s.disliked.length, 3);
    const own = pairs.find((p) => p.user === s.user && p.liked === s.liked.image && p.disliked === s.disliked[0].image);
    assert.ok(own, 'disliked[0] is the liked pair own disliked image');
    assert.equal(s.liked.prompt, own.prompt);
    const likedOfUser = new Set(pairs.filter((p) => p.user === s.user).map((p) => p.liked));
    assert.ok(s.disliked.every((d) => !likedOfUser.has(d.image)));
    assert.equal(new Set(s.disliked.map((d) => d.image)).size, 3);
    for (const d of s.disliked) assert.equal(d.prompt, pairs.find((p) => p.user === s.user && p.disliked === d.image)!.prompt);
  }
  // Seeds change the draw, perUser gives distinct liked images, exclude removes images.
  const many = new Set(Array.from({ length: 8 }, (_, s) => JSON.stringify(candidateSets(pairs, { seed: s }).sets)));
  assert.ok(many.size > 1);
  const two = candidateSets(pairs, { seed: 1, perUser: 2 });
  const u1 = two.sets.filter((s) => s.user === 'u1');
  assert.equal(u1.length, 2);
  assert.notEqual(u1[0].liked.image, u1[1].liked.image);
  const ex = candidateSets(pairs, { seed: 1, exclude: new Map([['u1', new Set(['x'])]]) });
  assert.ok(ex.sets.filter((s) => s.user === 'u1').every((s) => s.disliked.every((d) => d.image !== 'x')));
  assert.deepEqual(candidateSets(pairs, { seed: 1, exclude: new Map([['u1', new Set(['x', 'y'])]]) }).skipped, ['u1', 'u2']);
});

test('references: nested prefixes over an N_ref sweep, same queries', () => {
  const pairs = Array.from({ length: 12 }, (_, i) => P('u', `l${i}`, `d${i}`));
  const r8 = splitReferences(pairs, { nRef: 8, maxNRef: 8, seed: 0 });
  const r2 = splitReferences([...pairs].reverse(), { nRef: 2, maxNRef: 8, seed: 0 });
  assert.equal(r8.references.length, 8);
  assert.equal(r8.queries.length, 4);
  assert.deepEqual(r2.references, r8.references.slice(0, 2));
  assert.deepEqual(r2.queries, r8.queries);
  const refs = new Set(r8.references.map((p) => p.liked));
  assert.ok(r8.queries.every((q) => !refs.has(q.liked)));
  assert.throws(() => splitReferences(pairs, { nRef: 9, maxNRef: 8, seed: 0 }), /nRef/);
});

test('N_ref sweep shape', () => {
  const acc = (s: number, u: number) => ({ all: (s + u) / 2, seen: s, unseen: u, gap: Math.abs(s - u), n: { all: 2, seen: 1, unseen: 1 } });
  const sw = nRefSweep([
    { model: 'Ours', nRef: 8, accuracy: acc(0.6, 0.62) },
    { model: 'Ours', nRef: 2, accuracy: acc(0.55, 0.5) },
    { model: 'ViPer', nRef: 8, accuracy: acc(0.58, 0.57) },
  ]);
  assert.deepEqual(sw.nRef, [2, 8]);
  assert.deepEqual(sw.series[0], { model: 'Ours', all: [0.525, 0.61], seen: [0.55, 0.6], unseen: [0.5, 0.62] });
  assert.ok(Number.isNaN(sw.series[1].seen[0]));
});

test("tables in the paper's layout (markdown and JSON)", () => {
  const t2 = table2([
    { model: 'ViPer*', seen: 0.5817, unseen: 0.5718 },
    { model: 'Ours', seen: 0.6144, unseen: 0.6175 },
  ]);
  assert.equal(
    tableMarkdown(t2),
    [
      '**Table 2.** Top-1 accuracy on seen-unseen data with N_ref = 8.',
      '',
      '|  | ViPer* | Ours |',
      '| --- | ---: | ---: |',
      '| Seen | 58.17 | 61.44 |',
      '| Unseen | 57.18 | 61.75 |',
      '| \\|Δ\\| (%) | 0.99 | 0.31 |',
      '',
    ].join('\n'),
  );
  const t3 = table3([{ model: 'Ours', nRef: 8, topK: [0.3747, 0.6285, 0.8474] }]);
  assert.deepEqual(t3.columns, ['Model', 'N_ref', 'Top-1 Acc', 'Top-2 Acc', 'Top-3 Acc']);
  assert.deepEqual(t3.rows, [
    ['Random', 0, 25, 50, 75],
    ['Ours', 8, 37.47, 62.85, 84.74],
  ]);
  assert.match(tableMarkdown(t3), /\| Random \| 0 \| 25\.00 \| 50\.00 \| 75\.00 \|\n\| Ours \| 8 \| 37\.47 \| 62\.85 \| 84\.74 \|/);
  const t1 = table1([
    { model: 'Aes Score', nRef: 0, top1: 0.4996 },
    { model: 'Ours', nRef: 8, top1: 0.6168 },
  ]);
  assert.deepEqual(t1.rows, [
    ['N_ref', 0, 8],
    ['Top-1 acc (%)', 49.96, 61.68],
  ]);
  assert.match(tableMarkdown(t1), /\| N_ref \| 0 \| 8 \|\n\| Top-1 acc \(%\) \| 49\.96 \| 61\.68 \|/);
  assert.deepEqual(table4([{ setting: 'Baseline', top1: 0.5739 }]).rows, [['Top-1 Acc (%)', 57.39]]);
  const t5 = table5([
    { prototypes: 5, top1: 0.6141 },
    { prototypes: 10, top1: NaN },
  ]);
  assert.deepEqual(t5.columns, ['Number of Prototypes', '5', '10']);
  assert.match(tableMarkdown(t5), /\| Top-1 Acc \(%\) \| 61\.41 \| – \|/);
  assert.deepEqual(tableJson(t5), {
    id: 'table5',
    title: 'Ablation Study for Prototype Numbers.',
    columns: ['Number of Prototypes', '5', '10'],
    rows: [['Top-1 Acc (%)', 61.41, null]],
  });
});
