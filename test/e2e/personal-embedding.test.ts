// The embedding personal model end to end: `reno generate --preset tiny --user examples/history.json --personal
// embedding` (like raises, dislike lowers the embedding score of the best image, rescored from the PNGs); a user
// with no checkpoint (`--personal auto`, no --preset, history.json without "model") gets the embedding model and a
// stderr line instead of an error; `--personal vlm` without a checkpoint still refuses; `reno score --user` reports
// the personal score in both modes. bench/personal-embedding.ts runs the like/dislike check over 5 seeds.
import * as tf from '../../src/runtime/tf.js';
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import YAML from 'yaml';
import { RewardInput } from '../../rewards/input.js';
import { personalReward } from '../../rewards/personal.js';
import { generateCommand } from '../../src/commands/generate.js';
import { scoreCommand } from '../../src/commands/score.js';
import { readImage, readPngText } from '../../src/image/png.js';
import { getModel } from '../../src/config/models.js';
import { ROOT, tmpDir } from '../helpers.js';

const HISTORY = path.join(ROOT, 'examples', 'history.json');
const TINY = path.join(ROOT, 'presets', 'tiny');
const ONLY_PERSONAL = { weights: { personal: 1, imagereward: 0, aesthetic: 0, pickscore: 0, clip: 0 } };

/** The embedding score (pickscore tower, default formula) of PNG files, through the reward's own code path. */
export async function embeddingScores(files: string[], prompt: string, history = HISTORY): Promise<number[]> {
  const reward = await personalReward.load({
    locate: (m) => path.join(TINY, getModel(m).repo),
    smokeTest: true,
    personal: { historyFile: history, guidance: 'like', nRef: 8, mode: 'embedding', log: () => {} },
  });
  const p = reward.prepare(prompt);
  const out: number[] = [];
  for (const f of files) {
    const img = await readImage(f);
    const input = new RewardInput(img as never);
    const s = p.score(input);
    out.push((await s.data())[0]);
    tf.dispose([s, img as never]);
    input.dispose();
  }
  p.dispose();
  reward.dispose();
  return out;
}

