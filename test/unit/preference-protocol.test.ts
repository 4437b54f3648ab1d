// The evaluation protocol and the small pieces of `reno preference eval` glue: which pairs are history and which
// are queries for seen and unseen users (nested for the N_ref sweep, never overlapping), user picking for the
// pictures, column labels of ablation checkpoints, LABEL=DIR arguments, the default sweep and the ablation table.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { PreferenceDataset, PreferencePair } from '../../src/preference/data.js';
import { evalProtocol, pickUsers, queryTargets, swapPartners, type EvalUser } from '../../src/preference/protocol.js';
import { ablationTable, defaultSweep, parseModelArg, settingLabel } from '../../src/commands/preference-eval.js';

/** A dataset in memory: users a, b (seen: 5 train + 3 test pairs) and c (unseen: 6 test pairs). */
function dataset(): PreferenceDataset {
  const pairs: PreferencePair[] = [];
  const add = (user: string, split: PreferencePair['split'], k: number) =>
    pairs.push({
      index: pairs.length,
      line: pairs.length + 1,
      user,
      prompt: `p${k % 2}`,
      liked: `/d/${user}/${split}${k}L.png`,
      disliked: `/d/${user}/${split}${k}D.png`,
      split,
    });
  for (const u of ['a', 'b']) {
    for (let k = 0; k < 5; k++) add(u, 'train', k);
    add(u, 'val', 0);
    for (let k = 0; k < 3; k++) add(u, 'test', k);
  }
  for (let k = 0; k < 6; k++) add('c', 'test', k);
  const byUser = new Map<string, number[]>();
  for (const p of pairs) byUser.set(p.user, [...(byUser.get(p.user) ?? []), p.index]);
  return { dir: '/d', pairs, byUser, seen: new Set(['a', 'b']) };
}

test('protocol: seen users take history from train pairs and are scored on every test pair; unseen users split their test pairs', () => {
  const ds = dataset();
  const p = evalProtocol(ds, { maxNRef: 3, seed: 0 });
  assert.deepEqual(
    p.users.map((u) => [u.user, u.group]),
    [
      ['a', 'seen'],
      ['b', 'seen'],
      ['c', 'unseen'],
    ],
  );
  for (const u of p.users.slice(0, 2)) {
    assert.equal(u.history.length, 3);
    assert.ok(u.history.every((h) => h.split === 'train' && h.user === u.user));
    assert.deepEqual(
      u.queries.map((q) => q.index).sort((x, y) => x - y),
      ds.byUser
        .get(u.user)!
        .map((i) => ds.pairs[i])
        .filter((q) => q.split === 'test')
        .map((q) => q.index),
    );
  }
  const c = p.users[2];
  assert.equal(c.history.length, 3);
  assert.equal(c.queries.length, 3);
  const hist = new Set(c.history.map((h) => h.index));
  assert.ok(
    c.queries.every((q) => !hist.has(q.index)),
    'a history pair is never a query',
  );
  // deterministic, and the N_ref = 1, 2 histories are prefixes of the N_ref = 3 one for the same queries
  assert.deepEqual(evalProtocol(ds, { maxNRef: 3, seed: 0 }), p);
  const other = evalProtocol(ds, { maxNRef: 3, seed: 1 });
  assert.notDeepEqual(
    other.users[2].history.map((h) => h.index),
    c.history.map((h) => h.index),
  );
  // an unseen user with no pair beyond the history is skipped
  const q = evalProtocol(ds, { maxNRef: 6, seed: 0 });
  assert.deepEqual(q.skipped, ['c']);
  assert.deepEqual(queryTargets(p.users[0]).length, 6); // 3 pairs, 2 images each, each once
});

test('pickUsers: named users in order, two per taste group in turn, or seen / unseen alternating', () => {
  const mk = (user: string, group: 'seen' | 'unseen') => ({ user, group, history: [], queries: [] });
  const users = [mk('a', 'seen'), mk('b', 'seen'), mk('c', 'seen'), mk('d', 'unseen'), mk('e', 'unseen'), mk('f', 'seen')];
  assert.deepEqual(
    pickUsers(users, 3).map((u) => u.user),
    ['a', 'd', 'b'],
  );
  assert.deepEqual(
    pickUsers(users, 9, { names: ['e', 'a'] }).map((u) => u.user),
    ['e', 'a'],
  );
  assert.throws(() => pickUsers(users, 2, { names: ['zz'] }), /zz is not a test user/);
  const groups = new Map([
    ['a', 0],
    ['b', 1],
    ['c', 0],
    ['d', 1],
    ['e', 0],
    ['f', 1],
  ]);
  // group 0: a, c (seen), e (unseen) -> a, e, c; group 1: b, f (seen), d (unseen) -> b, d, f
  assert.deepEqual(
    pickUsers(users, 5, { groups }).map((u) => u.user),
    ['a', 'e', 'b', 'd', 'c'],
  );
});

