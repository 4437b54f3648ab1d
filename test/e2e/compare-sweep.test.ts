// reno compare and reno sweep on the tiny preset: grids, tables and reports; a sweep interrupted and rerun finishes
// without redoing finished cells.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { test } from 'node:test';
import { compareCommand } from '../../src/commands/compare.js';
import { readSweep, sweepCommand } from '../../src/commands/sweep.js';
import { ROOT, tmpDir } from '../helpers.js';

const OFF = { imagereward: 0, aesthetic: 0, pickscore: 0, clip: 0, hpsv2: 0, personal: 0 };

test('compare: one run per reward, all, unoptimised; a cross table where each solo run wins its own reward', async () => {
  const out = tmpDir();
  const r = await compareCommand({
    prompt: 'a lighthouse at dusk',
    preset: 'tiny',
    backend: 'wasm',
    quiet: true,
    out,
    steps: 6,
    rewards: ['pickscore', 'clip'],
  });
  assert.deepEqual(
    r.runs.map((x) => x.name),
    ['unoptimised', 'pickscore', 'clip', 'all'],
  );
  for (const f of ['grid.png', 'compare.json', 'compare.md', 'report.html', 'runs/pickscore/best.png', 'runs/unoptimised/run.yaml'])
    assert.ok(fs.existsSync(path.join(r.dir, f)), f);
  const meta = await sharp(path.join(r.dir, 'grid.png')).metadata();
  assert.ok(meta.width! > 4 * 200 && meta.height! > 200, `grid ${meta.width}x${meta.height}`);
  const json = JSON.parse(fs.readFileSync(path.join(r.dir, 'compare.json'), 'utf8'));
  assert.equal(json.runs.length, 4);
  // optimising a reward alone raises that reward's score over the unoptimised image
  assert.ok(r.scores[1].pickscore > r.scores[0].pickscore);
  assert.ok(r.scores[2].clip > r.scores[0].clip);
  const md = fs.readFileSync(path.join(r.dir, 'compare.md'), 'utf8');
  assert.match(md, /\| run \\ score \| pickscore \| clip \|/);
  assert.equal(md.split('\n').filter((l) => l.startsWith('| ')).length, 5);
});

test('compare --user: the personal reward is a column (its own run, part of the all-rewards run) and scores every output', async () => {
  const out = tmpDir();
  const user = path.join(ROOT, 'examples', 'history.json');
  const r = await compareCommand({
    prompt: 'a circle',
    preset: 'tiny',
    backend: 'wasm',
    quiet: true,
    out,
    steps: 4,
    seed: 3,
    rewards: ['clip'],
    user,
  });
  assert.deepEqual(
    r.runs.map((x) => x.name),
    ['unoptimised', 'clip', 'personal', 'all'],
  );
  assert.deepEqual(r.runs[2].weights, { personal: 0.75 });
  assert.deepEqual(Object.keys(r.runs[3].weights).sort(), ['clip', 'personal']);
  for (const s of r.scores) assert.deepEqual(Object.keys(s).sort(), ['clip', 'personal']);
  assert.ok(
    r.scores.every((s) => s.personal > 0 && s.personal < 1),
    'personal scores are Q(+) probabilities',
  );
  // optimising the personal reward alone (like) raises the user's Q(+) over the unoptimised image
  assert.ok(r.scores[2].personal > r.scores[0].personal, `personal ${r.scores[2].personal} <= unoptimised ${r.scores[0].personal}`);
  const json = JSON.parse(fs.readFileSync(path.join(r.dir, 'compare.json'), 'utf8'));
  assert.deepEqual(json.rewards, ['clip', 'personal']);
  assert.ok(json.runs.every((x: { scores: Record<string, number> }) => typeof x.scores.personal === 'number'));
  assert.match(fs.readFileSync(path.join(r.dir, 'compare.md'), 'utf8'), /\| run \\ score \| clip \| personal \|/);
  assert.match(fs.readFileSync(path.join(r.dir, 'runs', 'personal', 'run.yaml'), 'utf8'), /history\.json/);
});

test('compare: the personal reward without --user is refused before any work', async () => {
  const out = path.join(tmpDir(), 'out');
  await assert.rejects(
    compareCommand({ prompt: 'a circle', preset: 'tiny', backend: 'wasm', quiet: true, out, steps: 2, rewards: ['clip', 'personal'] }),
    /personal reward needs --user/,
  );
  assert.ok(!fs.existsSync(out));
});

test('sweep: a grid of run folders, summary.csv and a labelled grid; an interrupted sweep resumes without redoing cells', async () => {
  const d = tmpDir();
  const file = path.join(d, 'sweep.yaml');
  fs.writeFileSync(
    file,
    `base:\n  prompt: a red fox\n  steps: 3\n  weights: ${JSON.stringify({ ...OFF, pickscore: 1 })}\ngrid:\n  weights.pickscore: [0.5, 1]\n  seed: [0, 1]\n`,
  );
  const out = path.join(d, 'out');
  const first = await sweepCommand({ file, out, preset: 'tiny', backend: 'wasm', quiet: true, stopAfter: 2 });
  assert.equal(first.cells.length, 4);
  const doneAfterFirst = first.cells.filter((c) => fs.existsSync(path.join(c.dir, 'done.json'))).map((c) => c.dir);
  assert.equal(doneAfterFirst.length, 2);
  // a half-finished cell: a folder without done.json is redone from scratch
  const half = first.cells.find((c) => !doneAfterFirst.includes(c.dir))!;
  fs.mkdirSync(half.dir, { recursive: true });
  fs.writeFileSync(path.join(half.dir, 'metrics.jsonl'), '{"broken": tru');
  const stamps = doneAfterFirst.map((dir) => fs.statSync(path.join(dir, 'best.png')).mtimeMs);
  const second = await sweepCommand({ file, out, preset: 'tiny', backend: 'wasm', quiet: true });
  assert.deepEqual(
    second.cells.filter((c) => c.skipped).map((c) => c.dir),
    doneAfterFirst,
  );
  assert.deepEqual(
    doneAfterFirst.map((dir) => fs.statSync(path.join(dir, 'best.png')).mtimeMs),
    stamps,
    'finished cells untouched',
  );
  assert.ok(second.cells.every((c) => fs.existsSync(path.join(c.dir, 'done.json'))));
  assert.doesNotMatch(fs.readFileSync(path.join(half.dir, 'metrics.jsonl'), 'utf8'), /broken/);
  const csv = fs.readFileSync(path.join(out, 'summary.csv'), 'utf8').trim().split('\n');
  assert.equal(csv.length, 5);
  assert.match(csv[0], /^weights\.pickscore,seed,initial_loss,best_loss,best_step,best_pickscore_loss,folder$/);
  const meta = await sharp(path.join(out, 'grid.png')).metadata();
  assert.ok(meta.width! > 2 * 200 && meta.height! > 2 * 200);
  assert.ok(fs.existsSync(path.join(out, 'report.html')));
});

test('a sweep file with an unknown grid key or a bad value is named', () => {
  const d = tmpDir();
  const bad = path.join(d, 'bad.yaml');
  fs.writeFileSync(bad, 'grid:\n  stepz: [1, 2]\n');
  assert.throws(() => readSweep(bad), /bad\.yaml: grid key "stepz" is not a config key/);
  fs.writeFileSync(bad, 'grid:\n  steps: [1, -2]\n');
  assert.throws(() => readSweep(bad), /grid\.steps: "steps" must be an integer >= 1/);
});