test("--personal embedding on the tiny preset: like raises and dislike lowers the best image's embedding score; run.yaml and the PNG record the mode", async (t) => {
  const out = tmpDir('reno-emb-e2e');
  const prompt = 'a circle';
  const s: Record<string, number[]> = {};
  for (const guidance of ['like', 'dislike'] as const) {
    const lines: string[] = [];
    const r = await generateCommand({
      prompt,
      preset: 'tiny',
      user: HISTORY,
      personal: 'embedding',
      guidance,
      steps: 6,
      seed: 1,
      out,
      backend: 'wasm',
      quiet: true,
      overrides: ONLY_PERSONAL,
      log: (l) => lines.push(l),
    });
    assert.ok(
      lines.some((l) => /personal reward: embedding model \(pickscore tower, \w+/.test(l)),
      lines.join('\n'),
    );
    const run = YAML.parse(fs.readFileSync(path.join(r.dir, 'run.yaml'), 'utf8'));
    assert.equal(run.personal_model, 'embedding');
    assert.equal(run.run.personal_model, 'embedding');
    assert.equal(run.run.personal_tower, 'pickscore');
    const text = readPngText(fs.readFileSync(path.join(r.dir, 'best.png')));
    assert.equal(JSON.parse(text.reno).personal.personal_model, 'embedding');
    assert.match(text.parameters, new RegExp(`Personal: "${guidance}, n_ref \\d+, embedding pickscore`));
    s[guidance] = await embeddingScores([path.join(r.dir, 'init.png'), path.join(r.dir, 'best.png')], prompt);
  }
  t.diagnostic(
    `embedding score like ${s.like[0].toFixed(3)} -> ${s.like[1].toFixed(3)}; dislike ${s.dislike[0].toFixed(3)} -> ${s.dislike[1].toFixed(3)}`,
  );
  assert.ok(Math.abs(s.like[0] - s.dislike[0]) < 1e-6, 'same seed, same initial image');
  assert.ok(s.like[1] > s.like[0], `like: ${s.like[1]} <= ${s.like[0]}`);
  assert.ok(s.dislike[1] < s.dislike[0], `dislike: ${s.dislike[1]} >= ${s.dislike[0]}`);
});

test('a user with no checkpoint (--personal auto, no preset, no "model") gets the embedding model and is told so', async () => {
  const out = tmpDir('reno-emb-auto');
  const h = JSON.parse(fs.readFileSync(HISTORY, 'utf8'));
  assert.equal(h.model, undefined);
  const lines: string[] = [];
  // the tiny models as an ordinary --models-dir: nothing marks a smoke test, so no preset checkpoint is looked for
  const r = await generateCommand({
    prompt: 'a star',
    modelsDir: TINY,
    user: HISTORY,
    steps: 2,
    seed: 0,
    out,
    backend: 'wasm',
    quiet: true,
    overrides: ONLY_PERSONAL,
    log: (l) => lines.push(l),
  });
  const said = lines.find((l) => l.includes('personal reward'));
  assert.match(
    said ?? '',
    /embedding model .* because no trained preference checkpoint was named or found \(--preference-model, "model" in .*history\.json\)/,
  );
  const run = YAML.parse(fs.readFileSync(path.join(r.dir, 'run.yaml'), 'utf8'));
  assert.equal(run.run.personal_model, 'embedding');
  assert.equal(JSON.parse(readPngText(fs.readFileSync(path.join(r.dir, 'init.png'))).reno).personal.personal_model, 'embedding');
  assert.ok(Number.isFinite(r.result.best!.record.rewards.personal));
});

test('--personal vlm with no checkpoint refuses by name, before any compute', async () => {
  await assert.rejects(
    generateCommand({
      prompt: 'a star',
      modelsDir: TINY,
      user: HISTORY,
      personal: 'vlm',
      steps: 1,
      out: tmpDir('reno-emb-vlm'),
      backend: 'wasm',
      quiet: true,
      overrides: ONLY_PERSONAL,
      log: () => {},
    }),
    /no preference model for the personal reward: name a trained checkpoint with --preference-model/,
  );
});

test('reno score --user reports the personal score in both modes', async () => {
  const img = path.join(ROOT, 'examples', 'images', 'pair1-liked.png');
  const rows: Record<string, number> = {};
  for (const personal of ['embedding', 'vlm'] as const) {
    const r = await scoreCommand({
      prompt: 'a square',
      images: [img],
      rewards: ['personal'],
      user: HISTORY,
      personal,
      preset: 'tiny',
      backend: 'wasm',
      quiet: true,
      out: () => {},
    });
    rows[personal] = r[0].scores.personal;
  }
  assert.ok(Number.isFinite(rows.embedding) && Number.isFinite(rows.vlm));
  assert.ok(rows.vlm > 0 && rows.vlm < 1, `the VLM's Q(+) is a probability: ${rows.vlm}`);
  const [direct] = await embeddingScores([img], 'a square');
  assert.ok(Math.abs(rows.embedding - direct) < 1e-4, `${rows.embedding} vs ${direct}`);
});

test("the CLI: `reno score --personal embedding --user ... --json` prints the embedding model's score", async () => {
  const { spawnSync } = await import('node:child_process');
  const img = path.join(ROOT, 'examples', 'images', 'pair2-liked.png');
  const args = [
    '--import',
    'tsx',
    path.join(ROOT, 'src/cli/run.ts'),
    'score',
    '--preset',
    'tiny',
    '--backend',
    'wasm',
    '--prompt',
    'a star',
    '--user',
    HISTORY,
    '--personal',
    'embedding',
    '--rewards',
    'personal',
    '--json',
    img,
  ];
  const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', env: { ...process.env, RENO_WASM_THREADS: '1' } });
  assert.equal(r.status, 0, r.stderr);
  const got = JSON.parse(r.stdout).rows[0].scores.personal;
  const [want] = await embeddingScores([img], 'a star');
  assert.ok(Math.abs(got - want) < 1e-4, `${got} vs ${want}`);
});
