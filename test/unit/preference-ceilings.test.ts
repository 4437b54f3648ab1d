// The taste world's ceilings (src/preference/synth.ts): the population taste (the best single taste for everyone),
// the group oracle and the Bayes decision, computed from the world's truth, printed by `reno preference synth` and
// written to ceilings.json. Checked on worlds whose answers are known.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { readPreferenceDataset } from '../../src/preference/data.js';
import { PERSONALISATION_WORLD, tasteFeatures } from '../../src/preference/synth.js';
import { fitPopulationTaste } from '../../src/preference/ceilings.js';
import { preferenceSynth } from '../../src/commands/preference.js';
import { ROOT, tmpDir } from '../helpers.js';

test('ceilings: fitPopulationTaste recovers the taste that generated the probabilities', () => {
  const w = [0.5, -2, 1, 0.25];
  let s = 1;
  const rnd = () => ((s = (s * 16807) % 2147483647) / 2147483647) * 2 - 1;
  const pairs = Array.from({ length: 400 }, () => {
    const diff = [rnd(), rnd(), rnd(), rnd()];
    return { diff, pLiked: 1 / (1 + Math.exp(-diff.reduce((a, d, i) => a + d * w[i], 0))) };
  });
  const fit = fitPopulationTaste(pairs);
  fit.forEach((x, i) => assert.ok(Math.abs(x - w[i]) < 1e-6, `weight ${i}: ${x} vs ${w[i]}`));
});

test('ceilings: two opposite taste groups: the group oracle is the Bayes decision, one taste for everyone is near chance', async () => {
  const out = path.join(tmpDir('reno-ceilings'), 'w');
  const lines: string[] = [];
  // labels follow the utility almost surely (temperature 1e4), no individual taste: the group taste is the user's
  const r = await preferenceSynth({
    out,
    users: 12,
    pairsPerUser: 12,
    seed: 3,
    size: 16,
    globalTaste: [0, 0, 0, 0],
    groupTastes: [
      [0, 3, 0, 0],
      [0, -3, 0, 0],
    ],
    individualStd: 0,
    temperature: 1e4,
    log: (l) => lines.push(l),
  });
  // the expected values from the pairs themselves: a test pair is decided (1) when the backgrounds' lightness
  // differs and a coin (0.5) when it does not
  const ds = readPreferenceDataset(out);
  const meta = fs
    .readFileSync(path.join(out, 'pairs.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { split: string; user: string; meta: { liked: never; disliked: never } });
  for (const who of ['unseen', 'seen'] as const) {
    const test = meta.filter((m) => m.split === 'test' && (who === 'seen') === ds.seen.has(m.user));
    const decided = test.filter((m) => tasteFeatures(m.meta.liked)[1] !== tasteFeatures(m.meta.disliked)[1]).length;
    const want = (decided + 0.5 * (test.length - decided)) / test.length;
    const c = r.ceilings[who];
    assert.equal(c.n, test.length);
    assert.ok(Math.abs(c.group - want) < 1e-9, `${who} group ${c.group} vs ${want}`);
    assert.ok(Math.abs(c.bayes - want) < 1e-9, `${who} bayes ${c.bayes} vs ${want}`);
    assert.ok(Math.abs(c.bayes_expected - want) < 1e-9, `${who} bayes_expected ${c.bayes_expected} vs ${want}`);
    assert.ok(c.population < 0.7, `${who}: one taste for everyone ${c.population} should be near chance`);
  }
  // the groups cancel: the best single taste puts (almost) no weight on the background
  assert.ok(Math.abs(r.ceilings.population_taste[1]) < 1, `population taste ${r.ceilings.population_taste}`);
  const file = JSON.parse(fs.readFileSync(path.join(out, 'ceilings.json'), 'utf8'));
  assert.deepEqual(file, JSON.parse(JSON.stringify(r.ceilings)));
  const printed = lines.join('\n');
  assert.match(printed, /ceilings on unseen users' test pairs \(\d+\): population taste [\d.]+ %, group oracle [\d.]+ %, Bayes [\d.]+ %/);
  assert.match(printed, /ceilings on seen users' test pairs/);
});

test('ceilings: a world with one shared taste and no groups: population taste = group oracle', async () => {
  const out = path.join(tmpDir('reno-ceilings'), 'w');
  const r = await preferenceSynth({
    out,
    users: 8,
    pairsPerUser: 8,
    seed: 4,
    size: 16,
    globalTaste: [1, 2, -1, 0.5],
    groupTastes: [[0, 0, 0, 0]],
    individualStd: 0,
    temperature: 1e4,
    quiet: true,
  });
  for (const who of ['unseen', 'seen'] as const) {
    const c = r.ceilings[who];
    assert.equal(c.population, c.group, `${who}: the fitted single taste is the shared one`);
    assert.equal(c.group, c.bayes);
  }
});

test('reno preference synth --world personalisation: the two opposed groups, the options given on top, the ceilings printed', () => {
  const out = path.join(tmpDir('reno-ceilings-cli'), 'w');
  const r = spawnSync(
    process.execPath,
    [
      '--import',
      'tsx',
      path.join(ROOT, 'src/cli/run.ts'),
      'preference',
      'synth',
      '--world',
      'personalisation',
      '--users',
      '6',
      '--pairs-per-user',
      '6',
      '--seed',
      '2',
      '--out',
      out,
    ],
    { cwd: ROOT, encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  const world = JSON.parse(fs.readFileSync(path.join(out, 'world.json'), 'utf8'));
  assert.deepEqual(world.weights.groups, PERSONALISATION_WORLD.groupTastes);
  assert.deepEqual(world.weights.global, PERSONALISATION_WORLD.globalTaste);
  assert.equal(world.users, 6);
  assert.equal(world.pairs_per_user, 6);
  assert.match(r.stderr, /ceilings on unseen users' test pairs \(\d+\): population taste [\d.]+ %, group oracle [\d.]+ %, Bayes [\d.]+ %/);
  assert.ok(fs.existsSync(path.join(out, 'ceilings.json')));
});
