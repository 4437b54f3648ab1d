// reno sweep where users break it: an empty grid, a bad sweep file (nothing created), a grid over n_ref with a user
// history (each cell uses its own n_ref), and two `reno sweep` processes on one folder (each cell runs once).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { generateCommand } from '../../src/commands/generate.js';
import { sweepCommand } from '../../src/commands/sweep.js';
import { ROOT, tmpDir } from '../helpers.js';

const OFF = { imagereward: 0, aesthetic: 0, pickscore: 0, clip: 0, hpsv2: 0, personal: 0 };
const HISTORY = path.join(ROOT, 'examples', 'history.json');
const metrics = (dir: string) =>
  fs
    .readFileSync(path.join(dir, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));

test('sweep: an empty grid runs the base config as one cell and writes a complete summary', async () => {
  const d = tmpDir();
  const file = path.join(d, 'empty.yaml');
  fs.writeFileSync(file, `base:\n  prompt: a red fox\n  steps: 2\n  weights: ${JSON.stringify({ ...OFF, pickscore: 1 })}\ngrid: {}\n`);
  const out = path.join(d, 'out');
  const r = await sweepCommand({ file, out, preset: 'tiny', backend: 'wasm', quiet: true });
  assert.equal(r.cells.length, 1);
  assert.ok(fs.existsSync(path.join(r.cells[0].dir, 'done.json')));
  const csv = fs.readFileSync(path.join(out, 'summary.csv'), 'utf8').trim().split('\n');
  assert.equal(csv.length, 2);
  assert.match(csv[0], /^initial_loss,best_loss,best_step,best_pickscore_loss,folder$/);
  for (const f of ['grid.png', 'report.html']) assert.ok(fs.existsSync(path.join(out, f)), f);
});

test('sweep: a bad sweep (YAML, missing prompt, user without personal weight, missing model) creates nothing', async () => {
  const d = tmpDir();
  const cases: [string, string, RegExp, Record<string, string>?][] = [
    ['yaml', 'grid: [1, 2\n', /yaml\.yaml/],
    ['noprompt', 'base:\n  steps: 2\ngrid:\n  seed: [0, 1]\n', /noprompt\.yaml: cell 1 has no prompt/],
    [
      'nopersonal',
      `user: ${HISTORY}\nbase:\n  prompt: a fox\n  steps: 2\ngrid:\n  weights.personal: [1, 0]\n`,
      /nopersonal\.yaml: cell 2 \(personal=0\): --user needs weights\.personal > 0/,
    ],
    [
      'badreward',
      'base:\n  prompt: a fox\n  steps: 2\ngrid:\n  weights.sharpness: [1]\n',
      /badreward\.yaml: cell 1 \(sharpness=1\): weights\.sharpness: unknown reward "sharpness"/,
    ],
    [
      'nomodel',
      'base:\n  prompt: a fox\n  steps: 2\ngrid:\n  seed: [0, 1]\n',
      /nomodel\.yaml: .*not found/i,
      { modelsDir: path.join(d, 'no-models-here') },
    ],
  ];
  for (const [name, text, err, extra] of cases) {
    const file = path.join(d, `${name}.yaml`);
    fs.writeFileSync(file, text);
    const out = path.join(d, `out-${name}`);
    await assert.rejects(sweepCommand({ file, out, ...(extra ? extra : { preset: 'tiny' }), backend: 'wasm', quiet: true }), err, name);
    assert.ok(!fs.existsSync(out), `${name}: ${out} was created`);
  }
});

test('sweep over n_ref with a user: each cell scores with its own n_ref (same as generate with that n_ref)', async () => {
  const d = tmpDir();
  const file = path.join(d, 'nref.yaml');
  fs.writeFileSync(
    file,
    `user: ${HISTORY}\nbase:\n  prompt: a circle\n  steps: 1\n  seed: 3\n  weights: ${JSON.stringify({ ...OFF, personal: 1 })}\ngrid:\n  n_ref: [1, 3]\n`,
  );
  const r = await sweepCommand({ file, out: path.join(d, 'out'), preset: 'tiny', backend: 'wasm', quiet: true });
  const loss = r.cells.map((c) => metrics(c.dir)[0].rewards.personal as number);
  assert.notEqual(loss[0], loss[1], 'n_ref 1 and 3 gave the same personal loss');
  const g = await generateCommand({
    prompt: 'a circle',
    preset: 'tiny',
    user: HISTORY,
    steps: 1,
    seed: 3,
    out: path.join(d, 'gen'),
    backend: 'wasm',
    quiet: true,
    overrides: { weights: { ...OFF, personal: 1 }, n_ref: 3 },
  });
  assert.ok(
    Math.abs(metrics(g.dir)[0].rewards.personal - loss[1]) < 1e-6,
    `cell n_ref=3: ${loss[1]}, generate n_ref=3: ${metrics(g.dir)[0].rewards.personal}`,
  );
});

