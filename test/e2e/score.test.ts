// `reno score` on the tiny preset: a table and JSON of every reward for every image, the same numbers as the
// optimiser's loss (loss = offset - score), and clear errors for bad input.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { test } from 'node:test';
import { REWARDS } from '../../rewards/index.js';
import { scoreCommand } from '../../src/commands/score.js';
import { tmpDir } from '../helpers.js';

async function image(file: string, rgb: [number, number, number]): Promise<string> {
  await sharp({ create: { width: 64, height: 48, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } })
    .png()
    .toFile(file);
  return file;
}

test('score prints every reward for every image; JSON agrees with the table', async () => {
  const d = tmpDir();
  const a = await image(path.join(d, 'a.png'), [200, 30, 30]);
  const b = await image(path.join(d, 'b.png'), [20, 90, 220]);
  const lines: string[] = [];
  const rows = await scoreCommand({
    prompt: 'a red square',
    images: [a, b],
    preset: 'tiny',
    backend: 'wasm',
    quiet: true,
    out: (l) => lines.push(l),
  });
  const general = REWARDS.map((r) => r.name).filter((n) => n !== 'personal');
  assert.equal(rows.length, 2);
  for (const r of rows) assert.deepEqual(Object.keys(r.scores), general);
  assert.notEqual(rows[0].scores.pickscore, rows[1].scores.pickscore); // different images, different scores
  assert.match(lines[0], /smoke-test/);
  assert.ok(lines[1].startsWith('image') && general.every((n) => lines[1].includes(n)));
  const json: string[] = [];
  await scoreCommand({
    prompt: 'a red square',
    images: [a],
    rewards: ['pickscore', 'clip'],
    preset: 'tiny',
    backend: 'wasm',
    json: true,
    out: (l) => json.push(l),
  });
  const parsed = JSON.parse(json.join('\n'));
  assert.equal(parsed.rows[0].scores.pickscore.toFixed(4), rows[0].scores.pickscore.toFixed(4));
  assert.deepEqual(Object.keys(parsed.rows[0].scores), ['pickscore', 'clip']);
});

test('bad input is named: a missing image, an unknown reward, an unreadable image', async () => {
  const d = tmpDir();
  const a = await image(path.join(d, 'a.png'), [1, 2, 3]);
  await assert.rejects(
    scoreCommand({ prompt: 'x', images: [path.join(d, 'nope.png')], preset: 'tiny', quiet: true }),
    /image not found: .*nope\.png/,
  );
  await assert.rejects(scoreCommand({ prompt: 'x', images: [a], rewards: ['beauty'], preset: 'tiny', quiet: true }), /unknown reward "beauty"/);
  fs.writeFileSync(path.join(d, 'bad.png'), 'not an image');
  await assert.rejects(
    scoreCommand({ prompt: 'x', images: [path.join(d, 'bad.png')], rewards: ['pickscore'], preset: 'tiny', backend: 'wasm', quiet: true }),
    /cannot read image .*bad\.png/,
  );
});
