// Every list of rewards comes from the reward registry (rewards/index.ts): no source file outside rewards/ spells
// out several reward names in one list, a reward added to the registry gets its label in plots, and the benchmarks'
// full-architecture rewards are the registry's rewards whose model is a `reward` entry of configs/models.yaml.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { REWARDS, rewardLabel } from '../../rewards/index.js';
import type { RewardSpec } from '../../rewards/types.js';
import { REWARD_NAMES } from '../../bench/full-models.js';
import { ROOT } from '../helpers.js';

function sources(dir: string, out: string[] = []): string[] {
  for (const e of fs.readdirSync(path.join(ROOT, dir), { withFileTypes: true })) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory()) sources(rel, out);
    else if (e.name.endsWith('.ts')) out.push(rel);
  }
  return out;
}

test('no file of src, generators or bench lists three or more reward names in one line', () => {
  const names = REWARDS.map((s) => s.name).filter((n) => n !== 'personal');
  const offenders: string[] = [];
  for (const f of ['src', 'generators', 'bench'].flatMap((d) => sources(d))) {
    fs.readFileSync(path.join(ROOT, f), 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (/^\s*(\/\/|\*)/.test(line)) return; // comments may name rewards
        // the embedding personal model's image towers: towers named after the rewards they come from, not rewards
        if (/^export const EMBEDDING_TOWERS = /.test(line)) return;
        const hits = names.filter((n) => new RegExp(`['"]${n}['"]|\\b${n}:`).test(line));
        if (hits.length >= 3) offenders.push(`${f}:${i + 1}: ${hits.join(', ')}`);
      });
  }
  assert.deepEqual(offenders, []);
});

test('a reward added to the registry has its label where plots look it up', () => {
  const spec: RewardSpec = {
    name: 'test_added',
    label: 'Added Score',
    description: 'test',
    offset: 0,
    models: [],
    load: async () => Promise.reject(new Error('not loaded')),
  };
  REWARDS.push(spec);
  try {
    assert.equal(rewardLabel('test_added'), 'Added Score');
    assert.equal(rewardLabel('aesthetic'), 'Aes Score');
    assert.equal(rewardLabel('personal'), 'personal');
  } finally {
    REWARDS.pop();
  }
});

test("the benchmarks' rewards are the registry's published-architecture rewards, in registry order", () => {
  assert.deepEqual([...REWARD_NAMES], ['imagereward', 'aesthetic', 'pickscore', 'clip', 'hpsv2']);
  assert.deepEqual(
    [...REWARD_NAMES],
    REWARDS.map((s) => s.name).filter((n) => n !== 'personal'),
  );
});