test('two reno sweep processes on one folder share the cells: each cell runs exactly once, the summary is complete', async () => {
  const d = tmpDir();
  const file = path.join(d, 'shared.yaml');
  const STEPS = 4;
  fs.writeFileSync(
    file,
    `base:\n  prompt: a red fox\n  steps: ${STEPS}\n  weights: ${JSON.stringify({ ...OFF, pickscore: 1 })}\ngrid:\n  seed: [0, 1, 2, 3]\n`,
  );
  const out = path.join(d, 'out');
  const start = () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', path.join(ROOT, 'src/cli/run.ts'), 'sweep', file, '--out', out, '--preset', 'tiny', '--backend', 'wasm'],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr.on('data', (x) => (stderr += x));
    const code = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    return { code, stderr: () => stderr };
  };
  const a = start();
  // the second process starts while the first is inside its first cell
  const started = () =>
    fs.existsSync(out) && fs.readdirSync(out).some((f) => f.startsWith('cell-') && fs.existsSync(path.join(out, f, 'metrics.jsonl')));
  const deadline = Date.now() + 120_000;
  while (!started() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  assert.ok(started(), `the first sweep did not start: ${a.stderr()}`);
  const b = start();
  const [ca, cb] = await Promise.all([a.code, b.code]);
  assert.equal(ca, 0, a.stderr());
  assert.equal(cb, 0, b.stderr());
  // every cell's first step, as printed by whichever process ran it
  const runs = (s: string) => [...s.matchAll(new RegExp(`^cell (\\d+)/4 1/${STEPS} `, 'gm'))].map((m) => Number(m[1]));
  const all = [...runs(a.stderr()), ...runs(b.stderr())].sort();
  assert.deepEqual(all, [1, 2, 3, 4], `cells run: a ${runs(a.stderr())}, b ${runs(b.stderr())}\n--- a\n${a.stderr()}\n--- b\n${b.stderr()}`);
  assert.ok(runs(b.stderr()).length > 0, 'the second process ran no cell');
  assert.match(b.stderr(), new RegExp(`cell \\d is being run by pid \\d+ on ${os.hostname().replace(/[.]/g, '\\.')} since `));
  const cells = fs.readdirSync(out).filter((f) => /^cell-\d+-[0-9a-f]+$/.test(f));
  assert.equal(cells.length, 4);
  for (const c of cells) {
    assert.ok(fs.existsSync(path.join(out, c, 'done.json')), c);
    assert.equal(metrics(path.join(out, c)).length, STEPS, c);
  }
  assert.equal(fs.readFileSync(path.join(out, 'summary.csv'), 'utf8').trim().split('\n').length, 5);
  assert.deepEqual(
    fs.readdirSync(out).filter((f) => f.endsWith('.claim')),
    [],
    'claims left behind',
  );
});

test('a claim left by a dead process is taken over', async () => {
  const d = tmpDir();
  const file = path.join(d, 'stale.yaml');
  fs.writeFileSync(file, `base:\n  prompt: a red fox\n  steps: 2\n  weights: ${JSON.stringify({ ...OFF, pickscore: 1 })}\ngrid:\n  seed: [0, 1]\n`);
  const out = path.join(d, 'out');
  // plan only (stopAfter 0) to learn the cell folders
  const plan = await sweepCommand({ file, out, preset: 'tiny', backend: 'wasm', quiet: true, stopAfter: 0 });
  const dead = spawn(process.execPath, ['-e', '0']);
  const deadPid = await new Promise<number>((r) => dead.on('exit', () => r(dead.pid!)));
  fs.writeFileSync(`${plan.cells[0].dir}.claim`, JSON.stringify({ pid: deadPid, host: os.hostname(), since: new Date().toISOString() }));
  const r = await sweepCommand({ file, out, preset: 'tiny', backend: 'wasm', quiet: true });
  assert.ok(r.cells.every((c) => fs.existsSync(path.join(c.dir, 'done.json'))));
  assert.ok(!fs.existsSync(`${plan.cells[0].dir}.claim`));
});