test('eval glue: ablation labels from checkpoint settings, LABEL=DIR, the default N_ref sweep, the ablation table', () => {
  assert.equal(settingLabel({ use_prompt: false, prototypes: 0, training: { aux: false } }, '/x/a'), 'ViPer*');
  assert.equal(settingLabel({ use_prompt: true, prototypes: 0, training: { aux: false } }, '/x/a'), 'w/ Pmpt');
  assert.equal(settingLabel({ use_prompt: true, prototypes: 0, training: { aux: true } }, '/x/a'), 'w/o P_v');
  assert.equal(settingLabel({ use_prompt: true, prototypes: 10, training: { aux: true } }, '/x/ckpt-7'), 'ckpt-7');
  assert.deepEqual(parseModelArg('ViPer=/some/dir'), { label: 'ViPer', dir: '/some/dir' });
  assert.deepEqual(parseModelArg('/some/dir'), { dir: '/some/dir' });
  assert.deepEqual(parseModelArg('runs/a=b'), { dir: 'runs/a=b' }); // a slash before "=": a path
  assert.deepEqual(defaultSweep(3), [0, 1, 2, 3]);
  assert.deepEqual(defaultSweep(8), [0, 1, 2, 4, 8]);
  assert.deepEqual(defaultSweep(0), [0]);
  const g = (all: number, seen: number, unseen: number) => ({ all, seen, unseen, gap: Math.abs(seen - unseen), n: { all: 4, seen: 2, unseen: 2 } });
  const t = ablationTable([
    { label: 'Baseline', top1: g(0.5, 0.25, 0.75) },
    { label: 'Full', top1: g(0.625, 0.5, 0.75) },
  ]);
  assert.deepEqual(t.columns, ['', 'Baseline', 'Full']);
  assert.deepEqual(t.rows, [
    ['Top-1 Acc (%)', 50, 62.5],
    ['Seen top-1 (%)', 25, 50],
    ['Unseen top-1 (%)', 75, 75],
  ]);
});

test('swapPartners: a user of the same kind and another taste group, the next one in order; none where no user qualifies', () => {
  const u = (user: string, group: 'seen' | 'unseen', n = 2): EvalUser => ({
    user,
    group,
    history: Array.from({ length: n }, (_, k) => ({
      index: k,
      line: k + 1,
      user,
      prompt: 'p',
      liked: `${user}${k}L`,
      disliked: `${user}${k}D`,
      split: 'train',
    })),
    queries: [],
  });
  const users = [u('a', 'seen'), u('b', 'seen'), u('c', 'seen'), u('d', 'unseen'), u('e', 'unseen'), u('f', 'unseen', 0)];
  const groups = new Map([
    ['a', 0],
    ['b', 0],
    ['c', 1],
    ['d', 0],
    ['e', 1],
    ['f', 0],
  ]);
  const p = swapPartners(users, groups);
  const name = (x: string) => p.get(x)?.user;
  assert.equal(name('a'), 'c', "b shares a's taste group: skipped");
  assert.equal(name('b'), 'c');
  assert.equal(name('c'), 'a', 'cyclic');
  assert.equal(name('d'), 'e', 'unseen users swap with unseen users');
  assert.equal(name('e'), 'd');
  assert.equal(name('f'), 'e');
  assert.ok(!p.has('x'));
  // without taste groups: the next other user of the same kind with a history
  const q = swapPartners(users, null);
  assert.deepEqual(
    ['a', 'b', 'c', 'd', 'e', 'f'].map((x) => q.get(x)?.user),
    ['b', 'c', 'a', 'e', 'd', 'd'],
  );
  // a lone user of their kind has no partner
  assert.equal(swapPartners([u('a', 'seen'), u('d', 'unseen')], null).size, 0);
});
